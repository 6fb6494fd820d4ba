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
