import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

/// Attacks on the forward-auth endpoints and the cases around them that the end-to-end attack
/// tests (tests/e2e/test_forward_auth_attacks.py) cannot reach without a real provider.
@Suite("Forward-auth attacks")
struct ForwardAuthAttackTests {
    static let config = ForwardAuthEndpointTests.config

    @Test("audience entry prefers the exact host and port")
    func audienceEntry() {
        let audience = ["authn.example.test", "App.example.test", "app.example.test:9443"]
        #expect(
            ForwardAuthHandler.audienceEntry(audience, namingHostOf: "app.example.test:9443") == "app.example.test:9443"
        )
        #expect(ForwardAuthHandler.audienceEntry(audience, namingHostOf: "app.example.test:8443") == "App.example.test")
        #expect(ForwardAuthHandler.audienceEntry(audience, namingHostOf: "other.example.test") == nil)
    }

    @Test("expired cross-port session is refreshed")
    func crossPortRefresh() async throws {
        let minted = MintedToken()
        let refresher = RecordingRefresher { _ in minted.value }
        try await ProxyHarness.run(config: Self.config, refresher: refresher, forwardAuth: true) { proxy in
            minted.value = try proxy.token(
                proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 7200))
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
            let response = try await ForwardAuthEndpointTests.verify(
                proxy, "https://app.example.test:9443/x", cookie: try proxy.cookieHeader(expired))
            #expect(response.status == 200)
            #expect(response.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair).count == 1)
            #expect(refresher.recorded.count == 1)
        }
    }

    @Test("refresh for another host's session is not accepted")
    func refreshForeignAudience() async throws {
        let minted = MintedToken()
        let refresher = RecordingRefresher { _ in minted.value }
        try await ProxyHarness.run(config: Self.config, refresher: refresher, forwardAuth: true) { proxy in
            // The refresh returns a session for another host: it must not open app.example.test.
            minted.value = try proxy.token(
                proxy.session("alice@corp.test", audience: ["other.example.test"], expiresIn: 7200))
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
            let response = try await ForwardAuthEndpointTests.verify(
                proxy, "https://app.example.test/x", cookie: try proxy.cookieHeader(expired))
            #expect(response.status == 401)
            #expect(response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
        }
    }

    @Test("refresh failure redirect has no body")
    func refreshFailureRedirect() async throws {
        try await ProxyHarness.run(config: Self.config, refresher: RecordingRefresher.failing(), forwardAuth: true) {
            proxy in
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
            let response = try await ForwardAuthEndpointTests.verify(
                proxy, "https://app.example.test:9443/x", cookie: try proxy.cookieHeader(expired), path: "/")
            #expect(response.status == 302)
            #expect(response.body.isEmpty)
            #expect(response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
        }
    }

    @Test("public route returns no identity for a session")
    func publicRouteNoIdentity() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let alice = proxy.session("alice@corp.test", audience: ["public.example.test"])
            let response = try await ForwardAuthEndpointTests.verify(
                proxy, "https://public.example.test/", cookie: try proxy.cookieHeader(alice))
            #expect(response.status == 200)
            #expect(response.headers.first(name: "X-Pomerium-Jwt-Assertion") == nil)
            #expect(response.headers.first(name: "X-Pomerium-Claim-Email") == nil)
        }
    }

    @Test("forwarded method from an untrusted peer is ignored")
    func untrustedForwardedMethod() async throws {
        let config = """
            forward_auth_url: https://fwdauth.example.test
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:9
                allowed_users: [alice@corp.test]
                cors_allow_preflight: true
            """
        try await ProxyHarness.run(config: config, forwardAuth: true) { proxy in
            let cors = [("Origin", "https://web.example.test"), ("Access-Control-Request-Method", "PUT")]
            let disguised = try await ForwardAuthEndpointTests.verify(
                proxy, "https://app.example.test/", headers: cors + [("X-Forwarded-Method", "OPTIONS")])
            #expect(disguised.status == 401)
            let preflight = try await proxy.request(
                .options, host: ForwardAuthEndpointTests.forwardHost, path: "/verify?uri=https://app.example.test/",
                headers: cors)
            #expect(preflight.status == 200)
        }
    }
}
