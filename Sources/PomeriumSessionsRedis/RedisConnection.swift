import CLinux
import Foundation
import Glibc
import PomeriumCrypto
import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// The narrow interface between `RedisStore` and the I/O that carries its commands.
protocol RedisTransport: Sendable {
    /// Sends one command and returns its reply, or an error once the command timeout has passed,
    /// the connection failed, or Redis is known to be unreachable.
    func send(_ arguments: [[UInt8]]) async -> Result<RESPValue, StoreError>

    /// Fails every waiting command and stops reconnecting.
    func shutdown()
}

/// The event loops that carry Redis connections when the caller names none: one loop thread for
/// every Redis connection of the process, started on first use.
enum RedisEventLoops {
    static let shared = Result<EventLoopGroup, StoreError> { () throws(StoreError) -> EventLoopGroup in
        do {
            return try EventLoopGroup(loopCount: 1, logger: Logger(label: "pomerium.redis"))
        } catch {
            throw StoreError(.unavailable, "cannot start the event loop for Redis connections: \(error)")
        }
    }
}

/// One pipelined connection to Redis, driven by an epoll event loop that it may share with other
/// connections.
///
/// Commands from any task are handed to the loop and written in one batch per loop iteration;
/// replies complete them in order. When the connection fails, every waiting command fails, and
/// the loop reconnects after an exponential backoff with jitter: `minimumBackoff`, doubling up to
/// `maximumBackoff`. The first retry after a working connection drops is immediate. While Redis is
/// unreachable between attempts, commands fail at once with the last connection error instead of
/// waiting.
final class RedisConnection: RedisTransport, EventHandler, @unchecked Sendable {
    // @unchecked: every `var` below is read and written only on `loop`'s thread; `configuration`,
    // `logger`, `loop`, `endpoint` and `tlsContext` never change.

    struct Request: Sendable {
        let encoded: [UInt8]
        /// Monotonic nanoseconds after which the command times out.
        let deadline: UInt64
        let continuation: CheckedContinuation<Result<RESPValue, StoreError>, Never>

        func complete(_ result: Result<RESPValue, StoreError>) { continuation.resume(returning: result) }
    }

    /// The stage of the current connection attempt.
    private enum Phase {
        /// No socket: waiting out the backoff, or shut down.
        case idle
        case connecting
        case handshaking(HandshakeWait)
        case established
    }

    private enum HandshakeWait {
        case readable
        case writable
    }

    let configuration: RedisConfiguration
    private let logger: Logger
    private let loop: EventLoop
    private let endpoint: String
    /// The TLS setup shared by every reconnect, for `rediss://`.
    private let tlsContext: TLSClientContext?

    private var phase = Phase.idle
    private var socket: RedisSocket?
    private var pipeline: RedisPipeline<Request>
    private var registeredEvents: UInt32 = 0
    private var becameReady = false
    private var receivedBytes = false
    /// Set when a TLS write needs the socket readable first, so that EPOLLOUT alone does not spin.
    private var writeNeedsReadable = false
    private var flushScheduled = false
    private var commandTimer: LoopTimer?
    private var connectTimer: LoopTimer?
    private var backoffTimer: LoopTimer?
    private var failures = 0
    private var reportedDown = false
    private var addressIndex = 0
    /// The error to fail new commands with while waiting out the backoff.
    private var downError: StoreError?
    private var isShutDown = false
    /// Counts connection attempts, so that a lookup finishing after its attempt ended is ignored.
    private var attempt = 0

    /// The function that turns the configured host name into addresses: getaddrinfo, or a slow stand-in in tests.
    typealias Resolver = @Sendable (_ host: String, _ port: Int, _ endpoint: String) throws -> [RedisAddress]
    private let resolver: Resolver

    /// Starts connecting on `loop`, or on the shared Redis loop when it is `nil`.
    init(
        configuration: RedisConfiguration, logger: Logger, loop: EventLoop? = nil,
        resolver: @escaping Resolver = { host, port, endpoint in
            try RedisSocket.resolve(host: host, port: port, endpoint: endpoint)
        }
    ) throws(StoreError) {
        if let tls = configuration.tls {
            do {
                tlsContext = try TLSClientContext(configuration: tls)
            } catch {
                throw StoreError(
                    .invalidConfiguration,
                    "cannot set up TLS for cache_store_address \(configuration.endpointDescription): \(error); check "
                        + "tls_ca_file, tls_cert_file and tls_key_file in the URL")
            }
            if tls.skipVerification {
                logger.warning(
                    "TLS to Redis does not verify the server's certificate (tls_skip_verify in cache_store_address)",
                    metadata: ["address": .string(configuration.endpointDescription)])
            }
        } else {
            tlsContext = nil
        }
        self.configuration = configuration
        self.logger = logger
        self.resolver = resolver
        if let loop {
            self.loop = loop
        } else {
            self.loop = try RedisEventLoops.shared.get().next()
        }
        self.endpoint = configuration.endpointDescription
        self.pipeline = RedisPipeline(configuration: configuration)
        self.loop.execute { [self] in connect() }
    }

