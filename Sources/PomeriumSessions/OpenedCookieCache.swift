import Glibc
import Synchronization

/// Sessions already opened, keyed by the exact cookie bytes that opened them, so a browser's
/// repeated requests skip the key derivation, decryption and JSON decoding. Only text that once
/// passed authenticated decryption is stored, and a hit requires every byte to be equal, so the
/// cache cannot admit a value the codec would reject.
///
/// Bounded twice: by `capacity` entries and by `maximumBytes` of estimated memory (see
/// `charge(cookieBytes:session:)`), so that many large cookies, such as the chunked cookies of
/// users with hundreds of groups, cannot grow the process without limit. The oldest stored entries
/// are evicted first until both limits hold. An entry whose charge exceeds `maximumEntryBytes` is
/// not stored, so no single entry takes more than a sixteenth of the byte limit.
final class OpenedCookieCache: Sendable {
    /// The default for `maximumBytes`: 16 MiB. A typical session, with a cookie of about 600
    /// bytes, is charged about 3 KiB, so the 4,096-entry count limit applies first (at about
    /// 11 MiB). A session near the six-chunk cookie limit (a 20 KiB cookie, 400 groups) is
    /// charged about 93 KiB, so about 170 fit instead of 4,096 (about 370 MiB).
    static let defaultMaximumBytes = 16 << 20

    private struct Entries {
        var sessions: [OpenedCookieKey: SessionState] = [:]
        /// Stored keys with their charges, oldest first, from `head` on. An evicted slot is
        /// replaced by an empty key at once, so its cookie bytes are freed on eviction, and the
        /// evicted prefix is dropped once it is longer than the live part.
        var order: [(key: OpenedCookieKey, charge: Int)] = []
        var head = 0
        var chargedBytes = 0
    }

    private let entries = Mutex(Entries())
    let capacity: Int
    let maximumBytes: Int

    /// Creates a cache of at most `capacity` entries and `maximumBytes` of estimated memory. A
    /// capacity or byte limit of 0 turns it off.
    init(capacity: Int, maximumBytes: Int = OpenedCookieCache.defaultMaximumBytes) {
        self.capacity = max(0, capacity)
        self.maximumBytes = max(0, maximumBytes)
    }

    /// The maximum charge of an entry that is stored. A larger entry is skipped.
    var maximumEntryBytes: Int { maximumBytes / 16 }

    func session(for text: [UInt8]) -> SessionState? {
        guard capacity > 0 else { return nil }
        let key = OpenedCookieKey(text)
        return entries.withLock { $0.sessions[key] }
    }

    func store(_ session: SessionState, for text: [UInt8]) {
        guard capacity > 0 else { return }
        let charge = Self.charge(cookieBytes: text.count, session: session)
        guard charge <= maximumEntryBytes else { return }
        let key = OpenedCookieKey(text)
        entries.withLock { state in
            // Equal cookie bytes always open to an equal session, so an entry that is already
            // stored, by a request that missed at the same time, stays as it is.
            guard state.sessions[key] == nil else { return }
            state.sessions[key] = session
            state.order.append((key, charge))
            state.chargedBytes += charge
            while state.sessions.count > capacity || state.chargedBytes > maximumBytes,
                state.head < state.order.count
            {
                let oldest = state.order[state.head]
                state.order[state.head] = (OpenedCookieKey([]), 0)
                state.head += 1
                state.sessions[oldest.key] = nil
                state.chargedBytes -= oldest.charge
            }
            if state.head > 64, state.head > state.order.count - state.head {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    var count: Int { entries.withLock { $0.sessions.count } }

    /// The sum of the stored entries' charges, in bytes.
    var chargedBytes: Int { entries.withLock { $0.chargedBytes } }

    /// The number of evicted slots at the front of the order list, for tests of its bound.
    var evictedSlotCount: Int { entries.withLock { $0.head } }

    /// The cookie bytes that the order list refers to, for tests that evicted keys are released.
    var orderedKeyBytes: Int { entries.withLock { $0.order.reduce(0) { $0 + $1.key.bytes.count } } }

    /// Returns the estimated memory, in bytes, that an entry keeps alive: the cookie bytes, the
    /// decoded claims, and twice the cookie bytes again for what the proxy derives from the
    /// session and keeps with it. That is mostly the signed identity assertion, whose length is
    /// close to the cookie's because both are base64url of the same claims, stored once as a
    /// string and once in the encoded header block.
    static func charge(cookieBytes: Int, session: SessionState) -> Int {
        3 * cookieBytes + session.estimatedMemorySize
    }
}

/// Cookie bytes as a cache key: equal only when every byte is equal, hashed by the length and the
/// last `hashedSuffix` bytes, because hashing the whole 370-byte cookie measured 3,100 instructions
/// per request.
///
/// Only cookies that passed AES-GCM authentication are stored, and each ends in its random
/// authentication tag, so a client cannot fill one bucket with stored keys. A shared suffix costs
/// one comparison and never returns another cookie's session.
struct OpenedCookieKey: Hashable, Sendable {
    static let hashedSuffix = 32

    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func == (lhs: OpenedCookieKey, rhs: OpenedCookieKey) -> Bool {
        guard lhs.bytes.count == rhs.bytes.count else { return false }
        return lhs.bytes.withUnsafeBytes { left in
            rhs.bytes.withUnsafeBytes { right in
                guard let leftBase = left.baseAddress, let rightBase = right.baseAddress else { return true }
                return memcmp(leftBase, rightBase, left.count) == 0
            }
        }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.count)
        bytes.withUnsafeBytes { buffer in
            let start = max(0, buffer.count - Self.hashedSuffix)
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }
}

extension SessionState {
    /// An estimate of the heap memory that the session's claims occupy, in bytes, for caches
    /// that bound their size. It counts each string and list at its Swift 6 layout on a 64-bit
    /// platform and ignores malloc's rounding. Copies of one session share their storage, but
    /// each copy is counted in full.
    var estimatedMemorySize: Int {
        // The shared storage object with its lock, and the claims' fixed-size fields.
        var size = 512
        for text in [issuer, subject, id, email, accessTokenID] {
            size += Self.heapSize(of: text)
        }
        for text in [user, name, givenName, familyName, picture, impersonateEmail] {
            size += text.map(Self.heapSize(of:)) ?? 0
        }
        size += Self.heapSize(of: audience) + Self.heapSize(of: groups)
        size += impersonateGroups.map(Self.heapSize(of:)) ?? 0
        if let token = oauthToken {
            size += Self.heapSize(of: token.accessToken) + Self.heapSize(of: token.tokenType)
            size += Self.heapSize(of: token.refreshToken)
        }
        return size
    }

    /// Returns the heap bytes of a native string: none up to 15 UTF-8 bytes, which are stored
    /// inline, otherwise a 32-byte object header, the bytes and a terminating zero.
    static func heapSize(of text: String) -> Int {
        let count = text.utf8.count
        return count <= 15 ? 0 : 32 + count + 1
    }

    /// Returns the heap bytes of a list of strings: a 32-byte header, 16 bytes per element and
    /// each element's own storage.
    static func heapSize(of list: [String]) -> Int {
        list.reduce(32 + 16 * list.count) { $0 + heapSize(of: $1) }
    }
}
