import Glibc
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumProxy
import PomeriumSessions

/// The `auth` mode: the real proxy service in front of `--upstream`, for one route
/// (`http://app.example.test`) that allows one user. It writes the `Cookie` header of a valid
/// session for that user to `--cookie-file`, so a load generator can send authenticated requests
/// that go through cookie, session, policy, cached assertion and forwarding.
enum AuthProxyBench {
    static let host = "app.example.test"
    static let email = "alice@bench.test"
    static let authenticateHost = "authenticate.bench.test"

    static func makeService(upstream: String, client: HTTPClient, logger: Logger) throws -> (ProxyService, String) {
        let base64 = Base64.standard
        let config = """
            insecure_server: true
            address: 127.0.0.1:0
            shared_secret: \(base64.encode(try SecureRandom.bytes(32)))
            cookie_secret: \(base64.encode(try SecureRandom.bytes(32)))
            authenticate_service_url: https://\(authenticateHost)
            idp_provider: oidc
            idp_provider_url: https://idp.bench.test
            idp_client_id: bench
            idp_client_secret: bench
            jwt_claims_headers: [email]
            policy:
              - from: http://\(host)
                to: \(upstream)
                allowed_users: [\(email)]
            """
        let result = ConfigLoader.load(text: config, format: .yaml)
        guard result.isValid else {
            throw UsageError("the benchmark configuration is invalid: \(result.errors.map(\.description))")
        }
        let options = result.options
        let clock = SystemWallClock()
        let signer = try IdentityAssertionSigner(signingKey: try ECPrivateKey.generate(curve: .p256), clock: clock)
        let shared = ProxySharedState(
            signer: signer, keySet: try AssertionKeySet(current: signer.publicKey), refresher: NoRefresher(),
            client: client, logger: logger, clock: clock)
        let service = try ProxyService(options: options, shared: shared)

        // The same cookie settings the service derives from the options, so it opens this cookie.
        let settings = CookieSettings(
            name: options.cookieName, domain: options.cookieDomain, secure: options.cookieSecure,
            httpOnly: options.cookieHTTPOnly, expireSeconds: options.cookieExpire.components.seconds,
            sameSite: SetCookie.SameSite(rawValue: options.cookieSameSite.rawValue))
        let codec = try SessionCookieCodec(
            cookieSecret: options.cookieSecret, settings: settings, clock: clock, logger: logger)
        let now = clock.unixSeconds()
        var session = SessionState()
        session.issuer = authenticateHost
        session.subject = "sub-bench"
        session.audience = [authenticateHost, host]
        session.expiry = now + 24 * 3600
        session.notBefore = now - 5
        session.issuedAt = now - 5
        session.email = email
        session.accessTokenID = "ati-bench"
        let pairs = try codec.setCookieHeaders(for: session).compactMap { line -> String? in
            let pair = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            return pair.hasSuffix("=") ? nil : pair
        }
        return (service, pairs.joined(separator: "; "))
    }

    /// Writes `text` to `path`, replacing the file.
    static func write(_ text: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw UsageError("cannot write '\(path)': errno \(errno)") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw UsageError("cannot write '\(path)': short write") }
    }
}

/// Refuses every backend refresh; the benchmark's session never expires during a run.
struct NoRefresher: RouteSessionRefresher {
    func refreshRouteSession(accessTokenID: String, audience: [String], issuerHost: String) async throws -> String {
        throw UsageError("backend refresh is not part of the benchmark")
    }
}
