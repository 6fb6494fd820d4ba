import PomeriumHTTP

/// Where the top-level dispatcher sends a request. The cases are checked in declaration order.
public enum TopLevelDestination: Equatable, Sendable {
    /// `GET` or `HEAD /healthz`.
    case health
    /// `GET` or `HEAD /ping`, on every host.
    case ping
    /// `/healthz` or `/ping` with another method.
    case methodNotAllowed
    /// A forward-auth request: `/verify` or `/` on the `forward_auth_url` host with a `uri`
    /// parameter or an `X-Forwarded-Uri` header.
    case forwardAuth
    /// The Host is the authenticate service's host.
    case authenticate
    /// Every other request, when this process runs the proxy.
    case proxy
    /// No service of this process takes the request.
    case notFound
}

/// The public host of a service URL (`authenticate_service_url`, `forward_auth_url`). A request's
/// port counts only when the URL has a non-default port: behind a load balancer the browser's
/// Host header carries no port for 443, while a demo on :8443 must not send `app.localhost:9443`
/// to the authenticate service.
public struct AuthenticateHost: Equatable, Sendable {
    /// Lower-case host name or IP literal, without brackets.
    public let host: String
    /// The port when the URL names a non-default one; nil means any port matches.
    public let port: Int?

    public init(host: String, port: Int?) {
        self.host = host.lowercased()
        self.port = port
    }

    /// The host of a URL such as `https://authenticate.example.com` or `https://auth.localhost:8443`.
    public init(scheme: String, host: String, port: Int?) {
        let defaultPort = scheme.lowercased() == "http" ? 80 : 443
        self.init(host: Self.stripBrackets(host), port: port == defaultPort ? nil : port)
    }

    /// Whether a request's authority (from the Host header or an absolute-form target) names this host.
    public func matches(host requestHost: String, port requestPort: Int?) -> Bool {
        guard Self.stripBrackets(requestHost).lowercased() == host else { return false }
        guard let port else { return true }
        return requestPort == port
    }

    private static func stripBrackets(_ host: String) -> String {
        if host.hasPrefix("["), host.hasSuffix("]") { return String(host.dropFirst().dropLast()) }
        return host
    }
}

/// The pure routing rule of the HTTP listener; `HostDispatcher` applies it to live requests.
public enum TopLevelRouting {
    /// Whether an absolute-form target (`GET https://host/path`) names the same host and port as
    /// the `Host` header. The dispatcher routes by the target, as RFC 9112 §3.2.2 ranks it, while
    /// the services route, sign and check audiences by `Host`; a request where the two differ is
    /// ambiguous and gets 400. Origin-form and other targets always agree.
    public static func targetAgreesWithHost(_ head: HTTPRequestHead) -> Bool {
        guard case .absolute(let target) = head.targetForm else { return true }
        guard let value = head.headers.first(name: "Host"), !value.isEmpty,
            let host = try? HTTPURL(parsing: "\(target.scheme)://\(value)")
        else { return false }
        return host.host == target.host && host.effectivePort == target.effectivePort
    }

    /// Chooses the destination of a request. `authenticateHost` is nil when this process does not
    /// run the authenticate service; `forwardAuthHost` is nil unless it runs the proxy with
    /// `forward_auth_url` set; `runsProxy` is whether it runs the proxy.
    ///
    /// As in v0.7, only `/verify` and `/` that carry a `uri` parameter (or, for Traefik, an
    /// `X-Forwarded-Uri` header) go to forward-auth; other requests for that host go on to the
    /// proxy, so the host may also be a route.
    ///
    /// `authenticateHost` and `query` are read only when a step needs them. Most requests have no
    /// authority to match, and copying the two values cost four reference count operations.
    public static func destination(
        method: HTTPMethod, path: String, authority: (host: String, port: Int?)?,
        authenticateHost: @autoclosure () -> AuthenticateHost?, runsProxy: Bool,
        query: @autoclosure () -> String? = nil, hasForwardedURI: Bool = false,
        forwardAuthHost: AuthenticateHost? = nil
    ) -> TopLevelDestination {
        // The method is compared only for the two local paths: building the two constant methods
        // and comparing them measured about 40 instructions per proxied request. The lengths are
        // compared first, because `==` on two different short strings calls into the runtime.
        let length = path.utf8.count
        if length == 8 && path == "/healthz" { return isRead(method) ? .health : .methodNotAllowed }
        if length == 5 && path == "/ping" { return isRead(method) ? .ping : .methodNotAllowed }
        guard let authority else { return runsProxy ? .proxy : .notFound }
        if let forwardAuthHost, path == "/verify" || path == "/",
            hasForwardedURI || query().map(hasURIParameter) == true,
            forwardAuthHost.matches(host: authority.host, port: authority.port)
        {
            return .forwardAuth
        }
        if let authenticateHost = authenticateHost(),
            authenticateHost.matches(host: authority.host, port: authority.port)
        {
            return .authenticate
        }
        return runsProxy ? .proxy : .notFound
    }
}

extension TopLevelRouting {
    private static func isRead(_ method: HTTPMethod) -> Bool { method == .get || method == .head }

    /// Whether a raw query has a pair named `uri`.
    static func hasURIParameter(_ query: String) -> Bool {
        query.hasPrefix("uri=") || query.contains("&uri=")
    }
}
