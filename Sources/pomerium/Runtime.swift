import Dispatch
import Glibc
import PomeriumConfig
import PomeriumCore
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumServer
import Synchronization

/// A failure that stops the start; its text names the setting to fix.
struct StartupError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// Runs the services of a valid configuration until SIGTERM or SIGINT: the shared dependencies,
/// the listeners, the config watcher, and the graceful stop.
final class Runtime: Sendable {
    static let stopSignals: [Int32] = [SIGTERM, SIGINT]
    /// How long requests in flight may run on after a stop signal.
    static let shutdownGracePeriod = 10.0

    let loader: ConfigLoader
    let initialSnapshot: ConfigSnapshot
    let watchConfig: Bool
    private let logger = Logger(label: "pomerium")

    init(loader: ConfigLoader, snapshot: ConfigSnapshot, watchConfig: Bool) {
        self.loader = loader
        self.initialSnapshot = snapshot
        self.watchConfig = watchConfig
    }

    /// Runs on the task pool and blocks the main thread until the services have stopped.
    func runBlocking() -> Int32 {
        let result = ExitCodeBox()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let code = await self.run()
            result.code.withLock { $0 = code }
            done.signal()
        }
        done.wait()
        return result.code.withLock { $0 }
    }

    private func run() async -> Int32 {
        let options = initialSnapshot.options
        let group: EventLoopGroup
        do {
            group = try EventLoopGroup(logger: logger)
        } catch {
            return fail("cannot start the event loops: \(error)")
        }
        defer { group.shutdown() }

        let running: RunningServers
        do {
            running = try await start(options: options, group: group)
        } catch let error as StartupError {
            return fail(error.description)
        } catch {
            return fail("\(error)")
        }

        logger.info(
            "pomerium started",
            metadata: [
                "version": .string(BuildInfo.version), "revision": .string(BuildInfo.revision),
                "address": .string("\(running.main.localAddress)"),
                "tls": .string(options.insecureServer ? "off" : "on"),
                "routes": .string("\(options.policy.count)"),
            ])
        let signal = await waitForStopSignal(loop: group.loops[0])
        logger.info("stopping", metadata: ["signal": .string(signal == SIGTERM ? "SIGTERM" : "SIGINT")])
        running.watcher?.stop()
        async let mainStopped: Void = running.main.shutdown(gracePeriod: Self.shutdownGracePeriod)
        async let redirectStopped: Void? = running.redirect?.shutdown(gracePeriod: 1)
        _ = await (mainStopped, redirectStopped)
        running.onStop()
        logger.info("stopped")
        return ExitCode.success
    }

    private struct RunningServers {
        let main: HTTPServer
        let redirect: HTTPServer?
        let watcher: ConfigWatcher?
        let onStop: @Sendable () -> Void
    }

    private func start(options: Options, group: EventLoopGroup) async throws -> RunningServers {
        let address: SocketAddress
        let redirectAddress: SocketAddress?
        do {
            address = try ListenAddress.parse(options.address, key: "address")
            redirectAddress = try options.httpRedirectAddress.map {
                try ListenAddress.parse($0, key: "http_redirect_addr")
            }
        } catch {
            throw StartupError("\(error)")
        }
        let tls = try ServerTLS.makeContext(options: options)
        let wiring = try await ServiceWiring.start(options: options, group: group, logger: logger)
        let holder = ConfigSnapshotHolder(initialSnapshot)
        let initialServices = try wiring.build(initialSnapshot)
        let dispatcher = HostDispatcher(services: initialServices, logger: Logger(label: "pomerium.http"))

        let timeouts = ServerTimeouts(options: options)
        var configuration = HTTPServerConfiguration(
            address: address, tls: tls, readHeaderTimeout: timeouts.readHeader, readTimeout: timeouts.read,
            writeTimeout: timeouts.write, idleTimeout: timeouts.idle)
        // The sign-in callback carries the whole route session in its query, about 40 bytes per
        // group, so the request line may be as long as the header section.
        configuration.connection.limits.maxStartLineLength = Self.maximumRequestLineLength
        let main: HTTPServer
        do {
            main = try await HTTPServer(
                group: group, configuration: configuration, logger: Logger(label: "pomerium.http")
            ) { loop in
                dispatcher.makeHandler(loop: loop)
            }
        } catch {
            throw StartupError(
                "cannot listen on address \(options.address): \(error); pick a free port or stop what uses it")
        }

        var redirect: HTTPServer?
        if let redirectAddress, let text = options.httpRedirectAddress {
            let factory = HTTPSRedirect.makeHandlerFactory(
                httpsPort: main.localAddress.port, responseHeaders: initialServices.responseHeaders)
            do {
                redirect = try await HTTPServer(
                    group: group, configuration: HTTPServerConfiguration(address: redirectAddress),
                    logger: Logger(label: "pomerium.http-redirect"), makeHandler: factory)
            } catch {
                await main.shutdown(gracePeriod: 0)
                throw StartupError(
                    "cannot listen on http_redirect_addr \(text): \(error); pick a free port or stop what uses it")
            }
        }

        var watcher: ConfigWatcher?
        if watchConfig {
            let reloadLogger = Logger(label: "pomerium.config")
            let listener = ListenerReloader(server: main, tls: tls, options: options, logger: reloadLogger)
            let reloader = ServiceReloader(
                dispatcher: dispatcher, holder: holder, listener: listener, logger: reloadLogger, build: wiring.build)
            let configWatcher = ConfigWatcher(
                reloader: ConfigReloader(loader: loader, holder: holder, logger: reloadLogger), logger: reloadLogger
            ) { outcome in
                reloader.apply(outcome)
            }
            do {
                try configWatcher.start()
                watcher = configWatcher
            } catch {
                logger.error("config hot reload is off: \(error.reason)")
            }
        }
        return RunningServers(main: main, redirect: redirect, watcher: watcher, onStop: wiring.stop)
    }

    /// Waits on a signalfd of `loop` for SIGTERM or SIGINT and returns its number.
    private func waitForStopSignal(loop: EventLoop) async -> Int32 {
        let state = LoopBound(SignalWait(), loop: loop)
        let number = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            loop.execute {
                let wait = state.value
                do {
                    wait.watcher = try SignalWatcher(signals: Self.stopSignals, loop: loop) { number in
                        guard !wait.resumed else { return }
                        wait.resumed = true
                        continuation.resume(returning: number)
                    }
                } catch {
                    // Without a signalfd nothing could stop the process gracefully: stop now.
                    wait.resumed = true
                    continuation.resume(returning: SIGTERM)
                }
            }
        }
        _ = try? await loop.run { state.value.watcher?.close() }
        return number
    }

    private func fail(_ message: String) -> Int32 {
        logger.critical("\(message)")
        writeStandardError("pomerium: \(message)\n")
        return ExitCode.failure
    }

    /// The longest request line the listener accepts: 64 KiB, the size of the header section,
    /// where the parser's default of 8 KiB cut off sign-in for users with a few hundred groups.
    static let maximumRequestLineLength = 64 * 1024
}

private final class ExitCodeBox: Sendable {
    let code = Mutex<Int32>(ExitCode.failure)
}

/// The stop-signal watcher and whether it has fired. Loop thread only.
private final class SignalWait {
    var watcher: SignalWatcher?
    var resumed = false
}
