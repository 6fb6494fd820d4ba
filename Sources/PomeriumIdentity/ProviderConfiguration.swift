/// The client authentication method at the token and revocation endpoints (OpenID Connect Core
/// section 9).
public enum ClientAuthenticationMethod: String, Sendable, CaseIterable {
    /// HTTP Basic with the form-encoded client ID and secret (RFC 6749 section 2.3.1).
    case clientSecretBasic = "client_secret_basic"
    /// `client_id` and `client_secret` as form fields of the request body.
    case clientSecretPost = "client_secret_post"
}

/// The settings of one identity provider: Pomerium's `idp_*` options plus the limits of the outbound
/// calls. Times are in seconds.
public struct ProviderConfiguration: Sendable {
    public var kind: ProviderKind
    /// The issuer URL (`idp_provider_url`); empty means the provider's default.
    public var providerURL: String
    public var clientID: String
    public var clientSecret: String
    /// The registered redirect URI: the authenticate service URL plus the callback path.
    public var redirectURL: String
    /// `idp_scopes`; empty means the provider's default scopes.
    public var scopes: [String]
    /// The client authentication method; nil picks one from the discovery document's
    /// `token_endpoint_auth_methods_supported`, preferring `client_secret_basic`.
    public var clientAuthenticationMethod: ClientAuthenticationMethod?
    /// PEM certificates of a private CA for the provider's TLS certificate, passed to the transport.
    public var certificateAuthorityPEM: String?
    /// The limit for each outbound call, connect to last byte.
    public var requestTimeout: Double
    /// The largest response body accepted from the provider, in bytes.
    public var maximumResponseBytes: Int
    /// Clock skew allowed on `exp`, `nbf` and `iat` of ID tokens.
    public var clockLeeway: Double
    /// The minimum time between two JWKS fetches caused by an unknown `kid`, so forged tokens cannot
    /// make the proxy hammer the provider.
    public var keySetRefetchInterval: Double
    /// How long a fetched JWKS is used before it is fetched again on the next validation.
    public var keySetMaximumAge: Double
    /// Whether the authorization request carries a PKCE S256 challenge (RFC 7636).
    public var usesPKCE: Bool
    /// Whether `http` provider URLs are accepted for hosts other than loopback addresses.
    public var allowsPlainHTTP: Bool

    public init(
        kind: ProviderKind = .oidc,
        providerURL: String = "",
        clientID: String,
        clientSecret: String,
        redirectURL: String,
        scopes: [String] = [],
        clientAuthenticationMethod: ClientAuthenticationMethod? = nil,
        certificateAuthorityPEM: String? = nil,
        requestTimeout: Double = 30,
        maximumResponseBytes: Int = 1 << 20,
        clockLeeway: Double = 60,
        keySetRefetchInterval: Double = 60,
        keySetMaximumAge: Double = 86_400,
        usesPKCE: Bool = true,
        allowsPlainHTTP: Bool = false
    ) {
        self.kind = kind
        self.providerURL = providerURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURL = redirectURL
        self.scopes = scopes
        self.clientAuthenticationMethod = clientAuthenticationMethod
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.requestTimeout = requestTimeout
        self.maximumResponseBytes = maximumResponseBytes
        self.clockLeeway = clockLeeway
        self.keySetRefetchInterval = keySetRefetchInterval
        self.keySetMaximumAge = keySetMaximumAge
        self.usesPKCE = usesPKCE
        self.allowsPlainHTTP = allowsPlainHTTP
    }

    /// The issuer: `providerURL`, or the provider's default when it is empty.
    public var issuer: String {
        providerURL.isEmpty ? (kind.defaults.providerURL ?? "") : providerURL
    }

    /// The scopes sent: `scopes`, or the provider's defaults when it is empty.
    public var effectiveScopes: [String] {
        scopes.isEmpty ? kind.defaults.scopes : scopes
    }

    /// Checks every setting and collects all problems into one error.
    public func validate() throws(IdentityError) {
        var problems: [String] = []
        if issuer.isEmpty {
            problems.append("idp_provider_url is required for idp_provider \(kind.rawValue)")
        } else if let problem = ProviderURL.problem(
            issuer, setting: "idp_provider_url", allowsPlainHTTP: allowsPlainHTTP)
        {
            problems.append(problem)
        }
        if clientID.isEmpty { problems.append("idp_client_id is required") }
        if clientSecret.isEmpty { problems.append("idp_client_secret is required") }

        if let problem = ProviderURL.problem(redirectURL, setting: "redirect URL", allowsPlainHTTP: true) {
            problems.append(problem)
        }
        if !effectiveScopes.contains("openid") {
            problems.append("idp_scopes must contain \"openid\" for OpenID Connect")
        }
        if effectiveScopes.contains(where: { $0.isEmpty || $0.contains(" ") }) {
            problems.append("idp_scopes entries must be non-empty and contain no spaces")
        }

        if !(requestTimeout > 0) { problems.append("the request timeout must be positive, got \(requestTimeout)") }
        if maximumResponseBytes < 1024 {
            problems.append("the maximum response size must be at least 1024 bytes, got \(maximumResponseBytes)")
        }
        if !(clockLeeway >= 0 && clockLeeway <= 600) {
            problems.append("the clock leeway must be between 0 and 600 seconds, got \(clockLeeway)")
        }
        if !(keySetRefetchInterval >= 1) {
            problems.append("the JWKS refetch interval must be at least 1 second, got \(keySetRefetchInterval)")
        }
        if !(keySetMaximumAge >= keySetRefetchInterval) {
            problems.append("the JWKS maximum age must not be shorter than the refetch interval")
        }

        if !problems.isEmpty {
            throw .invalidConfiguration(problems.joined(separator: "; "))
        }
    }
}
