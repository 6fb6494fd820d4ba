import Foundation
import PomeriumCore
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumAuthenticate

/// Session refresh, programmatic login and sign-out against the real mock provider.
@Suite(.serialized) struct RefreshAndSignOutTests {
    /// Logs `subject` in and returns the browser and the route session's `ati`.
    static func signedIn(_ harness: AuthenticateHarness, subject: String, extra: [(String, String)] = []) async throws
        -> (TestBrowser, String)
    {
        let browser = harness.makeBrowser()
        let final = try await harness.login(browser, subject: subject, extra: extra)
        let (route, _) = try harness.routeSession(from: try #require(final.location))
        return (browser, route.accessTokenID)
    }

    /// Moves the stored session's expiry into the refresh margin, as if its tokens were about to die.
    static func makeNearExpiry(_ harness: AuthenticateHarness, accessTokenID: String, refreshToken: String? = nil)
        async throws
    {
        var stored = try #require(try await harness.service.loadStoredSession(accessTokenID: accessTokenID))
        let soon = harness.clock.unixSeconds() + 10
        stored.expiry = soon
        stored.oauthToken?.expiry = soon
        if let refreshToken { stored.oauthToken?.refreshToken = refreshToken }
        try await harness.service.saveStoredSession(stored)
    }

    func backendRefreshURL(_ harness: AuthenticateHarness, accessTokenID: String) throws -> String {
        var query = URLQuery()
        query.append(name: "pomerium_session_access_token_id", value: accessTokenID)
        query.append(name: "pomerium_session_audience", value: "app.example.test,authn.example.test")
        return try harness.signed(path: AuthenticateService.refreshPath, query: query)
    }

    @Test func parallelRefreshMakesOneGrant() async throws {
        try await AuthenticateHarness.run { harness in
            let (_, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            try await Self.makeNearExpiry(harness, accessTokenID: accessTokenID)
            let url = try backendRefreshURL(harness, accessTokenID: accessTokenID)
            let statuses = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let response = try await harness.makeBrowser().request(url)
                        return (response.status, response.text)
                    }
                }
                var results: [(Int, String)] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(statuses.count == 10)
            #expect(statuses.allSatisfy { $0.0 == 200 })
            #expect(harness.transport.count("refresh-grant") == 1)

            let codec = try RouteSessionTokenCodec(
                sharedSecret: AuthenticateHarness.sharedSecret, clock: harness.clock, logger: .init(label: "test"))
            let token = try codec.verify(Array(try #require(statuses.first?.1).utf8), audienceHost: "app.example.test")
            #expect(token.accessTokenID == accessTokenID)
            #expect(token.issuer == "authn.example.test:\(harness.port)")
            #expect((token.expiry ?? 0) > harness.clock.unixSeconds() + AuthenticateService.refreshMargin)
            let stored = try await harness.service.loadStoredSession(accessTokenID: accessTokenID)
            #expect(harness.service.needsRefresh(try #require(stored)) == false)
        }
    }

    @Test func inProcessRefresherRefreshesOnce() async throws {
        try await AuthenticateHarness.run { harness in
            let (_, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            try await Self.makeNearExpiry(harness, accessTokenID: accessTokenID)
            let refresher: any RouteSessionRefresher = harness.service
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await refresher.refreshRouteSession(
                            accessTokenID: accessTokenID, audience: ["app.example.test"],
                            issuerHost: "authn.example.test")
                    }
                }
                var tokens: [String] = []
                for try await token in group { tokens.append(token) }
                return tokens
            }
            #expect(tokens.count == 10)
            #expect(harness.transport.count("refresh-grant") == 1)
        }
    }

    @Test func freshSessionNotRefreshed() async throws {
        try await AuthenticateHarness.run { harness in
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            let response = try await harness.makeBrowser().request(
                try backendRefreshURL(harness, accessTokenID: accessTokenID))
            #expect(response.status == 200)
            #expect(response.headers.first(name: "Content-Type") == "application/jwt")
            let again = try await browser.request(try harness.signInURL())
            #expect(again.status == 302)
            #expect(harness.transport.count("refresh-grant") == 0)
        }
    }

    @Test func refreshFailureSendsUserToSignIn() async throws {
        try await AuthenticateHarness.run { harness in
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            try await Self.makeNearExpiry(harness, accessTokenID: accessTokenID, refreshToken: "revoked-refresh-token")
            let backend = try await harness.makeBrowser().request(
                try backendRefreshURL(harness, accessTokenID: accessTokenID))
            #expect(backend.status == 401)
            // The browser's sign-in goes back to the provider instead of issuing a route session.
            let response = try await browser.request(try harness.signInURL())
            #expect(response.status == 302)
            #expect(response.location?.hasPrefix(harness.idpBase) == true)
            #expect(harness.transport.count("refresh-grant") >= 1)
        }
    }

