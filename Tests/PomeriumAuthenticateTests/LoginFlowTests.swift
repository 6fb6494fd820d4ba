import Foundation
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumAuthenticate

/// Browser logins against the real `oidc-provider-mock` through a real server on 127.0.0.1.
@Suite(.serialized) struct LoginFlowTests {
    @Test func fullLoginIssuesRouteSession() async throws {
        try await AuthenticateHarness.run { harness in
            try await harness.presetUser(
                "bob", claims: ["email": "bob@example.test", "groups": ["admins", "devs"], "name": "Bob"])
            let browser = harness.makeBrowser()
            let final = try await harness.login(browser, subject: "bob")
            #expect(final.status == 302)
            let location = try #require(final.location)
            #expect(location.hasPrefix("https://app.example.test/.pomerium/callback/?"))

            let (route, query) = try harness.routeSession(from: location)
            #expect(query.value(for: "pomerium_redirect_uri") == "https://app.example.test/private?x=1")
            #expect(route.subject == "bob")
            #expect(route.email == "bob@example.test")
            #expect(route.groups == ["admins", "devs"])
            #expect(route.issuer == "authn.example.test:\(harness.port)")
            #expect(route.audience == ["authn.example.test:\(harness.port)", "app.example.test"])
            #expect(route.oauthToken == nil)
            #expect(!route.accessTokenID.isEmpty)
            #expect(route.programmatic == false)

            // The global session is in the cookie on the authenticate host and in the store.
            #expect(browser.cookies(for: "authn.example.test")["_pomerium"] != nil)
            let stored = try await harness.service.loadStoredSession(accessTokenID: route.accessTokenID)
            #expect(stored?.oauthToken?.refreshToken.isEmpty == false)
            #expect(harness.transport.count("code-grant") == 1)

            // A second sign-in with the session goes straight to the route, with no provider call.
            let again = try await browser.request(try harness.signInURL(redirect: "https://app.example.test/other"))
            #expect(again.status == 302)
            #expect(again.location?.hasPrefix("https://app.example.test/.pomerium/callback/?") == true)
            #expect(harness.transport.count("code-grant") == 1)
        }
    }