    func send(_ arguments: [[UInt8]]) async -> Result<RESPValue, StoreError> {
        let encoded = RESPEncoder.encodeCommand(arguments)
        let deadline = MonotonicClock.nanoseconds() &+ Self.nanoseconds(configuration.commandTimeout)
        return await withCheckedContinuation { continuation in
            let request = Request(encoded: encoded, deadline: deadline, continuation: continuation)
            loop.execute { [self] in submit(request) }
        }
    }

    func shutdown() {
        loop.execute { [self] in
            guard !isShutDown else { return }
            isShutDown = true
            backoffTimer?.cancel()
            backoffTimer = nil
            closeSession(failingWith: shutDownError)
        }
    }

    private var shutDownError: StoreError { StoreError(.unavailable, "the Redis client for \(endpoint) is shut down") }

    // MARK: Loop-thread work

    private func submit(_ request: Request) {
        if isShutDown {
            request.complete(.failure(shutDownError))
            return
        }
        if let downError {
            request.complete(.failure(downError))
            return
        }
        pipeline.submit(request.encoded, tag: request)
        if commandTimer == nil { armCommandTimer(deadline: request.deadline) }
        // One write per loop iteration carries every command submitted in it.
        if !flushScheduled {
            flushScheduled = true
            loop.deferToNextTick { [self] in
                flushScheduled = false
                flush()
            }
        }
    }

    private func flush() {
        guard case .established = phase, let socket, !pipeline.outbound.isEmpty, !writeNeedsReadable else {
            updateInterest()
            return
        }
        do throws(StoreError) {
            let progress = try socket.write(pipeline.outbound)
            pipeline.consumeOutbound(progress.written)
            writeNeedsReadable = progress.needsReadable
        } catch {
            sessionFailed(explainFirstClose(error))
            return
        }
        updateInterest()
    }

    /// Opens a new connection, with a fresh pipeline whose handshake (AUTH, SELECT) goes first.
    private func connect() {
        guard !isShutDown else { return }
        downError = nil
        // Commands submitted while no socket existed were never written, so they move to the new
        // pipeline behind its handshake.
        let unsent = pipeline.removeAllTags()
        pipeline = RedisPipeline(configuration: configuration)
        for request in unsent { pipeline.submit(request.encoded, tag: request) }
        if let oldest = unsent.first, commandTimer == nil { armCommandTimer(deadline: oldest.deadline) }
        becameReady = false
        receivedBytes = false
        writeNeedsReadable = false
        attempt &+= 1
        phase = .connecting
        // Armed before the lookup, so that it bounds a slow DNS answer as well as the connect.
        connectTimer = loop.schedule(afterNanoseconds: Self.nanoseconds(configuration.connectTimeout)) { [self] in
            connectTimer = nil
            switch phase {
            case .connecting, .handshaking: sessionFailed(connectTimeoutError())
            case .idle, .established: break
            }
        }
        if let addresses = RedisSocket.numericAddresses(host: configuration.host, port: configuration.port) {
            open(addresses)
            return
        }
        // A host name goes to getaddrinfo on a blocking-work thread, because the lookup can wait
        // seconds on DNS. On the loop it would stall every other Redis connection of the process,
        // and in a task it would hold one of the few threads that run every Swift task.
        let current = attempt
        let host = configuration.host
        let port = configuration.port
        let endpoint = self.endpoint
        let resolver = self.resolver
        let loop = self.loop
        BlockingWorkers.shared.run { [self] in
            let result = Result { try resolver(host, port, endpoint) }
            loop.execute { [self] in finishLookup(result, attempt: current) }
        }
    }

