/// The scheme of a route's `from` URL. It selects the port that a `from` without a port listens on.
public enum RouteScheme: String, Sendable, Hashable, CaseIterable {
    case http
    case https

    /// 80 for `http`, 443 for `https`.
    public var defaultPort: Int {
        switch self {
        case .http: 80
        case .https: 443
        }
    }
}

/// One policy route as configured, before validation: the plain input that the configuration layer fills from a
/// `policy` entry. `RoutePolicy(_:)` validates it and compiles its regex.
///
/// Empty allow lists mean "not set". A nil matcher means "not set"; an empty string is rejected.
public struct RouteDefinition: Sendable, Hashable {
    /// A name for logs and error messages, unique within one policy, for example the position in the file.
    public var id: String
    /// The scheme of `from`.
    public var scheme: RouteScheme
    /// The host of `from`. Upper-case ASCII letters are lower-cased.
    public var host: String
    /// The port of `from`, or nil when `from` has none. A port equal to the scheme's default port is treated as nil.
    public var port: Int?
    /// `prefix`: the request path must start with this string. It is a plain string prefix, as in Pomerium v0.8, so
    /// `/app` also matches `/apple`, and `/app/` stops at a segment boundary.
    public var prefix: String?
    /// `path`: the request path must equal this string.
    public var path: String?
    /// `regex`: the whole request path must match this pattern, in the syntax of Swift's `Regex`.
    public var regex: String?
    /// `allowed_users`: email addresses.
    public var allowedUsers: [String]
    /// `allowed_domains`: email domains, compared after ASCII lower-casing.
    public var allowedDomains: [String]
    /// `allowed_groups`: group names or ids, compared exactly.
    public var allowedGroups: [String]
    /// `allow_public_unauthenticated_access`: skip authentication and authorization for every request.
    public var allowPublicUnauthenticatedAccess: Bool
    /// `cors_allow_preflight`: let genuine CORS preflight requests through without a session.
    public var corsAllowPreflight: Bool
    /// `allow_websockets`: the proxy may upgrade connections on this route. The evaluator does not read it.
    public var allowWebsockets: Bool

    public init(
        id: String,
        scheme: RouteScheme = .https,
        host: String,
        port: Int? = nil,
        prefix: String? = nil,
        path: String? = nil,
        regex: String? = nil,
        allowedUsers: [String] = [],
        allowedDomains: [String] = [],
        allowedGroups: [String] = [],
        allowPublicUnauthenticatedAccess: Bool = false,
        corsAllowPreflight: Bool = false,
        allowWebsockets: Bool = false
    ) {
        self.id = id
        self.scheme = scheme
        self.host = host
        self.port = port
        self.prefix = prefix
        self.path = path
        self.regex = regex
        self.allowedUsers = allowedUsers
        self.allowedDomains = allowedDomains
        self.allowedGroups = allowedGroups
        self.allowPublicUnauthenticatedAccess = allowPublicUnauthenticatedAccess
        self.corsAllowPreflight = corsAllowPreflight
        self.allowWebsockets = allowWebsockets
    }
}
