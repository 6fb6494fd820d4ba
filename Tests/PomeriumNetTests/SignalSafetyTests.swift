import Foundation
import Glibc
import PomeriumTestSupport
import Testing

/// A TLS client that hangs up while the proxy is still writing must not end the process: OpenSSL
/// writes with write(2), and SIGPIPE's default action would kill a program that runs event loops.
@Suite struct SignalSafetyTests {
    /// The NetBench executable of the configuration the tests were built in.
    static var netBench: String {
        #if DEBUG
            RepositoryPaths.root.appendingPathComponent(".build/debug/NetBench").path
        #else
            RepositoryPaths.root.appendingPathComponent(".build/release/NetBench").path
        #endif
    }

    @Test func clientHangingUpDuringTLSWriteKeepsProxyRunning() async throws {
        let certificates = try TestCertificates.make()
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "sigpipe")
        let upstreamPort = try LoopbackPort.allocate()
        let upstream = try ManagedProcess(
            name: "netbench-hello",
            executable: URL(fileURLWithPath: Self.netBench),
            arguments: ["hello", "--listen", "127.0.0.1:\(upstreamPort)", "--loops", "1"],
            logDirectory: directory
        )
        defer { upstream.stop() }
        try upstream.waitUntilListening(port: upstreamPort)
        let proxyPort = try LoopbackPort.allocate()
        let proxy = try ManagedProcess(
            name: "netbench-proxy",
            executable: URL(fileURLWithPath: Self.netBench),
            arguments: [
                "proxy", "--listen", "127.0.0.1:\(proxyPort)", "--upstream", "http://127.0.0.1:\(upstreamPort)",
                "--loops", "1", "--tls-cert", certificates.certificate("beta"), "--tls-key", certificates.key("beta"),
            ],
            logDirectory: directory
        )
        defer { proxy.stop() }
        try proxy.waitUntilListening(port: proxyPort)

        // Each client sends many pipelined requests and closes without reading the answers, so the
        // proxy writes TLS records to sockets whose peer is gone.
        let script = """
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            request = b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n" * 200
            for _ in range(20):
                raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
                tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
                tls.sendall(request)
                tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
                tls.close()
            """
        let result = try await CommandRunner.runAsync(
            RepositoryPaths.python.path,
            ["-c", script, String(proxyPort), certificates.caCertificate],
            timeoutSeconds: 60
        )
        #expect(result.status == 0, "\(result.standardError)")
        try await Task.sleep(for: .milliseconds(200))
        #expect(proxy.isRunning, "the proxy exited: \(proxy.output)")
        let check = try await CommandRunner.runAsync(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caCertificate,
                "https://127.0.0.1:\(proxyPort)/",
            ],
            timeoutSeconds: 30
        )
        #expect(check.standardOutput == "200")
    }
}
