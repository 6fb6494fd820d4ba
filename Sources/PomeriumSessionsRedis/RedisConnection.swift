import CLinux
import Foundation
import Glibc
import PomeriumCrypto
import PomeriumLogging
import PomeriumSessions
import Synchronization

/// The narrow interface between `RedisStore` and the I/O that carries its commands.
///
/// NOTE: `RedisConnection` drives its socket from a dedicated thread with `poll`, because the
/// project's epoll event loop is not available to this module yet. Moving the connection onto a
/// loop means implementing this protocol there; `RedisPipeline` already contains all protocol state.
protocol RedisTransport: Sendable {
    /// Sends one command and returns its reply, or an error once the command timeout has passed,
    /// the connection failed, or Redis is known to be unreachable.
    func send(_ arguments: [[UInt8]]) async -> Result<RESPValue, StoreError>

    /// Fails every waiting command and stops reconnecting.
    func shutdown()
}

/// One pipelined connection to Redis, driven by a thread of its own.
///
/// Commands from any task are queued and written in batches; replies complete them in order.
/// When the connection fails, every waiting command fails, and the thread reconnects after an
/// exponential backoff with jitter: `minimumBackoff`, doubling up to `maximumBackoff`. The first
/// retry after a working connection drops is immediate. While Redis is unreachable between
/// attempts, commands fail at once with the last connection error instead of waiting.
final class RedisConnection: RedisTransport, @unchecked Sendable {
    // @unchecked: `shared` is a Mutex, `wakeDescriptor` and `configuration` never change, and
    // the socket is used only by the I/O thread.

    struct Request: Sendable {
        let encoded: [UInt8]
        let deadline: Double
        let continuation: CheckedContinuation<Result<RESPValue, StoreError>, Never>

        func complete(_ result: Result<RESPValue, StoreError>) { continuation.resume(returning: result) }
    }

    private struct SharedState {
        var queue: [Request] = []
        /// The error to fail new commands with while no connection attempt is running.
        var downError: StoreError?
        var isShutDown = false
    }

    let configuration: RedisConfiguration
    private let logger: Logger
    private let shared = Mutex(SharedState())
    private let wakeDescriptor: Int32
    private let endpoint: String
    /// The TLS setup shared by every reconnect, for `rediss://`.
    private let tlsContext: TLSClientContext?

