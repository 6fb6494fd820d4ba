import Foundation
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumNet
import PomeriumReverseProxy
import PomeriumTestSupport
import Synchronization

/// Output of a finished subprocess.
struct ProcessOutput {
    let status: Int32
    let stdout: String
    let stderr: String
}

enum Subprocess {
    /// Runs `executable` with `arguments` and returns its output; the process is killed after
    /// `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 30) async throws -> ProcessOutput {
        let result = try await CommandRunner.runAsync(executable, arguments, timeoutSeconds: timeout)
        return ProcessOutput(status: result.status, stdout: result.standardOutput, stderr: result.standardError)
    }

    static func curl(_ arguments: [String], timeout: Double = 30) async throws -> ProcessOutput {
        try await run("/usr/bin/curl", ["-s", "-S"] + arguments, timeout: timeout)
    }

    /// Runs a Python script with the test venv's interpreter.
    static func python(_ script: String, _ arguments: [String] = [], timeout: Double = 30) async throws
        -> ProcessOutput
    {
        let file = try RepositoryPaths.makeTemporaryDirectory(prefix: "script").appendingPathComponent("script.py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        return try await run(RepositoryPaths.python.path, [file.path] + arguments, timeout: timeout)
    }
}

/// A handler built from closures, for tests.
final class ClosureHandler: HTTPRequestHandler {
    var responder: HTTPResponder?
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    let onEnd: (ClosureHandler) -> Void
    let onFailure: (HTTPServerError) -> Void

    init(onFailure: @escaping (HTTPServerError) -> Void = { _ in }, onEnd: @escaping (ClosureHandler) -> Void) {
        self.onEnd = onEnd
        self.onFailure = onFailure
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.head = head
        self.responder = responder
        responder.readRequestBody()
    }
    func requestBody(_ bytes: [UInt8]) { body.append(contentsOf: bytes) }
    func requestEnded(trailers: HTTPHeaders) { onEnd(self) }
    func requestFailed(_ error: HTTPServerError) { onFailure(error) }
}

enum HTTPTesting {
    /// Runs `body` with a server on 127.0.0.1 whose requests go to `makeHandler`.
    static func withServer<T>(
        loops: Int = 1,
        configure: (inout HTTPServerConfiguration) -> Void = { _ in },
        makeHandler: @escaping @Sendable (EventLoop) -> any HTTPRequestHandler,
        _ body: (HTTPServer) async throws -> T
    ) async throws -> T {
        let group = try EventLoopGroup(loopCount: loops)
        defer { group.shutdown() }
        var configuration = HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        configure(&configuration)
        let server = try await HTTPServer(group: group, configuration: configuration, makeHandler: makeHandler)
        let result = try await body(server)
        await server.shutdown(gracePeriod: 1)
        return result
    }

    /// Runs `body` with a reverse proxy on 127.0.0.1 in front of `upstream`.
    static func withProxy<T>(
        upstream: String?,
        loops: Int = 1,
        configure: (inout ReverseProxyConfiguration) -> Void = { _ in },
        serverConfigure: (inout HTTPServerConfiguration) -> Void = { _ in },
        decide: ProxyDecide? = nil,
        _ body: (HTTPServer, HTTPClient) async throws -> T
    ) async throws -> T {
        let group = try EventLoopGroup(loopCount: loops)
        defer { group.shutdown() }
        let client = HTTPClient(group: group)
        var proxyConfiguration = ReverseProxyConfiguration(upstream: try upstream.map { try HTTPUpstream(url: $0) })
        configure(&proxyConfiguration)
        let proxy = ReverseProxy(client: client, configuration: proxyConfiguration, decide: decide)
        var configuration = HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        serverConfigure(&configuration)
        let server = try await HTTPServer(group: group, configuration: configuration) { loop in
            proxy.makeHandler(loop)
        }
        let result = try await body(server, client)
        await server.shutdown(gracePeriod: 1)
        return result
    }

    /// Decodes the echo upstream's JSON response.
    static func echo(_ text: String) throws -> EchoAnswer {
        try JSONDecoder().decode(EchoAnswer.self, from: Data(text.utf8))
    }
}

/// The echo upstream's JSON response.
struct EchoAnswer: Decodable {
    let method: String
    let path: String
    let headers: [[String]]
    let body_length: Int

    func values(_ name: String) -> [String] {
        headers.filter { $0.first?.lowercased() == name.lowercased() }.compactMap { $0.last }
    }
}

/// A one-shot event a test can await, fired from a loop thread.
final class TestSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            let waiting = state.waiters
            state.waiters = []
            return waiting
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                if !state.fired { state.waiters.append(continuation) }
                return state.fired
            }
            if fired { continuation.resume() }
        }
    }
}
