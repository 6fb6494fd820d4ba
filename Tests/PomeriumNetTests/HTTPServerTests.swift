import Foundation
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet
import PomeriumTestSupport
import Synchronization
import Testing

@Suite("HTTP server")
struct HTTPServerTests {
    static let hello: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
        ClosureHandler { handler in
            let text = "hello \(handler.head?.path ?? "") \(handler.body.count)"
            handler.responder?.respond(status: 200, headers: ["Content-Type": "text/plain"], body: Array(text.utf8))
        }
    }

    @Test("curl GET, HEAD and keep-alive reuse")
    func curlBasics() async throws {
        try await HTTPTesting.withServer(makeHandler: Self.hello) { server in
            let base = "http://127.0.0.1:\(server.localAddress.port)"
            let get = try await Subprocess.curl(["-v", "\(base)/a", "\(base)/b"])
            #expect(get.stdout == "hello /a 0hello /b 0")
            #expect(get.stderr.contains("Re-using existing connection") || get.stderr.contains("Reusing existing"))
            let head = try await Subprocess.curl(["-I", "\(base)/h"])
            #expect(head.stdout.hasPrefix("HTTP/1.1 200 OK"))
            #expect(head.stdout.contains("Content-Length: 10"))
        }
    }

    @Test("finished handler takes next request", arguments: [true, false])
    func handlerReuse(reusable: Bool) async throws {
        let handlersMade = Mutex(0)
        let makeHandler: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            handlersMade.withLock { $0 += 1 }
            return ReusableHandler(reusable: reusable)
        }
        try await HTTPTesting.withServer(makeHandler: makeHandler) { server in
            let base = "http://127.0.0.1:\(server.localAddress.port)"
            let result = try await Subprocess.curl(["-v", "\(base)/a", "\(base)/b"])
            #expect(
                result.stderr.contains("Re-using existing connection") || result.stderr.contains("Reusing existing"))
            if reusable {
                #expect(result.stdout == "/a served 1/b served 2")
                #expect(handlersMade.withLock { $0 } == 1)
            } else {
                #expect(result.stdout == "/a served 1/b served 1")
                #expect(handlersMade.withLock { $0 } == 2)
            }
        }
    }

    @Test("parser errors become 400, 414 and 431")
    func parserErrors() async throws {
        try await HTTPTesting.withServer(makeHandler: Self.hello) { server in
            let port = server.localAddress.port
            let bad = try LoopbackConnection(port: port)
            try bad.send("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
            #expect(bad.receive().hasPrefix("HTTP/1.1 400 "))
            let long = try LoopbackConnection(port: port)
            try long.send("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(long.receive().hasPrefix("HTTP/1.1 414 "))
            let large = try LoopbackConnection(port: port)
            try large.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n")
            #expect(large.receive().hasPrefix("HTTP/1.1 431 "))
        }
    }

    @Test("pipelined requests answer in order")
    func pipelining() async throws {
        try await HTTPTesting.withServer(makeHandler: Self.hello) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send(
                "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let text = connection.receive()
            let one = try #require(text.range(of: "hello /one 0"))
            let two = try #require(text.range(of: "hello /two 3"))
            let three = try #require(text.range(of: "hello /three 0"))
            #expect(one.lowerBound < two.lowerBound)
            #expect(two.lowerBound < three.lowerBound)
        }
    }

    @Test("early response leaves pipelined body alone")
    func earlyResponseKeepsPipelinedBody() async throws {
        let makeHandler: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in EarlyOrEchoHandler() }
        try await HTTPTesting.withServer(makeHandler: makeHandler) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            // The handler responds to the first request before reading its body. The second one's
            // body comes only after that response, so a body of the first request delivered to
            // the second request's handler would end it with the wrong bytes.
            try connection.send(
                "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nAAAAA"
                    + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            let first = connection.receive { $0.contains("early") }
            #expect(first.contains("HTTP/1.1 200"))
            try connection.send("BBBBB")
            let second = connection.receive { $0.contains("echo ") }
            #expect(second.contains("echo BBBBB"))
            #expect(!second.contains("AAAAA"))
        }
    }

    @Test("handler is not reset inside its finishing call")
    func noReuseInsideFinishingCall() async throws {
        let violations = Mutex(0)
        let makeHandler: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            FinishWatchingHandler { violations.withLock { $0 += 1 } }
        }
        try await HTTPTesting.withServer(makeHandler: makeHandler) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            // Pipelined, so each response's end starts the next request inside the finishing call.
            try connection.send(
                "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let text = connection.receive()
            #expect(text.contains("/one done"))
            #expect(text.contains("/two done"))
            #expect(text.contains("/three done"))
        }
        #expect(violations.withLock { $0 } == 0)
    }

    @Test("long pipeline of mixed responses never stalls")
    func longMixedPipeline() async throws {
        let makeHandler: @Sendable (EventLoop) -> any HTTPRequestHandler = { loop in NowOrLaterHandler(loop: loop) }
        // A small pipelining limit makes the machine pause and resume reading many times. A
        // request responded to in its own requestEnd call starts the next one inside that call, and
        // a pause produced before it must not outlast the resume produced inside it.
        let smallLimit: (inout HTTPServerConfiguration) -> Void = { $0.connection.maxPipelinedBytes = 4096 }
        try await HTTPTesting.withServer(configure: smallLimit, makeHandler: makeHandler) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            let padding = String(repeating: "p", count: 1000)
            var pipeline = ""
            for index in 0..<200 {
                let path = index % 2 == 0 ? "/now/\(index)" : "/later/\(index)"
                pipeline += "GET \(path) HTTP/1.1\r\nHost: x\r\nX-Pad: \(padding)\r\n\r\n"
            }
            try connection.send(pipeline)
            let text = connection.receive { $0.contains("/later/199 ok") }
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 200)
            #expect(text.hasSuffix("/later/199 ok"))
        }
    }

    @Test("chunked request and response bodies")
    func chunkedBothWays() async throws {
        let streaming: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            ClosureHandler { handler in
                // No Content-Length, so the connection frames the response as chunked.
                handler.responder?.writeHead(HTTPResponseHead(status: 200))
                handler.responder?.writeBody(Array("received \(handler.body.count) bytes;".utf8))
                handler.responder?.writeBody(Array(" done".utf8))
                handler.responder?.finish()
            }
        }
        try await HTTPTesting.withServer(makeHandler: streaming) { server in
            let output = try await Subprocess.curl([
                "-i", "-H", "Transfer-Encoding: chunked", "--data-binary", String(repeating: "z", count: 5000),
                "http://127.0.0.1:\(server.localAddress.port)/",
            ])
            #expect(output.stdout.contains("Transfer-Encoding: chunked"))
            #expect(output.stdout.hasSuffix("received 5000 bytes; done"))
        }
    }

    @Test("chunk sizes on the wire are the body lengths in hex")
    func chunkSizesOnTheWire() async throws {
        let sizes = [1, 15, 16, 255, 256, 4096, 70_000]
        let streaming: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            ClosureHandler { handler in
                handler.responder?.writeHead(HTTPResponseHead(status: 200))
                for size in sizes { handler.responder?.writeBody([UInt8](repeating: UInt8(ascii: "x"), count: size)) }
                handler.responder?.finish()
            }
        }
        try await HTTPTesting.withServer(makeHandler: streaming) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let response = connection.receive(limit: 1 << 20)
            let body = try #require(response.range(of: "\r\n\r\n")).upperBound
            var expected = ""
            for size in sizes {
                expected +=
                    String(size, radix: 16, uppercase: true) + "\r\n" + String(repeating: "x", count: size) + "\r\n"
            }
            #expect(String(response[body...]) == expected + "0\r\n\r\n")
        }
    }

    @Test("100-continue is sent when the handler reads the body")
    func expectContinue() async throws {
        try await HTTPTesting.withServer(makeHandler: Self.hello) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send(
                "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
            let interim = connection.receive(until: { $0.contains("\r\n\r\n") })
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"))
            try connection.send("body")
            #expect(connection.receive().contains("hello /c 4"))
        }
    }

    @Test("idle and header timeouts close connections")
    func timeouts() async throws {
        let shortTimeouts: (inout HTTPServerConfiguration) -> Void = {
            $0.idleTimeout = 0.2
            $0.readHeaderTimeout = 0.2
        }
        try await HTTPTesting.withServer(configure: shortTimeouts, makeHandler: Self.hello) { server in
            let start = MonotonicClock.nanoseconds()
            let idle = try LoopbackConnection(port: server.localAddress.port)
            #expect(idle.receive() == "")
            let partial = try LoopbackConnection(port: server.localAddress.port)
            try partial.send("GET / HTTP/1.1\r\nHost: x\r\n")
            #expect(partial.receive() == "")
            // Both closed by the server well before LoopbackConnection's 5-second receive timeout.
            #expect(MonotonicClock.nanoseconds() - start < 4_000_000_000)
        }
    }

    @Test("idle timeout closes a keep-alive connection whose handler answered early")
    func idleAfterEarlyResponse() async throws {
        // Responds in requestStarted, before the request ends, as the health check does.
        final class EarlyHandler: HTTPRequestHandler {
            func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
                responder.respond(status: 200, body: Array("early".utf8))
            }
            func requestBody(_ bytes: [UInt8]) {}
            func requestEnded(trailers: HTTPHeaders) {}
            func requestFailed(_ error: HTTPServerError) {}
        }
        let shortIdle: (inout HTTPServerConfiguration) -> Void = { $0.idleTimeout = 0.2 }
        let early: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in EarlyHandler() }
        try await HTTPTesting.withServer(configure: shortIdle, makeHandler: early) { server in
            let start = MonotonicClock.nanoseconds()
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            let received = connection.receive()
            #expect(received.hasPrefix("HTTP/1.1 200"))
            #expect(received.hasSuffix("early"))
            // receive() returns only once the server closes; LoopbackConnection gives up after 5 s.
            #expect(MonotonicClock.nanoseconds() - start < 4_000_000_000)
        }
    }

    @Test("a tunnel stays open while bytes move and closes after the idle timeout")
    func tunnelIdleTimeout() async throws {
        // Switches to a tunnel that echoes, and records how the exchange ended.
        final class Failures: Sendable {
            let list = Mutex<[String]>([])
        }
        final class EchoTunnel: HTTPRequestHandler {
            let failures: Failures
            private var responder: HTTPResponder?
            init(failures: Failures) { self.failures = failures }
            func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) { self.responder = responder }
            func requestBody(_ bytes: [UInt8]) {}
            func requestEnded(trailers: HTTPHeaders) {
                responder?.writeHead(
                    HTTPResponseHead(status: 101, headers: ["Connection": "Upgrade", "Upgrade": "echo"]))
            }
            func requestFailed(_ error: HTTPServerError) { failures.list.withLock { $0.append("\(error)") } }
            func tunnelReceived(_ bytes: [UInt8]) { responder?.tunnelWrite(bytes) }
        }
        let failures = Failures()
        let shortIdle: (inout HTTPServerConfiguration) -> Void = { $0.idleTimeout = 0.5 }
        let echo: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in EchoTunnel(failures: failures) }
        try await HTTPTesting.withServer(configure: shortIdle, makeHandler: echo) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
            let head = connection.receive(until: { $0.contains("\r\n\r\n") })
            #expect(head.hasPrefix("HTTP/1.1 101 "))
            // Traffic for longer than the idle timeout keeps the tunnel open. The round trips run
            // back to back, so a slow scheduler on a loaded machine cannot open a silent gap.
            let start = MonotonicClock.nanoseconds()
            var round = 0
            while MonotonicClock.nanoseconds() - start < 1_000_000_000 && round < 100_000 {
                round += 1
                try connection.send("ping\(round);")
                let echoed = connection.receive(until: { $0.contains("ping\(round);") })
                #expect(echoed.hasSuffix("ping\(round);"), "round \(round)")
                if !echoed.hasSuffix("ping\(round);") { break }
            }
            #expect(failures.list.withLock { $0 }.isEmpty)
            // Silence closes it; receive() returns at EOF, and gives up only after 5 seconds.
            let silentSince = MonotonicClock.nanoseconds()
            #expect(connection.receive() == "")
            #expect(MonotonicClock.nanoseconds() - silentSince < 4_000_000_000)
            #expect(failures.list.withLock { $0 } == ["the tunnel idle timeout expired"])
        }
    }

    @Test("a responder is reused only when no handler kept it, and a kept one goes stale")
    func responderReuse() async throws {
        // Each handler answers with its path; "/keep" handlers hold their responder afterwards
        // and use it again during the next exchange, which must not reach the client.
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var responders: [ObjectIdentifier] = []
            var kept: HTTPResponder?
        }
        final class RecordingHandler: HTTPRequestHandler {
            let shared: Shared
            private var responder: HTTPResponder?
            private var path = ""
            init(shared: Shared) { self.shared = shared }
            func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
                self.responder = responder
                path = head.path
                shared.lock.withLock {
                    shared.responders.append(ObjectIdentifier(responder))
                    // A stale responder from the previous exchange writes nothing.
                    shared.kept?.respond(status: 500, body: Array("stale".utf8))
                    shared.kept = nil
                }
            }
            func requestBody(_ bytes: [UInt8]) {}
            func requestEnded(trailers: HTTPHeaders) {
                let responder = self.responder
                self.responder = nil
                if path == "/keep" { shared.lock.withLock { shared.kept = responder } }
                responder?.respond(status: 200, body: Array(path.utf8))
            }
            func requestFailed(_ error: HTTPServerError) {}
        }
        let shared = Shared()
        let recording: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in RecordingHandler(shared: shared) }
        try await HTTPTesting.withServer(makeHandler: recording) { server in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            for path in ["/a", "/b", "/keep", "/c", "/d"] {
                let close = path == "/d" ? "Connection: close\r\n" : ""
                try connection.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\(close)\r\n")
                let response = connection.receive(until: { $0.hasSuffix(path) || $0.contains("stale") })
                #expect(response.hasPrefix("HTTP/1.1 200 "), "\(path)")
                #expect(response.hasSuffix(path))
            }
            let responders = shared.lock.withLock { shared.responders }
            #expect(responders.count == 5)
            // a, b and keep share one responder; c gets a new one because keep's handler held it.
            #expect(responders[0] == responders[1])
            #expect(responders[1] == responders[2])
            #expect(responders[3] != responders[2])
            #expect(responders[4] == responders[3])
        }
    }

    @Test("graceful shutdown finishes an in-flight request")
    func gracefulShutdown() async throws {
        let started = TestSignal()
        let delayed: @Sendable (EventLoop) -> any HTTPRequestHandler = { loop in
            ClosureHandler { handler in
                started.fire()
                loop.schedule(after: 0.3) {
                    handler.responder?.respond(status: 200, body: Array("finished".utf8))
                }
            }
        }
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0")),
            makeHandler: delayed)
        let port = server.localAddress.port
        let connection = try LoopbackConnection(port: port)
        try connection.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await started.wait()
        await server.shutdown(gracePeriod: 5)
        let response = connection.receive()
        #expect(response.hasPrefix("HTTP/1.1 200 OK"))
        #expect(response.hasSuffix("finished"))
        #expect(!LoopbackPort.isListening(port))
    }

    @Test("graceful shutdown closes requests past the deadline")
    func shutdownDeadline() async throws {
        let failures = SharedValue<[String]>([])
        let started = TestSignal()
        let never: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            ClosureHandler(
                onFailure: { error in failures.update { $0.append("\(error)") } },
                onEnd: { _ in started.fire() })
        }
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0")),
            makeHandler: never)
        let connection = try LoopbackConnection(port: server.localAddress.port)
        try connection.send("GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        await started.wait()
        await server.shutdown(gracePeriod: 0.2)
        #expect(connection.receive() == "")
        #expect(failures.get() == ["the server is shutting down"])
    }
}

