/// The action the proxy takes on a request.
public enum DecisionOutcome: String, Sendable, Hashable, CaseIterable {
    /// Forward the request.
    case allow
    /// No usable session: redirect to sign-in, or respond with 401 to XHR and JSON clients. An expired session is
    /// refreshed first and the request evaluated again.
    case denyUnauthenticated = "deny-unauthenticated"
    /// The session is valid but the policy does not grant this request: respond with 403.
    case denyForbidden = "deny-forbidden"
}

/// The cause of a decision. The raw value is a stable kebab-case code for logs and metrics labels;
/// `publicMessage` is the text for the error page.
public enum DecisionReason: String, Sendable, Hashable, CaseIterable {
    /// The route sets `allow_public_unauthenticated_access`.
    case publicRoute = "public-route"
    /// A genuine CORS preflight on a route with `cors_allow_preflight`.
    case corsPreflight = "cors-preflight"
    /// The email is in `allowed_users`.
    case userAllowed = "user-allowed"
    /// The email's domain is in `allowed_domains`.
    case domainAllowed = "domain-allowed"
    /// One of the groups is in `allowed_groups`.
    case groupAllowed = "group-allowed"
    /// The impersonated email is in `allowed_users`.
    case impersonatedUserAllowed = "impersonated-user-allowed"
    /// The impersonated email's domain is in `allowed_domains`.
    case impersonatedDomainAllowed = "impersonated-domain-allowed"
    /// One of the impersonated groups is in `allowed_groups`.
    case impersonatedGroupAllowed = "impersonated-group-allowed"
    /// An administrator endpoint, requested by a user listed in `administrators`.
    case administratorAllowed = "administrator-allowed"

    /// The request carries no session.
    case noSession = "no-session"
    /// The session's `exp` has passed.
    case sessionExpired = "session-expired"
    /// The session's `nbf` is still in the future.
    case sessionNotYetValid = "session-not-yet-valid"

    /// The route has allow lists and none of them matched the identity.
    case noAllowRuleMatched = "no-allow-rule-matched"
    /// The route is not public and sets no allow list, so it admits nobody.
    case routeHasNoAllowList = "route-has-no-allow-list"
    /// An administrator endpoint, and the real email is not in `administrators`.
    case adminRequired = "admin-required"
    /// The session impersonates someone, but its real email is not in `administrators`.
    case impersonationNotAllowed = "impersonation-not-allowed"
    /// The route passed in does not match the request's host and path: a caller bug, denied rather than trusted.
    case routeMismatch = "route-mismatch"

    /// The outcome this reason always leads to.
    public var outcome: DecisionOutcome {
        switch self {
        case .publicRoute, .corsPreflight, .userAllowed, .domainAllowed, .groupAllowed, .impersonatedUserAllowed,
            .impersonatedDomainAllowed, .impersonatedGroupAllowed, .administratorAllowed:
            .allow
        case .noSession, .sessionExpired, .sessionNotYetValid:
            .denyUnauthenticated
        case .noAllowRuleMatched, .routeHasNoAllowList, .adminRequired, .impersonationNotAllowed, .routeMismatch:
            .denyForbidden
        }
    }

    /// A short sentence for the error page. It names no list, user, group or rule, so a denied user learns nothing
    /// about the policy.
    public var publicMessage: String {
        switch outcome {
        case .allow:
            "Access granted."
        case .denyUnauthenticated:
            self == .noSession ? "Sign in to continue." : "Your session is no longer valid. Sign in again."
        case .denyForbidden:
            "You do not have access to this page."
        }
    }
}

/// The result of an access evaluation: a reason, and the outcome it implies.
public struct Decision: Sendable, Hashable, CustomStringConvertible {
    public let reason: DecisionReason

    public init(_ reason: DecisionReason) { self.reason = reason }

    public var outcome: DecisionOutcome { reason.outcome }

    public var isAllowed: Bool { outcome == .allow }

    /// `outcome: reason`, for logs, for example `deny-forbidden: no-allow-rule-matched`.
    public var description: String { "\(outcome.rawValue): \(reason.rawValue)" }
}
