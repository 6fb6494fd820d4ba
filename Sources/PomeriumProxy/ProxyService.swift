import PomeriumAuthorize
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// The dependencies that outlive a configuration snapshot: the assertion signer with its cache, the upstream
/// client with its keep-alive pools, the backend-refresh client, the logger and the clock.
public struct ProxySharedState: Sendable {
    public let signer: IdentityAssertionSigner
    /// The public keys served at `/.well-known/pomerium/jwks.json`.
    public let keySet: AssertionKeySet
    public let refresher: any RouteSessionRefresher
    public let client: HTTPClient
    public let logger: Logger
    public let clock: any WallClock
    /// Ends route sessions whose global session was signed out; nil in a proxy-only process.
    public let liveness: SessionLiveness?
    /// The service of the configuration in effect, shared by the services of every snapshot.
    public let currentService: CurrentProxyService
    /// How often an open WebSocket tunnel checks that its session is still live and allowed.
    public let tunnelCheckInterval: Double

    public init(
        signer: IdentityAssertionSigner,
        keySet: AssertionKeySet,
        refresher: any RouteSessionRefresher,
        client: HTTPClient,
        logger: Logger,
        clock: any WallClock,
        liveness: SessionLiveness? = nil,
        currentService: CurrentProxyService = CurrentProxyService(),
        tunnelCheckInterval: Double = 2
    ) {
        self.signer = signer
        self.keySet = keySet
        self.refresher = refresher
        self.client = client
        self.logger = logger
        self.clock = clock
        self.liveness = liveness
        self.currentService = currentService
        self.tunnelCheckInterval = tunnelCheckInterval
    }
}

/// The proxy service of one configuration snapshot: routes, policy, session codecs and the
/// response header policy, built once. Mount `makeHandler(loop:)` on an `HTTPServer` for every
/// host that is not the authenticate host; on reload, build the next one with `reconfigured`.
public final class ProxyService: Sendable {
    public let options: Options
    public let shared: ProxySharedState
    /// `shared.logger`'s level, read without copying the logger.
    let logLevel: LogLevelReader
    let table: ProxyRouteTable
    let evaluator: PolicyEvaluator
    let cookies: SessionCookieCodec
    let tokens: RouteSessionTokenCodec
    let loader: SessionLoader
    /// Sessions by whole `Cookie` header value, for browsers' repeated requests.
    let cookieHeaderCache: CookieHeaderCache
    let urlSigner: URLSigner
    let callbackCodec: CallbackPayloadCodec
    let csrf: ProxyCSRF
    let trustedProxies: TrustedProxies
    /// The `headers` setting as an ordered list, applied to every response.
    let responseHeaders: [(name: String, value: String)]
    /// `responseHeaders` and `Request-Id`, prepared for one pass over a response's fields.
    let responseHeaderPolicy: ResponseHeaderPolicy
    /// `jwt_claims_headers` with the header names built once.
    let claimHeaders: ClaimHeaderPlan
    /// `scheme://host[:port]` of the authenticate service.
    let authenticateOrigin: String
    /// The authenticate host as `iss` and `aud` write it.
    let authenticateAudienceHost: String
    let authenticateHostKey: HostAndPort?
    let programmaticRedirectHosts: Set<String>
    /// The base of the authenticate URL of `signInPath`, or nil when that URL does not parse, so
    /// that each redirect reports the parse error.
    let signInURLBase: SignedURLBase?

    /// Builds the service for `options`.
    ///
    /// - Throws: `ProxyConfigurationError`, `PolicyError` or a session codec error naming the
    ///   setting to fix, for example a missing `authenticate_service_url`.
    public init(options: Options, shared: ProxySharedState) throws {
        guard let authenticate = options.authenticateServiceURL else {
            throw ProxyConfigurationError(
                "authenticate_service_url is required by the proxy; set it to the public URL of the authenticate service"
            )
        }
        self.options = options
        self.shared = shared
        logLevel = LogLevelReader(shared.logger)

        table = try ProxyRouteTable(policy: options.policy)
        evaluator = try PolicyEvaluator(administrators: options.administrators)
        let settings = CookieSettings(
            name: options.cookieName, domain: options.cookieDomain, secure: options.cookieSecure,
            httpOnly: options.cookieHTTPOnly, expireSeconds: options.cookieExpire.components.seconds,
            sameSite: SetCookie.SameSite(rawValue: options.cookieSameSite.rawValue))

        let sessionLogger = shared.logger
        cookies = try SessionCookieCodec(
            cookieSecret: options.cookieSecret, settings: settings, clock: shared.clock, logger: sessionLogger)
        tokens = try RouteSessionTokenCodec(
            sharedSecret: options.sharedSecret, clock: shared.clock, logger: sessionLogger)
        loader = SessionLoader(cookies: cookies, tokens: tokens)
        cookieHeaderCache = CookieHeaderCache(capacity: 2048)
        urlSigner = try URLSigner(sharedSecret: options.sharedSecret, clock: shared.clock, logger: sessionLogger)
        callbackCodec = try CallbackPayloadCodec(sharedSecret: options.sharedSecret, logger: sessionLogger)
        csrf = try ProxyCSRF(cookieSecret: options.cookieSecret)

        trustedProxies = try TrustedProxies(options.trustedProxies)
        responseHeaders = Self.responseHeaders(options.headers)
        responseHeaderPolicy = ResponseHeaderPolicy(responseHeaders)
        claimHeaders = ClaimHeaderPlan(names: options.jwtClaimsHeaders)
        authenticateOrigin = "\(authenticate.scheme)://\(authenticate.authority)"
        authenticateAudienceHost = AudienceHost.format(
            host: authenticate.host, port: authenticate.port, scheme: authenticate.scheme)
        authenticateHostKey = HostAndPort(parsing: authenticate.authority)
        programmaticRedirectHosts = Set(options.programmaticRedirectDomains.map { $0.lowercased() })
        signInURLBase = (try? HTTPURL(parsing: authenticateOrigin + Self.signInPath)).flatMap { url in
            url.query == nil && url.fragment == nil ? SignedURLBase(url) : nil
        }

        for shadowing in table.router.shadowedRoutes {
            shared.logger.warning(
                "route can never match because an earlier route takes all its requests",
                metadata: ["route": .string(shadowing.routeID), "shadowed_by": .string(shadowing.shadowedByID)])
        }
    }

