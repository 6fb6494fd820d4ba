import PomeriumCrypto
import Testing

@testable import PomeriumSessions

@Suite("Claim headers")
struct ClaimHeadersTests {
    @Test("names are canonical and values formatted")
    func headers() {
        var session = SessionFixtures.sampleSession()
        session.givenName = "Ann"
        let headers = ClaimHeaders.headers(
            claims: session.routeSession.claims,
            names: ["email", "groups", "exp", "email_verified", "given_name", "missing", "act"])
        #expect(
            headers.map(\.name) == [
                "X-Pomerium-Claim-Email", "X-Pomerium-Claim-Groups", "X-Pomerium-Claim-Exp",
                "X-Pomerium-Claim-Email_verified", "X-Pomerium-Claim-Given_name",
            ])
        #expect(headers.map(\.value) == ["user@example.test", "group-0,group-1,group-2", "1700003600", "true", "Ann"])
    }

    @Test("numbers never use exponent notation for integral values")
    func numbers() {
        #expect(ClaimHeaders.headerValue(.double(1_586_842_679)) == "1586842679")
        #expect(ClaimHeaders.headerValue(.double(1.5)) == "1.5")
        #expect(ClaimHeaders.headerValue(.integer(-3)) == "-3")
        #expect(ClaimHeaders.headerValue(.bool(false)) == "false")
        #expect(ClaimHeaders.headerValue(.null) == nil)
    }

    @Test("values that could split a header and invalid names are left out")
    func injection() {
        let claims = JSONObject([
            ("email", .string("a@b\r\nX-Evil: 1")), ("bad name", .string("x")), ("ok", .string("y")),
        ])
        let headers = ClaimHeaders.headers(claims: claims, names: ["email", "bad name", "ok"])
        #expect(headers.map(\.name) == ["X-Pomerium-Claim-Ok"])
    }

    @Test("canonical header names follow Go")
    func canonical() {
        #expect(ClaimHeaders.canonicalName("x-pomerium-claim-EMAIL") == "X-Pomerium-Claim-Email")
        #expect(ClaimHeaders.canonicalName("x-pomerium-claim-a-b") == "X-Pomerium-Claim-A-B")
    }
}

@Suite("Claim header plan")
struct ClaimHeaderPlanTests {
    /// Every claim a session can have, names that are no claim, a name that is no header token,
    /// another letter case and a repeat.
    static let names = [
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "email", "groups", "user", "name", "given_name",
        "family_name", "picture", "email_verified", "impersonate_email", "impersonate_groups", "programatic",
        "act", "ati", "Email", "unknown", "bad name", "email",
    ]

    static func sessions() -> [SessionState] {
        var full = SessionFixtures.sampleSession()
        full.user = "user-9"
        full.givenName = "Ann"
        full.familyName = "User"
        full.picture = "https://pictures.example.test/a.png"
        full.impersonateEmail = "other@example.test"
        full.impersonateGroups = ["x", "y"]
        full.programmatic = true
        var route = full.routeSession
        route.impersonateGroups = []
        route.emailVerified = false
        var empty = SessionState()
        empty.email = ""
        var controls = SessionFixtures.sampleSession()
        controls.oauthToken = nil
        controls.email = "a@example.test\r\nX-Injected: 1"
        controls.name = "tab\tand\u{7F}"
        controls.groups = ["one", "two\nthree"]
        return [full, route, empty, controls]
    }

    @Test("gives the headers the claims object gives, in the same order")
    func matchesClaimsObject() {
        let plan = ClaimHeaderPlan(names: Self.names)
        for session in Self.sessions() {
            var planned: [String] = []
            plan.forEachHeader(for: session) { name, value in planned.append("\(name): \(value)") }
            let expected = ClaimHeaders.headers(claims: session.claims, names: Self.names).map {
                "\($0.name): \($0.value)"
            }
            #expect(planned == expected)
        }
    }

    @Test("drops names that can never produce a header")
    func dropsUnusableNames() {
        #expect(ClaimHeaderPlan(names: ["unknown", "bad name", "Email", ""]).isEmpty)
        #expect(ClaimHeaderPlan(names: []).isEmpty)
        let plan = ClaimHeaderPlan(names: ["email", "given_name"])
        #expect(!plan.isEmpty)
        var session = SessionState()
        session.email = "a@example.test"
        session.givenName = "Ann"
        var names: [String] = []
        plan.forEachHeader(for: session) { name, _ in names.append(name) }
        #expect(names == ["X-Pomerium-Claim-Email", "X-Pomerium-Claim-Given_name"])
    }
}
