import PomeriumCrypto
import Testing

@testable import PomeriumSessions

@Suite("Session state claims")
struct SessionStateTests {
    @Test("JSON round trip keeps every field")
    func roundTrip() throws {
        var session = SessionFixtures.sampleSession()
        session.user = "u"
        session.givenName = "A"
        session.familyName = "User"
        session.picture = "https://example.test/p.png"
        session.impersonateEmail = "other@example.test"
        session.impersonateGroups = ["admins"]
        session.programmatic = true
        let decoded = try SessionState(json: session.jsonBytes())
        #expect(decoded == session)
    }

    @Test("claims use v0.7 names and always carry email and programatic")
    func names() throws {
        var session = SessionState()
        session.subject = "s"
        let text = String(decoding: session.jsonBytes(), as: UTF8.self)
        #expect(text == #"{"sub":"s","email":"","programatic":false}"#)
        let full = String(decoding: SessionFixtures.sampleSession().jsonBytes(), as: UTF8.self)
        for name in ["\"iss\"", "\"aud\":[", "\"exp\":1700003600", "\"jti\"", "\"groups\"", "\"act\":{", "\"ati\""] {
            #expect(full.contains(name), "\(name)")
        }
    }

    @Test("route view drops the OAuth token")
    func routeView() {
        let route = SessionFixtures.sampleSession().routeSession
        #expect(route.oauthToken == nil)
        #expect(!String(decoding: route.jsonBytes(), as: UTF8.self).contains("access-secret-value"))
    }

    @Test("aud as a string, fractional times and legacy access_token decode")
    func lenientForms() throws {
        let json =
            #"{"aud":"one.example.test","exp":1700000000.9,"access_token":{"access_token":"a","expiry":5},"x":[1]}"#
        let session = try SessionState(json: Array(json.utf8))
        #expect(session.audience == ["one.example.test"])
        #expect(session.expiry == 1_700_000_000)
        #expect(session.oauthToken?.accessToken == "a")
        #expect(session.oauthToken?.expiry == 5)
    }

    @Test("wrong member types are rejected")
    func wrongTypes() {
        for json in [
            #"{"exp":"soon"}"#, #"{"groups":"admins"}"#, #"{"email":1}"#, #"{"programatic":"yes"}"#, "[]", "{",
        ] {
            #expect(throws: SessionDecodingError.self, "\(json)") { try SessionState(json: Array(json.utf8)) }
        }
    }
}
