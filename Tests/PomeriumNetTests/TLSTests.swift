import Foundation
import PomeriumCrypto
import PomeriumNet
import Testing

@Suite("TLS engine")
struct TLSTests {
    static func serverContext(_ certificates: TestCertificates, clientRoots: TLSTrustRoots? = nil) throws
        -> TLSServerContext
    {
        try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificates: [
                    .files(certificateChain: certificates.certificate("alpha"), privateKey: certificates.key("alpha")),
                    .files(certificateChain: certificates.certificate("beta"), privateKey: certificates.key("beta")),
                ],
                clientCertificateRoots: clientRoots))
    }

    @Test("SNI chooses between two certificates")
    func sniChoosesCertificate() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group, tls: try Self.serverContext(certificates))
        let trust = TLSTrustRoots.file(certificates.caCertificate)
        // Each name verifies only against its own certificate, so success proves the choice.
        for name in ["alpha.example.test", "www.beta.example.test"] {
            let client = try TLSClientContext(
                configuration: TLSClientConfiguration(trustRoots: trust, serverNameOverride: name))
            let (reply, alpn) = try await server.probe(message: "hello \(name)", tls: client)
            #expect(reply == "hello \(name)")
            #expect(alpn == "http/1.1")
            #expect(server.serverName == name)
        }
        await server.close()
    }

    @Test("client trusts a custom CA and checks an IP address")
    func customCAWithAddress() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let context = try TLSServerContext(
            configuration: TLSServerConfiguration(certificates: [
                .pem(
                    certificateChain: try TLSTestFiles.read(certificates.certificate("beta")),
                    privateKey: try TLSTestFiles.read(certificates.key("beta")))
            ]))
        let server = try await EchoServer(group: group, tls: context)
        let client = try TLSClientContext(
            configuration: TLSClientConfiguration(trustRoots: .pem(try TLSTestFiles.read(certificates.caCertificate))))
        let (reply, _) = try await server.probe(message: "by address", tls: client, host: "127.0.0.1")
        #expect(reply == "by address")
        await server.close()
    }

    @Test("wrong name is rejected")
    func wrongNameRejected() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group, tls: try Self.serverContext(certificates))
        let client = try TLSClientContext(
            configuration: TLSClientConfiguration(
                trustRoots: .file(certificates.caCertificate), serverNameOverride: "gamma.example.test"))
        await #expect(throws: TLSError.self) {
            _ = try await server.probe(message: "x", tls: client)
        }
        await server.close()
    }

    @Test("unknown CA is rejected and skip-verify accepts it")
    func unknownCAAndSkipVerify() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group, tls: try Self.serverContext(certificates))
        let strict = try TLSClientContext(
            configuration: TLSClientConfiguration(
                trustRoots: .file(certificates.otherCACertificate), serverNameOverride: "alpha.example.test"))
        await #expect(throws: TLSError.self) {
            _ = try await server.probe(message: "x", tls: strict)
        }
        let lenient = try TLSClientContext(
            configuration: TLSClientConfiguration(
                trustRoots: .file(certificates.otherCACertificate), skipVerification: true,
                serverNameOverride: "gamma.example.test"))
        let (reply, _) = try await server.probe(message: "trusting anyone", tls: lenient)
        #expect(reply == "trusting anyone")
        await server.close()
    }

    @Test("mutual TLS requires and reports the client certificate")
    func mutualTLS() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(
            group: group,
            tls: try Self.serverContext(certificates, clientRoots: .file(certificates.caCertificate)))
        let anonymous = try TLSClientContext(
            configuration: TLSClientConfiguration(
                trustRoots: .file(certificates.caCertificate), serverNameOverride: "alpha.example.test"))
        await #expect(throws: (any Error).self) {
            _ = try await server.probe(message: "no certificate", tls: anonymous)
        }
        let identified = try TLSClientContext(
            configuration: TLSClientConfiguration(
                trustRoots: .file(certificates.caCertificate), serverNameOverride: "alpha.example.test",
                clientCertificate: .files(
                    certificateChain: certificates.certificate("client"), privateKey: certificates.key("client"))))
        let prefix = "client=/CN=test-client\n"
        let (reply, _) = try await server.probe(
            message: "with certificate", expected: prefix.utf8.count + 16, tls: identified)
        #expect(reply == prefix + "with certificate")
        await server.close()
    }

    @Test("replaced certificates reach the next handshake and a broken replacement changes nothing")
    func replaceCertificates() async throws {
        let certificates = try TestCertificates.make()
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let alpha = TLSCertificateSource.files(
            certificateChain: certificates.certificate("alpha"), privateKey: certificates.key("alpha"))
        let beta = TLSCertificateSource.files(
            certificateChain: certificates.certificate("beta"), privateKey: certificates.key("beta"))
        let context = try TLSServerContext(configuration: TLSServerConfiguration(certificates: [alpha]))
        let server = try await EchoServer(group: group, tls: context)
        func client(_ name: String) throws -> TLSClientContext {
            try TLSClientContext(
                configuration: TLSClientConfiguration(
                    trustRoots: .file(certificates.caCertificate), serverNameOverride: name))
        }

        let mismatched = TLSCertificateSource.files(
            certificateChain: certificates.certificate("alpha"), privateKey: certificates.key("beta"))
        #expect(throws: TLSError.self) { try context.replaceCertificates([mismatched]) }
        #expect(context.replacementCount == 0)
        let (kept, _) = try await server.probe(message: "still alpha", tls: try client("alpha.example.test"))
        #expect(kept == "still alpha")

        try context.replaceCertificates([beta, alpha])
        #expect(context.replacementCount == 1)
        let (byDefault, _) = try await server.probe(message: "beta", tls: try client("www.beta.example.test"))
        #expect(byDefault == "beta")
        // SNI still chooses within the new set.
        let (bySNI, _) = try await server.probe(message: "alpha by name", tls: try client("alpha.example.test"))
        #expect(bySNI == "alpha by name")

        try context.replaceCertificates([beta])
        await #expect(throws: TLSError.self) {
            _ = try await server.probe(message: "x", tls: try client("alpha.example.test"))
        }
        await server.close()
    }

    @Test("bad certificate input names the problem")
    func badCertificateInput() throws {
        #expect(throws: TLSError.self) {
            _ = try TLSServerContext(configuration: TLSServerConfiguration(certificates: []))
        }
        do {
            _ = try TLSServerContext(
                configuration: TLSServerConfiguration(certificates: [
                    .pem(certificateChain: Array("not a certificate".utf8), privateKey: [])
                ]))
            Issue.record("a non-PEM certificate must be rejected")
        } catch let error as TLSError {
            #expect(error.reason.contains("no PEM certificate"))
        }
        #expect(throws: TLSError.self) {
            _ = try TLSServerContext(
                configuration: TLSServerConfiguration(certificates: [
                    .files(certificateChain: "/nonexistent/cert.pem", privateKey: "/nonexistent/key.pem")
                ]))
        }
    }
}

enum TLSTestFiles {
    static func read(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandleReader(path: path) else { throw TLSError("cannot read \(path)") }
        return handle.bytes
    }
}

struct FileHandleReader {
    let bytes: [UInt8]
    init?(path: String) {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        bytes = Array(data)
    }
}
