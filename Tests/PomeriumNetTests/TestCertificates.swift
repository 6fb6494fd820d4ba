import Foundation
import PomeriumTestSupport

/// A throwaway CA, two server certificates and a client certificate made with the `openssl`
/// command in a temporary folder.
struct TestCertificates {
    let directory: URL

    var caCertificate: String { path("ca.pem") }
    var otherCACertificate: String { path("other-ca.pem") }
    func certificate(_ name: String) -> String { path("\(name).pem") }
    func key(_ name: String) -> String { path("\(name)-key.pem") }

    private func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    /// Creates the CA plus leaf certificates `alpha` (alpha.example.test), `beta`
    /// (*.beta.example.test and 127.0.0.1) and the client certificate `client`.
    static func make() throws -> TestCertificates {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "tls")
        let certificates = TestCertificates(directory: directory)
        try certificates.run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", certificates.path("ca-key.pem"), "-out", certificates.caCertificate, "-days", "2",
            "-subj", "/CN=Pomerium Test CA",
        ])
        try certificates.run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", certificates.path("other-ca-key.pem"), "-out", certificates.otherCACertificate, "-days", "2",
            "-subj", "/CN=Other Test CA",
        ])
        try certificates.issue("alpha", subject: "/CN=alpha.example.test", names: "DNS:alpha.example.test")
        try certificates.issue(
            "beta", subject: "/CN=beta.example.test",
            names: "DNS:*.beta.example.test,DNS:beta.example.test,IP:127.0.0.1")
        try certificates.issue("client", subject: "/CN=test-client", names: "DNS:test-client", client: true)
        return certificates
    }

    private func issue(_ name: String, subject: String, names: String, client: Bool = false) throws {
        try run([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key(name), "-out", path("\(name).csr"), "-subj", subject,
        ])
        let extensions = path("\(name).ext")
        let usage = client ? "clientAuth" : "serverAuth"
        try "subjectAltName=\(names)\nextendedKeyUsage=\(usage)\n".write(
            toFile: extensions, atomically: true, encoding: .utf8)
        try run([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caCertificate, "-CAkey", path("ca-key.pem"),
            "-CAcreateserial", "-out", certificate(name), "-days", "2", "-extfile", extensions,
        ])
    }

    private func run(_ arguments: [String]) throws {
        let result = try CommandRunner.run(try Fixtures.findExecutable("openssl").path, arguments)
        guard result.status == 0 else {
            throw FixtureError("openssl \(arguments.prefix(2).joined(separator: " ")) failed")
        }
    }
}
