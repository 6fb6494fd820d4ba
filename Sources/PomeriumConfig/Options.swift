/// Every setting of Pomerium v0.7 plus the documented additions, after decoding, defaults and the
/// all-in-one derived values. A value of this type never changes: a reload builds a new one.
/// Secrets and PEM texts are held decoded; the `-validate` printer redacts them.
public struct Options: Sendable, Equatable {
    // MARK: Service mode and listeners

    public internal(set) var services: ServiceMode = .all
    public internal(set) var address = ":443"
    public internal(set) var insecureServer = false
    public internal(set) var httpRedirectAddress: String?
    public internal(set) var metricsAddress: String?

    // MARK: Server TLS

    /// The `certificate_file` setting, kept for the effective-settings printer.
    public internal(set) var certificateFile: String?
    /// The `certificate_key_file` setting.
    public internal(set) var certificateKeyFile: String?
    /// Every server certificate: the `certificate`/`certificate_key` pair (or the file pair) first,
    /// then each entry of `certificates`, in order.
    public internal(set) var tlsCertificates: [TLSCertificatePair] = []

    // MARK: Secrets

    /// The 32 bytes of `shared_secret`.
    public internal(set) var sharedSecret: [UInt8] = []
    /// Whether `sharedSecret` was generated because all-in-one mode had none; a generated secret
    /// stays the same for the whole life of the process.
    public internal(set) var sharedSecretIsGenerated = false
    /// The 32 bytes of `cookie_secret`.
    public internal(set) var cookieSecret: [UInt8] = []

    // MARK: Cookies

    public internal(set) var cookieName = "_pomerium"
    public internal(set) var cookieDomain = ""
    public internal(set) var cookieSecure = true
    public internal(set) var cookieHTTPOnly = true
    public internal(set) var cookieExpire: Duration = .seconds(14 * 3600)
    public internal(set) var cookieSameSite: CookieSameSite = .lax
    /// Parsed and stored as in v0.7, which never used it.
    public internal(set) var refreshCooldown: Duration = .seconds(300)

    // MARK: Service URLs

    public internal(set) var authenticateServiceURL: ConfigURL?
    public internal(set) var authenticateCallbackPath = "/oauth2/callback"
    public internal(set) var authorizeServiceURL: ConfigURL?
    public internal(set) var cacheServiceURL: ConfigURL?
    public internal(set) var forwardAuthURL: ConfigURL?

    // MARK: Identity provider

    public internal(set) var idpProvider: IdentityProviderKind?
    /// `idp_provider_url`, or the provider's default issuer when empty.
    public internal(set) var idpProviderURL: ConfigURL?
    public internal(set) var idpClientID = ""
    public internal(set) var idpClientSecret = ""
    /// `idp_scopes`, or the provider's default scopes when empty.
    public internal(set) var idpScopes: [String] = []
    public internal(set) var idpServiceAccount: String?
    /// Extra CA certificates (PEM) trusted for calls to the identity provider (`idp_ca`, `idp_ca_file`).
    public internal(set) var idpCertificateAuthorityPEM: String?
    /// Host names allowed as the `pomerium_redirect_uri` of programmatic login.
    public internal(set) var programmaticRedirectDomains: [String] = ["localhost", "127.0.0.1", "::1"]

    // MARK: Authorization and identity headers

    public internal(set) var administrators: [String] = []
    /// The P-256 private key (PEM) for `x-pomerium-jwt-assertion`, from `signing_key` or an
    /// existing `signing_key_file`.
    public internal(set) var signingKeyPEM: String?
    /// Whether `signingKeyPEM` was generated because no key was configured; like the generated
    /// shared secret it stays the same for the life of the process.
    public internal(set) var signingKeyIsGenerated = false
    /// Where a generated signing key is stored and read back on the next start.
    public internal(set) var signingKeyFile: String?
    /// Response headers for every response; empty when the map had a `disable` key.
    public internal(set) var headers: [String: String] = Options.defaultHeaders
    public internal(set) var jwtClaimsHeaders: [String] = []
    /// Address ranges (CIDR) of proxies whose `X-Forwarded-*` headers are believed.
    public internal(set) var trustedProxies: [String] = []

    // MARK: Timeouts

