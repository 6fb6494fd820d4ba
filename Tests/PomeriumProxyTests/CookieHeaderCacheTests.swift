import PomeriumCore
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Cookie header cache")
struct CookieHeaderCacheTests {
    static func entry(_ header: String, email: String) -> CookieHeaderCache.Entry {
        var session = SessionState()
        session.email = email
        return CookieHeaderCache.Entry(
            header: header, cookies: CookieParser.parse(header), session: session, keptCookieHeader: nil)
    }

    @Test("a hit needs every byte of the header")
    func exactHit() {
        let cache = CookieHeaderCache(capacity: 16)
        let header = "_pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789"
        cache.store(Self.entry(header, email: "a@example.test"))
        #expect(cache.entry(for: header)?.session.email == "a@example.test")
        #expect(cache.entry(for: String(header.dropLast())) == nil)
        // Same length and the same last 32 bytes, different elsewhere: the same slot, no hit.
        let sibling = "_pomerium=v1.Abcdefghijklmnopqrstuvwxyz0123456789"
        #expect(cache.entry(for: sibling) == nil)
    }

    @Test("a header that shares the slot replaces the entry, and lookups stay single")
    func collisionReplaces() {
        let cache = CookieHeaderCache(capacity: 16)
        let first = "a=1; _pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789"
        let second = "b=1; _pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789"
        cache.store(Self.entry(first, email: "first@example.test"))
        cache.store(Self.entry(second, email: "second@example.test"))
        #expect(cache.entry(for: first) == nil)
        #expect(cache.entry(for: second)?.session.email == "second@example.test")
        #expect(cache.count == 1)
    }

    @Test("the slot count is a power of two and capacity 0 stores nothing")
    func bounds() {
        let cache = CookieHeaderCache(capacity: 3)
        for index in 0..<100 { cache.store(Self.entry("_pomerium=v1.value-\(index)", email: "u\(index)@x.test")) }
        #expect(cache.count <= 4)
        let off = CookieHeaderCache(capacity: 0)
        off.store(Self.entry("_pomerium=v1.value", email: "u@x.test"))
        #expect(off.entry(for: "_pomerium=v1.value") == nil)
        #expect(off.count == 0)
    }

    @Test("long headers are not stored")
    func longHeaderSkipped() {
        let cache = CookieHeaderCache(capacity: 16)
        let longest = "_pomerium=" + String(repeating: "a", count: CookieHeaderCache.maximumHeaderLength - 10)
        let tooLong = longest + "b"
        cache.store(Self.entry(longest, email: "fits@example.test"))
        cache.store(Self.entry(tooLong, email: "long@example.test"))
        #expect(cache.entry(for: longest)?.session.email == "fits@example.test")
        #expect(cache.entry(for: tooLong) == nil)
    }

    static func config(echo: String) -> String {
        """
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
          - from: https://other.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
        """
    }

    @Test("a cached header still expires, keeps its audience and forwards the other cookies")
    func checksAfterHit() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 60)
                let cookie = try proxy.cookieHeader(session) + "; app_pref=dark"
                for _ in 0..<2 {
                    let allowed = try await proxy.request(
                        host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                    #expect(allowed.status == 200)
                    #expect(allowed.echo?.values("Cookie") == ["app_pref=dark"])
                }
                #expect(proxy.service.cookieHeaderCache.entry(for: cookie) != nil)
                // The session's audience lacks this host, cached or not.
                let otherHost = try await proxy.request(
                    host: "other.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(otherHost.status == 302)
                // Past `exp` the cached session leads to sign-in. The refresher fails, so the
                // cookie is cleared.
                proxy.clock.advance(by: 61)
                let expired = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(expired.status == 302)
                #expect(expired.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
            }
        }
    }
}
