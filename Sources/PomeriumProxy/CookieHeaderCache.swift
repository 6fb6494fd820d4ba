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
/// a session are stored, and a hit requires every byte to be equal. Expiry, revocation and policy are checked for every request after the
/// session is loaded, as for a session that was just opened.
///
/// The cache is direct-mapped: each header has one slot, chosen by a hash of its length and last
/// bytes (hashing all of a 380-byte header measured 2,500 instructions), and a new header
/// replaces whatever its slot contained. Headers that share their last bytes, such as one session
/// cookie followed by different other cookies, only take each other's slot. No lookup compares
/// more than one stored header, so no client can slow down other clients' lookups.
final class CookieHeaderCache: Sendable {
    /// The cookies, session and upstream `Cookie` value parsed from one header value.
    struct Entry: Sendable {
        let header: String
        let cookies: [HTTPCookie]
        let session: SessionState
        /// The `Cookie` value the upstream gets (`UpstreamRequestBuilder.keptCookieHeader`).
        let keptCookieHeader: String?
    }

    /// The number of trailing bytes the slot index is computed from.
    static let hashedSuffix = 32
    /// The longest header value stored. Each entry keeps the header about three times over (the
    /// text, the parsed cookies and the upstream value), so this bounds the cache at about
    /// 2,048 slots x 12 KiB = 24 MiB. Longer headers, such as chunked session cookies, take the
    /// uncached path.
    static let maximumHeaderLength = 4096

    private let slots: Mutex<[Entry?]>
    private let mask: Int

    /// Creates a cache of at least `capacity` slots, rounded up to a power of two. A capacity of 0
    /// turns it off.
    init(capacity: Int) {
        var count = capacity > 0 ? 1 : 0
        while count < capacity { count <<= 1 }
        slots = Mutex([Entry?](repeating: nil, count: count))
        mask = count - 1
    }

    func entry(for header: String) -> Entry? {
        guard mask >= 0 else { return nil }
        var header = header
        return header.withUTF8 { bytes in
            let slot = Self.slot(bytes, mask: mask)
            guard let entry = slots.withLock({ $0[slot] }) else { return nil }
            var stored = entry.header
            // Constant time: a client can aim its own header at a slot that another user's header
            // fills, and with memcmp the time to the first difference would reveal that header,
            // session cookie included, byte by byte.
            let equal = stored.withUTF8 { storedBytes in ConstantTime.equals(storedBytes, bytes) }
            return equal ? entry : nil
        }
    }

    func store(_ entry: Entry) {
        guard mask >= 0, entry.header.utf8.count <= Self.maximumHeaderLength else { return }
        var header = entry.header
        let slot = header.withUTF8 { Self.slot($0, mask: mask) }
        slots.withLock { $0[slot] = entry }
    }

    /// The number of filled slots.
    var count: Int { slots.withLock { $0.reduce(0) { $0 + ($1 == nil ? 0 : 1) } } }

    /// Returns the slot of a header: a multiply-and-xor mix of its length and last `hashedSuffix`
    /// bytes. It needs no seed, because a client can fill slots with its own headers anyway (one
    /// valid session cookie followed by ever new other cookies), and that only costs misses, never
    /// a longer lookup. The SipHash of `Hasher` measured about 400 instructions here.
    private static func slot(_ bytes: UnsafeBufferPointer<UInt8>, mask: Int) -> Int {
        var hash = UInt64(truncatingIfNeeded: bytes.count) &* 0x9E37_79B9_7F4A_7C15
        let start = max(0, bytes.count - hashedSuffix)
        for index in start..<bytes.count {
            hash = (hash ^ UInt64(bytes[index])) &* 0x0000_0100_0000_01B3
        }
        hash ^= hash >> 29
        hash = hash &* 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 32
        return Int(truncatingIfNeeded: hash) & mask
    }
}
