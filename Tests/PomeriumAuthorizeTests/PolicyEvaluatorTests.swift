import Testing

@testable import PomeriumAuthorize

@Suite("PolicyEvaluator")
struct PolicyEvaluatorTests {
    // MARK: Grants never leak across routes

    struct MatrixRow: Sendable, CustomTestStringConvertible {
        let name: String
        let session: SessionIdentity
        /// Expected reason on route a (or shared-a) and on route b (or shared-b).
        let onA: DecisionReason
        let onB: DecisionReason
        var testDescription: String { name }
    }

    static let matrix: [MatrixRow] = [
        MatrixRow(
            name: "alice by user", session: .user("alice@corp.test"), onA: .userAllowed, onB: .noAllowRuleMatched),
        MatrixRow(name: "bob by user", session: .user("bob@corp.test"), onA: .noAllowRuleMatched, onB: .userAllowed),
        MatrixRow(
            name: "carol by domain", session: .user("carol@a-partner.test"), onA: .domainAllowed,
            onB: .noAllowRuleMatched),
        MatrixRow(
            name: "dave by upper-case domain", session: .user("dave@B-PARTNER.TEST"), onA: .noAllowRuleMatched,
            onB: .domainAllowed),
        MatrixRow(
            name: "erin by group", session: .user("erin@corp.test", groups: ["team-a"]), onA: .groupAllowed,
            onB: .noAllowRuleMatched),
        MatrixRow(
            name: "frank by group", session: .user("frank@corp.test", groups: ["other", "team-b"]),
            onA: .noAllowRuleMatched, onB: .groupAllowed),
        MatrixRow(
            name: "administrator gets no extra grant", session: .user(PolicyFixture.administrator),
            onA: .userAllowed, onB: .noAllowRuleMatched),
        MatrixRow(
            name: "stranger", session: .user("mallory@evil.test", groups: ["team-c"]), onA: .noAllowRuleMatched,
            onB: .noAllowRuleMatched),
    ]

    @Test("two routes on two hosts", arguments: matrix)
    func twoHosts(_ row: MatrixRow) throws {
        let fixture = try PolicyFixture()
        #expect(fixture.decide(.get("a.example.test"), session: row.session)?.reason == row.onA)
        #expect(fixture.decide(.get("b.example.test"), session: row.session)?.reason == row.onB)
    }

    @Test("two routes on one host split by prefix and path", arguments: matrix)
    func sharedHost(_ row: MatrixRow) throws {
        let fixture = try PolicyFixture()
        #expect(fixture.decide(.get("shared.example.test", "/a/page"), session: row.session)?.reason == row.onA)
        #expect(fixture.decide(.get("shared.example.test", "/b"), session: row.session)?.reason == row.onB)
        // Neither grant reaches the regex route or the catch-all route on the same host.
        let onRegexRoute = fixture.decide(.get("shared.example.test", "/c/42"), session: row.session)
        #expect(onRegexRoute?.reason == (row.name == "stranger" ? .groupAllowed : .noAllowRuleMatched))
        let onRest = fixture.decide(.get("shared.example.test", "/b/"), session: row.session)
        #expect(onRest?.reason == .routeHasNoAllowList)
    }

    struct MismatchCase: Sendable, CustomTestStringConvertible {
        let routeID: String
        let request: AccessRequest
        var testDescription: String { "\(routeID) for \(request.host)\(request.path)" }
    }

    static let mismatchCases: [MismatchCase] = [
        MismatchCase(routeID: "b", request: .get("a.example.test")),
        MismatchCase(routeID: "a", request: .get("a.example.test:8443")),
        MismatchCase(routeID: "a", request: .get("a.example.test.")),
        MismatchCase(routeID: "shared-b", request: .get("shared.example.test", "/a/page")),
        MismatchCase(routeID: "shared-a", request: .get("shared.example.test", "/b")),
        MismatchCase(routeID: "shared-c", request: .get("shared.example.test", "/c/x")),
        MismatchCase(routeID: "public", request: .get("a.example.test")),
        MismatchCase(routeID: "a", request: .get("not a host")),
    ]

    @Test("route that does not match the request is denied", arguments: mismatchCases)
    func routeMismatch(_ testCase: MismatchCase) throws {
        let fixture = try PolicyFixture()
        let decision = fixture.decide(routeID: testCase.routeID, testCase.request, session: .user("alice@corp.test"))
        #expect(decision?.reason == .routeMismatch)
        #expect(decision?.outcome == .denyForbidden)
    }

    // MARK: Identity matching