    /// Creates the handler for one request to the forward-auth endpoints (`/verify?uri=` and
    /// `/?uri=` on the `forward_auth_url` host) on `loop`.
    public func makeForwardAuthHandler(loop: EventLoop) -> any HTTPRequestHandler {
        ForwardAuthHandler(service: self, loop: loop)
    }

    /// Whether `X-Forwarded-*` headers from `address` count, per `trusted_proxies`.
    public func trustsForwardedHeaders(from address: SocketAddress?) -> Bool {
        trustedProxies.trusts(address)
    }

    /// Builds the service for a new snapshot, keeping the shared signer cache and upstream pools.
    public func reconfigured(options: Options) throws -> ProxyService {
        try ProxyService(options: options, shared: shared)
    }

    /// Creates the handler for one request on `loop`; pass this to `HTTPServer`.
    ///
    /// With a `requestID` the handler writes the `headers` setting and `Request-Id: requestID`
    /// on each of its responses and clears the responder's additional headers, as the listener's
    /// dispatcher expects of an `IdentifiedRequestHandlerFactory`. Without one it reads the id
    /// from the responder's additional headers, or makes one when they have none.
    public func makeHandler(loop: EventLoop, requestID: String? = nil) -> any HTTPRequestHandler {
        ProxyRequestHandler(service: self, loop: loop, requestID: requestID)
    }

    /// Returns the `headers` map in a stable order. When it is v0.7's default map,
    /// `X-Content-Type-Options: nosniff` is added, which v0.7's documentation listed but its code
    /// left out. An empty map (set with a `disable` key) adds nothing.
    static func responseHeaders(_ configured: [String: String]) -> [(name: String, value: String)] {
        var headers = configured
        if configured == Options.defaultHeaders {
            headers["X-Content-Type-Options"] = "nosniff"
        }
        return headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    /// Returns the signed authenticate URL for `path` with `parameters` in its query. The URL
    /// is built in one buffer (`URLSigner.sign(base:parameters:)`), with the same text as
    /// `generalSignedAuthenticateURL`. The sign-in URL's base is parsed once, at start.
    func signedAuthenticateURL(path: String, parameters: [(name: String, value: String)]) throws -> String {
        if path == Self.signInPath, let signInURLBase {
            return try urlSigner.sign(base: signInURLBase, parameters: parameters)
        }
        let url = try HTTPURL(parsing: authenticateOrigin + path)
        // A path with its own query or fragment would merge with the parameters, so it takes the
        // general builder.
        guard url.query == nil, url.fragment == nil else {
            return try generalSignedAuthenticateURL(path: path, parameters: parameters)
        }
        return try urlSigner.sign(base: SignedURLBase(url), parameters: parameters)
    }

    /// Returns the signed authenticate URL built through `URLQuery`, `HTTPURL` and
    /// `URLSigner.sign(_:)`.
    func generalSignedAuthenticateURL(path: String, parameters: [(name: String, value: String)]) throws -> String {
        var query = URLQuery()
        for parameter in parameters { query.append(name: parameter.name, value: parameter.value) }
        let url = try HTTPURL(parsing: authenticateOrigin + path + "?" + query.encoded)
        return try urlSigner.sign(url).description
    }

    /// The authenticate path that sign-in redirects go to.
    static let signInPath = "/.pomerium/sign_in"
}

/// Tokens for the dashboard's forms (sign-out and impersonation): an HMAC of the session's
/// subject, access-token id, issue time and the host, so a token is bound to one session on one
/// host and another site cannot produce it.
struct ProxyCSRF: Sendable {
    static let fieldName = "pomerium_csrf"
    private let key: HMACKey

    init(cookieSecret: [UInt8]) throws {
        key = try HMACKey(key: cookieSecret, digest: .sha256)
    }

    func token(for session: SessionState, host: String) -> String {
        let text =
            "pomerium-proxy-csrf\n\(session.subject)\n\(session.accessTokenID)\n\(session.issuedAt ?? 0)\n\(host)"
        guard let mac = try? key.authenticate(Array(text.utf8)) else { return "" }
        return Base64.urlUnpadded.encode(mac)
    }

    func isValid(_ candidate: String?, for session: SessionState, host: String) -> Bool {
        guard let candidate, !candidate.isEmpty else { return false }
        let expected = token(for: session, host: host)
        guard !expected.isEmpty else { return false }
        return ConstantTime.equals(Array(candidate.utf8), Array(expected.utf8))
    }
}