    @Test func unknownSessionRefreshRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let response = try await harness.makeBrowser().request(
                try backendRefreshURL(harness, accessTokenID: "unknown"))
            #expect(response.status == 401)
            var query = URLQuery()
            query.append(name: "pomerium_session_access_token_id", value: "x")
            let unsigned = try await harness.makeBrowser().request(
                harness.authenticateBase + "/.pomerium/refresh?" + query.encoded)
            #expect(unsigned.status == 400)
        }
    }

    @Test func impersonationKeptAcrossRefresh() async throws {
        try await AuthenticateHarness.run { harness in
            try await harness.presetUser("admin", claims: ["email": "admin@example.test"])
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "admin")
            let impersonate = try await browser.request(
                try harness.signInURL(extra: [
                    ("pomerium_impersonate_action", "set"), ("pomerium_impersonate_email", "user@example.test"),
                    ("pomerium_impersonate_groups", "staff, ops"),
                ]))
            let (route, _) = try harness.routeSession(from: try #require(impersonate.location))
            #expect(route.impersonateEmail == "user@example.test")
            #expect(route.impersonateGroups == ["staff", "ops"])
            #expect(route.email == "admin@example.test")

            try await Self.makeNearExpiry(harness, accessTokenID: accessTokenID)
            let after = try await browser.request(try harness.signInURL())
            let (refreshed, _) = try harness.routeSession(from: try #require(after.location))
            #expect(harness.transport.count("refresh-grant") == 1)
            #expect(refreshed.impersonateEmail == "user@example.test")
            #expect(refreshed.impersonateGroups == ["staff", "ops"])
        }
    }

    @Test("impersonation after sign-out starts a login")
    func impersonationAfterSignOutStartsLogin() async throws {
        try await AuthenticateHarness.run { harness in
            try await harness.presetUser("admin", claims: ["email": "admin@example.test"])
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "admin")
            // The marker a sign-out writes before it deletes: a sign-out that is half done.
            try await harness.service.store.set(
                AuthenticateService.signOutMarkerKey(accessTokenID: accessTokenID), value: [1], ttl: .seconds(60))
            let impersonate = try await browser.request(
                try harness.signInURL(extra: [
                    ("pomerium_impersonate_action", "set"), ("pomerium_impersonate_email", "user@example.test"),
                ]))
            #expect(impersonate.status == 302)
            #expect(impersonate.location?.hasPrefix(harness.idpBase) == true)
            #expect(try await harness.service.loadStoredSession(accessTokenID: accessTokenID) == nil)
        }
    }

    @Test func impersonationNeedsAdministrator() async throws {
        try await AuthenticateHarness.run { harness in
            let (browser, _) = try await Self.signedIn(harness, subject: "bob")
            let response = try await browser.request(
                try harness.signInURL(extra: [
                    ("pomerium_impersonate_action", "set"), ("pomerium_impersonate_email", "admin@example.test"),
                ]))
            #expect(response.status == 403)
        }
    }

    @Test func programmaticLoginAndRefresh() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let final = try await harness.login(
                browser, subject: "script", redirect: "http://localhost:8000/cb",
                extra: [
                    ("pomerium_programmatic", "true"),
                    ("pomerium_callback_uri", "https://app.example.test/.pomerium/callback/"),
                ])
            let (route, query) = try harness.routeSession(from: try #require(final.location))
            #expect(route.programmatic)
            #expect(route.audience.contains("localhost:8000"))
            #expect(query.value(for: "pomerium_programmatic") == "true")
            let refreshToken = try #require(query.value(for: "pomerium_refresh_token"))

            try await Self.makeNearExpiry(harness, accessTokenID: route.accessTokenID)
            let response = try await harness.makeBrowser().request(
                harness.authenticateBase + AuthenticateService.programmaticRefreshPath,
                headers: [("Authorization", "Pomerium " + refreshToken)])
            #expect(response.status == 200)
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String])
            let codec = try RouteSessionTokenCodec(
                sharedSecret: AuthenticateHarness.sharedSecret, clock: harness.clock, logger: .init(label: "test"))
            let jwt = try codec.verify(Array(try #require(document["jwt"]).utf8), audienceHost: "app.example.test")
            #expect(jwt.subject == "script")
            #expect(jwt.audience == route.audience)
            #expect(document["refresh_token"]?.isEmpty == false)
            #expect(harness.transport.count("refresh-grant") == 1)

            let bad = try await harness.makeBrowser().request(
                harness.authenticateBase + AuthenticateService.programmaticRefreshPath,
                headers: [("Authorization", "Pomerium not-a-token")])
            #expect(bad.status == 400)
        }
    }

    @Test func programmaticRedirectLimitedToAllowList() async throws {
        try await AuthenticateHarness.run { harness in
            let response = try await harness.makeBrowser().request(
                try harness.signInURL(
                    redirect: "https://evil.test/collect",
                    extra: [
                        ("pomerium_programmatic", "true"),
                        ("pomerium_callback_uri", "https://app.example.test/.pomerium/callback/"),
                    ]))
            #expect(response.status == 400)
        }
    }

    @Test func signOutClearsEverythingAndRevokes() async throws {
        try await AuthenticateHarness.run { harness in
            // 300 groups make the session cookie span several chunks.
            let groups = (0..<300).map { "group-with-a-long-name-\($0)" }
            try await harness.presetUser("bob", claims: ["email": "bob@example.test", "groups": groups])
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            let jar = browser.cookies(for: "authn.example.test")
            #expect(jar["_pomerium_1"] != nil)

            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            let response = try await browser.request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 302)
            // The mock offers RP-initiated logout, which returns to the checked target.
            let location = try #require(response.location)
            #expect(location.hasPrefix(harness.idpBase + "/oauth2/end_session?"))
            #expect(location.contains("post_logout_redirect_uri=https%3A%2F%2Fapp.example.test%2F"))

            let cleared = Set(response.setCookies.compactMap { $0.split(separator: "=").first.map(String.init) })
            for name in [
                "_pomerium", "_pomerium_1", "_pomerium_2", "_pomerium_3", "_pomerium_4", "_pomerium_5",
                "_pomerium_csrf",
            ] {
                #expect(cleared.contains(name), "\(name)")
            }
            #expect(browser.cookies(for: "authn.example.test").isEmpty)
            #expect(try await harness.service.loadStoredSession(accessTokenID: accessTokenID) == nil)
            #expect(harness.provider.revocationHints == ["refresh_token"])

            // The old session can no longer mint route sessions, even if its cookie is replayed.
            let replay = harness.makeBrowser()
            for (name, value) in jar { replay.setCookie(host: "authn.example.test", name: name, value: value) }
            let afterReplay = try await replay.request(try harness.signInURL())
            #expect(afterReplay.location?.hasPrefix(harness.idpBase) == true)
        }
    }

    @Test("save after sign-out leaves it signed out")
    func saveAfterSignOutKeepsSignedOut() async throws {
        try await AuthenticateHarness.run { harness in
            let (browser, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            // A refresh or impersonation change loaded the session before the sign-out below.
            let loaded = try #require(try await harness.service.loadStoredSession(accessTokenID: accessTokenID))

            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            let response = try await browser.request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 302)

            await #expect(throws: AuthenticateError.sessionNotFound) {
                try await harness.service.saveStoredSession(loaded)
            }
            #expect(try await harness.service.loadStoredSession(accessTokenID: accessTokenID) == nil)
        }
    }

    @Test("save of a live session is kept")
    func saveOfLiveSessionKept() async throws {
        try await AuthenticateHarness.run { harness in
            let (_, accessTokenID) = try await Self.signedIn(harness, subject: "bob")
            var loaded = try #require(try await harness.service.loadStoredSession(accessTokenID: accessTokenID))
            loaded.impersonateEmail = "alice@example.test"
            try await harness.service.saveStoredSession(loaded)
            let stored = try await harness.service.loadStoredSession(accessTokenID: accessTokenID)
            #expect(stored?.impersonateEmail == "alice@example.test")
        }
    }

    @Test func revocationFailureDoesNotFailSignOut() async throws {
        try await AuthenticateHarness.run(failsRevocation: true) { harness in
            let (browser, _) = try await Self.signedIn(harness, subject: "bob")
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            let response = try await browser.request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 302)
            #expect(harness.provider.revocationHints.count == 1)
            #expect(harness.logText.contains("token revocation failed at sign-out"))
        }
    }

    @Test func signOutRejectsForeignTarget() async throws {
        try await AuthenticateHarness.run { harness in
            let (browser, _) = try await Self.signedIn(harness, subject: "bob")
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://evil.test/")
            let response = try await browser.request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 400)
            #expect(response.location == nil)
        }
    }

    @Test func signOutWithoutSessionStartsNoLogin() async throws {
        try await AuthenticateHarness.run { harness in
            var query = URLQuery()
            query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            let response = try await harness.makeBrowser().request(
                try harness.signed(path: AuthenticateService.signOutPath, query: query))
            #expect(response.status == 302)
            #expect(response.location == "https://app.example.test/")
            #expect(harness.provider.revocationHints.isEmpty)
        }
    }
}
