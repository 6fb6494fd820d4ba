import Glibc
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import PomeriumNet
import Synchronization

/// The per-loop part of a server: its listener and live connections. Loop thread only.
final class LoopServerState {
    let loop: EventLoop
    let logger: Logger
    var listener: Listener?
    private var connections: [ObjectIdentifier: HTTPServerConnectionHandler] = [:]
    private(set) var isDraining = false
    var onEmpty: (() -> Void)?

    init(loop: EventLoop, logger: Logger) {
        self.loop = loop
        self.logger = logger
    }

    var connectionCount: Int { connections.count }

    func add(_ connection: HTTPServerConnectionHandler) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func remove(_ connection: HTTPServerConnectionHandler) {
        connections[ObjectIdentifier(connection)] = nil
        if connections.isEmpty, let onEmpty {
            self.onEmpty = nil
            onEmpty()
        }
    }

    func drain() {
        isDraining = true
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.beginDraining() }
    }

    func forceClose() {
        for connection in Array(connections.values) { connection.forceClose() }
    }
}

/// An HTTP/1.1 server (optionally over TLS) with one `SO_REUSEPORT` listener per event loop.
/// `makeHandler` is called on the connection's loop for every request that the previous
/// handler does not take through `HTTPRequestHandler.prepareForNextRequest()`.
public final class HTTPServer: Sendable {
    public let group: EventLoopGroup
    /// The configuration given at init; `currentConfiguration` has the timeouts in effect now.
    public let configuration: HTTPServerConfiguration
    private let states: [LoopBound<LoopServerState>]
    private let logger: Logger
    /// The bound address; its port is the real one when the configuration asked for port 0.
    public let localAddress: SocketAddress
    private let shutdownStarted = Atomic<Bool>(false)
    /// The configuration that connections accepted from now on get; `updateTimeouts` changes it.
    private let acceptConfiguration: AcceptConfiguration

    public init(
        group: EventLoopGroup,
        configuration: HTTPServerConfiguration,
        logger: Logger = Logger(label: "pomerium.http-server"),
        makeHandler: @escaping @Sendable (EventLoop) -> any HTTPRequestHandler
    ) async throws {
        self.group = group
        self.configuration = configuration
        self.logger = logger
        let acceptConfiguration = AcceptConfiguration(configuration)
        self.acceptConfiguration = acceptConfiguration
        var states: [LoopBound<LoopServerState>] = []
        var address = configuration.address
        try Listener.checkUnused(address)
        for loop in group.loops {
            let bound = address
            let state = try await loop.run {
                let state = LoopServerState(loop: loop, logger: logger)
                let tls = configuration.tls
                state.listener = try Listener(address: bound, loop: loop) { [unowned state] descriptor, peer in
                    Self.accept(
                        descriptor: descriptor, peer: peer, state: state, tls: tls,
                        configuration: acceptConfiguration.current, makeHandler: makeHandler)
                }
                return LoopBound(state, loop: loop)
            }
            // Later loops bind the port the first one got, so port 0 works with SO_REUSEPORT.
            if address.port == 0 {
                address = try await loop.run { state.value.listener?.address ?? bound }
            }
            states.append(state)
        }
        self.states = states
        localAddress = address
        logger.info("HTTP server listening", metadata: ["address": "\(address)", "loops": "\(group.loops.count)"])
    }

    private static func accept(
        descriptor: Int32,
        peer: SocketAddress,
        state: LoopServerState,
        tls: TLSServerContext?,
        configuration: HTTPServerConfiguration,
        makeHandler: @escaping (EventLoop) -> any HTTPRequestHandler
    ) {
        do {
            try Syscall.setOption(descriptor, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            let session = try tls.map { try TLSSession(server: $0, descriptor: descriptor) }
            let stream = try StreamConnection(
                descriptor: descriptor, loop: state.loop, tls: session, connecting: false, remoteAddress: peer)
            let handler = HTTPServerConnectionHandler(
                stream: stream, configuration: configuration, registry: state, makeHandler: makeHandler)
            stream.delegate = handler
            state.add(handler)
            if session != nil { handler.armHandshakeDeadline() }
            stream.start()
        } catch {
            Syscall.close(descriptor)
            state.logger.warning("failed to set up an accepted connection", metadata: ["error": "\(error)"])
        }
    }

    /// Sets the timeouts (in seconds, zero disables one) of connections accepted from now on.
    /// Open connections keep the timeouts they were accepted with.
    public func updateTimeouts(readHeader: Double, read: Double, write: Double, idle: Double) {
        acceptConfiguration.update { configuration in
            configuration.readHeaderTimeout = readHeader
            configuration.readTimeout = read
            configuration.writeTimeout = write
            configuration.idleTimeout = idle
        }
    }

    /// The configuration that the next accepted connection gets.
    public var currentConfiguration: HTTPServerConfiguration { acceptConfiguration.current }

    /// The number of open client connections across all loops.
    public func connectionCount() async -> Int {
        var total = 0
        for state in states {
            total += (try? await state.loop.run { state.value.connectionCount }) ?? 0
        }
        return total
    }

    /// Stops accepting, lets in-flight requests finish for up to `gracePeriod` seconds, then closes
    /// every remaining connection. Returns when all connections are closed.
    public func shutdown(gracePeriod: Double) async {
        guard !shutdownStarted.exchange(true, ordering: .acquiringAndReleasing) else { return }
        logger.info("HTTP server shutting down", metadata: ["grace_seconds": "\(gracePeriod)"])
        await withTaskGroup(of: Void.self) { tasks in
            for state in states {
                tasks.addTask {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        state.loop.execute {
                            let server = state.value
                            let resumed = LoopFlag()
                            let finish = {
                                guard !resumed.isSet else { return }
                                resumed.isSet = true
                                continuation.resume()
                            }
                            server.onEmpty = finish
                            server.drain()
                            if server.connectionCount == 0 {
                                server.onEmpty = nil
                                finish()
                                return
                            }
                            state.loop.schedule(after: gracePeriod) {
                                server.forceClose()
                                server.onEmpty = nil
                                finish()
                            }
                        }
                    }
                }
            }
        }
        logger.info("HTTP server stopped")
    }

    /// Calls `shutdown(gracePeriod:)` when one of `signals` arrives, and then `onStopped`. Block the
    /// signals first with `SignalWatcher.blockSignals` on the main thread, before threads start.
    public func shutdownOnSignals(
        _ signals: [Int32] = [SIGTERM, SIGINT],
        gracePeriod: Double,
        onStopped: @escaping @Sendable () -> Void = {}
    ) async throws {
        let loop = group.loops[0]
        let logger = self.logger
        _ = try await loop.run {
            let watcher = try SignalWatcher(signals: signals, loop: loop) { [weak self] number in
                logger.info("signal received", metadata: ["signal": "\(number)"])
                guard let self else { return }
                Task {
                    await self.shutdown(gracePeriod: gracePeriod)
                    onStopped()
                }
            }
            return LoopBound(watcher, loop: loop)
        }
    }
}

/// The configuration handed to each accepted connection, behind a lock so a reload can change it.
final class AcceptConfiguration: Sendable {
    private let value: Mutex<HTTPServerConfiguration>

    init(_ configuration: HTTPServerConfiguration) { value = Mutex(configuration) }

    var current: HTTPServerConfiguration { value.withLock { $0 } }

    func update(_ change: (inout HTTPServerConfiguration) -> Void) { value.withLock { change(&$0) } }
}

/// A flag captured by loop-thread closures.
final class LoopFlag {
    var isSet = false
}
