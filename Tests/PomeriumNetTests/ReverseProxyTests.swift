import Foundation
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumNet
import PomeriumReverseProxy
import PomeriumTestSupport
import Testing

@Suite("Reverse proxy")
struct ReverseProxyTests {
    @Test("hop-by-hop headers are removed and X-Forwarded-* replaced")
    func forwardedHeaders() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL) { server, _ in
                let output = try await Subprocess.curl([
                    "-H", "Connection: keep-alive, X-Drop", "-H", "X-Drop: secret", "-H", "Keep-Alive: timeout=5",
                    "-H", "Proxy-Authorization: Basic eA==", "-H", "TE: trailers", "-H", "X-Forwarded-For: 10.9.9.9",
                    "-H", "X-Forwarded-Proto: https", "-H", "X-Kept: yes",
                    "http://127.0.0.1:\(server.localAddress.port)/path?q=1",
                ])
                let echo = try HTTPTesting.echo(output.stdout)
                #expect(echo.path == "/path?q=1")
                for name in ["X-Drop", "Keep-Alive", "Proxy-Authorization", "TE", "Connection", "Via"] {
                    #expect(echo.values(name).isEmpty, "\(name) must not reach the upstream")
                }
                #expect(echo.values("X-Kept") == ["yes"])
                #expect(echo.values("X-Forwarded-For") == ["127.0.0.1"])
                #expect(echo.values("X-Forwarded-Proto") == ["http"])
                #expect(echo.values("X-Forwarded-Host") == ["127.0.0.1:\(server.localAddress.port)"])
                #expect(echo.values("Host") == ["127.0.0.1:\(upstream.port)"])
            }
        }
    }

    @Test("keep-alive requests forward only their own fields")
    func keepAliveRequestsForwardOwnFields() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL) { server, _ in
                // One curl run sends both requests on one connection, so the second head is built
                // in the storage of the first.
                let proxyURL = "http://127.0.0.1:\(server.localAddress.port)"
                let output = try await Subprocess.curl([
                    "-w", "\\n", "-H", "X-First: \(String(repeating: "f", count: 300))", "-H",
                    "Host: first.example.test", "\(proxyURL)/first",
                    "--next", "-w", "\\n", "-H", "X-Second: s", "\(proxyURL)/second",
                ])
                let answers = try output.stdout.split(separator: "\n").map { try HTTPTesting.echo(String($0)) }
                try #require(answers.count == 2)
                #expect(answers[0].path == "/first")
                #expect(answers[0].values("X-First") == [String(repeating: "f", count: 300)])
                #expect(answers[0].values("X-Forwarded-Host") == ["first.example.test"])
                #expect(answers[1].path == "/second")
                #expect(answers[1].values("X-First").isEmpty)
                #expect(answers[1].values("X-Second") == ["s"])
                #expect(answers[1].values("X-Forwarded-Host") == ["127.0.0.1:\(server.localAddress.port)"])
                #expect(answers[1].values("Host") == ["127.0.0.1:\(upstream.port)"])
                #expect(answers[1].values("X-Forwarded-For") == ["127.0.0.1"])
            }
        }
    }

    /// An upstream that responds to one request in HTTP/1.0 with hop-by-hop fields, then closes.
    static let http10Upstream = """
        import socket
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(4)
        print(server.getsockname()[1], flush=True)
        server.settimeout(60)
        conn, _ = server.accept()
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            chunk = conn.recv(4096)
            if not chunk: break
            data += chunk
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nConnection: keep-alive, X-Secret\\r\\nX-Secret: s\\r\\n"
            b"Keep-Alive: timeout=5\\r\\nX-Kept: yes\\r\\nContent-Length: 2\\r\\n\\r\\nok")
        conn.close()
        """

    @Test("response hop-by-hop fields and version")
    func responseHopByHop() async throws {
        // The proxy edits the upstream's head in place, so this checks what the edit keeps.
        let process = Process()
        process.executableURL = RepositoryPaths.python
        process.arguments = ["-c", Self.http10Upstream]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { process.terminate() }
        let line = output.fileHandleForReading.availableData
        let port = try #require(
            Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        try await HTTPTesting.withProxy(upstream: "http://127.0.0.1:\(port)") { server, _ in
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let response = connection.receive()
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.contains("X-Kept: yes\r\n"))
            #expect(!response.contains("X-Secret"))
            #expect(!response.contains("Keep-Alive"))
            #expect(!response.contains("keep-alive"))
            #expect(response.hasSuffix("\r\n\r\nok"))
        }
    }

    @Test("trusted clients get X-Forwarded-For appended")
    func trustedForwardedFor() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(
                upstream: upstream.baseURL, configure: { $0.forwardedHeaderTrust = .addresses(["127.0.0.1"]) }
            ) { server, _ in
                let output = try await Subprocess.curl([
                    "-H", "X-Forwarded-For: 10.9.9.9", "-H", "X-Forwarded-Proto: https",
                    "http://127.0.0.1:\(server.localAddress.port)/",
                ])
                let echo = try HTTPTesting.echo(output.stdout)
                #expect(echo.values("X-Forwarded-For") == ["10.9.9.9, 127.0.0.1"])
                #expect(echo.values("X-Forwarded-Proto") == ["https"])
            }
        }
    }

    @Test("bodies stream both ways with 100-continue")
    func streamingBodies() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL) { server, _ in
                let base = "http://127.0.0.1:\(server.localAddress.port)"
                let file = try RepositoryPaths.makeTemporaryDirectory(prefix: "upload").appendingPathComponent("body")
                try Data(count: 8_000_000).write(to: file)
                let upload = try await Subprocess.curl([
                    "-H", "Expect: 100-continue", "-T", file.path, "\(base)/upload",
                ])
                #expect(try HTTPTesting.echo(upload.stdout).body_length == 8_000_000)
                let download = try await Subprocess.curl([
                    "-o", "/dev/null", "-w", "%{size_download}", "\(base)/size/20000000",
                ])
                #expect(download.stdout == "20000000")
                let head = try await Subprocess.curl(["-I", "\(base)/size/1000"])
                #expect(head.stdout.contains("Content-Length: 1000"))
            }
        }
    }

    @Test("connect failure is 502 and timeout is 504")
    func gatewayErrors() async throws {
        let closedPort = try LoopbackPort.allocate()
        try await HTTPTesting.withProxy(upstream: "http://127.0.0.1:\(closedPort)") { server, _ in
            let output = try await Subprocess.curl([
                "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.localAddress.port)/",
            ])
            #expect(output.stdout == "502")
        }
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(
                upstream: upstream.baseURL, configure: { $0.timeouts = HTTPClientTimeouts(read: 0.3) }
            ) { server, _ in
                let output = try await Subprocess.curl([
                    "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.localAddress.port)/slow/2",
                ])
                #expect(output.stdout == "504")
            }
        }
    }

    @Test("client disconnect cancels the upstream request")
    func clientDisconnectCancels() async throws {
        let upstreamSawFailure = TestSignal()
        let upstreamStarted = TestSignal()
        let failures = SharedValue<[String]>([])
        let hanging: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            final class Hanging: HTTPRequestHandler {
                let started: TestSignal
                let failed: (HTTPServerError) -> Void
                init(started: TestSignal, failed: @escaping (HTTPServerError) -> Void) {
                    self.started = started
                    self.failed = failed
                }
                func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) { started.fire() }
                func requestBody(_ bytes: [UInt8]) {}
                func requestEnded(trailers: HTTPHeaders) {}
                func requestFailed(_ error: HTTPServerError) { failed(error) }
            }
            return Hanging(started: upstreamStarted) { error in
                failures.update { $0.append("\(error)") }
                upstreamSawFailure.fire()
            }
        }
        try await HTTPTesting.withServer(makeHandler: hanging) { upstream in
            try await HTTPTesting.withProxy(upstream: "http://127.0.0.1:\(upstream.localAddress.port)") { proxy, _ in
                do {
                    let connection = try LoopbackConnection(port: proxy.localAddress.port)
                    try connection.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
                    await upstreamStarted.wait()
                }  // the connection closes here
                await upstreamSawFailure.wait()
                #expect(failures.get() == ["the client disconnected"])
            }
        }
    }

    @Test("WebSocket tunnels through the proxy")
    func webSocket() async throws {
        try await Fixtures.withWebSocketEcho { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL) { server, _ in
                let output = try await Subprocess.python(
                    """
                    import sys
                    from websockets.sync.client import connect
                    with connect(sys.argv[1], open_timeout=5) as ws:
                        for message in ["hello", "x" * 200000]:
                            ws.send(message)
                            print(len(ws.recv(timeout=5)))
                    """, ["ws://127.0.0.1:\(server.localAddress.port)/chat"])
                #expect(output.stdout == "5\n200000\n", "\(output.stderr)")
            }
        }
    }

    @Test("refused upgrade keeps HTTP mode")
    func refusedUpgrade() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL) { server, _ in
                let connection = try LoopbackConnection(port: server.localAddress.port)
                try connection.send(
                    "GET /status/403 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                let first = connection.receive(until: { $0.contains("body_length") })
                #expect(first.hasPrefix("HTTP/1.1 403 "))
                #expect(first.contains("\"Upgrade\", \"websocket\""))
                try connection.send("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let second = connection.receive()
                #expect(second.hasPrefix("HTTP/1.1 200 "))
                #expect(second.contains("\"path\": \"/second\""))
            }
        }
    }

    @Test("decision hook answers locally or rewrites the request")
    func decisionHook() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            let decide: ProxyDecide = { context in
                if context.incoming.path == "/denied" {
                    return .now(
                        .respond(status: 403, headers: ["Content-Type": "text/plain"], body: Array("no\n".utf8)))
                }
                if context.incoming.path == "/later" {
                    let route = context.route
                    return .later {
                        await Task.yield()
                        guard var route else { return .respond(status: 500, headers: [:], body: []) }
                        route.head.headers.replaceOrAdd(name: "X-Decided", value: "async")
                        return .forward(route)
                    }
                }
                guard var route = context.route else { return .now(.respond(status: 500, headers: [:], body: [])) }
                route.head =
                    (try? HTTPRequestHead(method: .get, target: "/rewritten", headers: route.head.headers))
                    ?? route.head
                route.head.headers.replaceOrAdd(name: "X-Pomerium-Test", value: "set")
                return .now(.forward(route))
            }
            try await HTTPTesting.withProxy(upstream: upstream.baseURL, decide: decide) { server, _ in
                let base = "http://127.0.0.1:\(server.localAddress.port)"
                let denied = try await Subprocess.curl(["-i", "\(base)/denied"])
                #expect(denied.stdout.hasPrefix("HTTP/1.1 403"))
                #expect(denied.stdout.hasSuffix("no\n"))
                let rewritten = try HTTPTesting.echo(try await Subprocess.curl(["\(base)/original"]).stdout)
                #expect(rewritten.path == "/rewritten")
                #expect(rewritten.values("X-Pomerium-Test") == ["set"])
                let later = try HTTPTesting.echo(
                    try await Subprocess.curl(["--data-binary", "abc", "\(base)/later"]).stdout)
                #expect(later.values("X-Decided") == ["async"])
                #expect(later.body_length == 3)
            }
        }
    }

    @Test("TLS front end chooses the certificate by SNI")
    func tlsFrontEnd() async throws {
        let certificates = try TestCertificates.make()
        let tls = try TLSTests.serverContext(certificates)
        try await Fixtures.withEchoUpstream { upstream in
            try await HTTPTesting.withProxy(upstream: upstream.baseURL, serverConfigure: { $0.tls = tls }) {
                server, _ in
                let port = server.localAddress.port
                for name in ["alpha.example.test", "api.beta.example.test"] {
                    let output = try await Subprocess.curl([
                        "--cacert", certificates.caCertificate, "--resolve", "\(name):\(port):127.0.0.1",
                        "https://\(name):\(port)/tls",
                    ])
                    let echo = try HTTPTesting.echo(output.stdout)
                    #expect(echo.values("X-Forwarded-Proto") == ["https"])
                    #expect(echo.values("X-Forwarded-Host") == ["\(name):\(port)"])
                }
            }
        }
    }

    @Test("upstream Host validated only when valid")
    func upstreamAuthorityValidity() throws {
        var upstream = try HTTPUpstream(url: "http://127.0.0.1:8080")
        #expect(upstream.authority == "127.0.0.1:8080")
        #expect(upstream.authorityIsValidFieldValue)
        upstream.host = "bad\r\nInjected: yes"
        #expect(!upstream.authorityIsValidFieldValue)
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let proxy = ReverseProxy(
            client: HTTPClient(group: group), configuration: ReverseProxyConfiguration(upstream: upstream))
        let incoming = try HTTPRequestHead(method: .get, target: "/", headers: ["Host": "client.example.test"])
        let outgoing = try proxy.outgoingHead(for: incoming, upstream: upstream, remoteAddress: nil, isTLS: false)
        #expect(outgoing.headers.first(name: "X-Forwarded-Host") == "client.example.test")
        var bytes: [UInt8] = []
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) { try HTTPEncoder.encode(outgoing, into: &bytes) }
        upstream.host = "upstream.example.test"
        let fixed = try proxy.outgoingHead(for: incoming, upstream: upstream, remoteAddress: nil, isTLS: false)
        try HTTPEncoder.encode(fixed, into: &bytes)
        #expect(
            String(decoding: bytes, as: UTF8.self).hasPrefix("GET / HTTP/1.1\r\nHost: upstream.example.test:8080\r\n"))
    }

    @Test("hop-by-hop removal follows Connection tokens")
    func hopByHopUnit() {
        var headers: HTTPHeaders = [
            "Connection": "close, X-Custom", "X-Custom": "1", "Keep-Alive": "5", "Proxy-Connection": "x",
            "Transfer-Encoding": "chunked", "Upgrade": "h2c", "Trailer": "X", "TE": "trailers", "Accept": "*/*",
        ]
        HopByHopHeaders.remove(from: &headers)
        #expect(headers.map(\.name) == ["Accept"])
    }
}
