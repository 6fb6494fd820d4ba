import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumAuthenticate

/// Tests that the authenticate service signs in from its own global session cookie and never a route
/// cookie, which the proxy seals with the same key and name.
@Suite(.serialized) struct GlobalSessionCookieTests {
    /// Signs `subject` in and returns the browser's global cookie value and a route cookie value
    /// for app.example.test, sealed as the proxy seals it.
    static func cookies(_ harness: AuthenticateHarness, subject: String) async throws -> (
        global: String, route: String
    ) {
        let browser = harness.makeBrowser()
        let final = try await harness.login(browser, subject: subject)
        let global = try #require(browser.cookies(for: "authn.example.test")["_pomerium"])
        let (route, _) = try harness.routeSession(from: try #require(final.location))
        let header = try #require(try harness.service.sessionCookies.setCookieHeaders(for: route).first)
        let pair = try #require(header.split(separator: ";").first)
        let value = try #require(pair.split(separator: "=", maxSplits: 1).last)
        return (global, String(value))
    }

    @Test("route cookie starts a new login")
    func routeCookieStartsLogin() async throws {
        try await AuthenticateHarness.run { harness in
            let (_, route) = try await Self.cookies(harness, subject: "bob")
            let thief = harness.makeBrowser()
            let response = try await thief.request(
                try harness.signInURL(), headers: [("Cookie", "_pomerium=\(route)")])
            #expect(response.status == 302)
            #expect(response.location?.hasPrefix(harness.idpBase) == true)
        }
    }

    @Test("global cookie after a route cookie counts")
    func globalCookieAfterRouteCookie() async throws {
        try await AuthenticateHarness.run { harness in
            let (global, route) = try await Self.cookies(harness, subject: "bob")
            let browser = harness.makeBrowser()
            let response = try await browser.request(
                try harness.signInURL(), headers: [("Cookie", "_pomerium=\(route); _pomerium=\(global)")])
            #expect(response.status == 302)
            let location = try #require(response.location)
            #expect(!location.hasPrefix(harness.idpBase))
            let (session, _) = try harness.routeSession(from: location)
            #expect(session.subject == "bob")
        }
    }

    @Test("sign-out with a route cookie ends the session")
    func signOutWithRouteCookieEndsSession() async throws {
        try await AuthenticateHarness.run { harness in
            let (global, route) = try await Self.cookies(harness, subject: "bob")
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            let signOut = try harness.signed(path: AuthenticateService.signOutPath, query: query)
            // Under a shared cookie_domain the browser may hold only the route cookie.
            let response = try await harness.makeBrowser().request(
                signOut, headers: [("Cookie", "_pomerium=\(route)")])
            #expect(response.status == 302)
            #expect(harness.provider.revocationHints == ["refresh_token"])

            let again = try await harness.makeBrowser().request(
                try harness.signInURL(), headers: [("Cookie", "_pomerium=\(global)")])
            #expect(again.location?.hasPrefix(harness.idpBase) == true)
        }
    }

    @Test("sign-out ends the session the proxy names")
    func signOutEndsNamedSession() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let final = try await harness.login(browser, subject: "bob")
            let (route, _) = try harness.routeSession(from: try #require(final.location))
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            query.append(name: "pomerium_session_access_token_id", value: route.accessTokenID)
            let response = try await harness.makeBrowser().request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 302)
            #expect(harness.provider.revocationHints == ["refresh_token"])
            #expect(try await harness.service.loadStoredSession(accessTokenID: route.accessTokenID) == nil)
            let again = try await browser.request(try harness.signInURL())
            #expect(again.location?.hasPrefix(harness.idpBase) == true)
        }
    }

    @Test("unsigned sign-out names no session")
    func unsignedSignOutNamesNoSession() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let final = try await harness.login(browser, subject: "bob")
            let (route, _) = try harness.routeSession(from: try #require(final.location))
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            query.append(name: "pomerium_session_access_token_id", value: route.accessTokenID)
            let response = try await harness.makeBrowser().request(
                harness.authenticateBase + AuthenticateService.signOutPath + "?" + query.encoded)
            #expect(response.status == 400)
            #expect(try await harness.service.loadStoredSession(accessTokenID: route.accessTokenID) != nil)
        }
    }
}
