import Foundation
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTPServer
import PomeriumNet
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Proxy upstream TLS")
struct ProxyUpstreamTLSTests {
    /// A test CA and a server certificate for `upstream.example.test`, made with the `openssl`
    /// command; returns the CA, certificate and key as PEM text.
    static func makeCertificates() throws -> (ca: String, certificate: String, key: String) {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "proxy-tls")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        func openssl(_ arguments: [String]) throws {
            let result = try CommandRunner.run("/usr/bin/openssl", arguments)
            guard result.status == 0 else {
                throw PomeriumError("openssl-failed", "openssl \(arguments.first ?? "") failed")
            }
        }
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            path("ca-key.pem"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=Proxy Test CA",
        ])
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("key.pem"),
            "-out", path("request.pem"), "-subj", "/CN=upstream.example.test",
        ])
        try "subjectAltName=DNS:upstream.example.test\n".write(
            toFile: path("extensions.cnf"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("request.pem"), "-CA", path("ca.pem"), "-CAkey", path("ca-key.pem"),
            "-CAcreateserial", "-out", path("certificate.pem"), "-days", "2", "-extfile", path("extensions.cnf"),
        ])
        return (
            try String(contentsOfFile: path("ca.pem"), encoding: .utf8),
            try String(contentsOfFile: path("certificate.pem"), encoding: .utf8),
            try String(contentsOfFile: path("key.pem"), encoding: .utf8)
        )
    }

    @Test("route TLS settings verify the upstream")
    func upstreamVerification() async throws {
        let material = try Self.makeCertificates()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let context = try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificates: [
                    .pem(certificateChain: Array(material.certificate.utf8), privateKey: Array(material.key.utf8))
                ]))
        let upstream = try await HTTPServer(
            group: group,
            configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"), tls: context)
        ) { _ in
            CountingUpstream(port: 0)
        }
        let port = upstream.localAddress.port
        let ca = Base64.standard.encode(Array(material.ca.utf8))
        let config = """
            policy:
              - from: https://verified.example.test
                to: https://127.0.0.1:\(port)
                allow_public_unauthenticated_access: true
                tls_custom_ca: \(ca)
                tls_server_name: upstream.example.test
              - from: https://system-roots.example.test
                to: https://127.0.0.1:\(port)
                allow_public_unauthenticated_access: true
                tls_server_name: upstream.example.test
              - from: https://wrong-name.example.test
                to: https://127.0.0.1:\(port)
                allow_public_unauthenticated_access: true
                tls_custom_ca: \(ca)
              - from: https://skip.example.test
                to: https://127.0.0.1:\(port)
                allow_public_unauthenticated_access: true
                tls_skip_verify: true
            """
        try await ProxyHarness.run(config: config) { proxy in
            let cases: [(String, Int)] = [
                ("verified.example.test", 200), ("system-roots.example.test", 502), ("wrong-name.example.test", 502),
                ("skip.example.test", 200),
            ]
            for (host, status) in cases {
                let response = try await proxy.request(host: host, path: "/")
                #expect(response.status == status, "\(host)")
            }
        }
        await upstream.shutdown(gracePeriod: 1)
    }
}
