import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumIdentity
import PomeriumLogging
import PomeriumSessions

/// The authenticate service: OpenID Connect login through the identity provider, the global
/// session (cookie on the authenticate host plus a store entry under its `ati`), minting of route
/// sessions for the proxy, sign-out, and session refresh.
///
/// One instance serves every request whose Host is the authenticate host. A reload builds a new
/// one from the new `Options` with the same long-lived store, provider and key set.
public final class AuthenticateService: RouteSessionRefresher, Sendable {
    /// A session is refreshed when its ID token or access token expires within this many seconds,
    /// so a request never starts with a token that dies on the way.
    public static let refreshMargin: Int64 = 60
    /// How long the nonce and PKCE verifier of a login wait for the callback, in seconds: the
    /// state's window on both sides of its timestamp.
    public static let loginFlowLifetime: Int64 = 2 * OAuthStateCodec.window
    /// The path of the sign-in endpoint; sign-out, refresh and the other paths follow.
    public static let signInPath = "/.pomerium/sign_in"
    public static let signOutPath = "/.pomerium/sign_out"
    public static let refreshPath = "/.pomerium/refresh"
    public static let programmaticRefreshPath = "/api/v1/refresh"
    public static let keySetPath = "/.well-known/pomerium/jwks.json"
    /// The callback path v0.7 hard-wired; `authenticate_callback_path` is served as well.
    public static let defaultCallbackPath = "/oauth2/callback"

    let authenticateURL: ConfigURL
    let callbackPaths: Set<String>
    let administrators: Set<String>
    let forwardAuthHost: String?
    let storeTTL: Duration

    let provider: any IdentityProvider
    let store: any KeyValueStore
    /// The store of completed-login locks (`loginFlowStore` of `init`), or nil when the in-process
    /// replay guard alone keeps each state single-use.
    let loginFlows: (any KeyValueStore)?
    /// The key that derives each login's nonce and PKCE verifier from its state.
    let loginSecretKey: HMACKey
    let clock: any WallClock
    let logger: Logger
    let keySet: AssertionKeySet?

    let signer: URLSigner
    let sessionCookies: SessionCookieCodec
    let oauthState: OAuthStateCodec
    let routeTokens: RouteSessionTokenCodec
    let callbackPayload: CallbackPayloadCodec
    let sealer: SessionSealer
    let redirects: RedirectValidator
    let singleFlight: SingleFlight
    /// The proxy's record of live sessions in the same process; sign-out ends the session there at once.
    let liveness: SessionLiveness?