    init(configuration: RedisConfiguration, logger: Logger) throws(StoreError) {
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
            // OpenSSL writes records with write(2), which raises SIGPIPE when Redis has closed the
            // connection; the default action would end the process.
            signal(SIGPIPE, SIG_IGN)
        } else {
            tlsContext = nil
        }
        let descriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create an eventfd for the Redis client: \(Self.errnoText())")
        }
        self.configuration = configuration
        self.logger = logger
        self.wakeDescriptor = descriptor
        self.endpoint = configuration.endpointDescription
        let thread = Thread { [self] in run() }
        thread.name = "redis \(endpoint)"
        thread.start()
    }

    deinit { close(wakeDescriptor) }

    func send(_ arguments: [[UInt8]]) async -> Result<RESPValue, StoreError> {
        let encoded = RESPEncoder.encodeCommand(arguments)
        let deadline = Self.monotonicNow() + StoreLimits.seconds(configuration.commandTimeout)
        return await withCheckedContinuation { continuation in
            let request = Request(encoded: encoded, deadline: deadline, continuation: continuation)
            let rejection: StoreError? = shared.withLock { state in
                if state.isShutDown {
                    return StoreError(.unavailable, "the Redis client for \(endpoint) is shut down")
                }
                if let error = state.downError { return error }
                state.queue.append(request)
                return nil
            }
            if let rejection {
                request.complete(.failure(rejection))
            } else {
                wake()
            }
        }
    }

    func shutdown() {
        shared.withLock { $0.isShutDown = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
    }

    // MARK: The I/O thread

    private func run() {
        var failures = 0
        var reportedDown = false
        var addressIndex = 0
        while !isShutDown {
            let outcome = runSession(addressIndex: addressIndex)
            failAll(with: outcome.error)
            if isShutDown { break }
            if outcome.becameReady {
                failures = 0
                reportedDown = false
            }
            // One warning per outage, not one per attempt.
            if !reportedDown {
                logger.warning(
                    "Redis connection failed; reconnecting",
                    metadata: ["address": .string(endpoint), "error": .string(outcome.error.message)])
                reportedDown = true
            }
            failures += 1
            addressIndex += 1
            // The first retry after a working connection drops is immediate.
            if failures > 1 {
                let delay = backoff(failures: failures - 1)
                let message =
                    outcome.error.kind == .unavailable || outcome.error.kind == .timeout
                    ? "\(outcome.error.message); reconnecting in the background" : outcome.error.message
                shared.withLock { $0.downError = StoreError(outcome.error.kind, message) }
                failAll(with: outcome.error)
                waitForShutdown(seconds: delay)
                shared.withLock { $0.downError = nil }
            }
        }
        failAll(with: StoreError(.unavailable, "the Redis client for \(endpoint) is shut down"))
    }

    private var isShutDown: Bool { shared.withLock { $0.isShutDown } }

    /// Returns the delay in seconds before reconnect attempt `failures`: exponential, capped, with
    /// jitter between half and all of it so that many clients do not reconnect in step.
    private func backoff(failures: Int) -> Double {
        let minimum = StoreLimits.seconds(configuration.minimumBackoff)
        let maximum = StoreLimits.seconds(configuration.maximumBackoff)
        let exponential = min(maximum, minimum * pow(2, Double(min(failures - 1, 30))))
        return exponential * Double.random(in: 0.5...1)
    }

    private func waitForShutdown(seconds: Double) {
        let deadline = Self.monotonicNow() + seconds
        while !isShutDown {
            let remaining = deadline - Self.monotonicNow()
            if remaining <= 0 { return }
            var descriptor = pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Self.pollTimeout(remaining))
            drainWake()
        }
    }

    private func failAll(with error: StoreError) {
        let requests: [Request] = shared.withLock { state in
            let requests = state.queue
            state.queue.removeAll()
            return requests
        }
        for request in requests { request.complete(.failure(error)) }
    }

    private struct SessionOutcome {
        var error: StoreError
        var becameReady: Bool
    }

    /// The stage of one connection attempt.
    private enum Phase {
        case connecting
        case handshaking(HandshakeWait)
        case established
    }

    private enum HandshakeWait {
        case readable
        case writable
    }

    /// Connects, then moves commands and replies until the connection fails or the client shuts
    /// down. Commands left in the pipeline are failed with the returned error.
    private func runSession(addressIndex: Int) -> SessionOutcome {
        var pipeline = RedisPipeline<Request>(configuration: configuration)
        var becameReady = false
        var socket: RedisSocket
        do throws(StoreError) {
            socket = try RedisSocket.connect(
                host: configuration.host, port: configuration.port, addressIndex: addressIndex, endpoint: endpoint)
        } catch {
            return SessionOutcome(error: error, becameReady: false)
        }
        defer { socket.close() }
        let connectDeadline = Self.monotonicNow() + StoreLimits.seconds(configuration.connectTimeout)
        var phase = Phase.connecting
        var receivedBytes = false
        // Set when a TLS write needs the socket readable first, so that POLLOUT alone does not spin.
        var writeNeedsReadable = false

        func fail(_ error: StoreError) -> SessionOutcome {
            for request in pipeline.removeAllTags() { request.complete(.failure(error)) }
            return SessionOutcome(error: error, becameReady: becameReady)
        }

        while true {
            if isShutDown { return fail(StoreError(.unavailable, "the Redis client for \(endpoint) is shut down")) }
            takeQueued(into: &pipeline)
            let now = Self.monotonicNow()
            var deadline = Double.infinity
            if let oldest = pipeline.oldestTag {
                if oldest.deadline <= now {
                    if case .established = phase {
                        return fail(
                            StoreError(
                                .timeout,
                                "Redis at \(endpoint) did not answer within \(configuration.commandTimeout) "
                                    + "(command timeout)"))
                    }
                    return fail(connectTimeoutError(phase))
                }
                deadline = oldest.deadline
            }
            var events: Int16
            switch phase {
            case .connecting, .handshaking:
                if connectDeadline <= now { return fail(connectTimeoutError(phase)) }
                deadline = min(deadline, connectDeadline)
                if case .handshaking(.readable) = phase {
                    events = Int16(POLLIN)
                } else {
                    events = Int16(POLLOUT)
                }
            case .established:
                events = Int16(POLLIN)
                if !pipeline.outbound.isEmpty && !writeNeedsReadable { events |= Int16(POLLOUT) }
            }

            var descriptors = [
                pollfd(fd: socket.descriptor, events: events, revents: 0),
                pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&descriptors, 2, deadline.isFinite ? Self.pollTimeout(deadline - now) : -1)
            if ready < 0 && errno != EINTR {
                return fail(StoreError(.unavailable, "poll failed for Redis at \(endpoint): \(Self.errnoText())"))
            }
            if descriptors[1].revents != 0 { drainWake() }
            let revents = descriptors[0].revents
            if revents == 0 { continue }

            switch phase {
            case .connecting:
                if let error = socket.connectionError() {
                    return fail(StoreError(.unavailable, "cannot connect to Redis at \(endpoint): \(error)"))
                }
                guard let tlsContext else {
                    phase = .established
                    continue
                }
                do throws(StoreError) {
                    try socket.startTLS(context: tlsContext, host: configuration.host)
                } catch {
                    return fail(error)
                }
                phase = .handshaking(.writable)
                continue
            case .handshaking:
                do throws(StoreError) {
                    switch try socket.handshake() {
                    case .finished: phase = .established
                    case .needsReadable: phase = .handshaking(.readable)
                    case .needsWritable: phase = .handshaking(.writable)
                    }
                } catch {
                    return fail(error)
                }
                continue
            case .established:
                break
            }

            if revents & Int16(POLLOUT) != 0 {
                do throws(StoreError) {
                    let progress = try socket.write(pipeline.outbound)
                    pipeline.consumeOutbound(progress.written)
                    writeNeedsReadable = progress.needsReadable
                } catch {
                    return fail(explainFirstClose(error, receivedBytes: receivedBytes))
                }
            }
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                writeNeedsReadable = false
                do throws(StoreError) {
                    let bytes = try socket.readAvailable()
                    if !bytes.isEmpty { receivedBytes = true }
                    for (request, reply) in try pipeline.receive(bytes) { request.complete(.success(reply)) }
                } catch {
                    return fail(explainFirstClose(error, receivedBytes: receivedBytes))
                }
                if pipeline.isReady && !becameReady {
                    becameReady = true
                    logger.info(
                        "connected to Redis",
                        metadata: ["address": .string(endpoint), "tls": .string(configuration.useTLS ? "yes" : "no")])
                }
            }
        }
    }

    private func connectTimeoutError(_ phase: Phase) -> StoreError {
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
    private func explainFirstClose(_ error: StoreError, receivedBytes: Bool) -> StoreError {
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

    private func takeQueued(into pipeline: inout RedisPipeline<Request>) {
        let requests: [Request] = shared.withLock { state in
            let requests = state.queue
            state.queue.removeAll(keepingCapacity: true)
            return requests
        }
        for request in requests { pipeline.submit(request.encoded, tag: request) }
    }

    private func drainWake() {
        var value: UInt64 = 0
        _ = read(wakeDescriptor, &value, 8)
    }

    static func monotonicNow() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func pollTimeout(_ seconds: Double) -> Int32 {
        Int32(min(60_000, max(0, (seconds * 1000).rounded(.up))))
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
