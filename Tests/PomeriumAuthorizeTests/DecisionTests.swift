import Testing

@testable import PomeriumAuthorize

@Suite("Decision")
struct DecisionTests {
    /// The log codes are an interface for dashboards and alerts: changing one must fail this table.
    static let stableCodes: [(DecisionReason, String, DecisionOutcome)] = [
        (.publicRoute, "public-route", .allow),
        (.corsPreflight, "cors-preflight", .allow),
        (.userAllowed, "user-allowed", .allow),
        (.domainAllowed, "domain-allowed", .allow),
        (.groupAllowed, "group-allowed", .allow),
        (.impersonatedUserAllowed, "impersonated-user-allowed", .allow),
        (.impersonatedDomainAllowed, "impersonated-domain-allowed", .allow),
        (.impersonatedGroupAllowed, "impersonated-group-allowed", .allow),
        (.administratorAllowed, "administrator-allowed", .allow),
        (.noSession, "no-session", .denyUnauthenticated),
        (.sessionExpired, "session-expired", .denyUnauthenticated),
        (.sessionNotYetValid, "session-not-yet-valid", .denyUnauthenticated),
        (.noAllowRuleMatched, "no-allow-rule-matched", .denyForbidden),
        (.routeHasNoAllowList, "route-has-no-allow-list", .denyForbidden),
        (.adminRequired, "admin-required", .denyForbidden),
        (.impersonationNotAllowed, "impersonation-not-allowed", .denyForbidden),
        (.routeMismatch, "route-mismatch", .denyForbidden),
    ]

    @Test("codes and outcomes are stable")
    func stable() {
        #expect(Self.stableCodes.count == DecisionReason.allCases.count)
        for (reason, code, outcome) in Self.stableCodes {
            #expect(reason.rawValue == code)
            #expect(reason.outcome == outcome, "\(code)")
            #expect(Decision(reason).outcome == outcome, "\(code)")
            #expect(Decision(reason).isAllowed == (outcome == .allow), "\(code)")
        }
        #expect(DecisionOutcome.allCases.map(\.rawValue) == ["allow", "deny-unauthenticated", "deny-forbidden"])
    }

    @Test("log form names outcome and reason")
    func logForm() {
        #expect(Decision(.noAllowRuleMatched).description == "deny-forbidden: no-allow-rule-matched")
        #expect(Decision(.publicRoute).description == "allow: public-route")
        #expect(Decision(.sessionExpired).description == "deny-unauthenticated: session-expired")
    }

    @Test("page text reveals no policy")
    func publicMessages() {
        let policyWords = ["group", "domain", "admin", "allow_", "allowed_", "impersonat", "route", "list", "rule"]
        for reason in DecisionReason.allCases where reason.outcome != .allow {
            let message = reason.publicMessage.lowercased()
            #expect(!message.isEmpty)
            for word in policyWords {
                #expect(!message.contains(word), "\(reason.rawValue): \(message)")
            }
        }
        // Every forbidden reason shows the same page, so the page cannot tell the reasons apart.
        let forbiddenMessages = Set(
            DecisionReason.allCases.filter { $0.outcome == .denyForbidden }.map(\.publicMessage))
        #expect(forbiddenMessages.count == 1)
        #expect(DecisionReason.noSession.publicMessage == "Sign in to continue.")
        #expect(DecisionReason.sessionExpired.publicMessage.contains("Sign in again"))
    }

    @Test("every reason is reachable")
    func everyReasonReachable() throws {
        let fixture = try PolicyFixture()
        let administrator = PolicyFixture.administrator
        let preflight = AccessRequest(
            method: "OPTIONS", host: "cors.example.test", path: "/", origin: "https://web.example.test",
            accessControlRequestMethod: "POST")
        let routed: [(AccessRequest, SessionIdentity?)] = [
            (.get("pub.example.test"), nil),
            (preflight, nil),
            (.get("a.example.test"), .user("alice@corp.test")),
            (.get("a.example.test"), .user("x@a-partner.test")),
            (.get("a.example.test"), .user("x@corp.test", groups: ["team-a"])),
            (.get("a.example.test"), .user(administrator, impersonating: "alice@corp.test")),
            (.get("a.example.test"), .user(administrator, impersonating: "x@a-partner.test")),
            (.get("a.example.test"), .user(administrator, impersonatingGroups: ["team-a"])),
            (.get("a.example.test"), nil),
            (.get("a.example.test"), SessionIdentity(email: "alice@corp.test", expiresAt: PolicyFixture.now)),
            (.get("a.example.test"), SessionIdentity(email: "alice@corp.test", notBefore: PolicyFixture.now + 1)),
            (.get("b.example.test"), .user("alice@corp.test")),
            (.get("closed.example.test"), .user("alice@corp.test")),
            (.get("a.example.test", "/.pomerium/admin/impersonate"), .user("alice@corp.test")),
            (.get("b.example.test"), .user("alice@corp.test", impersonating: "bob@corp.test")),
        ]
        var seen = Set<DecisionReason>()
        for (request, session) in routed {
            let decision = try #require(fixture.decide(request, session: session))
            seen.insert(decision.reason)
        }
        let adminDecision = fixture.evaluator.evaluateAdminEndpoint(
            session: .user(administrator), now: PolicyFixture.now)
        seen.insert(adminDecision.reason)
        let mismatch = try #require(
            fixture.decide(routeID: "a", .get("b.example.test"), session: .user("alice@corp.test")))
        seen.insert(mismatch.reason)
        #expect(seen == Set(DecisionReason.allCases))
    }
}
