import PomeriumSessions

/// The protocol state of one Redis connection, with no I/O: the handshake (AUTH, SELECT), the
/// bytes waiting to be written, and the commands waiting for replies in order. Any number of
/// commands may be in flight (pipelining); Redis replies to them in the order they were sent.
///
/// The I/O layer calls `submit` for each command, writes `outbound` and reports it with
/// `consumeOutbound`, and feeds every byte read to `receive`, which returns the tags of completed
/// commands with their replies.
public struct RedisPipeline<Tag> {
    private enum Slot {
        case authenticate
        case selectDatabase
        case request(Tag)
    }

    public private(set) var outbound: [UInt8] = []
    /// Whether every handshake reply has arrived and succeeded.
    public private(set) var isReady: Bool
    private var parser = RESPParser()
    private var slots: [Slot] = []
    private var firstSlot = 0
    private var pendingHandshakeReplies = 0
    private let endpoint: String
    private let database: Int

    public init(configuration: RedisConfiguration) {
        endpoint = configuration.endpointDescription
        database = configuration.database
        if let password = configuration.password {
            var arguments = [Array("AUTH".utf8)]
            if let username = configuration.username { arguments.append(Array(username.utf8)) }
            arguments.append(Array(password.utf8))
            RESPEncoder.encodeCommand(arguments, into: &outbound)
            slots.append(.authenticate)
        }
        if configuration.database != 0 {
            RESPEncoder.encodeCommand(
                [Array("SELECT".utf8), Array(String(configuration.database).utf8)], into: &outbound)
            slots.append(.selectDatabase)
        }
        pendingHandshakeReplies = slots.count
        isReady = slots.isEmpty
    }

    /// The number of commands sent or queued that have no reply yet, handshake included.
    public var pendingCount: Int { slots.count - firstSlot }

    /// The tag of the oldest command still waiting for its reply.
    public var oldestTag: Tag? {
        for index in firstSlot..<slots.count {
            if case .request(let tag) = slots[index] { return tag }
        }
        return nil
    }

    /// Queues a command encoded with `RESPEncoder.encodeCommand`.
    public mutating func submit(_ encodedCommand: [UInt8], tag: Tag) {
        outbound.append(contentsOf: encodedCommand)
        slots.append(.request(tag))
    }

    /// Drops the first `count` bytes of `outbound` after the I/O layer has written them.
    public mutating func consumeOutbound(_ count: Int) {
        outbound.removeFirst(min(count, outbound.count))
    }

    /// Feeds bytes read from the connection. Returns the commands that completed, oldest first.
    ///
    /// - Throws: `StoreError` of kind `authenticationFailed` or `invalidConfiguration` when the
    ///   handshake fails, or `protocolError` when the bytes are not valid RESP or reply to no command.
    ///   The connection must then be closed and every pending tag failed.
    public mutating func receive<Bytes: Sequence<UInt8>>(_ bytes: Bytes) throws(StoreError) -> [(Tag, RESPValue)] {
        parser.append(bytes)
        var completed: [(Tag, RESPValue)] = []
        while true {
            let reply: RESPValue?
            do throws(RESPError) {
                reply = try parser.next()
            } catch {
                throw StoreError(.protocolError, "Redis at \(endpoint) sent an invalid reply: \(error)")
            }
            guard let reply else { break }
            guard firstSlot < slots.count else {
                throw StoreError(.protocolError, "Redis at \(endpoint) sent a reply to no command")
            }
            let slot = slots[firstSlot]
            firstSlot += 1
            switch slot {
            case .authenticate:
                try checkAuthentication(reply)
                handshakeReplyArrived()
            case .selectDatabase:
                try checkSelect(reply)
                handshakeReplyArrived()
            case .request(let tag):
                completed.append((tag, reply))
            }
        }
        if firstSlot > 64 && firstSlot * 2 > slots.count {
            slots.removeFirst(firstSlot)
            firstSlot = 0
        }
        return completed
    }

    /// Removes and returns the tags of every command without a reply, to fail them.
    public mutating func removeAllTags() -> [Tag] {
        var tags: [Tag] = []
        for index in firstSlot..<slots.count {
            if case .request(let tag) = slots[index] { tags.append(tag) }
        }
        slots.removeAll()
        firstSlot = 0
        return tags
    }

    private mutating func handshakeReplyArrived() {
        pendingHandshakeReplies -= 1
        if pendingHandshakeReplies == 0 { isReady = true }
    }

    private func checkAuthentication(_ reply: RESPValue) throws(StoreError) {
        switch reply {
        case .simpleString:
            return
        case .error(let message):
            // Only the error code is quoted: the rest of an AUTH error is of no use to an operator,
            // and the password must not reach a log through it.
            let code = message.split(separator: " ").first.map(String.init) ?? "ERR"
            if message.contains("without any password configured") || message.contains("no password is set") {
                throw StoreError(
                    .authenticationFailed,
                    "Redis at \(endpoint) has no password configured but cache_store_password is set; remove the "
                        + "setting or set requirepass on the server (\(code))")
            }
            throw StoreError(
                .authenticationFailed,
                "Redis at \(endpoint) rejected the credentials (\(code)); check cache_store_password and the user in "
                    + "cache_store_address")
        default:
            throw StoreError(.protocolError, "Redis at \(endpoint) answered AUTH with an unexpected reply")
        }
    }

    private func checkSelect(_ reply: RESPValue) throws(StoreError) {
        switch reply {
        case .simpleString:
            return
        case .error(let message):
            if message.hasPrefix("NOAUTH") {
                throw RedisServerError.storeError(for: message, endpoint: endpoint, command: "SELECT")
            }
            throw StoreError(
                .invalidConfiguration,
                "Redis at \(endpoint) rejected database \(database) from cache_store_address: \(message)")
        default:
            throw StoreError(.protocolError, "Redis at \(endpoint) answered SELECT with an unexpected reply")
        }
    }
}

/// Maps Redis error replies to `StoreError`s with the setting to change.
enum RedisServerError {
    static func storeError(for message: String, endpoint: String, command: String) -> StoreError {
        let code = message.split(separator: " ").first.map(String.init) ?? ""
        switch code {
        case "OOM":
            return StoreError(
                .full,
                "Redis at \(endpoint) is full: it rejected \(command) because used memory is above maxmemory; raise "
                    + "maxmemory or set maxmemory-policy to volatile-lru")
        case "NOAUTH":
            return StoreError(
                .authenticationFailed,
                "Redis at \(endpoint) requires a password: set cache_store_password")
        case "WRONGPASS":
            return StoreError(
                .authenticationFailed,
                "Redis at \(endpoint) rejected the credentials (WRONGPASS); check cache_store_password")
        case "NOPERM":
            return StoreError(
                .authenticationFailed,
                "Redis at \(endpoint) does not allow \(command) for the user in cache_store_address (NOPERM)")
        case "READONLY":
            return StoreError(
                .unavailable,
                "Redis at \(endpoint) is a read-only replica; point cache_store_address at the primary")
        case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN":
            return StoreError(.unavailable, "Redis at \(endpoint) cannot serve \(command) now (\(code)); retry later")
        default:
            return StoreError(
                .protocolError, "Redis at \(endpoint) returned an error for \(command): \(message.prefix(200))")
        }
    }
}
