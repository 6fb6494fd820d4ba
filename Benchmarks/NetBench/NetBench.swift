import Dispatch
import Glibc
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumReverseProxy
import Synchronization

/// Benchmark servers for the network core:
///   NetBench hello --listen 127.0.0.1:PORT [--loops N] [--tls-cert F --tls-key F]
///   NetBench proxy --listen 127.0.0.1:PORT --upstream http://127.0.0.1:UP [--loops N] [--tls-cert F --tls-key F]
///   NetBench auth --listen 127.0.0.1:PORT --upstream http://127.0.0.1:UP --cookie-file F [--loops N]
/// Every mode takes `--output-delay-limit MICROSECONDS` (default 1000), the maximum time output waits
/// for the rest of an event batch. With 0, output leaves after each event.
/// `auth` runs the proxy service with a session cookie for host `app.example.test` (see `AuthProxyBench`).
/// Both run until SIGTERM or SIGINT, then shut down gracefully.
///
/// `main` is synchronous and blocks on a semaphore while a detached task runs the server. An
/// async `main` parks the main thread in libdispatch's `dispatch_main`, whose `rt_sigsuspend` on
/// a read-only signal set crashes valgrind 3.19, and valgrind's callgrind is how the per-request
/// instruction counts of this benchmark are measured.
@main
struct NetBench {
    static func main() {
        let finished = DispatchSemaphore(value: 0)
        let failed = Atomic<Bool>(false)
        let arguments = Array(CommandLine.arguments.dropFirst())
        Task.detached {
            do {
                try await run(arguments)
            } catch {
                let message = "NetBench: \(error)\n"
                _ = message.withCString { write(2, $0, strlen($0)) }
                failed.store(true, ordering: .relaxed)
            }
            finished.signal()
        }
        finished.wait()
        exit(failed.load(ordering: .relaxed) ? 2 : 0)
    }

    static func run(_ arguments: [String]) async throws {
        guard let mode = arguments.first, ["hello", "proxy", "auth"].contains(mode) else {
            throw UsageError(
                "usage: NetBench hello|proxy|auth --listen HOST:PORT [--upstream URL] [--loops N] "
                    + "[--tls-cert FILE --tls-key FILE] [--cookie-file FILE] [--output-delay-limit MICROSECONDS]")
        }
        var options: [String: String] = [:]
        var index = 1
        while index < arguments.count {
            let name = arguments[index]
            guard name.hasPrefix("--"), index + 1 < arguments.count else {
                throw UsageError("option '\(name)' needs a value")
            }
            options[String(name.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
        guard let listen = options["listen"] else { throw UsageError("--listen HOST:PORT is required") }
        let loops = try options["loops"].map { value -> Int in
            guard let count = Int(value), count > 0 else { throw UsageError("--loops must be a positive number") }
            return count
        }
        let outputDelayLimit = try options["output-delay-limit"].map { value -> UInt64 in
            guard let microseconds = UInt64(value), microseconds <= 1_000_000 else {
                throw UsageError("--output-delay-limit must be a number of microseconds from 0 to 1000000")
            }
            return microseconds * 1000
        }
        raiseDescriptorLimit()
        try SignalWatcher.blockSignals([SIGTERM, SIGINT])
        var logger = Logger(label: "netbench")
        logger.logLevel = .warning
        let group = try EventLoopGroup(
            loopCount: loops, outputDelayLimit: outputDelayLimit ?? EventLoopGroup.defaultOutputDelayLimit,
            logger: logger)
        var tls: TLSServerContext?
        if let certificate = options["tls-cert"], let key = options["tls-key"] {
            tls = try TLSServerContext(
                configuration: TLSServerConfiguration(
                    certificates: [.files(certificateChain: certificate, privateKey: key)]))
        }
        let configuration = HTTPServerConfiguration(address: try SocketAddress(parsing: listen), tls: tls)
        let server: HTTPServer
        if mode == "hello" {
            server = try await HTTPServer(group: group, configuration: configuration, logger: logger) { _ in
                HelloHandler()
            }
        } else if mode == "auth" {
            guard let upstreamURL = options["upstream"], let cookieFile = options["cookie-file"] else {
                throw UsageError("auth needs --upstream URL and --cookie-file FILE")
            }
            let (service, cookie) = try AuthProxyBench.makeService(
                upstream: upstreamURL, client: HTTPClient(group: group), logger: logger)
            try AuthProxyBench.write(cookie + "\n", to: cookieFile)
            server = try await HTTPServer(group: group, configuration: configuration, logger: logger) { loop in
                service.makeHandler(loop: loop)
            }
        } else {
            guard let upstreamURL = options["upstream"] else { throw UsageError("proxy needs --upstream URL") }
            let client = HTTPClient(group: group)
            let proxy = ReverseProxy(
                client: client,
                configuration: ReverseProxyConfiguration(upstream: try HTTPUpstream(url: upstreamURL)),
                logger: logger)
            server = try await HTTPServer(group: group, configuration: configuration, logger: logger) { loop in
                proxy.makeHandler(loop)
            }
        }
        let banner = "NetBench \(mode) listening on \(server.localAddress) with \(group.loops.count) loops\n"
        _ = banner.withCString { write(1, $0, strlen($0)) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Task {
                do {
                    try await server.shutdownOnSignals(gracePeriod: 5) { continuation.resume() }
                } catch {
                    continuation.resume()
                }
            }
        }
        group.shutdown()
    }

    /// Raises the open-file limit to its hard maximum, for tests with many connections.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Responds to every request with a fixed 13-byte body.
final class HelloHandler: HTTPRequestHandler {
    private var responder: HTTPResponder?
    private static let body = Array("Hello, world!".utf8)

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
    }

    func requestBody(_ bytes: [UInt8]) {}

    func requestEnded(trailers: HTTPHeaders) {
        responder?.respond(status: 200, headers: ["Content-Type": "text/plain"], body: Self.body)
        responder = nil
    }

    func requestFailed(_ error: HTTPServerError) { responder = nil }
}
