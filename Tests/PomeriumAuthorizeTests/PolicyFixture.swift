@testable import PomeriumAuthorize

/// The policy shared by the evaluator tests: two routes on separate hosts with disjoint grants, the same two
/// grants on one shared host split by prefix and path, and public, closed and CORS routes.
struct PolicyFixture {
    static let now: Int64 = 1_700_000_000
    static let administrator = "root@corp.test"

    let router: Router
    let evaluator: PolicyEvaluator

    init() throws {
        router = try Router(definitions: [
            RouteDefinition(
                id: "a", host: "a.example.test", allowedUsers: ["alice@corp.test", Self.administrator],
                allowedDomains: ["a-partner.test"], allowedGroups: ["team-a"]),
            RouteDefinition(
                id: "b", host: "b.example.test", allowedUsers: ["bob@corp.test"], allowedDomains: ["B-Partner.test"],
                allowedGroups: ["team-b"]),
            RouteDefinition(
                id: "shared-a", host: "shared.example.test", prefix: "/a/",
                allowedUsers: ["alice@corp.test", Self.administrator], allowedDomains: ["a-partner.test"],
                allowedGroups: ["team-a"]),
            RouteDefinition(
                id: "shared-b", host: "shared.example.test", path: "/b", allowedUsers: ["bob@corp.test"],
                allowedDomains: ["b-partner.test"], allowedGroups: ["team-b"]),
            RouteDefinition(
                id: "shared-c", host: "shared.example.test", regex: "/c/[0-9]+", allowedGroups: ["team-c"]),
            RouteDefinition(id: "shared-rest", host: "shared.example.test"),
            RouteDefinition(id: "public", host: "pub.example.test", allowPublicUnauthenticatedAccess: true),
            RouteDefinition(id: "closed", host: "closed.example.test"),
            RouteDefinition(
                id: "cors", host: "cors.example.test", allowedUsers: ["alice@corp.test"], corsAllowPreflight: true),
            RouteDefinition(
                id: "unicode", host: "unicode.example.test", allowedUsers: ["j\u{FC}rgen@corp.test"],
                allowedDomains: ["b\u{FC}cher.test"], allowedGroups: ["caf\u{E9}"]),
        ])
        evaluator = try PolicyEvaluator(administrators: [Self.administrator])
    }

    /// Routes the request and evaluates it against the matched route. A request with no route fails the test's
    /// expectation through a nil result.
    func decide(
        _ request: AccessRequest,
        session: SessionIdentity?,
        now: Int64 = PolicyFixture.now
    ) -> Decision? {
        guard let route = router.route(host: request.host, path: request.path) else { return nil }
        return evaluator.evaluate(route: route, request: request, session: session, now: now)
    }

    /// Evaluates against the route with `id`, without routing.
    func decide(
        routeID: String,
        _ request: AccessRequest,
        session: SessionIdentity?,
        now: Int64 = PolicyFixture.now
    ) -> Decision? {
        guard let route = router.routes.first(where: { $0.id == routeID }) else { return nil }
        return evaluator.evaluate(route: route, request: request, session: session, now: now)
    }
}

extension AccessRequest {
    static func get(_ host: String, _ path: String = "/") -> AccessRequest {
        AccessRequest(method: "GET", host: host, path: path)
    }
}

extension SessionIdentity {
    /// Returns a session that is valid from a minute before `PolicyFixture.now` to an hour after it.
    static func user(
        _ email: String,
        groups: [String] = [],
        impersonating impersonatedEmail: String? = nil,
        impersonatingGroups impersonatedGroups: [String] = []
    ) -> SessionIdentity {
        SessionIdentity(
            email: email, groups: groups, subject: "sub-\(email)", impersonatedEmail: impersonatedEmail,
            impersonatedGroups: impersonatedGroups, notBefore: PolicyFixture.now - 60,
            expiresAt: PolicyFixture.now + 3600)
    }
}
