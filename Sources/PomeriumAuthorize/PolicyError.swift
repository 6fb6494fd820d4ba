import PomeriumCore

/// Every problem found while building routes, a router or an evaluator, so that an operator can fix a policy in
/// one pass.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    /// The problems in the order they were found. Each has a stable code and a message naming the route and value.
    public let problems: [PomeriumError]

    public init(problems: [PomeriumError]) { self.problems = problems }

    /// The problems' messages, one per line.
    public var description: String {
        problems.map(\.reason).joined(separator: "\n")
    }
}

extension PomeriumError.Code {
    /// A route id is empty or used by two routes.
    public static let routeIDInvalid: Self = "route-id-invalid"
    /// A route's `from` host is empty, malformed, a wildcard, not ASCII or ends with a dot.
    public static let routeHostInvalid: Self = "route-host-invalid"
    /// A route's `from` port is outside 1–65535.
    public static let routePortInvalid: Self = "route-port-invalid"
    /// A route's `prefix` or `path` is empty or does not start with `/`.
    public static let routePathInvalid: Self = "route-path-invalid"
    /// A route's `regex` is empty or does not compile.
    public static let routeRegexInvalid: Self = "route-regex-invalid"
    /// A public route also has `allowed_users`, `allowed_domains` or `allowed_groups`.
    public static let routePublicWithAllowList: Self = "route-public-with-allow-list"
    /// An `allowed_users` entry is not an email address.
    public static let routeAllowedUserInvalid: Self = "route-allowed-user-invalid"
    /// An `allowed_domains` entry is empty, contains `@` or contains whitespace.
    public static let routeAllowedDomainInvalid: Self = "route-allowed-domain-invalid"
    /// An `allowed_groups` entry is empty.
    public static let routeAllowedGroupInvalid: Self = "route-allowed-group-invalid"
    /// An `administrators` entry is not an email address.
    public static let administratorInvalid: Self = "administrator-invalid"
}
