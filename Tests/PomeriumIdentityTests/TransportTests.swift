import Foundation
import Glibc
import PomeriumIdentity
import PomeriumTestSupport
import Testing

@testable import PomeriumIdentity

/// A transport that never responds and ignores its timeout, like a stalled connection.
private final class StalledTransport: IdentityHTTPTransport {
    /// Yields once when the pending request is cancelled.
    let cancellations = AsyncStream<Void>.makeStream()

    func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse {
        do {
            try await Task.sleep(for: .seconds(30))
        } catch {
            cancellations.continuation.yield()
            throw error
        }
        return IdentityHTTPResponse(status: 200)
    }
}

/// These tests use real time: each waits for a deadline of a fraction of a second.
@Suite struct DeadlineTests {
    @Test(.timeLimit(.minutes(1))) func stalledTransportTimesOut() async throws {
        let transport = StalledTransport()
        let configuration = ProviderConfiguration(
            providerURL: "https://idp.example.test",
            clientID: "c",
            clientSecret: "s",
            redirectURL: "https://a.example.test/cb",
            requestTimeout: 0.2
        )
        let started = ContinuousClock.now
        await #expect(throws: IdentityError.timedOut(endpoint: "", seconds: 0)) {
            try await OIDCProvider.discover(configuration: configuration, transport: transport)
        }
        // The transport never responds, so returning at all proves the 0.2 s timeout fired. The
        // wide margin absorbs a machine busy with parallel tests (5 s was once exceeded by 0.02 s).
        #expect(ContinuousClock.now - started < .seconds(20))
        var iterator = transport.cancellations.stream.makeAsyncIterator()
        let cancelled: Void? = await iterator.next()
        #expect(cancelled != nil)
    }

    @Test func fastOperationWins() async throws {
        let value = try await Deadline.run(seconds: 5) { 42 }
        #expect(value == 42)
        await #expect(throws: IdentityTransportError.connectionFailed(reason: "x")) {
            try await Deadline.run(seconds: 5) { () async throws -> Int in
                throw IdentityTransportError.connectionFailed(reason: "x")
            }
        }
    }

    @Test func callerCancellationStopsTheWait() async throws {
        let task = Task {
            try await Deadline.run(seconds: 30) { () async throws -> Int in
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        task.cancel()
        let started = ContinuousClock.now
        await #expect(throws: CancellationError.self) { try await task.value }
        // The operation sleeps 30 s, so finishing well before that proves the cancellation cut the
        // wait short; the wide margin absorbs a cooperative pool busy with parallel tests.
        #expect(ContinuousClock.now - started < .seconds(20))
    }
}

/// Serves one canned HTTP response on a loopback port to the first connection, then closes it.
private final class OneShotServer: Sendable {
    let port: Int

    init(response: [UInt8]) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0, named == 0, listen(descriptor, 4) == 0 else {
            close(descriptor)
            throw FixtureError("bind or listen failed: errno \(errno)")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread {
            defer { close(descriptor) }
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { return }
            defer { close(client) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress!, $0.count, 0) }
                if count <= 0 { return }
                request += buffer[0..<count]
            }
            _ = response.withUnsafeBytes { Glibc.send(client, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        thread.start()
    }

    func get(limit: Int = 1 << 20) async throws -> IdentityHTTPResponse {
        try await LoopbackTestTransport().send(
            IdentityHTTPRequest(
                method: .get, url: "http://127.0.0.1:\(port)/x", timeout: 5, maximumResponseBytes: limit)
        )
    }
}

/// The test transport itself, so integration failures point at the product and not at it.
@Suite struct LoopbackTestTransportTests {
    @Test func contentLengthBody() async throws {
        let server = try OneShotServer(
            response: Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello".utf8))
        let response = try await server.get()
        #expect(response.status == 200)
        #expect(response.header("x-a") == "b")
        #expect(String(decoding: response.body, as: UTF8.self) == "hello")
    }

    @Test func chunkedBody() async throws {
        let raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
        let response = try await OneShotServer(response: Array(raw.utf8)).get()
        #expect(String(decoding: response.body, as: UTF8.self) == "hello, world")
    }

    @Test func bodyUntilClose() async throws {
        let response = try await OneShotServer(response: Array("HTTP/1.1 404 Not Found\r\n\r\nmissing".utf8)).get()
        #expect(response.status == 404)
        #expect(String(decoding: response.body, as: UTF8.self) == "missing")
    }

    @Test func oversizedBodyRejected() async throws {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "a", count: 5000)
        await #expect(throws: IdentityTransportError.responseTooLarge) {
            try await OneShotServer(response: Array(raw.utf8)).get(limit: 1024)
        }
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + String(repeating: "a", count: 2048)
            + "\r\n0\r\n\r\n"
        await #expect(throws: IdentityTransportError.responseTooLarge) {
            try await OneShotServer(response: Array(chunked.utf8)).get(limit: 1024)
        }
    }

    @Test func malformedResponsesRejected() async throws {
        await #expect(throws: IdentityTransportError.malformedResponse(reason: "invalid status line")) {
            try await OneShotServer(response: Array("SMTP ready\r\n\r\n".utf8)).get()
        }
        await #expect(throws: IdentityTransportError.malformedResponse(reason: "chunked body cut short")) {
            try await OneShotServer(
                response: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe".utf8)
            ).get()
        }
    }

    @Test func nonLoopbackURLRefused() async throws {
        await #expect(throws: IdentityTransportError.self) {
            try await LoopbackTestTransport().send(
                IdentityHTTPRequest(
                    method: .get, url: "https://idp.example.test/", timeout: 1, maximumResponseBytes: 10)
            )
        }
    }
}