    struct IdentityCase: Sendable, CustomTestStringConvertible {
        let name: String
        let host: String
        let session: SessionIdentity
        let reason: DecisionReason
        var testDescription: String { name }
    }

    static let identityCases: [IdentityCase] = [
        IdentityCase(
            name: "upper-case domain in email", host: "a.example.test", session: .user("alice@CORP.TEST"),
            reason: .userAllowed),
        IdentityCase(
            name: "upper-case local part", host: "a.example.test", session: .user("Alice@corp.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "two at signs", host: "a.example.test", session: .user("alice@corp.test@a-partner.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "empty local part with allowed domain", host: "a.example.test", session: .user("@a-partner.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "empty domain part", host: "a.example.test", session: .user("alice@"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "no at sign", host: "a.example.test", session: .user("a-partner.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "mixed-case allowed domain", host: "a.example.test", session: .user("x@A-Partner.Test"),
            reason: .domainAllowed),
        IdentityCase(
            name: "subdomain of allowed domain", host: "a.example.test", session: .user("x@sub.a-partner.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "allowed domain as suffix", host: "a.example.test", session: .user("x@evila-partner.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "domain with trailing dot", host: "a.example.test", session: .user("x@a-partner.test."),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "malformed email still matches by group", host: "a.example.test",
            session: .user("", groups: ["team-a"]), reason: .groupAllowed),
        IdentityCase(
            name: "group case differs", host: "a.example.test", session: .user("x@corp.test", groups: ["Team-A"]),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "group with trailing space", host: "a.example.test",
            session: .user("x@corp.test", groups: ["team-a "]), reason: .noAllowRuleMatched),
        IdentityCase(
            name: "user wins over group", host: "a.example.test",
            session: .user("alice@corp.test", groups: ["team-a"]), reason: .userAllowed),
        IdentityCase(
            name: "domain wins over group", host: "a.example.test",
            session: .user("x@a-partner.test", groups: ["team-a"]), reason: .domainAllowed),
        IdentityCase(
            name: "subject is not an email grant", host: "a.example.test",
            session: SessionIdentity(email: "mallory@corp.test", subject: "alice@corp.test", user: "alice@corp.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "Unicode user, same bytes", host: "unicode.example.test", session: .user("j\u{FC}rgen@corp.test"),
            reason: .userAllowed),
        IdentityCase(
            name: "Unicode user, decomposed", host: "unicode.example.test", session: .user("ju\u{308}rgen@corp.test"),
            reason: .noAllowRuleMatched),
        IdentityCase(
            name: "Unicode domain, same bytes", host: "unicode.example.test", session: .user("x@b\u{FC}cher.test"),
            reason: .domainAllowed),
        IdentityCase(
            name: "Unicode domain, upper-case non-ASCII", host: "unicode.example.test",
            session: .user("x@B\u{DC}CHER.test"), reason: .noAllowRuleMatched),
        IdentityCase(
            name: "Unicode group, same bytes", host: "unicode.example.test",
            session: .user("x@corp.test", groups: ["caf\u{E9}"]), reason: .groupAllowed),
        IdentityCase(
            name: "Unicode group, decomposed", host: "unicode.example.test",
            session: .user("x@corp.test", groups: ["cafe\u{301}"]), reason: .noAllowRuleMatched),
    ]

    @Test("identity matching", arguments: identityCases)
    func identityMatching(_ testCase: IdentityCase) throws {
        let fixture = try PolicyFixture()
        #expect(fixture.decide(.get(testCase.host), session: testCase.session)?.reason == testCase.reason)
    }

    // MARK: Sessions

    struct SessionCase: Sendable, CustomTestStringConvertible {
        let name: String
        let host: String
        let session: SessionIdentity?
        let reason: DecisionReason
        var testDescription: String { name }
    }

    static let sessionCases: [SessionCase] = [
        SessionCase(name: "no session", host: "a.example.test", session: nil, reason: .noSession),
        SessionCase(
            name: "no session on a closed route", host: "closed.example.test", session: nil, reason: .noSession),
        SessionCase(
            name: "valid session on a closed route", host: "closed.example.test", session: .user("alice@corp.test"),
            reason: .routeHasNoAllowList),
        SessionCase(name: "no session on a public route", host: "pub.example.test", session: nil, reason: .publicRoute),
        SessionCase(
            name: "expired session on a public route", host: "pub.example.test",
            session: SessionIdentity(email: "x@y.test", expiresAt: PolicyFixture.now - 1), reason: .publicRoute),
        SessionCase(
            name: "expires now", host: "a.example.test",
            session: SessionIdentity(email: "alice@corp.test", expiresAt: PolicyFixture.now), reason: .sessionExpired),
        SessionCase(
            name: "expires in one second", host: "a.example.test",
            session: SessionIdentity(email: "alice@corp.test", expiresAt: PolicyFixture.now + 1),
            reason: .userAllowed),
        SessionCase(
            name: "expired session of a stranger", host: "a.example.test",
            session: SessionIdentity(email: "mallory@evil.test", expiresAt: PolicyFixture.now - 10),
            reason: .sessionExpired),
        SessionCase(
            name: "not valid until next second", host: "a.example.test",
            session: SessionIdentity(email: "alice@corp.test", notBefore: PolicyFixture.now + 1),
            reason: .sessionNotYetValid),
        SessionCase(
            name: "valid from now", host: "a.example.test",
            session: SessionIdentity(email: "alice@corp.test", notBefore: PolicyFixture.now), reason: .userAllowed),
        SessionCase(
            name: "no exp claim", host: "a.example.test", session: SessionIdentity(email: "alice@corp.test"),
            reason: .userAllowed),
    ]

    @Test("session presence and lifetime", arguments: sessionCases)
    func sessions(_ testCase: SessionCase) throws {
        let fixture = try PolicyFixture()
        let decision = fixture.decide(.get(testCase.host), session: testCase.session)
        #expect(decision?.reason == testCase.reason)
        #expect(decision?.outcome == testCase.reason.outcome)
    }

    // MARK: CORS preflight

    struct PreflightCase: Sendable, CustomTestStringConvertible {
        let name: String
        let method: String
        let origin: String?
        let requestMethod: String?
        let isPreflight: Bool
        var testDescription: String { name }
    }

    static let preflightCases: [PreflightCase] = [
        PreflightCase(
            name: "genuine", method: "OPTIONS", origin: "https://web.example.test", requestMethod: "PUT",
            isPreflight: true),
        PreflightCase(
            name: "no Origin", method: "OPTIONS", origin: nil, requestMethod: "PUT", isPreflight: false),
        PreflightCase(
            name: "no request method", method: "OPTIONS", origin: "https://web.example.test", requestMethod: nil,
            isPreflight: false),
        PreflightCase(
            name: "empty Origin", method: "OPTIONS", origin: "", requestMethod: "PUT", isPreflight: false),
        PreflightCase(
            name: "empty request method", method: "OPTIONS", origin: "https://web.example.test", requestMethod: "",
            isPreflight: false),
        PreflightCase(
            name: "lower-case method", method: "options", origin: "https://web.example.test", requestMethod: "PUT",
            isPreflight: false),
        PreflightCase(
            name: "GET with both headers", method: "GET", origin: "https://web.example.test", requestMethod: "PUT",
            isPreflight: false),
        PreflightCase(name: "plain OPTIONS", method: "OPTIONS", origin: nil, requestMethod: nil, isPreflight: false),
    ]

    @Test("preflight detection and bypass", arguments: preflightCases)
    func preflight(_ testCase: PreflightCase) throws {
        let fixture = try PolicyFixture()
        let isPreflight = AccessRequest.isCORSPreflight(
            method: testCase.method, origin: testCase.origin, accessControlRequestMethod: testCase.requestMethod)
        #expect(isPreflight == testCase.isPreflight)

        func request(_ host: String) -> AccessRequest {
            AccessRequest(
                method: testCase.method, host: host, path: "/api", origin: testCase.origin,
                accessControlRequestMethod: testCase.requestMethod)
        }
        #expect(request("cors.example.test").isCORSPreflight == testCase.isPreflight)
        let onCORSRoute = fixture.decide(request("cors.example.test"), session: nil)
        #expect(onCORSRoute?.reason == (testCase.isPreflight ? .corsPreflight : .noSession))
        // A route without cors_allow_preflight needs a session even for a genuine preflight.
        #expect(fixture.decide(request("a.example.test"), session: nil)?.reason == .noSession)
        #expect(fixture.decide(request("pub.example.test"), session: nil)?.reason == .publicRoute)
        // A signed-in user's preflight on the CORS route is still let through without authorization.
        let signedIn = fixture.decide(request("cors.example.test"), session: .user("mallory@evil.test"))
        #expect(signedIn?.reason == (testCase.isPreflight ? .corsPreflight : .noAllowRuleMatched))
    }

    // MARK: Impersonation

    struct ImpersonationCase: Sendable, CustomTestStringConvertible {
        let name: String
        let host: String
        let session: SessionIdentity
        let reason: DecisionReason
        var testDescription: String { name }
    }

    static let impersonationCases: [ImpersonationCase] = [
        ImpersonationCase(
            name: "admin as alice on a", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "alice@corp.test"),
            reason: .impersonatedUserAllowed),
        ImpersonationCase(
            name: "admin as alice on b", host: "b.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "alice@corp.test"),
            reason: .noAllowRuleMatched),
        ImpersonationCase(
            name: "admin as bob loses own grant on a", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "bob@corp.test"),
            reason: .noAllowRuleMatched),
        ImpersonationCase(
            name: "admin as bob on b", host: "b.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "bob@corp.test"),
            reason: .impersonatedUserAllowed),
        ImpersonationCase(
            name: "admin as partner domain", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "carol@A-PARTNER.test"),
            reason: .impersonatedDomainAllowed),
        ImpersonationCase(
            name: "admin as group only", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "", impersonatingGroups: ["team-a"]),
            reason: .impersonatedGroupAllowed),
        ImpersonationCase(
            name: "admin's own groups are not used", host: "b.example.test",
            session: .user(
                PolicyFixture.administrator, groups: ["team-b"], impersonating: "x@corp.test",
                impersonatingGroups: ["team-a"]),
            reason: .noAllowRuleMatched),
        ImpersonationCase(
            name: "impersonated email wins over impersonated group", host: "a.example.test",
            session: .user(
                PolicyFixture.administrator, impersonating: "alice@corp.test", impersonatingGroups: ["team-a"]),
            reason: .impersonatedUserAllowed),
        ImpersonationCase(
            name: "malformed impersonated email", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "alice@corp.test@x"),
            reason: .noAllowRuleMatched),
        ImpersonationCase(
            name: "empty impersonation is off", host: "a.example.test",
            session: .user(PolicyFixture.administrator, impersonating: "", impersonatingGroups: []),
            reason: .userAllowed),
        ImpersonationCase(
            name: "non-admin impersonating", host: "b.example.test",
            session: .user("alice@corp.test", impersonating: "bob@corp.test"), reason: .impersonationNotAllowed),
        ImpersonationCase(
            name: "non-admin impersonating a group", host: "a.example.test",
            session: .user("alice@corp.test", impersonatingGroups: ["team-a"]), reason: .impersonationNotAllowed),
        ImpersonationCase(
            name: "admin by local-part case is not admin", host: "b.example.test",
            session: .user("Root@corp.test", impersonating: "bob@corp.test"), reason: .impersonationNotAllowed),
    ]

    @Test("impersonation uses the impersonated identity only", arguments: impersonationCases)
    func impersonation(_ testCase: ImpersonationCase) throws {
        let fixture = try PolicyFixture()
        #expect(testCase.session.isImpersonating == (testCase.name != "empty impersonation is off"))
        #expect(fixture.decide(.get(testCase.host), session: testCase.session)?.reason == testCase.reason)
    }

    // MARK: Administrator paths

    struct AdminEndpointCase: Sendable, CustomTestStringConvertible {
        let name: String
        let session: SessionIdentity?
        let reason: DecisionReason
        var testDescription: String { name }
    }

    static let adminEndpointCases: [AdminEndpointCase] = [
        AdminEndpointCase(
            name: "administrator", session: .user(PolicyFixture.administrator), reason: .administratorAllowed),
        AdminEndpointCase(
            name: "upper-case domain", session: .user("root@CORP.TEST"), reason: .administratorAllowed),
        AdminEndpointCase(name: "upper-case local part", session: .user("ROOT@corp.test"), reason: .adminRequired),
        AdminEndpointCase(name: "user", session: .user("alice@corp.test"), reason: .adminRequired),
        AdminEndpointCase(name: "malformed", session: .user("root@corp.test@x"), reason: .adminRequired),
        AdminEndpointCase(name: "no session", session: nil, reason: .noSession),
        AdminEndpointCase(
            name: "expired administrator",
            session: SessionIdentity(email: PolicyFixture.administrator, expiresAt: PolicyFixture.now),
            reason: .sessionExpired),
        AdminEndpointCase(
            name: "administrator not yet valid",
            session: SessionIdentity(email: PolicyFixture.administrator, notBefore: PolicyFixture.now + 5),
            reason: .sessionNotYetValid),
        AdminEndpointCase(
            name: "administrator impersonating a user",
            session: .user(PolicyFixture.administrator, impersonating: "alice@corp.test"),
            reason: .administratorAllowed),
        AdminEndpointCase(
            name: "user impersonating the administrator",
            session: .user("alice@corp.test", impersonating: PolicyFixture.administrator), reason: .adminRequired),
    ]

    @Test("administrator endpoint", arguments: adminEndpointCases)
    func adminEndpoint(_ testCase: AdminEndpointCase) throws {
        let fixture = try PolicyFixture()
        let decision = fixture.evaluator.evaluateAdminEndpoint(session: testCase.session, now: PolicyFixture.now)
        #expect(decision.reason == testCase.reason)
    }

    struct AdminPathCase: Sendable, CustomTestStringConvertible {
        let name: String
        let host: String
        let path: String
        let session: SessionIdentity?
        let reason: DecisionReason
        var testDescription: String { name }
    }

    static let adminPathCases: [AdminPathCase] = [
        AdminPathCase(
            name: "user allowed on the route", host: "a.example.test", path: "/.pomerium/admin/impersonate",
            session: .user("alice@corp.test"), reason: .adminRequired),
        AdminPathCase(
            name: "bare admin path", host: "a.example.test", path: "/.pomerium/admin",
            session: .user("alice@corp.test"), reason: .adminRequired),
        AdminPathCase(
            name: "administrator allowed on the route", host: "a.example.test",
            path: "/.pomerium/admin/impersonate", session: .user(PolicyFixture.administrator), reason: .userAllowed),
        AdminPathCase(
            name: "administrator not allowed on the route", host: "b.example.test",
            path: "/.pomerium/admin/impersonate", session: .user(PolicyFixture.administrator),
            reason: .noAllowRuleMatched),
        AdminPathCase(
            name: "public route without session", host: "pub.example.test", path: "/.pomerium/admin/impersonate",
            session: nil, reason: .noSession),
        AdminPathCase(
            name: "public route with user", host: "pub.example.test", path: "/.pomerium/admin/impersonate",
            session: .user("alice@corp.test"), reason: .adminRequired),
        AdminPathCase(
            name: "public route with administrator", host: "pub.example.test", path: "/.pomerium/admin/x",
            session: .user(PolicyFixture.administrator), reason: .publicRoute),
        AdminPathCase(
            name: "similar path is not an admin path", host: "a.example.test", path: "/.pomerium/administrator",
            session: .user("alice@corp.test"), reason: .userAllowed),
        AdminPathCase(
            name: "admin path below another path", host: "a.example.test", path: "/app/.pomerium/admin",
            session: .user("alice@corp.test"), reason: .userAllowed),
    ]

    @Test("administrator paths on routes", arguments: adminPathCases)
    func adminPaths(_ testCase: AdminPathCase) throws {
        let fixture = try PolicyFixture()
        #expect(
            fixture.decide(.get(testCase.host, testCase.path), session: testCase.session)?.reason == testCase.reason)
    }

    @Test("invalid administrators are rejected")
    func invalidAdministrators() {
        do {
            _ = try PolicyEvaluator(administrators: ["ok@corp.test", "root", "a@b@c"])
            Issue.record("expected a PolicyError")
        } catch {
            #expect(error.problems.map(\.code) == [.administratorInvalid, .administratorInvalid])
            #expect(error.problems.first?.reason.contains("\"root\"") == true)
            #expect(error.problems.last?.reason.contains("\"a@b@c\"") == true)
        }
    }

    // MARK: Cost

    /// Prints the time to route and evaluate one allowed request, on a prefix route and on a regex route. Only the
    /// decisions are asserted: CPU time depends on the machine. Run in release mode for meaningful
    /// numbers.
    @Test("evaluation timing print")
    func evaluationTiming() throws {
        let fixture = try PolicyFixture()
        // Debug builds are about 20 times slower, so they run fewer iterations.
        #if DEBUG
            let iterations = 10_000
        #else
            let iterations = 100_000
        #endif
        let cases: [(String, AccessRequest, SessionIdentity)] = [
            ("prefix route, user", .get("shared.example.test", "/a/page"), .user("alice@corp.test")),
            ("regex route, group", .get("shared.example.test", "/c/42"), .user("x@corp.test", groups: ["team-c"])),
        ]
        var results: [String] = []
        for (name, request, session) in cases {
            var allowed = 0
            let nanoseconds = threadCPUNanoseconds {
                for _ in 0..<iterations where fixture.decide(request, session: session)?.isAllowed == true {
                    allowed += 1
                }
            }
            #expect(allowed == iterations, "\(name)")
            results.append("\(name): \(nanoseconds / Int64(iterations)) ns")
        }
        print("route and evaluate timing: " + results.joined(separator: ", "))
    }
}