/// A handler that counts the requests it served and takes the next one when `reusable` is true.
private final class ReusableHandler: HTTPRequestHandler {
    let reusable: Bool
    var served = 0

    init(reusable: Bool) {
        self.reusable = reusable
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        served += 1
        responder.respond(status: 200, headers: [:], body: Array("\(head.path) served \(served)".utf8))
    }
    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}
    func prepareForNextRequest() -> Bool { reusable }
}

/// Responds to `/early` at once, before its body, and echoes the body of any other path once it ended.
private final class EarlyOrEchoHandler: HTTPRequestHandler {
    private var responder: HTTPResponder?
    private var body: [UInt8] = []

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        if head.path == "/early" {
            responder.respond(status: 200, headers: [:], body: Array("early".utf8))
        } else {
            self.responder = responder
        }
    }
    func requestBody(_ bytes: [UInt8]) { body += bytes }
    func requestEnded(trailers: HTTPHeaders) {
        responder?.respond(status: 200, headers: [:], body: Array("echo ".utf8) + body)
        responder = nil
    }
    func requestFailed(_ error: HTTPServerError) {}
    func prepareForNextRequest() -> Bool {
        body = []
        return true
    }
}

/// A reusable handler that counts a reset that comes while its own response-finishing call runs.
private final class FinishWatchingHandler: HTTPRequestHandler {
    private let violation: @Sendable () -> Void
    private var finishing = false

    init(violation: @escaping @Sendable () -> Void) {
        self.violation = violation
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        finishing = true
        responder.respond(status: 200, headers: [:], body: Array("\(head.path) done".utf8))
        finishing = false
    }
    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}
    func prepareForNextRequest() -> Bool {
        if finishing { violation() }
        return true
    }
}

/// Responds to `/later` paths on the loop's next turn and to every other path at once, both
/// from `requestEnded`.
private final class NowOrLaterHandler: HTTPRequestHandler {
    private let loop: EventLoop
    private var responder: HTTPResponder?
    private var path = ""

    init(loop: EventLoop) {
        self.loop = loop
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
        path = head.path
    }
    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {
        guard let responder = responder.take() else { return }
        let body = Array("\(path) ok".utf8)
        if path.hasPrefix("/later") {
            loop.deferToNextTick { responder.respond(status: 200, headers: [:], body: body) }
        } else {
            responder.respond(status: 200, headers: [:], body: body)
        }
    }
    func requestFailed(_ error: HTTPServerError) {}
    func prepareForNextRequest() -> Bool { false }
}
