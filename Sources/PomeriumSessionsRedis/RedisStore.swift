import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// The `redis` store: entries and locks in a Redis server shared by every instance.
///
/// Values are written with `SET key value PX ttl`, so every entry expires (v0.7 stored keys
/// forever). A lock is `SET <lock key> <owner token> NX PX ttl` and is released by a Lua script
/// that deletes the key only when it still holds the caller's token. Lock keys are the lock name
/// behind a control byte, which valid keys cannot contain, so they never collide with entries.
public final class RedisStore: KeyValueStore {
    public let configuration: RedisConfiguration
    private let transport: any RedisTransport

    /// Starts a client for `configuration`. It connects in the background; use `ping()` to wait for
    /// the first connection and check the credentials and, for `rediss://`, the server's certificate.
    ///
    /// The connection's I/O runs on `eventLoop`, or, when it is `nil`, on one loop thread that every
    /// Redis store of the process shares. Callers never hold a thread while they wait for a reply.
    /// NOTE: a caller's loop must run as long as the store, because commands sent after the loop
    /// stops are never completed.
    ///
    /// - Throws: `invalidConfiguration` for timeouts that are not positive, or TLS files that
    ///   cannot be loaded.
    public init(
        configuration: RedisConfiguration, logger: Logger = Logger(label: "pomerium.redis"), eventLoop: EventLoop? = nil
    ) throws(StoreError) {
        guard configuration.commandTimeout > .zero, configuration.connectTimeout > .zero else {
            throw StoreError(.invalidConfiguration, "Redis connect and command timeouts must be positive")
        }
        self.configuration = configuration
        self.transport = try RedisConnection(configuration: configuration, logger: logger, loop: eventLoop)
    }

    /// Starts a client from the `cache_store_address` and `cache_store_password` settings.
    public convenience init(address: String, password: String? = nil, logger: Logger = Logger(label: "pomerium.redis"))
        throws(StoreError)
    {
        try self.init(configuration: RedisConfiguration(address: address, password: password), logger: logger)
    }

    deinit { transport.shutdown() }

    /// Fails every waiting command and stops reconnecting. Later calls fail with `unavailable`.
    public func shutdown() { transport.shutdown() }

    /// Sends PING and returns when Redis replies, as v0.7 did at startup.
    public func ping() async throws(StoreError) {
        let reply = try await command("PING", ["PING"])
        guard case .simpleString("PONG") = reply else { throw unexpected(reply, "PING") }
    }

    public func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.validate(key: key)
        let reply = try await command("GET", [Array("GET".utf8), Array(key.utf8)])
        switch reply {
        case .bulkString(let bytes): return bytes
        case .null: return nil
        default: throw unexpected(reply, "GET")
        }
    }

    public func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        try StoreLimits.validate(valueCount: value.count)
        let milliseconds = try StoreLimits.validate(ttl: ttl)
        let reply = try await command(
            "SET", [Array("SET".utf8), Array(key.utf8), value, Array("PX".utf8), Array(String(milliseconds).utf8)])
        guard case .simpleString("OK") = reply else { throw unexpected(reply, "SET") }
    }

    public func delete(_ key: String) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        let reply = try await command("DEL", [Array("DEL".utf8), Array(key.utf8)])
        guard case .integer = reply else { throw unexpected(reply, "DEL") }
    }

    public func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let milliseconds = try StoreLimits.validate(ttl: ttl)
        let reply = try await command(
            "SET NX",
            [
                Array("SET".utf8), Self.lockKey(name), Array(owner.token.utf8), Array("NX".utf8), Array("PX".utf8),
                Array(String(milliseconds).utf8),
            ])
        switch reply {
        case .simpleString("OK"): return true
        case .null: return false
        default: throw unexpected(reply, "SET NX")
        }
    }

    public func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let reply = try await command(
            "EVAL",
            [Array("EVAL".utf8), Self.releaseScript, Array("1".utf8), Self.lockKey(name), Array(owner.token.utf8)])
        guard case .integer(let deleted) = reply else { throw unexpected(reply, "EVAL") }
        return deleted == 1
    }

    /// Deletes the lock key only if it still holds the caller's token, atomically on the server.
    static let releaseScript = Array(
        """
        if redis.call("GET", KEYS[1]) == ARGV[1] then
            return redis.call("DEL", KEYS[1])
        end
        return 0
        """.utf8)

    static func lockKey(_ name: String) -> [UInt8] { Array("\u{1}lock:".utf8) + Array(name.utf8) }

    private func command(_ name: String, _ arguments: [[UInt8]]) async throws(StoreError) -> RESPValue {
        let reply = try await transport.send(arguments).get()
        if case .error(let message) = reply {
            throw RedisServerError.storeError(for: message, endpoint: configuration.endpointDescription, command: name)
        }
        return reply
    }

    private func command(_ name: String, _ arguments: [String]) async throws(StoreError) -> RESPValue {
        try await command(name, arguments.map { Array($0.utf8) })
    }

    private func unexpected(_ reply: RESPValue, _ command: String) -> StoreError {
        let kind: String
        switch reply {
        case .simpleString: kind = "a simple string"
        case .error: kind = "an error"
        case .integer: kind = "an integer"
        case .bulkString: kind = "a bulk string"
        case .array: kind = "an array"
        case .null: kind = "null"
        }
        return StoreError(
            .protocolError, "Redis at \(configuration.endpointDescription) answered \(command) with \(kind)")
    }
}
