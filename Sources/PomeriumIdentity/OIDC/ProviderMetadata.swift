/// The fields of an OpenID Provider's discovery document that the relying party uses
/// (OpenID Connect Discovery 1.0 section 3, RFC 8414, RFC 7009, RP-Initiated Logout 1.0).
public struct ProviderMetadata: Sendable, Equatable {
    public let issuer: String
    public let authorizationEndpoint: String
    public let tokenEndpoint: String
    public let jwksURI: String
    public let userInfoEndpoint: String?
    public let revocationEndpoint: String?
    public let endSessionEndpoint: String?
    /// `id_token_signing_alg_values_supported`; discovery requires it, RS256 when a provider omits it.
    public let idTokenSigningAlgorithms: [String]
    /// `token_endpoint_auth_methods_supported`; the specification's default is `client_secret_basic`.
    public let tokenEndpointAuthMethods: [String]
    /// `code_challenge_methods_supported` (RFC 8414); empty when the provider does not advertise PKCE.
    public let codeChallengeMethods: [String]

    public init(
        issuer: String,
        authorizationEndpoint: String,
        tokenEndpoint: String,
        jwksURI: String,
        userInfoEndpoint: String? = nil,
        revocationEndpoint: String? = nil,
        endSessionEndpoint: String? = nil,
        idTokenSigningAlgorithms: [String] = ["RS256"],
        tokenEndpointAuthMethods: [String] = ["client_secret_basic"],
        codeChallengeMethods: [String] = []
    ) {
        self.issuer = issuer
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.jwksURI = jwksURI
        self.userInfoEndpoint = userInfoEndpoint
        self.revocationEndpoint = revocationEndpoint
        self.endSessionEndpoint = endSessionEndpoint
        self.idTokenSigningAlgorithms = idTokenSigningAlgorithms
        self.tokenEndpointAuthMethods = tokenEndpointAuthMethods
        self.codeChallengeMethods = codeChallengeMethods
    }

    /// Returns the discovery URL for `issuer`: the issuer without a trailing slash plus
    /// `/.well-known/openid-configuration`.
    public static func discoveryURL(issuer: String) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// Parses a discovery document and checks it: `issuer` must equal `expectedIssuer` exactly, and
    /// every endpoint must be an absolute URL allowed by `allowsPlainHTTP`.
    public static func parse(
        _ body: [UInt8],
        expectedIssuer: String,
        allowsPlainHTTP: Bool,
        endpoint: String
    ) throws(IdentityError) -> ProviderMetadata {
        let document: [String: ClaimValue]
        do {
            document = try ClaimValue.parseObject(body)
        } catch {
            throw .invalidResponse(endpoint: endpoint, reason: describeJSONError(error))
        }

        func invalid(_ reason: String) -> IdentityError { .invalidResponse(endpoint: endpoint, reason: reason) }

        func requiredURL(_ name: String) throws(IdentityError) -> String {
            guard let value = document[name]?.stringValue, !value.isEmpty else {
                throw invalid("the discovery document has no \(name)")
            }
            return try checkedURL(name, value)
        }

        func optionalURL(_ name: String) throws(IdentityError) -> String? {
            switch document[name] {
            case nil, .null?: return nil
            case .string(let value)?: return try checkedURL(name, value)
            default: throw invalid("\(name) in the discovery document is not a string")
            }
        }

        func checkedURL(_ name: String, _ value: String) throws(IdentityError) -> String {
            if let problem = ProviderURL.problem(value, setting: name, allowsPlainHTTP: allowsPlainHTTP) {
                throw invalid(problem)
            }
            return value
        }

        func stringList(_ name: String, default fallback: [String]) throws(IdentityError) -> [String] {
            switch document[name] {
            case nil, .null?: return fallback
            case .array(let elements)?:
                let strings = elements.compactMap(\.stringValue)
                guard strings.count == elements.count else { throw invalid("\(name) is not a list of strings") }
                return strings
            default: throw invalid("\(name) is not a list of strings")
            }
        }

        guard let issuer = document["issuer"]?.stringValue else {
            throw invalid("the discovery document has no issuer")
        }
        guard issuer == expectedIssuer else {
            throw .issuerMismatch(expected: expectedIssuer, actual: String(issuer.prefix(200)))
        }
        return ProviderMetadata(
            issuer: issuer,
            authorizationEndpoint: try requiredURL("authorization_endpoint"),
            tokenEndpoint: try requiredURL("token_endpoint"),
            jwksURI: try requiredURL("jwks_uri"),
            userInfoEndpoint: try optionalURL("userinfo_endpoint"),
            revocationEndpoint: try optionalURL("revocation_endpoint"),
            endSessionEndpoint: try optionalURL("end_session_endpoint"),
            idTokenSigningAlgorithms: try stringList("id_token_signing_alg_values_supported", default: ["RS256"]),
            tokenEndpointAuthMethods: try stringList(
                "token_endpoint_auth_methods_supported",
                default: ["client_secret_basic"]
            ),
            codeChallengeMethods: try stringList("code_challenge_methods_supported", default: [])
        )
    }
}
