/// A key-value store for sessions: byte values under string keys, each with a time to live, plus
/// short-lived locks that make a session refresh single-flight across requests and instances.
///
/// A missing or expired key reads as `nil`, never as an error. Every entry expires, so no store
/// grows without bound. Implementations are `autocache` (`MemoryStore`), `bolt` (`LMDBStore`) and
/// `redis` (`RedisStore`).
///
/// Locks live in a namespace of their own: a lock named `k` and a value under key `k` do not
/// collide. A lock is a lease. `acquireLock` succeeds only when no unexpired lease exists, and only
/// the owner token that took it can release it. The lease frees itself when its TTL passes, so a
/// crashed owner blocks others for at most that TTL.
public protocol KeyValueStore: Sendable {
    /// Returns the value stored under `key`, or `nil` when the key is missing or expired.
    func get(_ key: String) async throws(StoreError) -> [UInt8]?

    /// Stores `value` under `key` for `ttl`, replacing any earlier value and its TTL.
    func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError)

    /// Removes `key`. Removing a missing key is not an error.
    func delete(_ key: String) async throws(StoreError)

    /// Takes the lock `name` for `owner` for `ttl`. Returns `false` when another unexpired lease
    /// holds it, including one taken earlier by the same owner.
    func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool

    /// Releases the lock `name` if `owner` holds it. Returns whether a lease was released; a
    /// release by another owner, or of an expired lease, changes nothing and returns `false`.
    func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool
}

/// The token that identifies who holds a lock: 128 random bits, in hex.
public struct LockOwner: Hashable, Sendable, CustomStringConvertible {
    public let token: String

    /// Creates an owner with a fresh random token.
    public init() {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        token = Self.hex(high) + Self.hex(low)
    }

    /// Creates an owner with a given token, for example one read back from a store.
    public init(token: String) { self.token = token }

    public var description: String { token }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// The limits every store enforces on its inputs, so a key or value that one store accepts is
/// accepted by all of them.
public enum StoreLimits {
    /// The largest key in UTF-8 bytes. LMDB's default build rejects keys over 511 bytes, and the
    /// stores add a prefix of at most 8 bytes to lock names.
    public static let maximumKeyBytes = 500

    /// The largest value in bytes. Sessions are a few KiB; 16 MiB leaves room without letting one
    /// entry take a whole in-memory budget.
    public static let maximumValueBytes = 16 * 1024 * 1024

    /// The shortest TTL. Redis counts expiry in milliseconds.
    public static let minimumTTL = Duration.milliseconds(1)

    /// Checks a key: 1 to `maximumKeyBytes` bytes of UTF-8 with no control characters (bytes 0x00
    /// to 0x1F and 0x7F), because the stores use a control byte to keep lock names apart.
    public static func validate(key: String) throws(StoreError) {
        let count = key.utf8.count
        guard count > 0 else {
            throw StoreError(.invalidKey, "invalid key: the key is empty")
        }
        guard count <= maximumKeyBytes else {
            throw StoreError(.invalidKey, "invalid key: \(count) bytes, the maximum is \(maximumKeyBytes)")
        }
        if let offset = key.utf8.firstIndex(where: { $0 < 0x20 || $0 == 0x7F }) {
            let position = key.utf8.distance(from: key.utf8.startIndex, to: offset)
            throw StoreError(.invalidKey, "invalid key: control character at byte \(position)")
        }
    }

    /// Checks a value's size.
    public static func validate(valueCount: Int) throws(StoreError) {
        guard valueCount <= maximumValueBytes else {
            throw StoreError(
                .invalidValue, "invalid value: \(valueCount) bytes, the maximum is \(maximumValueBytes)")
        }
    }

    /// Checks a TTL and returns it in whole milliseconds, rounded up.
    public static func validate(ttl: Duration) throws(StoreError) -> Int64 {
        guard ttl >= minimumTTL else {
            throw StoreError(.invalidTTL, "invalid TTL \(ttl): it must be at least \(minimumTTL)")
        }
        let (seconds, attoseconds) = ttl.components
        let millisecondsFromFraction = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow, milliseconds < Int64.max / 2 else {
            throw StoreError(.invalidTTL, "invalid TTL \(ttl): it is too long")
        }
        return milliseconds + millisecondsFromFraction
    }
}

extension StoreLimits {
    /// `duration` in seconds, as a `Double`, for deadlines on a `WallClock`.
    package static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