    @Test func signInBindingCarriedIntoSignedCallback() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let binding = try SignInBinding.binding(for: "1700000000.random-part")
            // Through the provider: the binding rides in the OAuth state's return URL.
            let final = try await harness.login(
                browser, subject: "bob", extra: [(SignInBinding.parameter, binding)])
            let (_, query) = try harness.routeSession(from: try #require(final.location))
            #expect(query.value(for: SignInBinding.parameter) == binding)
            // With the global session: straight to the callback, still bound.
            let again = try await browser.request(
                try harness.signInURL(extra: [(SignInBinding.parameter, binding)]))
            let (_, againQuery) = try harness.routeSession(from: try #require(again.location))
            #expect(againQuery.value(for: SignInBinding.parameter) == binding)
            // Without one, the callback carries none, so the proxy refuses it for a browser.
            let unbound = try await browser.request(try harness.signInURL())
            let (_, unboundQuery) = try harness.routeSession(from: try #require(unbound.location))
            #expect(unboundQuery.value(for: SignInBinding.parameter) == nil)
            let malformed = try await browser.request(
                try harness.signInURL(extra: [(SignInBinding.parameter, "not-a-binding")]))
            #expect(malformed.status == 400)
        }
    }

    @Test func configuredCallbackPathServed() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let idpURL = try #require(start.location)
            let back = try await harness.submitLogin(browser, authorizationURL: idpURL, subject: "carol")
            let callback = try #require(back.location)
            // The provider received /custom/callback as the redirect URI, and the service serves it.
            #expect(callback.hasPrefix(harness.authenticateBase + "/custom/callback?"))
            let response = try await browser.request(callback)
            #expect(response.status == 302)
            #expect(response.location?.hasPrefix(harness.authenticateBase + AuthenticateService.signInPath) == true)
        }
    }

    @Test func legacyCallbackPathServed() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let idpURL = try #require(start.location)
            let back = try await harness.submitLogin(browser, authorizationURL: idpURL, subject: "carol")
            let callback = try #require(back.location).replacingOccurrences(
                of: "/custom/callback", with: "/oauth2/callback")
            let response = try await browser.request(callback)
            #expect(response.status == 302)
        }
    }

    @Test func signInURLExpiryDuringLoginHarmless() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            // The user spends four minutes at the provider: the sign-in link's signature (5 minutes,
            // 1 minute leeway) would have expired by the time it is used again.
            harness.clock.advance(by: 240)
            let back = try await harness.submitLogin(
                browser, authorizationURL: try #require(start.location), subject: "dave")
            let afterCallback = try await browser.request(try #require(back.location))
            harness.clock.advance(by: 200)
            let final = try await browser.request(try #require(afterCallback.location))
            #expect(final.status == 302)
            #expect(final.location?.hasPrefix("https://app.example.test/.pomerium/callback/") == true)
        }
    }

    @Test func tamperedStateRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let back = try await harness.submitLogin(
                browser, authorizationURL: try #require(start.location), subject: "bob")
            let callback = try #require(back.location)
            var url = try HTTPURL(parsing: callback)
            var query = URLQuery(parsingLeniently: url.query ?? "")
            let state = try #require(query.value(for: "state"))
            var bytes = try #require(Base64.url.decode(state))
            bytes[bytes.count - 5] ^= 0x01
            query.set(name: "state", value: Base64.url.encode(bytes))
            url.query = query.encoded
            let response = try await browser.request(url.description)
            #expect(response.status == 400)
            #expect(response.text.contains("login state is invalid"))
            #expect(harness.transport.count("code-grant") == 0)
        }
    }

    @Test func replayedStateRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let back = try await harness.submitLogin(
                browser, authorizationURL: try #require(start.location), subject: "bob")
            let callback = try #require(back.location)
            let first = try await browser.request(callback)
            #expect(first.status == 302)
            let second = try await browser.request(callback)
            #expect(second.status == 400)
            #expect(second.text.contains("already completed"))
            #expect(harness.transport.count("code-grant") == 1)
        }
    }

    @Test func expiredStateRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let back = try await harness.submitLogin(
                browser, authorizationURL: try #require(start.location), subject: "bob")
            harness.clock.advance(by: 301)
            let response = try await browser.request(try #require(back.location))
            #expect(response.status == 400)
            #expect(response.text.contains("longer than 5 minutes"))
        }
    }

    @Test func stateFromAnotherBrowserRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let victim = harness.makeBrowser()
            let start = try await victim.request(try harness.signInURL())
            let back = try await harness.submitLogin(
                victim, authorizationURL: try #require(start.location), subject: "mallory")
            // A login CSRF: the attacker's callback link opened in a browser without the CSRF cookie.
            let other = harness.makeBrowser()
            let response = try await other.request(try #require(back.location))
            #expect(response.status == 400)
            #expect(response.text.contains("login cookie is missing"))
        }
    }

    @Test func wrongNonceRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            // Craft the authorization request with another nonce: the provider signs that one into
            // the ID token, and the callback compares it with the nonce kept for this state.
            var url = try HTTPURL(parsing: try #require(start.location))
            var query = URLQuery(parsingLeniently: url.query ?? "")
            query.set(name: "nonce", value: "attacker-chosen-nonce")
            url.query = query.encoded
            let back = try await harness.submitLogin(browser, authorizationURL: url.description, subject: "bob")
            let response = try await browser.request(try #require(back.location))
            #expect(response.status == 401)
            #expect(response.text.contains("ID token was rejected"))
            #expect(browser.cookies(for: "authn.example.test")["_pomerium"] == nil)
        }
    }

    @Test func forgedIDTokenRejected() async throws {
        try #require(PythonRunner.isAvailable)
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let start = try await browser.request(try harness.signInURL())
            let back = try await harness.submitLogin(
                browser, authorizationURL: try #require(start.location), subject: "bob")
            harness.transport.forgesIDToken.store(true, ordering: .relaxed)
            let response = try await browser.request(
                try #require(back.location), headers: [("Accept", "application/json")])
            #expect(response.status == 401)
            let document = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            #expect(document?["Status"] as? Int == 401)
            #expect((document?["Error"] as? String)?.hasPrefix("Unauthorized: ") == true)
            #expect((document?["RequestID"] as? String)?.isEmpty == false)
            #expect(browser.cookies(for: "authn.example.test")["_pomerium"] == nil)
        }
    }

    @Test func providerErrorParameterMapped() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let denied = try await browser.request(
                harness.authenticateBase + "/oauth2/callback?error=access_denied&state=x")
            #expect(denied.status == 401)
            let other = try await browser.request(
                harness.authenticateBase + "/oauth2/callback?error=server_error&state=x")
            #expect(other.status == 400)
            #expect(other.text.contains("server_error"))
        }
    }

    @Test func providerDownShowsErrorPage() async throws {
        // Discover at a running mock, then stop it, so the code exchange meets a closed port.
        try await Fixtures.withOIDCProvider { idp in
            try await AuthenticateHarness.run(idpPort: idp.port) { harness in
                let browser = harness.makeBrowser()
                let start = try await browser.request(try harness.signInURL())
                let back = try await harness.submitLogin(
                    browser, authorizationURL: try #require(start.location), subject: "bob")
                idp.process.stop()
                let response = try await browser.request(
                    try #require(back.location), headers: [("Accept", "text/html")])
                #expect(response.status == 502)
                #expect(response.text.contains("identity provider is unreachable"))
                #expect(response.text.contains("Request ID:"))
                // The server still responds after the failure.
                let robots = try await browser.request(harness.authenticateBase + "/robots.txt")
                #expect(robots.status == 200)
                #expect(robots.text.contains("Disallow: /"))
            }
        }
    }

    @Test func unsignedOrStaleSignInRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let unsigned = try await browser.request(
                harness.authenticateBase + "/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fapp.example.test%2F")
            #expect(unsigned.status == 400)
            let url = try harness.signInURL()
            harness.clock.advance(by: 400)
            let stale = try await browser.request(url)
            #expect(stale.status == 400)
            #expect(stale.text.contains("expired"))
        }
    }

    @Test func openRedirectTargetsRejectedAtSignIn() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            for target in ["https://evil.test/", "https://app.example.test@evil.test/", "javascript:alert(1)"] {
                let response = try await browser.request(try harness.signInURL(redirect: target))
                #expect(response.status == 400, "\(target)")
                #expect(response.location == nil)
            }
            let callback = try await browser.request(
                try harness.signInURL(extra: [("pomerium_callback_uri", "https://evil.test/.pomerium/callback/")]))
            #expect(callback.status == 400)
        }
    }

    @Test func xhrWithoutSessionGets401() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let response = try await browser.request(
                try harness.signInURL(),
                headers: [("X-Requested-With", "XmlHttpRequest"), ("Origin", "https://app.example.test")])
            #expect(response.status == 401)
            #expect(response.headers.first(name: "Access-Control-Allow-Origin") == nil)
        }
    }

    @Test func corsPreflightNeedsValidSignature() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let preflightHeaders = [
                ("Origin", "https://app.example.test"), ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "x-requested-with"),
            ]
            let good = try await browser.request(try harness.signInURL(), method: .options, headers: preflightHeaders)
            #expect(good.status == 204)
            #expect(good.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example.test")
            #expect(good.headers.first(name: "Access-Control-Allow-Credentials") == "true")
            #expect(good.headers.first(name: "Access-Control-Allow-Headers") == "x-requested-with")
            let bad = try await browser.request(
                harness.authenticateBase + "/.pomerium/sign_in?pomerium_redirect_uri=x", method: .options,
                headers: preflightHeaders)
            #expect(bad.status == 400)
            #expect(bad.headers.first(name: "Access-Control-Allow-Origin") == nil)
        }
    }

    @Test func jwksRobotsAndUnknownPaths() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let jwks = try await browser.request(harness.authenticateBase + "/.well-known/pomerium/jwks.json")
            #expect(jwks.status == 200)
            #expect(jwks.headers.first(name: "Content-Type") == "application/json")
            #expect(jwks.text.contains("\"ES256\""))
            let missing = try await browser.request(harness.authenticateBase + "/.pomerium/")
            #expect(missing.status == 404)
            #expect(missing.headers.first(name: "Content-Security-Policy")?.contains("default-src 'none'") == true)
            #expect(missing.headers.first(name: "X-Pomerium-Intercepted-Response") == "true")
        }
    }

    @Test func errorPageOffersRetryOnlyForAllowedTarget() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let allowed = try await browser.request(
                harness.authenticateBase + "/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fapp.example.test%2Fx"
            )
            #expect(allowed.status == 400)
            #expect(allowed.text.contains("href=\"https://app.example.test/x\""))
            let evil = try await browser.request(
                harness.authenticateBase + "/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fevil.test%2F%22%3E")
            #expect(!evil.text.contains("evil.test"))
        }
    }

    @Test func oversizedBodyRejected() async throws {
        try await AuthenticateHarness.run { harness in
            let response = try await harness.makeBrowser().request(
                harness.authenticateBase + AuthenticateService.signOutPath, method: .post,
                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: [UInt8](repeating: UInt8(ascii: "a"), count: AuthenticateRequestHandler.maximumBodySize + 1))
            #expect(response.status == 413)
        }
    }

    @Test func noSecretsInLogs() async throws {
        try await AuthenticateHarness.run { harness in
            let browser = harness.makeBrowser()
            let final = try await harness.login(browser, subject: "erin")
            let (route, query) = try harness.routeSession(from: try #require(final.location))
            let stored = try #require(try await harness.service.loadStoredSession(accessTokenID: route.accessTokenID))
            let logs = harness.logText
            #expect(!logs.isEmpty)
            var secrets = [
                try #require(stored.oauthToken?.accessToken), try #require(stored.oauthToken?.refreshToken),
                try #require(query.value(for: "pomerium_session_encrypted")),
            ]
            secrets += browser.cookies(for: "authn.example.test").values.map { String($0.prefix(40)) }
            for secret in secrets {
                #expect(!logs.contains(secret))
            }
            #expect(!logs.contains("code="))
            #expect(!logs.contains("state="))
        }
    }
}
