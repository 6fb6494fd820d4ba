import Foundation
import PomeriumCore
import PomeriumCrypto
import PomeriumIdentity
import Synchronization

/// A fake provider for unit tests: canned discovery and JWKS documents, a token endpoint whose
/// responses the test sets, and ID tokens signed in the test with P-256 keys.
final class TestIssuer: Sendable {
    static let issuer = "https://idp.example.test"
    static let clientID = "pomerium-client"
    static let clientSecret = "client-secret-value"
    static let redirectURL = "https://authenticate.example.test/oauth2/callback"

    let signingKey: ECPrivateKey
    let keyID: String
    let transport: CannedTransport
    let clock: ManualWallClock

    /// The discovery document served, as JSON.
    let discoveryBody: Data
    private let published = Mutex<[(key: ECPrivateKey, keyID: String)]>([])

    /// `discoveryOverrides` adds or replaces members of the default discovery document; `NSNull()`
    /// removes one.
    init(discoveryOverrides: [String: Any] = [:]) throws {
        signingKey = try ECPrivateKey.generate(curve: .p256)
        keyID = "key-1"
        clock = ManualWallClock(now: 1_700_000_000)
        transport = CannedTransport()
        discoveryBody = try JSONSerialization.data(
            withJSONObject: Self.discoveryDocument(overrides: discoveryOverrides),
            options: [.sortedKeys]
        )
        published.withLock { $0 = [(signingKey, keyID)] }
        transport.route("/.well-known/openid-configuration") { [discoveryBody] _ in
            IdentityHTTPResponse(
                status: 200, headers: [("Content-Type", "application/json")], body: Array(discoveryBody))
        }
        transport.route("/jwks") { [self] _ in
            IdentityHTTPResponse(
                status: 200, headers: [("Content-Type", "application/json")], body: self.keySetDocument())
        }
    }

    /// Replaces the published keys, as a provider does when it rotates them.
    func publish(_ keys: [(key: ECPrivateKey, keyID: String)]) {
        published.withLock { $0 = keys }
    }

    static func discoveryDocument(overrides: [String: Any]) -> [String: Any] {
        var document: [String: Any] = [
            "issuer": Self.issuer,
            "authorization_endpoint": "\(Self.issuer)/authorize?tenant=a",
            "token_endpoint": "\(Self.issuer)/token",
            "jwks_uri": "\(Self.issuer)/jwks",
            "userinfo_endpoint": "\(Self.issuer)/userinfo",
            "revocation_endpoint": "\(Self.issuer)/revoke",
            "end_session_endpoint": "\(Self.issuer)/logout",
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        ]
        for (name, value) in overrides {
            if value is NSNull { document[name] = nil } else { document[name] = value }
        }
        return document
    }

    func keySetDocument() -> [UInt8] {
        let keys = published.withLock { $0 }.map {
            JWK(key: .ec($0.key.publicKey), keyID: $0.keyID, algorithm: "ES256", use: "sig")
        }
        return JWKSet(keys: keys).jsonBytes()
    }

    func configuration(
        method: ClientAuthenticationMethod? = nil,
        kind: ProviderKind = .oidc,
        scopes: [String] = []
    ) -> ProviderConfiguration {
        ProviderConfiguration(
            kind: kind,
            providerURL: Self.issuer,
            clientID: Self.clientID,
            clientSecret: Self.clientSecret,
            redirectURL: Self.redirectURL,
            scopes: scopes,
            clientAuthenticationMethod: method,
            requestTimeout: 5
        )
    }

    func provider(method: ClientAuthenticationMethod? = nil, kind: ProviderKind = .oidc, scopes: [String] = [])
        async throws(IdentityError) -> OIDCProvider
    {
        try await OIDCProvider.discover(
            configuration: configuration(method: method, kind: kind, scopes: scopes),
            transport: transport,
            clock: clock
        )
    }

