import CXXHash
import Glibc
import PomeriumCrypto
import PomeriumHTTP
import PomeriumSessions
import Synchronization

/// Sessions loaded from whole `Cookie` header values, so a browser's repeated requests with the
/// same header skip parsing the cookies and opening the session cookie.
///
/// What is stored is a pure function of the header text: the parsed cookies, the session the
/// cookie codec opened from them and the `Cookie` value for the upstream. Only headers that gave
/// a session are stored, and a hit requires every byte to be equal. Expiry, revocation and
/// policy are checked for every request after the session is loaded, as for a session that was
/// just opened.
///
/// The cache is direct-mapped: each header has one slot, and a new header replaces whatever its
/// slot contained. No lookup compares more than one stored header, so no client can slow down
/// other clients' lookups.
///
/// Security: the stored headers are other users' session cookies, and a lookup must not reveal
/// them through its timing. The slot and a 64-bit tag both come from one keyed hash of the whole
/// header: XXH3 (libxxhash) with a 64-bit seed that each cache draws from OpenSSL.
/// - A client cannot aim its header at the slot of another user's header: that header is a
///   secret the client does not have, so neither are its hash and slot. Its headers land in
///   slots it cannot choose against others.
/// - When a header lands in a filled slot, the tags differ unless the headers are equal. At
///   2,048 slots the tag has 53 bits beyond the slot index, so a different header matches with
///   probability about 2^-53. A tag mismatch returns before any stored byte is read, so the
///   timing depends on no byte of the stored header.
/// - Only when the tags match are the bytes compared, with `memcmp`. Its time then reveals at
///   most how long a prefix a header shares with an equal-tagged one, which is all of it in
///   practice. The constant-time comparison this replaces (`CRYPTO_memcmp`) cost 7 instructions
///   per byte, about 2,800 for a 400-byte header.
/// - XXH3 is not a cryptographic hash, so someone who learned the seed could build headers that
///   collide with each other. Colliding headers only take each other's slot and miss, which any
///   client can cause by sending many different headers. Correctness never rests on the hash,
///   because a hit needs every byte equal. For a 390-byte header, SipHash-1-3 (`Hasher`) cost
///   about 2,000 instructions and XXH3 costs about 610, and a whole authenticated request
///   measured about 1,600 fewer (callgrind, release build).
/// A client can still learn whether some header evicted its own entry, which reveals equal slot
/// indexes of two unknown headers under an unknown seed and nothing about their bytes.
final class CookieHeaderCache: Sendable {
    /// The cookies, session and upstream `Cookie` value parsed from one header value. A class, so
    /// a hit copies one reference out of the slot instead of retaining each of the four fields.
    final class Entry: Sendable {
        let header: String
        let cookies: [HTTPCookie]
        let session: SessionState
        /// The proxy's facts for `session`, kept here so that a hit reads them without taking the
        /// session's lock as `SessionState.derived(_:)` does.
        let facts: SessionFacts
        /// The `Cookie` value the upstream gets (`UpstreamRequestBuilder.keptCookieHeader`).
        let keptCookieHeader: String?

        init(header: String, cookies: [HTTPCookie], session: SessionState, keptCookieHeader: String?) {
            self.header = header
            self.cookies = cookies
            self.session = session
            facts = session.derived(SessionFacts.init)
            self.keptCookieHeader = keptCookieHeader
        }
    }

    /// A filled slot: an entry and the keyed hash of its header.
    private struct Slot: Sendable {
        let tag: UInt64
        let entry: Entry
    }

    /// The longest header value stored. Each entry keeps the header about three times over (the
    /// text, the parsed cookies and the upstream value), so this bounds the cache at about
    /// 2,048 slots x 12 KiB = 24 MiB. Longer headers, such as chunked session cookies, take the
    /// uncached path.
    static let maximumHeaderLength = 4096

    private let slots: Mutex<[Slot?]>
    private let mask: Int
    private let seed: UInt64

    /// Creates a cache of at least `capacity` slots, rounded up to a power of two. A capacity of 0
    /// turns it off, and so does a failure of OpenSSL's random generator, which leaves no seed.
    init(capacity: Int) {
        var count = capacity > 0 ? 1 : 0
        while count < capacity { count <<= 1 }
        var seed: UInt64 = 0
        if let random = try? SecureRandom.bytes(8) {
            seed = random.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        } else {
            count = 0
        }
        self.seed = seed
        slots = Mutex([Slot?](repeating: nil, count: count))
        mask = count - 1
    }

    /// Returns the entry stored for the header value `header`, if any.
    func entry(for header: String) -> Entry? {
        var header = header
        return header.withUTF8 { entry(forHeaderBytes: $0) }
    }

    /// Returns the entry stored for the header value whose bytes are `bytes`, if any. The proxy
    /// passes the `Cookie` field's bytes as they lie in the request head, so a hit builds no string.
    func entry(forHeaderBytes bytes: UnsafeBufferPointer<UInt8>) -> Entry? {
        // A longer header is never stored, so hashing it would be wasted work.
        guard mask >= 0, bytes.count <= Self.maximumHeaderLength else { return nil }
        let tag = keyedHash(bytes)
        let index = Int(truncatingIfNeeded: tag) & mask
        let candidate = slots.withLock { slots -> Entry? in
            guard let slot = slots[index], slot.tag == tag else { return nil }
            return slot.entry
        }
        guard let candidate else { return nil }
        let equal = Self.withBytes(of: candidate.header) { storedBytes in
            guard storedBytes.count == bytes.count else { return false }
            guard let left = storedBytes.baseAddress, let right = bytes.baseAddress else { return true }
            return memcmp(left, right, bytes.count) == 0
        }
        return equal ? candidate : nil
    }

    func store(_ entry: Entry) {
        guard mask >= 0, entry.header.utf8.count <= Self.maximumHeaderLength else { return }
        var header = entry.header
        let tag = header.withUTF8 { keyedHash($0) }
        slots.withLock { $0[Int(truncatingIfNeeded: tag) & mask] = Slot(tag: tag, entry: entry) }
    }

    /// The number of filled slots.
    var count: Int { slots.withLock { $0.reduce(0) { $0 + ($1 == nil ? 0 : 1) } } }

    /// Returns the slot index of `header`, for tests that need two headers in one slot.
    func slotIndex(of header: String) -> Int {
        var header = header
        return header.withUTF8 { Int(truncatingIfNeeded: keyedHash($0)) & mask }
    }

    /// Calls `body` with the UTF-8 bytes of `text`, read in place when the string has contiguous
    /// storage, without the copy that the mutating `withUTF8` needs.
    private static func withBytes<Result>(of text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var text = text
        return text.withUTF8(body)
    }

    /// Returns the keyed hash of a header: its low bits pick the slot, and all 64 bits are the tag.
    private func keyedHash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        XXH3_64bits_withSeed(bytes.baseAddress, bytes.count, seed)
    }
}
