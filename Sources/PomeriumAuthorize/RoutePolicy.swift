import PomeriumCore

/// A validated policy route: its host key, compiled path matchers and allow lists.
///
/// Host rule. A `from` without a port, or with its scheme's default port (80 or 443), matches a request whose
/// `Host` has no port or has that default port. A `from` with any other port matches only a `Host` with exactly
/// that port. Host names compare after ASCII lower-casing. There are no wildcards, and a trailing dot makes a
/// different name.
///
/// Pomerium v0.7 routed a portless `from` for any request port but then authorized against the full `host:port`,
/// so `https://app` reached on :8443 was routed and then always denied, which looped through sign-in. Here one rule
/// serves both steps, because the evaluator receives only the route the router matched and re-checks it with the
/// same rule. A portless `from` requested on a non-default port gets "route unknown" instead of a loop.
///
/// Path rule (Pomerium v0.8 `prefix`, `path`, `regex`): every matcher that is set must match the normalised path,
/// and a route with none matches every path.
///
/// A class, so the router hands out the one instance per route: copying the struct for every request copied about
/// twenty fields, each with its own retain and release.
public final class RoutePolicy: Sendable {
    public let id: String
    public let scheme: RouteScheme
    /// The lower-cased `from` host.
    public let host: String
    /// The `from` port, or nil for the scheme's default port.
    public let port: Int?
    public let prefix: String?
    public let path: String?
    /// The `regex` pattern as configured.
    public let regexPattern: String?
    /// The `allowed_users` entries as configured.
    public let allowedUsers: [String]
    /// The `allowed_domains` entries, lower-cased.
    public let allowedDomains: [String]
    /// The `allowed_groups` entries as configured.
    public let allowedGroups: [String]
    public let allowPublicUnauthenticatedAccess: Bool
    public let corsAllowPreflight: Bool
    public let allowWebsockets: Bool

    private let regex: CompiledPathRegex?
    /// `host:port` when the route has a port and that text parses back to the route's host key.
    private let hostWithPort: String?
    let userSet: Set<EmailAddress>
    let domainSet: Set<ExactText>
    let groupSet: Set<ExactText>
    /// `allowed_groups` in order, searched directly when short (see `allowsGroup`).
    private let groupList: [String]
    /// `allowedDomains` in order, searched directly when short (see `allowsDomain`).
    private let domainList: [String]

    /// Validates `definition` and compiles its regex once.
    ///
    /// - Throws: `PolicyError` listing every problem, each naming the route id, the value and the fix.
    public init(_ definition: RouteDefinition) throws(PolicyError) {
        var problems: [PomeriumError] = []
        let route = "route \"\(definition.id)\""

        if definition.id.isEmpty {
            problems.append(PomeriumError(.routeIDInvalid, "a route has an empty id; give every route a unique id"))
        }
        let host = RoutePolicy.validateHost(definition.host, route: route, problems: &problems)
        let port = RoutePolicy.validatePort(
            definition.port, scheme: definition.scheme, route: route, problems: &problems)
        let regex = RoutePolicy.validatePathMatchers(definition, route: route, problems: &problems)
        let (userSet, domains) = RoutePolicy.validateAllowLists(definition, route: route, problems: &problems)

        guard problems.isEmpty else { throw PolicyError(problems: problems) }

        self.id = definition.id
        self.scheme = definition.scheme
        self.host = host
        self.port = port
        let hostWithPortText = port.map { "\(host):\($0)" }
        self.hostWithPort =
            hostWithPortText.flatMap { HostAndPort(parsing: $0) } == port.map { HostAndPort(host: host, port: $0) }
            ? hostWithPortText : nil
        self.prefix = definition.prefix
        self.path = definition.path
        self.regexPattern = definition.regex
        self.regex = regex
        self.allowedUsers = definition.allowedUsers
        self.allowedDomains = domains
        self.allowedGroups = definition.allowedGroups
        self.allowPublicUnauthenticatedAccess = definition.allowPublicUnauthenticatedAccess
        self.corsAllowPreflight = definition.corsAllowPreflight
        self.allowWebsockets = definition.allowWebsockets
        self.userSet = userSet
        self.domainSet = Set(domains.map(ExactText.init))
        self.groupSet = Set(definition.allowedGroups.map(ExactText.init))
        self.groupList = definition.allowedGroups
        self.domainList = domains
    }