    /// Standard valid claims for `nonce` at the test clock's time, with `overrides` applied
    /// (`NSNull()` removes a claim).
    func claims(nonce: String? = "nonce-1", _ overrides: [String: Any] = [:]) -> [String: Any] {
        let now = clock.unixSeconds()
        var claims: [String: Any] = [
            "iss": Self.issuer,
            "sub": "user-123",
            "aud": Self.clientID,
            "exp": now + 3600,
            "iat": now,
            "email": "alice@example.test",
            "email_verified": true,
            "name": "Alice Example",
            "given_name": "Alice",
            "family_name": "Example",
            "picture": "https://example.test/alice.png",
            "groups": ["admins", "devs"],
        ]
        if let nonce { claims["nonce"] = nonce }
        for (name, value) in overrides {
            if value is NSNull { claims[name] = nil } else { claims[name] = value }
        }
        return claims
    }

    /// Signs a compact ES256 token over `claims`, signed by `key` (default: the published key) under `keyID`.
    /// With `omitKeyID`, the header has no `kid`, as some providers send it.
    func sign(
        _ claims: [String: Any], key: ECPrivateKey? = nil, keyID: String? = nil, omitKeyID: Bool = false
    ) throws -> String {
        let payload = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        return try JWS.sign(
            payload: Array(payload), with: .ecdsa(key ?? signingKey), keyID: omitKeyID ? nil : keyID ?? self.keyID)
    }

    /// Builds a token whose header and signature are given as raw text, for algorithm-confusion tests.
    static func unsignedToken(header: String, claims: [String: Any], signature: String = "") throws -> String {
        let payload = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        return Base64.urlUnpadded.encode(Array(header.utf8)) + "." + Base64.urlUnpadded.encode(Array(payload)) + "."
            + signature
    }

    /// Makes the token endpoint respond with `body` (a JSON object) and `status`.
    func respondToTokenRequests(status: Int = 200, _ body: [String: Any]) {
        let response = IdentityHTTPResponse.json(body, status: status)
        transport.route("/token") { _ in response }
    }
}

/// A transport that responds from per-path handlers and records every request.
final class CannedTransport: IdentityHTTPTransport {
    typealias Handler = @Sendable (IdentityHTTPRequest) throws -> IdentityHTTPResponse

    private let handlers = Mutex<[String: Handler]>([:])
    private let log = Mutex<[IdentityHTTPRequest]>([])

    var requests: [IdentityHTTPRequest] { log.withLock { $0 } }

    func route(_ path: String, _ handler: @escaping Handler) {
        handlers.withLock { $0[path] = handler }
    }

    func requests(to path: String) -> [IdentityHTTPRequest] {
        requests.filter { Self.path(of: $0.url) == path }
    }

    func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse {
        log.withLock { $0.append(request) }
        guard let handler = handlers.withLock({ $0[Self.path(of: request.url)] }) else {
            return IdentityHTTPResponse(status: 404)
        }
        return try handler(request)
    }

    static func path(of url: String) -> String {
        let afterScheme = url.components(separatedBy: "://").last ?? url
        let path = afterScheme.drop { $0 != "/" }
        return String(path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }
}

extension IdentityHTTPResponse {
    static func json(_ object: [String: Any], status: Int = 200) -> IdentityHTTPResponse {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return IdentityHTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(body))
    }
}

extension IdentityHTTPRequest {
    /// The form fields of an `application/x-www-form-urlencoded` body, decoded.
    var formFields: [String: String] {
        FormFields.decode(String(decoding: body, as: UTF8.self))
    }
}

enum FormFields {
    /// Decodes `a=b&c=d` with `+` as space and percent escapes.
    static func decode(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = unescape(String(parts[0]))
            fields[name] = parts.count > 1 ? unescape(String(parts[1])) : ""
        }
        return fields
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? text
    }

    /// Decodes the query fields of a URL.
    static func query(of url: String) -> [String: String] {
        guard let mark = url.firstIndex(of: "?") else { return [:] }
        return decode(String(url[url.index(after: mark)...]))
    }
}
