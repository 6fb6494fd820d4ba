import Foundation
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumNet
import PomeriumTestSupport
import Testing

@Suite("HTTP client")
struct HTTPClientTests {
    static func get(_ path: String) throws -> HTTPRequestHead {
        try HTTPRequestHead(method: .get, target: path)
    }

    @Test("keep-alive connections are reused")
    func poolReuse() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let client = HTTPClient(group: group)
            let target = try HTTPUpstream(url: upstream.baseURL)
            for index in 0..<3 {
                let response = try await client.send(try Self.get("/n/\(index)"), to: target)
                #expect(response.head.status == 200)
                #expect(try HTTPTesting.echo(String(decoding: response.body, as: UTF8.self)).path == "/n/\(index)")
            }
            #expect(await client.connectionsOpened(on: group.loops[0]) == 1)
        }
    }

    @Test("request and response bodies stream")
    func bodies() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let client = HTTPClient(group: group)
            let target = try HTTPUpstream(url: upstream.baseURL)
            let post = try await client.send(
                try HTTPRequestHead(method: .post, target: "/upload"), body: Array(repeating: 7, count: 300_000),
                to: target)
            #expect(try HTTPTesting.echo(String(decoding: post.body, as: UTF8.self)).body_length == 300_000)
            let large = try await client.send(try Self.get("/size/2000000"), to: target)
            #expect(large.body.count == 2_000_000)
            await #expect(throws: HTTPClientError.responseTooLarge(1000)) {
                _ = try await client.send(try Self.get("/size/5000"), to: target, maxResponseSize: 1000)
            }
        }
    }

    @Test(
        "a body must match its Content-Length",
        arguments: [
            ([UInt8](repeating: 1, count: 5), "it is longer than its Content-Length"),
            ([1, 2], "it is shorter than its Content-Length"),
        ])
    func bodyMatchesContentLength(body: [UInt8], reason: String) async throws {
        try await Fixtures.withEchoUpstream { upstream in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let client = HTTPClient(group: group)
            let target = try HTTPUpstream(url: upstream.baseURL)
            var head = try HTTPRequestHead(method: .post, target: "/upload")
            head.headers.add(name: "Host", value: target.authority)
            head.headers.add(name: "Content-Length", value: "3")
            let prepared = head
            let loop = group.loops[0]
            // Bytes past the announced length would reach the upstream as the start of another
            // request, and a short body would leave it waiting, so both fail the request.
            let outcome = await withCheckedContinuation { continuation in
                loop.execute {
                    let request = client.execute(
                        prepared, to: target, on: loop,
                        delegate: OutcomeDelegate { continuation.resume(returning: $0) })
                    request.writeBody(body)
                    request.endBody()
                }
            }
            #expect(outcome == .failure(.invalidRequestBody(reason)))
            let next = try await client.send(try Self.get("/after"), to: target)
            #expect(next.head.status == 200)
            #expect(try HTTPTesting.echo(String(decoding: next.body, as: UTF8.self)).path == "/after")
        }
    }

    @Test("connect failure and read timeout")
    func failures() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let client = HTTPClient(group: group)
        let closedPort = try LoopbackPort.allocate()
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(try Self.get("/"), to: try HTTPUpstream(url: "http://127.0.0.1:\(closedPort)"))
        }
        _ = try await Fixtures.withEchoUpstream { upstream in
            await #expect(throws: HTTPClientError.readTimeout) {
                _ = try await client.send(
                    try Self.get("/slow/2"), to: try HTTPUpstream(url: upstream.baseURL),
                    timeouts: HTTPClientTimeouts(read: 0.3))
            }
        }
    }

    /// An upstream that responds to the first request on each connection with keep-alive and then
    /// closes the connection when the next request arrives, like a server whose idle timeout fired.
    static let staleUpstream = """
        import socket, sys, threading
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(16)
        print(server.getsockname()[1], flush=True)
        server.settimeout(60)
        def serve(conn):
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = conn.recv(4096)
                if not chunk: return
                data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nfirst")
            conn.recv(4096)
            conn.close()
        try:
            for _ in range(6):
                conn, _ = server.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
        except socket.timeout:
            pass
        """

    @Test("stale pooled connection is retried only when safe")
    func staleRetry() async throws {
        let process = Process()
        process.executableURL = RepositoryPaths.python
        process.arguments = ["-c", Self.staleUpstream]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { process.terminate() }
        let line = output.fileHandleForReading.availableData
        let port = try #require(
            Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let client = HTTPClient(group: group)
        let target = try HTTPUpstream(url: "http://127.0.0.1:\(port)")
        let first = try await client.send(try Self.get("/1"), to: target)
        #expect(String(decoding: first.body, as: UTF8.self) == "first")
        // The pooled connection is stale; GET is retried on a new connection.
        let second = try await client.send(try Self.get("/2"), to: target)
        #expect(String(decoding: second.body, as: UTF8.self) == "first")
        #expect(await client.connectionsOpened(on: group.loops[0]) == 2)
        // POST is not idempotent: the failure is reported instead of a retry.
        await #expect(throws: HTTPClientError.upstreamClosed) {
            _ = try await client.send(try HTTPRequestHead(method: .post, target: "/3"), body: [1], to: target)
        }
        #expect(await client.connectionsOpened(on: group.loops[0]) == 2)
    }

    @Test("TLS upstream with custom CA, wrong name and skip-verify")
    func tlsUpstream() async throws {
        let certificates = try TestCertificates.make()
        let serverTLS = try TLSTests.serverContext(certificates)
        let useTLS: (inout HTTPServerConfiguration) -> Void = { $0.tls = serverTLS }
        let secure: @Sendable (EventLoop) -> any HTTPRequestHandler = { _ in
            ClosureHandler { $0.responder?.respond(status: 200, body: Array("secure".utf8)) }
        }
        try await HTTPTesting.withServer(configure: useTLS, makeHandler: secure) { server in
            let client = HTTPClient(group: server.group)
            let port = server.localAddress.port
            let trusted = try HTTPUpstream(
                url: "https://127.0.0.1:\(port)",
                tls: TLSClientConfiguration(
                    trustRoots: .file(certificates.caCertificate), serverNameOverride: "alpha.example.test"))
            let response = try await client.send(try Self.get("/"), to: trusted)
            #expect(String(decoding: response.body, as: UTF8.self) == "secure")
            let wrongName = try HTTPUpstream(
                url: "https://127.0.0.1:\(port)",
                tls: TLSClientConfiguration(
                    trustRoots: .file(certificates.caCertificate), serverNameOverride: "wrong.example.test"))
            do {
                _ = try await client.send(try Self.get("/"), to: wrongName)
                Issue.record("a certificate for another name must be rejected")
            } catch let error as HTTPClientError {
                guard case .tlsFailed(let reason) = error else {
                    Issue.record("expected a TLS failure, got \(error)")
                    return
                }
                #expect(reason.contains("verification failed"))
            }
            let insecure = try HTTPUpstream(
                url: "https://127.0.0.1:\(port)",
                tls: TLSClientConfiguration(trustRoots: .file(certificates.otherCACertificate), skipVerification: true))
            #expect(try await client.send(try Self.get("/"), to: insecure).head.status == 200)
        }
    }

    @Test("upstream URL parsing")
    func upstreamParsing() throws {
        let plain = try HTTPUpstream(url: "http://127.0.0.1:8080/ignored")
        #expect(plain.port == 8080)
        #expect(plain.authority == "127.0.0.1:8080")
        let secure = try HTTPUpstream(url: "https://[::1]")
        #expect(secure.port == 443)
        #expect(secure.host == "::1")
        #expect(secure.tls != nil)
        #expect(throws: HTTPClientError.self) { try HTTPUpstream(url: "ftp://x") }
        #expect(throws: HTTPClientError.self) { try HTTPUpstream(url: "http://x:99999") }
    }

    @Test("upstream field changes leave copies")
    func upstreamFieldChanges() throws {
        let original = try HTTPUpstream(url: "http://upstream.example.test")
        var changed = original
        changed.port = 8080
        #expect(changed.authority == "upstream.example.test:8080")
        #expect(original.authority == "upstream.example.test")
        #expect(changed != original)
        changed.host = "bad\r\nvalue"
        #expect(!changed.authorityIsValidFieldValue)
        #expect(original.authorityIsValidFieldValue)
        changed.host = "upstream.example.test"
        changed.port = 80
        // Equal fields in separate storage compare and hash as equal, so the pool finds one entry.
        #expect(changed == original)
        #expect(Set([changed, original]).count == 1)
        changed.tls = TLSClientConfiguration(skipVerification: true)
        #expect(changed != original)
    }
}

/// Reports the status of the response, or the failure, once.
private final class OutcomeDelegate: HTTPClientDelegate {
    private var report: ((Result<Int, HTTPClientError>) -> Void)?
    private var status = 0

    init(report: @escaping (Result<Int, HTTPClientError>) -> Void) {
        self.report = report
    }

    func responseHead(_ head: consuming HTTPResponseHead, request: HTTPClientRequest) { status = head.status }
    func responseBody(_ bytes: [UInt8], request: HTTPClientRequest) {}
    func responseEnded(trailers: HTTPHeaders, request: HTTPClientRequest) { report.take()?(.success(status)) }
    func requestFailed(_ error: HTTPClientError, request: HTTPClientRequest) { report.take()?(.failure(error)) }
}