    public internal(set) var defaultUpstreamTimeout: Duration = .seconds(30)
    public internal(set) var timeoutRead: Duration = .seconds(30)
    /// Zero means no write timeout.
    public internal(set) var timeoutWrite: Duration = .zero
    public internal(set) var timeoutReadHeader: Duration = .seconds(10)
    public internal(set) var timeoutIdle: Duration = .seconds(300)

    // MARK: gRPC

    public internal(set) var grpcAddress = ":443"
    public internal(set) var grpcInsecure = false
    public internal(set) var grpcClientTimeout: Duration = .seconds(10)
    public internal(set) var grpcClientDNSRoundRobin = true
    public internal(set) var grpcServerMaxConnectionAge: Duration = .seconds(300)
    public internal(set) var grpcServerMaxConnectionAgeGrace: Duration = .seconds(300)
    public internal(set) var overrideCertificateName: String?
    /// Extra CA certificates (PEM) trusted for gRPC clients (`certificate_authority[_file]`).
    public internal(set) var certificateAuthorityPEM: String?

    // MARK: Cache store

    public internal(set) var cacheStore: CacheStoreKind = .autocache
    public internal(set) var cacheStoreAddress: String?
    public internal(set) var cacheStorePassword: String?
    public internal(set) var cacheStorePath = "bolt.db"
    /// The parsed Redis address when `cache_store` is `redis`.
    public internal(set) var redis: RedisAddress?

    // MARK: Observability

    public internal(set) var tracingProvider: TracingProvider?
    public internal(set) var tracingDebug = false
    public internal(set) var tracingJaegerCollectorEndpoint: String?
    public internal(set) var tracingJaegerAgentEndpoint: String?
    public internal(set) var logLevel: LogLevel = .debug
    public internal(set) var pomeriumDebug = false

    // MARK: Routes

    public internal(set) var policy: [Route] = []

    /// The options with every built-in default and no derived value applied.
    public init() {}

    /// The `headers` default of v0.7.
    public static let defaultHeaders: [String: String] = [
        "X-Frame-Options": "SAMEORIGIN",
        "X-XSS-Protection": "1; mode=block",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
    ]

    /// The gRPC listen address of all-in-one mode: loopback only, because the plaintext gRPC
    /// server authenticates nobody.
    public static let allInOneGRPCAddress = "127.0.0.1:5443"

    /// The authorize and cache URL that all-in-one mode uses for its own gRPC listener.
    public static let allInOneServiceURL = "http://127.0.0.1:5443"
}

/// One route of `policy`: which requests it matches, who may pass, and how to reach the upstream.
public struct Route: Sendable, Equatable {
    /// The public URL; only scheme, host and port match requests.
    public internal(set) var from: ConfigURL
    /// The upstream base URL; its path prefixes the request path and its query merges in.
    public internal(set) var to: ConfigURL
    /// The request path must start with this (v0.8 semantics), when set.
    public internal(set) var prefix: String?
    /// The request path must equal this (v0.8 semantics), when set.
    public internal(set) var path: String?
    /// The request path must match this whole regular expression (v0.8 semantics), when set.
    public internal(set) var regex: String?
    public internal(set) var allowedUsers: [String] = []
    public internal(set) var allowedGroups: [String] = []
    public internal(set) var allowedDomains: [String] = []
    public internal(set) var allowPublicUnauthenticatedAccess = false
    public internal(set) var corsAllowPreflight = false
    /// The route's `timeout`, or `default_upstream_timeout` when it has none.
    public internal(set) var timeout: Duration
    /// Whether `timeout` was set on the route itself.
    public internal(set) var hasExplicitTimeout = false
    public internal(set) var allowWebsockets = false
    public internal(set) var setRequestHeaders: [String: String] = [:]
    public internal(set) var preserveHostHeader = false
    public internal(set) var tlsSkipVerify = false
    public internal(set) var tlsServerName: String?
    /// CA certificates (PEM) that replace the system roots for this upstream.
    public internal(set) var tlsCustomCAPEM: String?
    /// The client certificate for mutual TLS to the upstream.
    public internal(set) var tlsClientCertificate: TLSCertificatePair?

    init(from: ConfigURL, to: ConfigURL, timeout: Duration) {
        self.from = from
        self.to = to
        self.timeout = timeout
    }
}
