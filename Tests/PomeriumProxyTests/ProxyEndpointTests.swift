import Foundation
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Proxy endpoints")
struct ProxyEndpointTests {
    static let config = """
        administrators: [root@corp.test]
        policy:
          - from: https://app.example.test
            to: http://127.0.0.1:9
            allowed_users: [alice@corp.test, root@corp.test]
          - from: https://other.example.test
            to: http://127.0.0.1:9
            allowed_users: [alice@corp.test]
        """

    /// The sign-in cookie of a browser that started a sign-in at the harness clock's current time,
    /// as a `Cookie` header and as the value that callback URLs are bound to.
    static func signInCookie(_ proxy: ProxyHarness) -> (header: (String, String), value: String) {
        let value = "\(proxy.clock.unixSeconds()).testBrowserNonce" + String(repeating: "A", count: 16)
        return (("Cookie", "_pomerium_signin=\(value)"), value)
    }

    /// The callback URL the authenticate service would send the browser to, signed, and bound to
    /// the sign-in cookie value `boundTo` when given.
    static func callbackTarget(
        _ proxy: ProxyHarness, token: String, redirect: String, extra: [(String, String)] = [],
        host: String = "app.example.test", boundTo cookieValue: String? = nil
    ) throws -> String {
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: redirect)
        query.append(name: "pomerium_session_encrypted", value: try proxy.callbackCodec.seal(routeToken: token))
        if let cookieValue {
            query.append(name: SignInBinding.parameter, value: try SignInBinding.binding(for: cookieValue))
        }
        for (name, value) in extra { query.append(name: name, value: value) }
        let url = try HTTPURL(parsing: "https://\(host)/.pomerium/callback/?" + query.encoded)
        return try proxy.urlSigner.sign(url).requestTarget
    }

    @Test("callback stores the session and redirects on the same host")
    func callbackStoresSession() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let browser = Self.signInCookie(proxy)
            let target = try Self.callbackTarget(
                proxy, token: try proxy.token(session), redirect: "https://app.example.test/docs?page=2",
                boundTo: browser.value)
            let response = try await proxy.request(host: "app.example.test", path: target, headers: [browser.header])
            #expect(response.status == 302)
            #expect(response.location == "https://app.example.test/docs?page=2")
            let cookies = response.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair)
            #expect(cookies.count == 1)
            #expect(cookies.first?.hasPrefix("_pomerium=") == true)
            #expect(response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium_signin=;") })
            let dashboard = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", cookies.joined(separator: "; "))])
            #expect(dashboard.status == 200)
            #expect(dashboard.text.contains("alice@corp.test"))
        }
    }

    @Test("callback rejects tampered and foreign links")
    func callbackTampering() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let token = try proxy.token(session)
            let browser = Self.signInCookie(proxy)
            let valid = try Self.callbackTarget(
                proxy, token: token, redirect: "https://app.example.test/", boundTo: browser.value)
            var rejected: [(String, String)] = []
            rejected.append(
                ("changed redirect", valid.replacingOccurrences(of: "app.example.test%2F", with: "evil.test%2F")))
            rejected.append(
                (
                    "unsigned",
                    "/.pomerium/callback/?pomerium_redirect_uri=https%3A%2F%2Fapp.example.test%2F&pomerium_session_encrypted=\(try proxy.callbackCodec.seal(routeToken: token))"
                ))
            rejected.append(
                (
                    "foreign redirect",
                    try Self.callbackTarget(proxy, token: token, redirect: "https://evil.test/", boundTo: browser.value)
                ))
            rejected.append(
                (
                    "other route host",
                    try Self.callbackTarget(
                        proxy, token: token, redirect: "https://other.example.test/", boundTo: browser.value)
                ))
            rejected.append(
                (
                    "scheme-relative",
                    try Self.callbackTarget(proxy, token: token, redirect: "//evil.test/", boundTo: browser.value)
                ))
            rejected.append(
                (
                    "user info",
                    try Self.callbackTarget(
                        proxy, token: token, redirect: "https://app.example.test@evil.test/", boundTo: browser.value)
                ))
            let foreignSession = proxy.session("alice@corp.test", audience: ["other.example.test"])
            rejected.append(
                (
                    "session for another host",
                    try Self.callbackTarget(
                        proxy, token: try proxy.token(foreignSession), redirect: "https://app.example.test/",
                        boundTo: browser.value)
                ))
            var forged = URLQuery()
            forged.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
            forged.append(name: "pomerium_session_encrypted", value: "AAAA")
            rejected.append(
                (
                    "garbage payload",
                    try proxy.urlSigner.sign(
                        try HTTPURL(parsing: "https://app.example.test/.pomerium/callback/?" + forged.encoded)
                    ).requestTarget
                ))
            rejected.append(("other host", valid))
            for (index, (name, target)) in rejected.enumerated() {
                let host = index == rejected.count - 1 ? "other.example.test" : "app.example.test"
                let response = try await proxy.request(host: host, path: target, headers: [browser.header])
                #expect(response.status == 400, "\(name)")
                #expect(response.headers["Set-Cookie"] == [], "\(name)")
            }
            proxy.clock.advance(by: 400)
            let expired = try await proxy.request(host: "app.example.test", path: valid, headers: [browser.header])
            #expect(expired.status == 400, "a link older than five minutes and the leeway")
        }
    }

    @Test("sign-in redirect sets the sign-in cookie and carries its binding")
    func signInBindingStarted() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let response = try await proxy.request(host: "app.example.test", path: "/docs")
            #expect(response.status == 302)
            let setCookie = try #require(response.headers["Set-Cookie"].first { $0.hasPrefix("_pomerium_signin=") })
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Lax"))
            let value = try #require(ProxyHarness.cookiePair(setCookie)).dropFirst("_pomerium_signin=".count)
            let query = try ProxyHarness.query(of: try #require(response.location))
            #expect(query.value(for: SignInBinding.parameter) == (try SignInBinding.binding(for: String(value))))

            // A second tab's sign-in adds its own entry and keeps the first tab's, so both finish.
            let again = try await proxy.request(
                host: "app.example.test", path: "/other", headers: [("Cookie", "_pomerium_signin=\(value)")])
            let againSetCookie = try #require(again.headers["Set-Cookie"].first { $0.hasPrefix("_pomerium_signin=") })
            let againValue = try #require(ProxyHarness.cookiePair(againSetCookie)).dropFirst("_pomerium_signin=".count)
            let entries = againValue.split(separator: "~").map(String.init)
            #expect(entries.count == 2)
            #expect(entries.first == String(value))
            let againQuery = try ProxyHarness.query(of: try #require(again.location))
            #expect(againQuery.value(for: SignInBinding.parameter) == (try SignInBinding.binding(for: entries[1])))
            #expect(againQuery.value(for: SignInBinding.parameter) != query.value(for: SignInBinding.parameter))
        }
    }

    @Test("callback removes only its own sign-in from the cookie")
    func callbackKeepsOtherTabs() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let token = try proxy.token(proxy.session("alice@corp.test", audience: ["app.example.test"]))
            let now = proxy.clock.unixSeconds()
            let tabOne = "\(now).tabOne" + String(repeating: "1", count: 26)
            let tabTwo = "\(now).tabTwo" + String(repeating: "2", count: 26)
            let both = ("Cookie", "_pomerium_signin=\(tabOne)~\(tabTwo)")
            let second = try Self.callbackTarget(
                proxy, token: token, redirect: "https://app.example.test/two", boundTo: tabTwo)
            let completed = try await proxy.request(host: "app.example.test", path: second, headers: [both])
            #expect(completed.status == 302)
            #expect(completed.location == "https://app.example.test/two")
            let signIn = try #require(completed.headers["Set-Cookie"].first { $0.hasPrefix("_pomerium_signin=") })
            #expect(ProxyHarness.cookiePair(signIn) == "_pomerium_signin=\(tabOne)")

            let first = try Self.callbackTarget(
                proxy, token: token, redirect: "https://app.example.test/one", boundTo: tabOne)
            let remaining = ("Cookie", "_pomerium_signin=\(tabOne)")
            let replayed = try await proxy.request(host: "app.example.test", path: second, headers: [remaining])
            #expect(replayed.status == 400, "the second tab's link works once")
            let alsoCompleted = try await proxy.request(host: "app.example.test", path: first, headers: [remaining])
            #expect(alsoCompleted.status == 302)
            #expect(alsoCompleted.location == "https://app.example.test/one")
            #expect(alsoCompleted.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium_signin=;") })
        }
    }

    @Test("callback refuses another browser, a missing cookie, an unbound link, a replay and an old sign-in")
    func callbackBinding() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let token = try proxy.token(proxy.session("alice@corp.test", audience: ["app.example.test"]))
            let browser = Self.signInCookie(proxy)
            let bound = try Self.callbackTarget(
                proxy, token: token, redirect: "https://app.example.test/", boundTo: browser.value)
            let unbound = try Self.callbackTarget(proxy, token: token, redirect: "https://app.example.test/")
            let rejected: [(String, String, [(String, String)])] = [
                (
                    "another browser", bound,
                    [("Cookie", "_pomerium_signin=\(proxy.clock.unixSeconds()).another-browser")]
                ),
                ("no sign-in cookie", bound, []),
                ("unbound link", unbound, [browser.header]),
            ]
            for (name, target, headers) in rejected {
                let response = try await proxy.request(host: "app.example.test", path: target, headers: headers)
                #expect(response.status == 400, "\(name)")
                #expect(response.text.contains("another browser"), "\(name)")
                #expect(!response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=") }, "\(name)")
            }

            // The browser that started the sign-in completes it once; the cookie is then cleared.
            let accepted = try await proxy.request(host: "app.example.test", path: bound, headers: [browser.header])
            #expect(accepted.status == 302)
            let remaining = accepted.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair)
            #expect(!remaining.contains { $0.hasPrefix("_pomerium_signin=") })
            let replay = try await proxy.request(
                host: "app.example.test", path: bound, headers: [("Cookie", remaining.joined(separator: "; "))])
            #expect(replay.status == 400)

            // A sign-in cookie older than its lifetime no longer completes a fresh link.
            proxy.clock.advance(by: Double(SignInBinding.lifetime + 1))
            let fresh = try Self.callbackTarget(
                proxy, token: token, redirect: "https://app.example.test/", boundTo: browser.value)
            let old = try await proxy.request(host: "app.example.test", path: fresh, headers: [browser.header])
            #expect(old.status == 400)
        }
    }

    @Test("programmatic callback returns tokens to loopback only")
    func programmaticCallback() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let token = try proxy.token(proxy.session("alice@corp.test", audience: ["app.example.test"]))
            let extra = [("pomerium_programmatic", "true"), ("pomerium_refresh_token", "refresh-value")]
            let target = try Self.callbackTarget(
                proxy, token: token, redirect: "http://localhost:8000/done", extra: extra)
            let response = try await proxy.request(host: "app.example.test", path: target)
            #expect(response.status == 302)
            #expect(response.headers["Set-Cookie"].isEmpty, "an unbound link must not sign the browser in")
            let location = try #require(response.location)
            #expect(location.hasPrefix("http://localhost:8000/done?"))
            let query = try ProxyHarness.query(of: location)
            #expect(query.value(for: "pomerium_jwt") == token)
            #expect(query.value(for: "pomerium_refresh_token") == "refresh-value")

            let foreign = try Self.callbackTarget(proxy, token: token, redirect: "https://evil.test/cb", extra: extra)
            let rejected = try await proxy.request(host: "app.example.test", path: foreign)
            #expect(rejected.status == 400)
        }
    }

    @Test("programmatic login answers a signed URL for loopback targets")
    func programmaticLogin() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let response = try await proxy.request(
                host: "app.example.test",
                path: "/.pomerium/api/v1/login?pomerium_redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2F")
            #expect(response.status == 200)
            #expect(response.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
            let url = try HTTPURL(parsing: response.text)
            #expect(url.host == "authn.example.test")
            #expect(url.path == "/.pomerium/sign_in")
            try proxy.urlSigner.validate(url)
            let query = URLQuery(parsingLeniently: url.query ?? "")
            #expect(query.value(for: "pomerium_programmatic") == "true")
            #expect(query.value(for: "pomerium_redirect_uri") == "http://127.0.0.1:8000/")
            #expect(query.value(for: "pomerium_callback_uri") == "https://app.example.test/.pomerium/callback/")

            for target in ["https%3A%2F%2Fevil.test%2F", "http%3A%2F%2Flocalhost.evil.test%2F", "not-a-url"] {
                let rejected = try await proxy.request(
                    host: "app.example.test", path: "/.pomerium/api/v1/login?pomerium_redirect_uri=\(target)")
                #expect(rejected.status == 400, "\(target)")
            }
            let missing = try await proxy.request(host: "app.example.test", path: "/.pomerium/api/v1/login")
            #expect(missing.status == 400)
        }
    }

    @Test("sign-out redirects only to known hosts")
    func signOutRedirects() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let cases: [(String?, Int)] = [
                (nil, 302), ("https://other.example.test/bye", 302), ("https://authn.example.test/", 302),
                ("https://evil.test/", 400), ("//evil.test/", 400), ("https://app.example.test@evil.test/", 400),
                ("javascript:alert(1)", 400), ("https://app.example.test.evil.test/", 400),
            ]
            for (target, status) in cases {
                var path = "/.pomerium/sign_out"
                if let target {
                    var query = URLQuery()
                    query.append(name: "pomerium_redirect_uri", value: target)
                    path += "?" + query.encoded
                }
                let response = try await proxy.request(host: "app.example.test", path: path)
                #expect(response.status == status, "\(target ?? "default")")
                guard status == 302 else { continue }
                let location = try #require(response.location)
                #expect(location.hasPrefix("https://authn.example.test/.pomerium/sign_out?"))
                try proxy.urlSigner.validate(try HTTPURL(parsing: location))
                let query = try ProxyHarness.query(of: location)
                #expect(query.value(for: "pomerium_redirect_uri") == (target ?? "https://app.example.test/"))
                #expect(response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
            }
        }
    }

    @Test("sign-out names the route cookie's session")
    func signOutNamesSession() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let named = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/sign_out",
                headers: [("Cookie", try proxy.cookieHeader(alice))])
            let location = try #require(named.location)
            try proxy.urlSigner.validate(try HTTPURL(parsing: location))
            let query = try ProxyHarness.query(of: location)
            #expect(query.value(for: "pomerium_session_access_token_id") == alice.accessTokenID)

            // A cookie for another host names nothing here.
            let bob = proxy.session("bob@corp.test", audience: ["other.example.test"])
            let foreign = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/sign_out",
                headers: [("Cookie", try proxy.cookieHeader(bob))])
            let foreignQuery = try ProxyHarness.query(of: try #require(foreign.location))
            #expect(foreignQuery.value(for: "pomerium_session_access_token_id") == nil)
        }
    }

    @Test("dashboard forms require the session's CSRF token")
    func dashboardCSRF() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let alice = proxy.session("alice@corp.test", groups: ["staff"], audience: ["app.example.test"])
            let cookie = try proxy.cookieHeader(alice)
            let page = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", cookie)])
            #expect(page.status == 200)
            #expect(page.headers.first(name: "Content-Security-Policy") == ProxyPages.contentSecurityPolicy)
            #expect(page.text.contains("staff"))
            #expect(!page.text.contains("/.pomerium/admin/impersonate"), "only administrators see the form")
            let token = proxy.service.csrf.token(for: alice, host: "app.example.test")
            #expect(page.text.contains("value=\"\(token)\""))

            let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie)]
            let missing = try await proxy.request(
                .post, host: "app.example.test", path: "/.pomerium/sign_out", headers: form)
            #expect(missing.status == 403)
            let wrong = try await proxy.request(
                .post, host: "app.example.test", path: "/.pomerium/sign_out", headers: form,
                body: Array("pomerium_csrf=AAAA".utf8))
            #expect(wrong.status == 403)
            let otherHostToken = proxy.service.csrf.token(for: alice, host: "other.example.test")
            let crossHost = try await proxy.request(
                .post, host: "app.example.test", path: "/.pomerium/sign_out", headers: form,
                body: Array("pomerium_csrf=\(otherHostToken)".utf8))
            #expect(crossHost.status == 403)
            let good = try await proxy.request(
                .post, host: "app.example.test", path: "/.pomerium/sign_out", headers: form,
                body: Array("pomerium_csrf=\(token)".utf8))
            #expect(good.status == 302)
            #expect(good.location?.hasPrefix("https://authn.example.test/.pomerium/sign_out?") == true)
        }
    }

    @Test("impersonation needs an administrator and a CSRF token")
    func impersonation() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let root = proxy.session("root@corp.test", audience: ["app.example.test"])
            let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let rootPage = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", try proxy.cookieHeader(root))])
            #expect(rootPage.text.contains("/.pomerium/admin/impersonate"))

            func post(_ session: SessionState, token: String) async throws -> ProxyTestResponse {
                let body =
                    "pomerium_csrf=\(token)&pomerium_impersonate_email=bob%40corp.test&pomerium_impersonate_groups=ops"
                return try await proxy.request(
                    .post, host: "app.example.test", path: "/.pomerium/admin/impersonate",
                    headers: [
                        ("Content-Type", "application/x-www-form-urlencoded"),
                        ("Cookie", try proxy.cookieHeader(session)),
                    ], body: Array(body.utf8))
            }
            let notAdmin = try await post(alice, token: proxy.service.csrf.token(for: alice, host: "app.example.test"))
            #expect(notAdmin.status == 403)
            let noToken = try await post(root, token: "")
            #expect(noToken.status == 403)
            let allowed = try await post(root, token: proxy.service.csrf.token(for: root, host: "app.example.test"))
            #expect(allowed.status == 302)
            let location = try #require(allowed.location)
            try proxy.urlSigner.validate(try HTTPURL(parsing: location))
            let query = try ProxyHarness.query(of: location)
            #expect(query.value(for: "pomerium_impersonate_email") == "bob@corp.test")
            #expect(query.value(for: "pomerium_impersonate_groups") == "ops")
            #expect(query.value(for: "pomerium_impersonate_action") == "set")
            #expect(query.value(for: "pomerium_redirect_uri") == "https://app.example.test/.pomerium/")
            let get = try await proxy.request(host: "app.example.test", path: "/.pomerium/admin/impersonate")
            #expect(get.status == 405)
        }
    }

    @Test("dashboard without a session redirects to sign-in")
    func dashboardSignIn() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            let bare = try await proxy.request(host: "app.example.test", path: "/.pomerium")
            #expect(bare.status == 301)
            #expect(bare.location == "/.pomerium/")
            let response = try await proxy.request(host: "app.example.test", path: "/.pomerium/")
            #expect(response.status == 302)
            let query = try ProxyHarness.query(of: try #require(response.location))
            #expect(query.value(for: "pomerium_redirect_uri") == "https://app.example.test/.pomerium/")
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -1)
            let stale = try await proxy.request(
                host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", try proxy.cookieHeader(expired))])
            #expect(stale.status == 302)
        }
    }

    @Test("static endpoints: robots, stylesheet and key set")
    func staticEndpoints() async throws {
        try await ProxyHarness.run(config: Self.config) { proxy in
            for host in ["app.example.test", "unknown.example.test"] {
                let robots = try await proxy.request(host: host, path: "/robots.txt")
                #expect(robots.status == 200)
                #expect(robots.text == "User-agent: *\nDisallow: /\n")
            }
            let style = try await proxy.request(host: "app.example.test", path: ProxyPages.stylesheetPath)
            #expect(style.status == 200)
            #expect(style.headers.first(name: "Content-Type")?.hasPrefix("text/css") == true)
            let keys = try await proxy.request(host: "app.example.test", path: "/.well-known/pomerium/jwks.json")
            #expect(keys.status == 200)
            let document = try JSONSerialization.jsonObject(with: Data(keys.body)) as? [String: Any]
            let first = (document?["keys"] as? [[String: Any]])?.first
            #expect(first?["kid"] as? String == proxy.signer.keyID)
            #expect(first?["alg"] as? String == "ES256")
            let unknown = try await proxy.request(host: "unknown.example.test", path: "/.pomerium/")
            #expect(unknown.status == 404)
        }
    }
}