    /// Builds the service from validated options.
    ///
    /// - Parameters:
    ///   - provider: the identity provider, discovered once at startup.
    ///   - store: the session store shared with the proxy (and other instances).
    ///   - keySet: the identity-assertion keys served at `/.well-known/pomerium/jwks.json`; with
    ///     nil that path returns 404.
    ///   - replayGuard: records used OAuth states; defaults to an in-process guard.
    ///   - singleFlight: runs one refresh per session at a time; defaults to one over `store` with
    ///     a 60-second lease and a 40-second wait.
    ///   - liveness: the proxy's `SessionLiveness` when both services run in this process.
    ///   - loginFlowStore: where a completed login's lock stays, so that its state is accepted once
    ///     by every instance that shares the store; defaults to `store`.
    ///   - locksLogins: whether callbacks lock their state in `loginFlowStore`. A single process
    ///     (the `autocache` store) turns it off: its replay guard already accepts each state once,
    ///     with a bounded table, and store locks would grow with every callback for 10 minutes.
    /// - Throws: `PomeriumError` when `authenticate_service_url` is missing or a secret is invalid.
    public init(
        options: Options,
        provider: any IdentityProvider,
        store: any KeyValueStore,
        keySet: AssertionKeySet? = nil,
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "pomerium.authenticate"),
        replayGuard: (any StateReplayGuard)? = nil,
        singleFlight: SingleFlight? = nil,
        liveness: SessionLiveness? = nil,
        loginFlowStore: (any KeyValueStore)? = nil,
        locksLogins: Bool = true
    ) throws {
        guard let authenticateURL = options.authenticateServiceURL else {
            throw PomeriumError(
                "authenticate-url-missing",
                "authenticate_service_url is missing; set it to the public URL of the authenticate service")
        }
        self.authenticateURL = authenticateURL
        var callbackPaths: Set<String> = [Self.defaultCallbackPath]
        if !options.authenticateCallbackPath.isEmpty { callbackPaths.insert(options.authenticateCallbackPath) }
        self.callbackPaths = callbackPaths
        administrators = Set(options.administrators.map { $0.lowercased() })
        forwardAuthHost = options.forwardAuthURL?.host
        storeTTL = options.cookieExpire > .zero ? options.cookieExpire : .seconds(14 * 3600)
        self.provider = provider
        self.store = store
        self.loginFlows = locksLogins ? loginFlowStore ?? store : nil
        loginSecretKey = try HMACKey(key: options.cookieSecret, digest: .sha256)
        self.clock = clock
        self.logger = logger
        self.keySet = keySet
        self.liveness = liveness

        let cookieSettings = CookieSettings(
            name: options.cookieName,
            domain: options.cookieDomain,
            secure: options.cookieSecure,
            httpOnly: options.cookieHTTPOnly,
            expireSeconds: options.cookieExpire.components.seconds,
            sameSite: Self.sameSite(options.cookieSameSite)
        )
        signer = try URLSigner(sharedSecret: options.sharedSecret, clock: clock, logger: logger)
        // The global session cookie is host-only even under `cookie_domain`. With the parent
        // domain the route cookies share its name, and each would replace it, so every route
        // change would need a login at the provider. A host-only cookie is another cookie to the
        // browser, sent to the authenticate host next to the route cookie.
        var globalCookieSettings = cookieSettings
        globalCookieSettings.domain = nil
        sessionCookies = try SessionCookieCodec(
            cookieSecret: options.cookieSecret, settings: globalCookieSettings, clock: clock, logger: logger)
        oauthState = try OAuthStateCodec(
            cookieSecret: options.cookieSecret,
            settings: cookieSettings,
            clock: clock,
            replayGuard: replayGuard ?? InMemoryStateReplayGuard(clock: clock),
            logger: logger
        )
        routeTokens = try RouteSessionTokenCodec(sharedSecret: options.sharedSecret, clock: clock, logger: logger)
        callbackPayload = try CallbackPayloadCodec(sharedSecret: options.sharedSecret, logger: logger)
        sealer = try SessionSealer(cookieSecret: options.cookieSecret)

        var hosts = options.policy.map(\.from.host)
        hosts.append(authenticateURL.host)
        if let forwardAuthHost { hosts.append(forwardAuthHost) }
        redirects = RedirectValidator(allowedHosts: hosts, programmaticHosts: options.programmaticRedirectDomains)
        // Waiters outlast one provider call (30 seconds by default), so they see the winner's
        // result instead of timing out while it is still at the provider.
        self.singleFlight =
            singleFlight ?? SingleFlight(store: store, lockTTL: .seconds(60), waitTimeout: .seconds(40), clock: clock)
    }

    private static func sameSite(_ value: CookieSameSite) -> SetCookie.SameSite {
        switch value {
        case .strict: .strict
        case .lax: .lax
        case .none: .none
        }
    }

    /// Returns the identity-provider settings that `options` describe, for `OIDCProvider.discover`. The
    /// redirect URI is the authenticate URL plus `authenticate_callback_path`.
    public static func providerConfiguration(from options: Options) throws -> ProviderConfiguration {
        guard let authenticateURL = options.authenticateServiceURL else {
            throw PomeriumError(
                "authenticate-url-missing",
                "authenticate_service_url is missing; set it to the public URL of the authenticate service")
        }
        let kind = ProviderKind(rawValue: options.idpProvider?.rawValue ?? "oidc") ?? .oidc
        var base = authenticateURL.scheme + "://" + authenticateURL.host
        if let port = authenticateURL.port { base += ":\(port)" }
        return ProviderConfiguration(
            kind: kind,
            providerURL: options.idpProviderURL?.text ?? "",
            clientID: options.idpClientID,
            clientSecret: options.idpClientSecret,
            redirectURL: base + options.authenticateCallbackPath,
            scopes: options.idpScopes,
            certificateAuthorityPEM: options.idpCertificateAuthorityPEM
        )
    }

    /// Discovers the identity provider that `options` configure, through `transport` (usually a
    /// `ClientIdentityTransport`). Call it once at startup and pass the result to every service
    /// built on a reload.
    public static func discoverProvider(
        options: Options,
        transport: any IdentityHTTPTransport,
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "pomerium.identity")
    ) async throws -> OIDCProvider {
        try await OIDCProvider.discover(
            configuration: try providerConfiguration(from: options), transport: transport, clock: clock, logger: logger)
    }

    /// The host name of `authenticate_service_url`, lowercase and without port, for dispatching
    /// requests by their `Host` header.
    public var authenticateHost: String { authenticateURL.host }

    /// The authenticate host as `iss` and `aud` carry it: with the port when it is not the
    /// scheme's default.
    var authenticateAudience: String {
        AudienceHost.format(host: authenticateURL.host, port: authenticateURL.port, scheme: authenticateURL.scheme)
    }

    func isAdministrator(_ session: SessionState) -> Bool {
        !session.email.isEmpty && administrators.contains(session.email.lowercased())
    }

    // MARK: RouteSessionRefresher

    /// Refreshes the global session `accessTokenID` when it is near expiry and mints a route
    /// session for `audience`, issued by `issuerHost`. In-process backend refresh for the proxy.
    public func refreshRouteSession(accessTokenID: String, audience: [String], issuerHost: String) async throws
        -> String
    {
        guard let stored = try await loadStoredSession(accessTokenID: accessTokenID) else {
            throw AuthenticateError.sessionNotFound
        }
        let session = try await refreshIfNeeded(stored)
        var route = session.routeSession
        route.issuer = issuerHost
        route.audience = audience
        let now = clock.unixSeconds()
        route.issuedAt = now
        route.notBefore = now
        return try routeTokens.sign(route)
    }
}

/// Failures of the authenticate service that callers outside it see.
public enum AuthenticateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The store has no global session under the access-token id (signed out, expired or evicted).
    case sessionNotFound
    /// The session has no refresh token, or the provider refused it; the user must sign in again.
    case refreshFailed(String)

    public var description: String {
        switch self {
        case .sessionNotFound: "the session was not found; sign in again"
        case .refreshFailed(let reason): "refreshing the session failed: \(reason); sign in again"
        }
    }
}
