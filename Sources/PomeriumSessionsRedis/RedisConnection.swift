import CLinux
import Foundation
import Glibc
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

    init(configuration: RedisConfiguration, logger: Logger) throws(StoreError) {
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

    /// Connects, then moves commands and replies until the connection fails or the client shuts
    /// down. Commands left in the pipeline are failed with the returned error.
    private func runSession(addressIndex: Int) -> SessionOutcome {
        var pipeline = RedisPipeline<Request>(configuration: configuration)
        var becameReady = false
        let socket: RedisSocket
        do throws(StoreError) {
            socket = try RedisSocket.connect(
                host: configuration.host, port: configuration.port, addressIndex: addressIndex, endpoint: endpoint)
        } catch {
            return SessionOutcome(error: error, becameReady: false)
        }
        defer { socket.close() }
        let connectDeadline = Self.monotonicNow() + StoreLimits.seconds(configuration.connectTimeout)
        var connecting = true

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
                    return fail(
                        StoreError(
                            .timeout,
                            "Redis at \(endpoint) did not answer within \(configuration.commandTimeout) "
                                + "(command timeout)"))
                }
                deadline = oldest.deadline
            }
            if connecting {
                if connectDeadline <= now {
                    return fail(
                        StoreError(
                            .timeout,
                            "connecting to Redis at \(endpoint) timed out after \(configuration.connectTimeout)"))
                }
                deadline = min(deadline, connectDeadline)
            }

            var events = Int16(connecting ? POLLOUT : POLLIN)
            if !connecting && !pipeline.outbound.isEmpty { events |= Int16(POLLOUT) }
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

            if connecting {
                if let error = socket.connectionError() {
                    return fail(StoreError(.unavailable, "cannot connect to Redis at \(endpoint): \(error)"))
                }
                connecting = false
                continue
            }
            if revents & Int16(POLLOUT) != 0 {
                do throws(StoreError) {
                    let written = try socket.write(pipeline.outbound)
                    pipeline.consumeOutbound(written)
                } catch {
                    return fail(error)
                }
            }
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                do throws(StoreError) {
                    let bytes = try socket.readAvailable()
                    for (request, reply) in try pipeline.receive(bytes) { request.complete(.success(reply)) }
                } catch {
                    return fail(error)
                }
                if pipeline.isReady && !becameReady {
                    becameReady = true
                    logger.info("connected to Redis", metadata: ["address": .string(endpoint)])
                }
            }
        }
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
