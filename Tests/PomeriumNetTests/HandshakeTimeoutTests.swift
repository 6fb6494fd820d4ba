import PomeriumHTTPServer
import PomeriumNet
import PomeriumTestSupport
import Testing

@Suite("TLS handshake timeout")
struct HandshakeTimeoutTests {
    @Test("silent TLS clients are closed")
    func silentClientsClosed() async throws {
        let certificates = try TestCertificates.make()
        let tls = try TLSTests.serverContext(certificates)
        let configure: (inout HTTPServerConfiguration) -> Void = {
            $0.tls = tls
            $0.readHeaderTimeout = 0.2
            $0.idleTimeout = 60
        }
        try await HTTPTesting.withServer(configure: configure, makeHandler: HTTPServerTests.hello) { server in
            let start = MonotonicClock.nanoseconds()
            // One client sends nothing, the other the first bytes of a ClientHello and then nothing.
            let silent = try LoopbackConnection(port: server.localAddress.port, timeoutSeconds: 10)
            let partial = try LoopbackConnection(port: server.localAddress.port, timeoutSeconds: 10)
            try partial.send("\u{16}\u{03}\u{01}")
            #expect(silent.receive() == "")
            #expect(partial.receive() == "")
            // Closed by the server, well before the clients' own 10-second receive timeout.
            #expect(MonotonicClock.nanoseconds() - start < 5_000_000_000)
            #expect(await server.connectionCount() == 0)
        }
    }
}
