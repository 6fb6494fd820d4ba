import PomeriumCore

/// The access decision for one request. Pure: it does no I/O, writes no logs and reads no clock, so the caller
/// passes the time and logs the returned reason.
///
/// Differences from Pomerium v0.7, on purpose:
/// - Only the matched route grants access. v0.7 checked every route whose `from` host equalled the request host, so
///   routes sharing a host granted the union of their lists. Here a grant on one route never opens another, even
///   on the same host with a different `path` or `prefix`.
/// - While an administrator impersonates, the decision uses the impersonated email and groups only. v0.7 also kept
///   the administrator's own grants, although its documentation states that the administrator becomes subject to
///   the impersonated user's policy. This evaluator follows the documentation. Impersonation is honoured only while
///   the real email is listed in `administrators`.
/// - A path under `/.pomerium/admin` needs the real email in `administrators` on every route, public routes
///   included, and that check adds to the route's rules instead of replacing them.
public struct PolicyEvaluator: Sendable {
    /// The path of the administrator endpoints, such as `/.pomerium/admin/impersonate`.
    public static let adminPathPrefix = "/.pomerium/admin"

    /// The `administrators` entries as configured.
    public let administrators: [String]
    private let administratorSet: Set<EmailAddress>

    /// Validates the global `administrators` list.
    ///
    /// - Throws: `PolicyError` naming every entry that is not an email address.
    public init(administrators: [String]) throws(PolicyError) {
        var problems: [PomeriumError] = []
        var set = Set<EmailAddress>()
        for entry in administrators {
            if let address = EmailAddress(entry) {
                set.insert(address)
            } else {
                problems.append(
                    PomeriumError(
                        .administratorInvalid,
                        "administrators entry \"\(entry)\" is not an email address; " + PolicyEntrySyntax.addressFix
                    ))
            }
        }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        self.administrators = administrators
        self.administratorSet = set
    }

    /// Decides a request to a policy route.
    ///
    /// The steps run in this order, and the first one that decides wins:
    /// 1. A route that does not match the request's host and path is forbidden.
    /// 2. A path under `/.pomerium/admin` needs a session of an administrator.
    /// 3. A public route allows.
    /// 4. A genuine preflight on a `cors_allow_preflight` route allows.
    /// 5. A missing, not-yet-valid or expired session leads to sign-in.
    /// 6. A route without allow lists is forbidden.
    /// 7. An impersonating non-administrator is forbidden.
    /// 8. Users, domains and groups are checked in that order against the effective identity.
    ///
    /// - Parameters:
    ///   - route: the route the router matched for this request, never a list of routes.
    ///   - session: the verified route session, or nil when the request has none.
    ///   - now: the current time in Unix seconds.
    public func evaluate(
        route: RoutePolicy,
        request: AccessRequest,
        session: SessionIdentity?,
        now: Int64
    ) -> Decision {
        evaluate(route: route, request: request, prepared: session.map(PreparedSessionIdentity.init), now: now)
    }

    /// Decides a request to a policy route as `evaluate(route:request:session:now:)` does, for a
    /// session whose email addresses were parsed once ahead of time.
    public func evaluate(
        route: RoutePolicy,
        request: AccessRequest,
        prepared session: PreparedSessionIdentity?,
        now: Int64
    ) -> Decision {
        evaluate(
            route: route, host: request.host, path: request.path, isCORSPreflight: request.isCORSPreflight,
            prepared: session, now: now)
    }

