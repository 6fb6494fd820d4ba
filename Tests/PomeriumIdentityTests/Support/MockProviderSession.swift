import Foundation
import Glibc
import PomeriumCore
import PomeriumIdentity
import PomeriumTestSupport

/// Drives `oidc-provider-mock` for integration tests: presets users and logs in without a browser
/// by posting the login form the way a user would.
struct MockProviderSession {
    let port: Int
    let transport = LoopbackTestTransport()
    /// A clock at the real time, because the mock stamps its tokens with the real time.
    let clock = ManualWallClock(now: SystemWallClock().now())

    init(port: Int) { self.port = port }

    init(server: RunningServer) { self.init(port: server.port) }

    var issuer: String { "http://127.0.0.1:\(port)" }

    func configuration(timeout: Double = 5) -> ProviderConfiguration {
        ProviderConfiguration(
            providerURL: issuer,
            clientID: "pomerium-test-client",
            clientSecret: "secret with spaces & symbols",
            redirectURL: "http://127.0.0.1:1/oauth2/callback",
            requestTimeout: timeout
        )
    }

    func discover() async throws -> OIDCProvider {
        try await OIDCProvider.discover(configuration: configuration(), transport: transport, clock: clock)
    }

    /// Stores claims for `subject` with the mock's `PUT /users/<sub>`.
    func presetUser(_ subject: String, claims: [String: Any]) throws {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self)
        let connection = try LoopbackConnection(port: port)
        try connection.send(
            "PUT /users/\(subject) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )
        let response = connection.receive()
        guard response.hasPrefix("HTTP/1.1 204") else {
            throw FixtureError("PUT /users/\(subject) failed: \(response.prefix(80))")
        }
    }

    /// Opens the authorization URL, submits the login form as `subject`, and returns the `code`
    /// and `state` from the redirect to the callback.
    func login(_ request: AuthorizationRequest, as subject: String) async throws -> (code: String, state: String) {
        let form = try await transport.send(
            IdentityHTTPRequest(method: .get, url: request.url, timeout: 5, maximumResponseBytes: 1 << 20)
        )
        guard form.status == 200 else { throw FixtureError("the authorization page returned \(form.status)") }
        let submitted = try await transport.send(
            IdentityHTTPRequest(
                method: .post,
                url: request.url,
                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array("sub=\(subject)".utf8),
                timeout: 5,
                maximumResponseBytes: 1 << 20
            )
        )
        guard submitted.status == 302, let location = submitted.header("Location") else {
            throw FixtureError("the login form returned \(submitted.status) instead of a redirect")
        }
        let query = FormFields.query(of: location)
        guard let code = query["code"], let state = query["state"] else {
            throw FixtureError("the redirect has no code or state: \(location.prefix(120))")
        }
        return (code, state)
    }

    /// Fetches the `kid` of the mock's first JWKS key.
    func publishedKeyID() async throws -> String {
        let response = try await transport.send(
            IdentityHTTPRequest(method: .get, url: issuer + "/jwks", timeout: 5, maximumResponseBytes: 1 << 20)
        )
        let document = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        let keys = document?["keys"] as? [[String: Any]]
        guard let keyID = keys?.first?["kid"] as? String else { throw FixtureError("the mock's JWKS has no kid") }
        return keyID
    }

    /// An RS256 token over `claims` signed with a fresh RSA key by jwcrypto, with `kid` in the
    /// header when given: a forgery the provider's keys must reject.
    static func forgeRS256(claims: [String: Any], keyID: String?) throws -> String {
        let payload = String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self)
        let header = keyID.map { #"{"alg":"RS256","kid":"\#($0)"}"# } ?? #"{"alg":"RS256"}"#
        let script = """
            import sys
            from jwcrypto import jwk, jws
            key = jwk.JWK.generate(kty="RSA", size=2048)
            token = jws.JWS(sys.stdin.read().encode())
            token.add_signature(key, None, protected=\(pythonLiteral(header)))
            print(token.serialize(compact=True))
            """
        return try PythonRunner.run(script, input: payload).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func pythonLiteral(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}

/// A TCP listener on a free loopback port that accepts connections into its backlog but never
/// responds, to test timeouts.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            close(descriptor)
            throw FixtureError("bind or listen failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else {
            close(descriptor)
            throw FixtureError("getsockname failed: errno \(errno)")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
