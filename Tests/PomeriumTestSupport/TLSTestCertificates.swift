import Foundation

/// A throwaway CA with a server and a client certificate, plus an unrelated CA, made with the
/// `openssl` command in a temporary folder. Keys are P-256 and the certificates are valid for two
/// days.
public struct TLSTestCertificates: Sendable {
    public let directory: URL

    /// The CA that signed `serverCertificate` and `clientCertificate`.
    public var caFile: String { path("ca.pem") }
    /// A CA that signed nothing here, for wrong-CA cases.
    public var otherCAFile: String { path("other-ca.pem") }
    /// A server certificate for 127.0.0.1 and `serverName`.
    public var serverCertificate: String { path("server.pem") }
    public var serverKey: String { path("server-key.pem") }
    public var clientCertificate: String { path("client.pem") }
    public var clientKey: String { path("client-key.pem") }

    /// The DNS name in the server certificate besides the address 127.0.0.1.
    public static let serverName = "redis.example.test"

    private func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    /// Creates the CAs and the two leaf certificates. Throws when `openssl` is missing or fails.
    public static func make() throws -> TLSTestCertificates {
        let certificates = TLSTestCertificates(directory: try RepositoryPaths.makeTemporaryDirectory(prefix: "tls"))
        try certificates.makeCA(name: "ca", subject: "/CN=Pomerium Redis Test CA")
        try certificates.makeCA(name: "other-ca", subject: "/CN=Unrelated Test CA")
        try certificates.issue(
            "server", subject: "/CN=\(serverName)", names: "DNS:\(serverName),IP:127.0.0.1", usage: "serverAuth")
        try certificates.issue("client", subject: "/CN=pomerium-test-client", names: "DNS:client", usage: "clientAuth")
        return certificates
    }

    private func makeCA(name: String, subject: String) throws {
        try runOpenSSL([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", path("\(name)-key.pem"), "-out", path("\(name).pem"), "-days", "2", "-subj", subject,
        ])
    }

    private func issue(_ name: String, subject: String, names: String, usage: String) throws {
        try runOpenSSL([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", path("\(name)-key.pem"), "-out", path("\(name).csr"), "-subj", subject,
        ])
        let extensions = path("\(name).ext")
        try "subjectAltName=\(names)\nextendedKeyUsage=\(usage)\n".write(
            toFile: extensions, atomically: true, encoding: .utf8)
        try runOpenSSL([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caFile, "-CAkey", path("ca-key.pem"),
            "-CAcreateserial", "-out", path("\(name).pem"), "-days", "2", "-extfile", extensions,
        ])
    }

    private func runOpenSSL(_ arguments: [String]) throws {
        let result = try CommandRunner.run(try Fixtures.findExecutable("openssl").path, arguments)
        guard result.status == 0 else {
            throw FixtureError(
                "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.standardError.prefix(300))")
        }
    }
}

/// How a TLS `redis-server` fixture serves: its certificates, and whether clients must present a
/// certificate signed by the same CA (`tls-auth-clients yes`).
public struct RedisTLSOptions: Sendable {
    public var certificates: TLSTestCertificates
    public var requireClientCertificates: Bool

    public init(certificates: TLSTestCertificates, requireClientCertificates: Bool = false) {
        self.certificates = certificates
        self.requireClientCertificates = requireClientCertificates
    }

    /// Returns the `redis-server` arguments that serve TLS only, on `port`.
    func arguments(port: Int) -> [String] {
        [
            "--port", "0", "--tls-port", String(port),
            "--tls-cert-file", certificates.serverCertificate, "--tls-key-file", certificates.serverKey,
            "--tls-ca-cert-file", certificates.caFile,
            "--tls-auth-clients", requireClientCertificates ? "yes" : "no",
        ]
    }
}

extension Fixtures {
    /// Runs `body` with a `redis-server` that serves only TLS on its port; `RunningServer.port` is
    /// the TLS port. `extraArguments` are passed on as for `withRedis(extraArguments:_:)`.
    public static func withRedis<T>(
        tls: RedisTLSOptions,
        extraArguments: [String] = [],
        _ body: (RunningServer) async throws -> T
    ) async throws -> T {
        let server = try await offCooperativePool { try startRedis(tls: tls, extraArguments: extraArguments) }
        defer { server.process.stop() }
        return try await body(server)
    }

    /// Starts a TLS-only `redis-server`; the caller stops it. `port` reuses a port, to restart on it.
    public static func startRedis(
        tls: RedisTLSOptions, port: Int? = nil, extraArguments: [String] = []
    ) throws -> RunningServer {
        if let port {
            return try launchRedis(port: port, extraArguments: tls.arguments(port: port) + extraArguments)
        }
        return try startOnFreePort { port in
            try launchRedis(port: port, extraArguments: tls.arguments(port: port) + extraArguments)
        }
    }
}
