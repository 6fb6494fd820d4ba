import Testing

@testable import PomeriumAuthorize

@Suite("Allow list searches")
struct AllowListSearchTests {
    /// Eight groups are searched in order, nine through the set; both must give the same results.
    static let shortGroups = (1...8).map { "group-\($0)" }
    static let longGroups = (1...9).map { "group-\($0)" }

    @Test("groups match byte for byte with a short and a long list", arguments: [shortGroups, longGroups])
    func groups(_ allowed: [String]) throws {
        let route = try RoutePolicy(
            RouteDefinition(id: "r", host: "app.example.test", allowedGroups: allowed + ["caf\u{E9}"]))
        #expect(route.allowsGroup("group-1"))
        #expect(route.allowsGroup("group-8"))
        #expect(route.allowsGroup("caf\u{E9}"))
        // The decomposed spelling is a different group, as are prefixes and other cases.
        #expect(!route.allowsGroup("cafe\u{301}"))
        #expect(!route.allowsGroup("group-"))
        #expect(!route.allowsGroup("GROUP-1"))
        #expect(!route.allowsGroup("group-10"))
        #expect(!route.allowsGroup(""))
    }

    @Test("a session is granted by the first of its groups the route lists", arguments: [shortGroups, longGroups])
    func decision(_ allowed: [String]) throws {
        let route = try RoutePolicy(RouteDefinition(id: "r", host: "app.example.test", allowedGroups: allowed))
        let evaluator = try PolicyEvaluator(administrators: [])
        let request = AccessRequest(method: "GET", host: "app.example.test", path: "/")
        let member = SessionIdentity(email: "a@corp.test", groups: ["other", "group-3"])
        let outsider = SessionIdentity(email: "a@corp.test", groups: ["other", "group-33"])
        #expect(evaluator.evaluate(route: route, request: request, session: member, now: 0).reason == .groupAllowed)
        #expect(
            evaluator.evaluate(route: route, request: request, session: outsider, now: 0).reason
                == .noAllowRuleMatched)
    }

    @Test(
        "domains match the lower-cased address domain with a short and a long list",
        arguments: [(1...8).map { "d\($0).test" }, (1...9).map { "d\($0).test" }])
    func domains(_ allowed: [String]) throws {
        let route = try RoutePolicy(
            RouteDefinition(id: "r", host: "app.example.test", allowedDomains: allowed + ["B\u{FC}cher.test"]))
        let evaluator = try PolicyEvaluator(administrators: [])
        let request = AccessRequest(method: "GET", host: "app.example.test", path: "/")
        func reason(_ email: String) -> DecisionReason {
            evaluator.evaluate(route: route, request: request, session: SessionIdentity(email: email), now: 0).reason
        }
        #expect(reason("a@d1.test") == .domainAllowed)
        #expect(reason("a@D8.TEST") == .domainAllowed)
        #expect(reason("a@b\u{FC}cher.test") == .domainAllowed)
        #expect(reason("a@bu\u{308}cher.test") == .noAllowRuleMatched)
        #expect(reason("a@d10.test") == .noAllowRuleMatched)
        #expect(reason("a@sub.d1.test") == .noAllowRuleMatched)
        #expect(reason("a@d1.tes") == .noAllowRuleMatched)
    }

    @Test(
        "admin paths are the prefix alone or followed by a slash",
        arguments: [
            ("/.pomerium/admin", true), ("/.pomerium/admin/", true), ("/.pomerium/admin/impersonate", true),
            ("/.pomerium/administrators", false), ("/.pomerium/admi", false), ("/.pomerium", false), ("/", false),
            ("/x/.pomerium/admin", false),
        ])
    func adminPath(_ path: String, _ expected: Bool) {
        #expect(AccessRequest(method: "GET", host: "h", path: path).isAdminPath == expected)
    }

    @Test(
        "one @ sign, also when impersonated",
        arguments: [(1...8).map { "d\($0).test" }, (1...9).map { "d\($0).test" }])
    func oneAtSign(_ allowed: [String]) throws {
        let route = try RoutePolicy(
            RouteDefinition(
                id: "r", host: "app.example.test", allowedDomains: allowed, allowedGroups: ["g\(allowed.count)"]))
        let evaluator = try PolicyEvaluator(administrators: ["root@admin.test"])
        let request = AccessRequest(method: "GET", host: "app.example.test", path: "/")
        func reason(_ identity: SessionIdentity) -> DecisionReason {
            let prepared = PreparedSessionIdentity(identity)
            let plain = evaluator.evaluate(route: route, request: request, session: identity, now: 0).reason
            #expect(evaluator.evaluate(route: route, request: request, prepared: prepared, now: 0).reason == plain)
            return plain
        }
        #expect(reason(SessionIdentity(email: "a@d1.test@d1.test")) == .noAllowRuleMatched)
        #expect(reason(SessionIdentity(email: "d1.test")) == .noAllowRuleMatched)
        #expect(reason(SessionIdentity(email: "@d1.test")) == .noAllowRuleMatched)
        #expect(
            reason(SessionIdentity(email: "root@admin.test", impersonatedEmail: "x@D1.Test"))
                == .impersonatedDomainAllowed)
        #expect(
            reason(SessionIdentity(email: "root@admin.test", impersonatedEmail: "x@d1.test@d1.test"))
                == .noAllowRuleMatched)
        #expect(
            reason(SessionIdentity(email: "root@admin.test", impersonatedGroups: ["g\(allowed.count)"]))
                == .impersonatedGroupAllowed)
        // A session that is not an administrator does not get the impersonated grant.
        #expect(
            reason(SessionIdentity(email: "a@d1.test", impersonatedEmail: "x@d2.test")) == .impersonationNotAllowed)
        // "g9" belongs to the nine-domain route, "g8" to the eight-domain one.
        #expect(
            reason(SessionIdentity(email: "a@other.test", groups: ["g\(17 - allowed.count)"])) == .noAllowRuleMatched)
    }
}