    /// Connects with the addresses a lookup found, unless its attempt already ended.
    private func finishLookup(_ result: Result<[RedisAddress], any Error>, attempt lookupAttempt: Int) {
        // The attempt may have timed out or been shut down while the lookup ran.
        guard lookupAttempt == attempt, socket == nil, case .connecting = phase, !isShutDown else { return }
        switch result {
        case .success(let addresses):
            open(addresses)
        case .failure(let error as StoreError):
            sessionFailed(error)
        case .failure(let error):
            sessionFailed(
                StoreError(.unavailable, "cannot resolve the Redis host in cache_store_address \(endpoint): \(error)"))
        }
    }

    /// Starts the connect to one of `addresses`, a different one on each successive attempt.
    private func open(_ addresses: [RedisAddress]) {
        guard !addresses.isEmpty else {
            sessionFailed(StoreError(.unavailable, "the Redis host in cache_store_address \(endpoint) has no address"))
            return
        }
        let opened: RedisSocket
        do throws(StoreError) {
            opened = try RedisSocket.connect(to: addresses[addressIndex % addresses.count], endpoint: endpoint)
        } catch {
            sessionFailed(error)
            return
        }
        do {
            try loop.register(opened.descriptor, handler: self, events: UInt32(EPOLLOUT.rawValue))
        } catch {
            opened.close()
            sessionFailed(StoreError(.unavailable, "cannot watch the Redis socket for \(endpoint): \(error)"))
            return
        }
        socket = opened
        registeredEvents = UInt32(EPOLLOUT.rawValue)
    }

