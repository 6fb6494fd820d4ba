import PomeriumAuthorize
import PomeriumConfig
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient

/// How the proxy reaches one route's upstream: the `to` URL, its TLS settings, the route's
/// timeout and the request rewrites it configures. A class, so a request keeps a reference to the route's one
/// instance instead of copying its fields.
final class UpstreamRoute: Sendable {
    /// The route id shared with the `RoutePolicy` of the same route.
    let id: String
    /// The `from` URL, for the sign-in redirect's scheme.
    let from: ConfigURL
    /// The `to` URL; its path prefixes the request path and its query merges in.
    let to: HTTPURL
    let upstream: HTTPUpstream
    /// The `Host` header for the upstream, `upstream.authority` computed once.
    let hostHeader: String
    let timeouts: HTTPClientTimeouts
    let setRequestHeaders: [(name: String, value: String)]
    /// Whether `setRequestHeaders` names an identity header, which an identified request must not
    /// send (see `UpstreamRequestBuilder.removeIdentityHeaders`).
    let setsIdentityHeader: Bool
    /// The bytes of every name and value in `setRequestHeaders`.
    let setRequestHeadersByteCount: Int
    let preserveHostHeader: Bool
    let allowWebsockets: Bool
    /// Whether `hostHeader` and every field of `setRequestHeaders` may be written as they are. The
    /// check runs once here, so the builder adds them as validated and the encoder skips them.
    let fieldsAreValid: Bool

    init(
        id: String, from: ConfigURL, to: HTTPURL, upstream: HTTPUpstream, hostHeader: String,
        timeouts: HTTPClientTimeouts, setRequestHeaders: [(name: String, value: String)], preserveHostHeader: Bool,
        allowWebsockets: Bool
    ) {
        self.id = id
        self.from = from
        self.to = to
        self.upstream = upstream
        self.hostHeader = hostHeader
        self.timeouts = timeouts
        self.setRequestHeaders = setRequestHeaders
        setsIdentityHeader = setRequestHeaders.contains { UpstreamRequestBuilder.isIdentityHeaderName($0.name) }
        setRequestHeadersByteCount = setRequestHeaders.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        self.preserveHostHeader = preserveHostHeader
        self.allowWebsockets = allowWebsockets
        fieldsAreValid =
            FieldValidity.isValue(hostHeader)
            && setRequestHeaders.allSatisfy { FieldValidity.isField(name: $0.name, value: $0.value) }
    }
}

/// Route policies and upstream settings of one configuration snapshot, built once and shared by
/// every request until the next reload. A class, so a lookup reads it in place instead of copying
/// its tables for every request.
final class ProxyRouteTable: Sendable {
    let router: Router
    /// Upstream settings by route id.
    let upstreams: [String: UpstreamRoute]
    /// Upstream settings in the order of `router.routes`, for the index a lookup returns.
    let upstreamsInOrder: [UpstreamRoute]
    /// Every `from` host key, so the proxy endpoints respond only on hosts that have a route.
    let routeHosts: Set<HostAndPort>
    /// For each route whose `from` has a port, in the order of `router.routes`: the `Host` value
    /// `host:port` and its audience host, computed once.
    private let hostWithPortAudiences: [(hostHeader: String, audienceHost: String)?]

    init(policy: [Route]) throws {
        var definitions: [RouteDefinition] = []
        var upstreams: [String: UpstreamRoute] = [:]
        var upstreamsInOrder: [UpstreamRoute] = []
        for (index, route) in policy.enumerated() {
            let id = "policy[\(index)]"
            let definition = try Self.definition(route, id: id)
            definitions.append(definition)
            let upstream = try Self.upstream(route, id: id)
            upstreams[id] = upstream
            upstreamsInOrder.append(upstream)
        }
        let router = try Router(definitions: definitions)
        self.router = router
        self.upstreams = upstreams
        self.upstreamsInOrder = upstreamsInOrder
        routeHosts = Set(router.routes.flatMap(\.hostKeys))
        hostWithPortAudiences = router.routes.map { policy in
            guard let port = policy.port else { return nil }
            let hostHeader = "\(policy.host):\(port)"
            return (hostHeader, ProxyRequestHandler.audienceHost(requestHost: hostHeader, route: policy))
        }
    }

