import PomeriumCore

/// A validated policy route: its host key, compiled path matchers and allow lists.
///
/// Host rule. A `from` without a port (or with its scheme's default port, 80 or 443) matches a request whose
/// `Host` has no port or has that default port. A `from` with any other port matches only a `Host` with exactly
/// that port. Host names compare after ASCII lower-casing; there are no wildcards, and a trailing dot is a different
/// name. Pomerium v0.7 routed a portless `from` for any request port but then authorized against the full
/// `host:port`, so `https://app` reached on :8443 routed but was always denied (a sign-in redirect loop). Here one
/// rule serves both steps: the evaluator only ever receives the route the router matched, so routing and authorization
/// cannot disagree, and a portless `from` on a non-default port answers "route unknown" instead of looping.
///
/// Path rule (Pomerium v0.8 `prefix`, `path`, `regex`): every matcher that is set must match the normalised path,
/// and a route with none matches every path.
public struct RoutePolicy: Sendable {
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
    let userSet: Set<EmailAddress>
    let domainSet: Set<ExactText>
    let groupSet: Set<ExactText>

    /// Validates `definition` and compiles its regex once.
    ///
    /// - Throws: `PolicyError` listing every problem, each naming the route id, the value and the fix.
    public init(_ definition: RouteDefinition) throws(PolicyError) {
        var problems: [PomeriumError] = []
        let route = "route \"\(definition.id)\""

        if definition.id.isEmpty {
            problems.append(PomeriumError(.routeIDInvalid, "a route has an empty id; give every route a unique id"))
        }
        let host = Self.validateHost(definition.host, route: route, problems: &problems)
        let port = Self.validatePort(definition.port, scheme: definition.scheme, route: route, problems: &problems)

        for (name, value) in [("prefix", definition.prefix), ("path", definition.path)] {
            guard let value else { continue }
            if !value.hasPrefix("/") {
                problems.append(
                    PomeriumError(
                        .routePathInvalid,
                        "\(route): \(name) \"\(value)\" is invalid; it must start with \"/\", or remove the key"
                    ))
            }
        }

        var regex: CompiledPathRegex?
        if let pattern = definition.regex {
            do {
                regex = try CompiledPathRegex(pattern)
            } catch {
                problems.append(
                    PomeriumError(
                        .routeRegexInvalid,
                        "\(route): regex \"\(pattern)\" does not compile (\(error)); fix the pattern or remove the key"
                    ))
            }
        }

        let hasAllowList =
            !definition.allowedUsers.isEmpty || !definition.allowedDomains.isEmpty || !definition.allowedGroups.isEmpty
        if definition.allowPublicUnauthenticatedAccess && hasAllowList {
            problems.append(
                PomeriumError(
                    .routePublicWithAllowList,
                    "\(route) sets allow_public_unauthenticated_access together with allowed_users, allowed_domains "
                        + "or allowed_groups; remove the allow lists or the public access"
                ))
        }

        var userSet = Set<EmailAddress>()
        for user in definition.allowedUsers {
            if let address = EmailAddress(user) {
                userSet.insert(address)
            } else {
                problems.append(
                    PomeriumError(
                        .routeAllowedUserInvalid,
                        "\(route): allowed_users entry \"\(user)\" is not an email address; write it as local@domain "
                            + "with exactly one \"@\" and no spaces"
                    ))
            }
        }

        var domains: [String] = []
        for domain in definition.allowedDomains {
            if domain.isEmpty || domain.contains("@") || domain.containsWhitespaceOrControl {
                problems.append(
                    PomeriumError(
                        .routeAllowedDomainInvalid,
                        "\(route): allowed_domains entry \"\(domain)\" is invalid; write the bare domain, such as "
                            + "example.com, without \"@\" or spaces"
                    ))
            } else {
                domains.append(domain.asciiLowercased)
            }
        }

        for group in definition.allowedGroups where group.isEmpty {
            problems.append(
                PomeriumError(
                    .routeAllowedGroupInvalid,
                    "\(route): allowed_groups contains an empty entry; remove it"
                ))
        }

        guard problems.isEmpty else { throw PolicyError(problems: problems) }

        self.id = definition.id
        self.scheme = definition.scheme
        self.host = host
        self.port = port
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

    /// Returns whether every path matcher that is set accepts `path`, which the HTTP layer has already normalised.
    public func matchesPath(_ path: String) -> Bool {
        if let exact = self.path, !path.utf8.elementsEqual(exact.utf8) {
            return false
        }
        if let prefix, !path.utf8.starts(with: prefix.utf8) {
            return false
        }
        if let regex, !regex.matchesWhole(path) {
            return false
        }
        return true
    }

    /// Returns whether the request's `Host` value and normalised path both match this route.
    public func matches(host hostHeader: String, path: String) -> Bool {
        guard let requestHost = HostAndPort(parsing: hostHeader) else { return false }
        return matchesHost(requestHost) && matchesPath(path)
    }

    private static func validateHost(_ text: String, route: String, problems: inout [PomeriumError]) -> String {
        let fix: String
        if text.isEmpty {
            fix = "set the host of the from URL"
        } else if text.contains("*") {
            fix = "wildcard hosts are not supported; list each host as its own route"
        } else if text.hasSuffix(".") {
            fix = "remove the trailing dot"
        } else if !text.utf8.allSatisfy({ $0 < 0x80 }) {
            fix = "write an internationalised name in its ASCII xn-- form"
        } else if let parsed = HostAndPort(parsing: text) {
            guard parsed.port != nil else { return parsed.host }
            fix = "give the port in the port field, not in the host"
        } else {
            fix = "use letters, digits, \"-\", \".\" and \"_\", or a bracketed IPv6 address"
        }
        problems.append(PomeriumError(.routeHostInvalid, "\(route): from host \"\(text)\" is invalid; \(fix)"))
        return text
    }

    private static func validatePort(
        _ port: Int?,
        scheme: RouteScheme,
        route: String,
        problems: inout [PomeriumError]
    ) -> Int? {
        guard let port else { return nil }
        guard (1...65_535).contains(port) else {
            problems.append(
                PomeriumError(.routePortInvalid, "\(route): from port \(port) is invalid; use a port from 1 to 65535")
            )
            return nil
        }
        return port == scheme.defaultPort ? nil : port
    }
}

/// A `regex` path matcher, compiled once when the route is built.
///
/// `Regex` is not declared `Sendable`, but a compiled `Regex` is immutable and its lazily lowered program is
/// published with an atomic compare-and-exchange in the standard library's string-processing module, so concurrent
/// matching is safe. The initializer forces that lowering, so the first request pays no compile cost.
private final class CompiledPathRegex: @unchecked Sendable {
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        if pattern.isEmpty {
            throw EmptyPatternError()
        }
        // Unicode-scalar semantics make `.` match one code point, as Go's RE2 did for Pomerium v0.8.
        regex = try Regex<AnyRegexOutput>(pattern).matchingSemantics(.unicodeScalar)
        _ = matchesWhole("/")
    }

    /// Returns whether the whole of `path` matches. A matching error counts as no match.
    ///
    /// NOTE: Swift's `Regex` engine backtracks, so a pattern with nested quantifiers such as `(a+)+$` can take time
    /// exponential in the path length. The patterns come from the operator, the paths from clients; the HTTP layer's
    /// request-line limit is what bounds the cost.
    func matchesWhole(_ path: String) -> Bool {
        (try? regex.wholeMatch(in: path)) != nil
    }

    private struct EmptyPatternError: Error, CustomStringConvertible {
        var description: String { "the pattern is empty" }
    }
}