    func handleEvents(_ events: UInt32) {
        guard var socket else { return }
        switch phase {
        case .idle:
            return
        case .connecting:
            if let error = socket.connectionError() {
                sessionFailed(StoreError(.unavailable, "cannot connect to Redis at \(endpoint): \(error)"))
                return
            }
            guard let tlsContext else {
                connectionEstablished()
                return
            }
            do throws(StoreError) {
                try socket.startTLS(context: tlsContext, host: configuration.host)
            } catch {
                sessionFailed(error)
                return
            }
            self.socket = socket
            advanceHandshake(socket)
        case .handshaking:
            advanceHandshake(socket)
        case .established:
            if events & UInt32(EPOLLOUT.rawValue) != 0 {
                flush()
                guard case .established = phase else { return }
            }
            if events & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                readReplies(socket)
            }
        }
    }

    func loopWillClose() {
        isShutDown = true
        closeSession(failingWith: shutDownError)
    }

    private func advanceHandshake(_ socket: RedisSocket) {
        do throws(StoreError) {
            switch try socket.handshake() {
            case .finished:
                connectionEstablished()
                return
            case .needsReadable: phase = .handshaking(.readable)
            case .needsWritable: phase = .handshaking(.writable)
            }
        } catch {
            sessionFailed(error)
            return
        }
        updateInterest()
    }

    private func connectionEstablished() {
        phase = .established
        connectTimer?.cancel()
        connectTimer = nil
        flush()
    }

    private func readReplies(_ socket: RedisSocket) {
        writeNeedsReadable = false
        var completed: [(Request, RESPValue)] = []
        do throws(StoreError) {
            try socket.readAvailable(into: loop.scratch) { bytes throws(StoreError) in
                receivedBytes = true
                completed += try pipeline.receive(bytes)
            }
        } catch {
            // Replies parsed before the failure belong to commands the pipeline no longer holds.
            for (request, reply) in completed { request.complete(.success(reply)) }
            sessionFailed(explainFirstClose(error))
            return
        }
        if pipeline.isReady && !becameReady {
            becameReady = true
            logger.info(
                "connected to Redis",
                metadata: ["address": .string(endpoint), "tls": .string(configuration.useTLS ? "yes" : "no")])
        }
        for (request, reply) in completed { request.complete(.success(reply)) }
        updateInterest()
    }

    /// Sets the epoll mask the current phase needs, when it changed.
    private func updateInterest() {
        guard let socket else { return }
        var events: UInt32
        switch phase {
        case .idle: return
        case .connecting: events = UInt32(EPOLLOUT.rawValue)
        case .handshaking(.readable): events = UInt32(EPOLLIN.rawValue)
        case .handshaking(.writable): events = UInt32(EPOLLOUT.rawValue)
        case .established:
            events = UInt32(EPOLLIN.rawValue)
            if !pipeline.outbound.isEmpty && !writeNeedsReadable { events |= UInt32(EPOLLOUT.rawValue) }
        }
        guard events != registeredEvents else { return }
        do {
            try loop.modify(socket.descriptor, events: events)
            registeredEvents = events
        } catch {
            sessionFailed(StoreError(.unavailable, "cannot watch the Redis socket for \(endpoint): \(error)"))
        }
    }

    /// Fails the connection when its oldest command has waited `commandTimeout`. Commands carry
    /// deadlines in submission order, so the oldest one always expires first.
    private func armCommandTimer(deadline: UInt64) {
        let now = MonotonicClock.nanoseconds()
        commandTimer = loop.schedule(afterNanoseconds: deadline > now ? deadline - now : 0) { [self] in
            commandTimer = nil
            guard let oldest = pipeline.oldestTag else { return }
            if oldest.deadline > MonotonicClock.nanoseconds() {
                armCommandTimer(deadline: oldest.deadline)
                return
            }
            if case .established = phase {
                sessionFailed(
                    StoreError(
                        .timeout,
                        "Redis at \(endpoint) did not answer within \(configuration.commandTimeout) (command timeout)"))
            } else {
                sessionFailed(connectTimeoutError())
            }
        }
    }

    /// Closes the socket and fails every command of the connection with `error`.
    private func closeSession(failingWith error: StoreError) {
        connectTimer?.cancel()
        connectTimer = nil
        commandTimer?.cancel()
        commandTimer = nil
        if let socket {
            loop.unregister(socket.descriptor)
            socket.close()
        }
        socket = nil
        phase = .idle
        registeredEvents = 0
        for request in pipeline.removeAllTags() { request.complete(.failure(error)) }
    }

    /// Ends the connection and plans the next attempt: at once after a connection that worked,
    /// otherwise after the backoff, during which commands fail at once with `error`.
    private func sessionFailed(_ error: StoreError) {
        let wasReady = becameReady
        closeSession(failingWith: error)
        guard !isShutDown else { return }
        if wasReady {
            failures = 0
            reportedDown = false
        }
        // One warning per outage, not one per attempt.
        if !reportedDown {
            logger.warning(
                "Redis connection failed; reconnecting",
                metadata: ["address": .string(endpoint), "error": .string(error.message)])
            reportedDown = true
        }
        failures += 1
        addressIndex += 1
        guard failures > 1 else {
            connect()
            return
        }
        let message =
            error.kind == .unavailable || error.kind == .timeout
            ? "\(error.message); reconnecting in the background" : error.message
        downError = StoreError(error.kind, message)
        backoffTimer = loop.schedule(after: backoff(failures: failures - 1)) { [self] in
            backoffTimer = nil
            connect()
        }
    }

    /// Returns the delay in seconds before reconnect attempt `failures`: exponential, capped, with
    /// jitter between half and all of it so that many clients do not reconnect in step.
    private func backoff(failures: Int) -> Double {
        let minimum = StoreLimits.seconds(configuration.minimumBackoff)
        let maximum = StoreLimits.seconds(configuration.maximumBackoff)
        let exponential = min(maximum, minimum * pow(2, Double(min(failures - 1, 30))))
        return exponential * Double.random(in: 0.5...1)
    }

    private func connectTimeoutError() -> StoreError {
        if case .connecting = phase, socket == nil {
            return StoreError(
                .timeout,
                "resolving the Redis host in cache_store_address \(endpoint) did not finish within "
                    + "\(configuration.connectTimeout); check the name and the DNS servers, or use an IP address")
        }
        if case .handshaking = phase {
            return StoreError(
                .timeout,
                "the TLS handshake with Redis at \(endpoint) did not finish within \(configuration.connectTimeout); "
                    + "check that the port serves TLS: a plain Redis port never answers a handshake, so use redis:// "
                    + "for it")
        }
        return StoreError(
            .timeout, "connecting to Redis at \(endpoint) timed out after \(configuration.connectTimeout)")
    }

    /// Adds a hint to a connection lost before any reply. A TLS port closes plain-text clients at
    /// once, and over TLS 1.3 a server that requires a client certificate rejects the client only
    /// after the handshake, so the first write or read fails.
    private func explainFirstClose(_ error: StoreError) -> StoreError {
        guard !receivedBytes, error.kind == .unavailable else { return error }
        if configuration.useTLS {
            guard configuration.tls?.clientCertificate == nil else { return error }
            return StoreError(
                error.kind,
                "\(error.message) before any reply; if the server requires client certificates (tls-auth-clients), "
                    + "set tls_cert_file and tls_key_file in cache_store_address")
        }
        return StoreError(
            error.kind,
            "\(error.message) before any reply; if this port serves TLS, use a rediss:// cache_store_address")
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, StoreLimits.seconds(duration)) * 1_000_000_000)
    }
}