    /// Returns the policy, the upstream settings and the audience host (see
    /// `ProxyRequestHandler.audienceHost`) of the route for the `Host` value and the normalised path.
    func route(
        host: String, path: String
    ) -> (policy: RoutePolicy, upstream: UpstreamRoute, audienceHost: String)? {
        let lookup = router.lookup(host: host, path: path)
        guard let policy = lookup.route, let index = lookup.index, index < upstreamsInOrder.count else { return nil }
        let audienceHost: String
        if index < hostWithPortAudiences.count, let known = hostWithPortAudiences[index], known.hostHeader == host {
            audienceHost = known.audienceHost
        } else {
            audienceHost = ProxyRequestHandler.audienceHost(requestHost: host, route: policy)
        }
        return (policy, upstreamsInOrder[index], audienceHost)
    }

    /// Returns whether removing the `;` parameters from `path` gives another route than `route`,
    /// or none. A servlet container removes them before it maps the path, so `/admin;x/page` would
    /// reach the upstream of the catch-all route as `/admin/page`, which an `/admin/` route protects.
    func parametersChangeRoute(host: String, path: String, route: RoutePolicy) -> Bool {
        guard let withoutParameters = PathNormalization.removingParameters(path) else { return false }
        return router.route(host: host, path: withoutParameters) !== route
    }

    /// Returns whether some route's `from` matches `host`, the request's `Host` value.
    func isRouteHost(_ host: String) -> Bool {
        guard let key = HostAndPort(parsing: host) else { return false }
        return routeHosts.contains(key)
    }

    private static func definition(_ route: Route, id: String) throws -> RouteDefinition {
        guard let scheme = RouteScheme(rawValue: route.from.scheme) else {
            throw ProxyConfigurationError(
                "route \(id): from URL \(route.from.text) must use http or https, not \(route.from.scheme)")
        }
        return RouteDefinition(
            id: id, scheme: scheme, host: route.from.host, port: route.from.port, prefix: route.prefix,
            path: route.path, regex: route.regex, allowedUsers: route.allowedUsers,
            allowedDomains: route.allowedDomains, allowedGroups: route.allowedGroups,
            allowPublicUnauthenticatedAccess: route.allowPublicUnauthenticatedAccess,
            corsAllowPreflight: route.corsAllowPreflight, allowWebsockets: route.allowWebsockets)
    }

    private static func upstream(_ route: Route, id: String) throws -> UpstreamRoute {
        let to: HTTPURL
        do {
            to = try HTTPURL(parsing: route.to.text)
        } catch {
            throw ProxyConfigurationError("route \(id): to URL \(route.to.text) is invalid: \(error)")
        }
        guard let scheme = HTTPUpstream.Scheme(rawValue: to.scheme) else {
            throw ProxyConfigurationError("route \(id): to URL \(route.to.text) must use http or https")
        }
        var tls: TLSClientConfiguration?
        if scheme == .https {
            var configuration = TLSClientConfiguration()
            if let pem = route.tlsCustomCAPEM { configuration.trustRoots = .pem(Array(pem.utf8)) }
            configuration.skipVerification = route.tlsSkipVerify
            configuration.serverNameOverride = route.tlsServerName
            if let pair = route.tlsClientCertificate {
                configuration.clientCertificate = .pem(
                    certificateChain: Array(pair.certificatePEM.utf8), privateKey: Array(pair.keyPEM.utf8))
            }
            tls = configuration
        }
        let upstream = HTTPUpstream(scheme: scheme, host: to.host, port: to.port, tls: tls)
        let seconds = Double(route.timeout.components.seconds) + Double(route.timeout.components.attoseconds) / 1e18
        // A WebSocket route has no route timeout, as in v0.7: a tunnel may stay quiet for long.
        // NOTE: the timeout bounds each wait for upstream bytes, not the whole exchange, so a
        // response that keeps streaming is never cut; a slow trickle can outlast `timeout`.
        let read = route.allowWebsockets ? 0 : seconds
        // Connecting takes at least 1 s and at most 10 s; `timeout: 0` (no limit) connects with the
        // most, not the least.
        let connect = seconds > 0 ? min(10, max(seconds, 1)) : 10
        let timeouts = HTTPClientTimeouts(connect: connect, read: read, write: 30)
        let headers = route.setRequestHeaders.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return UpstreamRoute(
            id: id, from: route.from, to: to, upstream: upstream, hostHeader: upstream.authority, timeouts: timeouts,
            setRequestHeaders: headers,
            preserveHostHeader: route.preserveHostHeader, allowWebsockets: route.allowWebsockets)
    }
}

/// A configuration the proxy cannot serve; the message names the route and the fix.
public struct ProxyConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
