import PomeriumCore
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Route sessions end with sign-out")
struct ProxySignOutTests {
    static func config(echo: String) -> String {
        """
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
        forward_auth_url: https://fwdauth.example.test
        """
    }

    @Test("a copied cookie stops working once the global session is gone")
    func signedOutCookieRejected() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), livenessStore: store) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let key = SessionLiveness.storeKey(accessTokenID: session.accessTokenID)
                try await store.set(key, value: [1], ttl: .seconds(3600))
                let cookie = try proxy.cookieHeader(session)
                let live = try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(live.status == 200)

                // Deleted by another process: served from memory until the 5-second recheck.
                try await store.delete(key)
                proxy.elapse(4)
                let cached = try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(cached.status == 200)
                proxy.elapse(2)
                let ended = try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(ended.status == 302)
                #expect(ended.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
                let xhr = try await proxy.request(
                    host: "app.example.test", path: "/",
                    headers: [("Cookie", cookie), ("X-Requested-With", "XMLHttpRequest")])
                #expect(xhr.status == 401)
            }
        }
    }

    @Test("user page rejects a signed-out cookie")
    func signedOutCookieRejectedByEndpoints() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), livenessStore: store) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let key = SessionLiveness.storeKey(accessTokenID: session.accessTokenID)
                try await store.set(key, value: [1], ttl: .seconds(3600))
                let cookie = try proxy.cookieHeader(session)
                let page = try await proxy.request(
                    host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", cookie)])
                #expect(page.status == 200)

                try await store.delete(key)
                proxy.elapse(6)
                let ended = try await proxy.request(
                    host: "app.example.test", path: "/.pomerium/", headers: [("Cookie", cookie)])
                #expect(ended.status == 302)
                #expect(ended.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
                #expect(!String(decoding: ended.body, as: UTF8.self).contains("alice@corp.test"))
            }
        }
    }

    @Test("sign-out in this process ends the session at once, and /verify agrees")
    func markedSignedOutRejectedAtOnce() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            for forwardAuth in [false, true] {
                try await ProxyHarness.run(
                    config: Self.config(echo: echo.baseURL), forwardAuth: forwardAuth, livenessStore: store
                ) { proxy in
                    let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                    try await store.set(
                        SessionLiveness.storeKey(accessTokenID: session.accessTokenID), value: [1], ttl: .seconds(3600))
                    let cookie = try proxy.cookieHeader(session)
                    let host = forwardAuth ? "fwdauth.example.test" : "app.example.test"
                    let path = forwardAuth ? "/verify?uri=https://app.example.test/" : "/"
                    let before = try await proxy.request(host: host, path: path, headers: [("Cookie", cookie)])
                    #expect(before.status == 200)
                    proxy.service.shared.liveness?.markSignedOut(session.accessTokenID)
                    let after = try await proxy.request(host: host, path: path, headers: [("Cookie", cookie)])
                    #expect(after.status == (forwardAuth ? 401 : 302))
                }
            }
        }
    }
}