    /// Decides as `evaluate(route:request:prepared:now:)` does, for a request given by its parts:
    /// the `Host` value, the normalised path and `AccessRequest.isCORSPreflight`. A caller that
    /// holds the parts builds no `AccessRequest`, whose three strings cost three retains and
    /// three releases per request. With `foundByRouter`, `route` is what `Router.lookup(host:path:)`
    /// returned for this host and path, which matches them, so the match (about 200
    /// instructions) is not checked again.
    public func evaluate(
        route: RoutePolicy,
        host: String,
        path: String,
        isCORSPreflight: Bool,
        prepared session: PreparedSessionIdentity?,
        now: Int64,
        foundByRouter: Bool = false
    ) -> Decision {
        guard foundByRouter || route.matches(host: host, path: path) else {
            return Decision(.routeMismatch)
        }
        if AccessRequest.isAdminPath(path) {
            let adminDecision = evaluateAdminEndpoint(prepared: session, now: now)
            guard adminDecision.isAllowed else { return adminDecision }
        }
        if route.allowPublicUnauthenticatedAccess {
            return Decision(.publicRoute)
        }
        if route.corsAllowPreflight && isCORSPreflight {
            return Decision(.corsPreflight)
        }
        guard let session else { return Decision(.noSession) }
        if let denial = Self.sessionDenial(session, now: now) { return denial }
        guard route.hasAllowList else {
            return Decision(.routeHasNoAllowList)
        }
        // The group lists are read from `session.identity` one at a time: a local copy of the
        // whole identity measured six retains and six releases per request.
        if session.isImpersonating {
            guard isAdministrator(session.email) else { return Decision(.impersonationNotAllowed) }
            let granted = Self.grant(
                route: route,
                email: session.impersonatedEmail,
                groups: session.identity.impersonatedGroups,
                reasons: (.impersonatedUserAllowed, .impersonatedDomainAllowed, .impersonatedGroupAllowed)
            )
            return Decision(granted ?? .noAllowRuleMatched)
        }
        let granted = Self.grant(
            route: route,
            email: session.email,
            groups: session.identity.groups,
            reasons: (.userAllowed, .domainAllowed, .groupAllowed)
        )
        return Decision(granted ?? .noAllowRuleMatched)
    }

    /// Decides a request to an administrator endpoint that the proxy serves itself (under `/.pomerium/admin`) on any
    /// host. No route is consulted. The real email decides, also while impersonating, so an administrator can always
    /// end an impersonation.
    public func evaluateAdminEndpoint(session: SessionIdentity?, now: Int64) -> Decision {
        evaluateAdminEndpoint(prepared: session.map(PreparedSessionIdentity.init), now: now)
    }

    private func evaluateAdminEndpoint(prepared session: PreparedSessionIdentity?, now: Int64) -> Decision {
        guard let session else { return Decision(.noSession) }
        if let denial = Self.sessionDenial(session, now: now) { return denial }
        return Decision(isAdministrator(session.email) ? .administratorAllowed : .adminRequired)
    }

    /// Returns whether `email` parses as an address listed in `administrators`.
    public func isAdministrator(_ email: String) -> Bool {
        isAdministrator(EmailAddress(email))
    }

    private func isAdministrator(_ address: EmailAddress?) -> Bool {
        guard let address else { return false }
        return administratorSet.contains(address)
    }

    /// Denies a session that is not yet valid (`now < nbf`) or expired (`now >= exp`), with no leeway.
    private static func sessionDenial(_ session: PreparedSessionIdentity, now: Int64) -> Decision? {
        if let notBefore = session.notBefore, now < notBefore {
            return Decision(.sessionNotYetValid)
        }
        if let expiresAt = session.expiresAt, now >= expiresAt {
            return Decision(.sessionExpired)
        }
        return nil
    }

    /// Returns the reason for the first of the route's lists that admits `email` or one of `groups`: users, then
    /// domains, then groups. Returns nil when none does.
    private static func grant(
        route: RoutePolicy,
        email: EmailAddress?,
        groups: [String],
        reasons: (user: DecisionReason, domain: DecisionReason, group: DecisionReason)
    ) -> DecisionReason? {
        if let address = email {
            if route.userSet.contains(address) {
                return reasons.user
            }
            if route.allowsDomain(address.domain) {
                return reasons.domain
            }
        }
        if !route.groupSet.isEmpty, groups.contains(where: route.allowsGroup) {
            return reasons.group
        }
        return nil
    }
}
