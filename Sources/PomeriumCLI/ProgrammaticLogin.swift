import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import PomeriumNet

/// The two exchanges that produce route credentials: a browser login and a refresh.
public protocol CredentialBackend: Sendable {
    /// Signs in to `route` through the browser and returns fresh credentials.
    func login(route: RouteOrigin) async throws(CLIError) -> RouteCredentials
    /// Trades the refresh token of `credentials` for a new JWT and refresh token.
    func refresh(_ credentials: RouteCredentials) async throws(CLIError) -> RouteCredentials
}

/// Pomerium's programmatic login: the proxy's `/.pomerium/api/v1/login` returns a signed sign-in
/// URL for a local callback, the user signs in with the browser, and the proxy redirects the
/// browser to the callback with `pomerium_jwt` and `pomerium_refresh_token`. Refresh is the
/// authenticate service's `/api/v1/refresh` with `Authorization: Pomerium <refresh token>`.
public struct PomeriumBackend: CredentialBackend {
    public static let loginPath = "/.pomerium/api/v1/login"
    public static let refreshPath = "/api/v1/refresh"

    let http: CLIHTTPClient
    let group: EventLoopGroup
    let loginTimeout: Double
    let browser: BrowserLauncher
    let logger: Logger

    public init(
        http: CLIHTTPClient, group: EventLoopGroup, loginTimeout: Double, browser: BrowserLauncher, logger: Logger
    ) {
        self.http = http
        self.group = group
        self.loginTimeout = loginTimeout
        self.browser = browser
        self.logger = logger
    }

    public func login(route: RouteOrigin) async throws(CLIError) -> RouteCredentials {
        let listener = try await CallbackListener.start(group: group)
        do {
            let signIn = try await requestSignInURL(route: route, redirectURI: listener.redirectURI)
            browser.present(signInURL: signIn.description, route: route)
            let tokens = try await listener.waitForTokens(timeout: loginTimeout)
            await listener.close()
            let authenticate = RouteOrigin(url: signIn)
            logger.info("signed in", metadata: ["route": .string(route.description)])
            return RouteCredentials(
                route: route, authenticateURL: authenticate.description, jwt: tokens.jwt,
                refreshToken: tokens.refreshToken)
        } catch {
            await listener.close()
            throw error
        }
    }

    /// Asks the proxy for the signed sign-in URL that ends at `redirectURI`.
    func requestSignInURL(route: RouteOrigin, redirectURI: String) async throws(CLIError) -> HTTPURL {
        var query = URLQuery()
        query.set(name: "pomerium_redirect_uri", value: redirectURI)
        let url = route.url(path: Self.loginPath, query: query.encoded)
        logger.debug("requesting the sign-in URL", metadata: ["route": .string(route.description)])
        let response = try await http.send(method: .get, url: url, headers: [("Accept", "application/json")])
        switch response.head.status {
        case 200:
            break
        case 404:
            throw CLIError(
                .rejected,
                "\(route) has no Pomerium route (404: \(response.errorSummary)): check the URL's host and port")
        case 400:
            throw CLIError(
                .rejected,
                "the proxy at \(route) rejected the login request (400: \(response.errorSummary)); if it names the redirect target, add 127.0.0.1 to programmatic_redirect_domains"
            )
        default:
            throw CLIError(
                .rejected,
                "the proxy at \(route) answered the login request with status \(response.head.status) (\(response.errorSummary)): check that the URL is a route of a Pomerium proxy"
            )
        }
        let text = response.text.trimmingWhitespace()
        guard let signIn = try? RouteOrigin.parseWebURL(text, role: "sign-in URL"), signIn.path.hasSuffix("/sign_in")
        else {
            throw CLIError(
                .rejected,
                "the answer of \(route) to the login request is not a sign-in URL: check that the URL is a route of a Pomerium proxy"
            )
        }
        return signIn
    }

    public func refresh(_ credentials: RouteCredentials) async throws(CLIError) -> RouteCredentials {
        let base = try RouteOrigin.parseWebURL(credentials.authenticateURL, role: "authenticate URL in the token cache")
        let url = HTTPURL(scheme: base.scheme, host: base.host, port: base.port, path: Self.refreshPath)
        logger.debug("refreshing the token", metadata: ["route": .string(credentials.route.description)])
        let response = try await http.send(
            method: .get, url: url,
            headers: [("Authorization", "Pomerium \(credentials.refreshToken)"), ("Accept", "application/json")])
        guard response.head.status == 200 else {
            throw CLIError(
                .rejected,
                "the authenticate service at \(RouteOrigin(url: base)) rejected the refresh (\(response.head.status): \(response.errorSummary))"
            )
        }
        guard let object = try? JSONParser.parseObject(response.body),
            let jwt = object["jwt"]?.stringValue, RouteCredentials.isCompactJWS(jwt),
            let refreshToken = object["refresh_token"]?.stringValue, !refreshToken.isEmpty
        else {
            throw CLIError(
                .rejected,
                "the refresh answer of \(RouteOrigin(url: base)) is not JSON with jwt and refresh_token")
        }
        logger.info("token refreshed", metadata: ["route": .string(credentials.route.description)])
        return RouteCredentials(
            route: credentials.route, authenticateURL: credentials.authenticateURL, jwt: jwt,
            refreshToken: refreshToken)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