    /// Whether the route sets at least one of `allowed_users`, `allowed_domains` and `allowed_groups`.
    public var hasAllowList: Bool {
        !userSet.isEmpty || !domainSet.isEmpty || !groupSet.isEmpty
    }

    /// The `Host` keys this route matches: `host` and `host:defaultPort` for a default-port route, only
    /// `host:port` otherwise.
    public var hostKeys: [HostAndPort] {
        if let port {
            return [HostAndPort(host: host, port: port)]
        }
        return [HostAndPort(host: host, port: nil), HostAndPort(host: host, port: scheme.defaultPort)]
    }

    /// Returns whether `requestHost`, already parsed, has this route's host and port.
    public func matchesHost(_ requestHost: HostAndPort) -> Bool {
        guard ExactText(requestHost.host) == ExactText(host) else { return false }
        if let port {
            return requestHost.port == port
        }
        return requestHost.port == nil || requestHost.port == scheme.defaultPort
    }

    /// Matches `path` against the route's `regex`; a route without one matches every path.
    public func regexResult(_ path: String) -> PathRegexResult {
        regex?.match(path) ?? .match
    }

    /// Returns whether every path matcher that is set accepts `path`, which the HTTP layer has already normalised.
    /// A `regex` match that stopped at its limit counts as no match.
    public func matchesPath(_ path: String) -> Bool {
        if let exact = self.path, !path.hasSameBytes(as: exact) {
            return false
        }
        if let prefix, !path.hasBytePrefix(prefix) {
            return false
        }
        if let regex, !regex.matchesWhole(path) {
            return false
        }
        return true
    }

    /// Returns whether `group` is in `allowed_groups`, compared byte for byte as `groupSet` compares. A
    /// short list is searched in place, which costs less than hashing the group name.
    func allowsGroup(_ group: String) -> Bool {
        if groupList.count <= 8 {
            for allowed in groupList where allowed.hasSameBytes(as: group) { return true }
            return false
        }
        return groupSet.contains(ExactText(group))
    }

    /// Returns whether `domain`, lower-cased as `EmailAddress.domain` is, is in `allowed_domains`, compared
    /// byte for byte as `domainSet` compares. A short list is searched in place.
    func allowsDomain(_ domain: String) -> Bool {
        if domainList.count <= 8 {
            for allowed in domainList where allowed.hasSameBytes(as: domain) { return true }
            return false
        }
        return domainSet.contains(ExactText(domain))
    }

    /// Whether the route has a `regex` path matcher.
    var hasRegex: Bool { regex != nil }

    /// Returns whether `hostHeader` has exactly the bytes of `host`.
    public func hostHasSameBytes(as hostHeader: String) -> Bool {
        hostHeader.hasSameBytes(as: host)
    }

    /// Returns whether the request's `Host` value and normalised path both match this route.
    public func matches(host hostHeader: String, path: String) -> Bool {
        // `host` is the parsed, lower-cased form of a portless name, so a `Host` value with exactly
        // its bytes parses to `host` with no port. Comparing bytes skips that parse.
        if hostHasSameBytes(as: hostHeader) {
            return port == nil && matchesPath(path)
        }
        // Likewise a `Host` value spelled exactly `host:port`, which parses to this route's key.
        if let hostWithPort, hostHeader.hasSameBytes(as: hostWithPort) {
            return matchesPath(path)
        }
        guard let requestHost = HostAndPort(parsing: hostHeader) else { return false }
        return matchesHost(requestHost) && matchesPath(path)
    }
}
