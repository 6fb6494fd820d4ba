import PomeriumHTTP
import PomeriumLogging
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

/// Requests that take the shortcuts of the authenticated path (the cookie header cache, the
/// request id from the dispatcher, the log level checks, the endpoint probe) get what the long
/// way gives.
@Suite("Request path shortcuts")
struct RequestShortcutTests {
    static func config(echo: String) -> String {
        """
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
          - from: https://ports.example.test:8443
            to: \(echo)
            prefix: /r
            allowed_users: [alice@corp.test]
        """
    }

    @Test("second Cookie field skips the cache")
    func secondCookieField() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let cookie = try proxy.cookieHeader(session) + "; app_pref=dark"
                let single = try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(single.status == 200)
                #expect(proxy.service.cookieHeaderCache.entry(for: cookie) != nil)
                let split = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", cookie), ("Cookie", "second=2")])
                #expect(split.status == 200)
                #expect(split.echo?.values("Cookie") == ["app_pref=dark; second=2"])
            }
        }
    }

    @Test("assigned request id everywhere")
    func assignedRequestID() async throws {
        let id = "0123456789abcdef0123456789abcdef"
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), assignedRequestID: id) { proxy in
                let unknown = try await proxy.request(host: "nowhere.example.test", path: "/")
                #expect(unknown.status == 404)
                #expect(unknown.headers["Request-Id"] == [id])
                #expect(unknown.text.contains(id))

                let mallory = proxy.session("mallory@corp.test", audience: ["app.example.test"])
                let denied = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(mallory))])
                #expect(denied.status == 403)
                #expect(denied.headers["Request-Id"] == [id])
                #expect(denied.text.contains(id))
                let decision = proxy.logs.all.first { $0.message == "authorize" }
                #expect(decision?.metadata["req_id"] == .string(id))

                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let allowed = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(alice))])
                #expect(allowed.status == 200)
                #expect(allowed.headers["Request-Id"] == [id])

                let dashboard = try await proxy.request(host: "app.example.test", path: "/.pomerium/")
                #expect(dashboard.status == 302)
                #expect(dashboard.headers["Request-Id"] == [id])
                for entry in proxy.logs.all where entry.metadata["req_id"] != nil {
                    #expect(entry.metadata["req_id"] == .string(id))
                }
            }
        }
    }

    @Test("drawn request id in header and log")
    func drawnRequestID() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let cookie = try proxy.cookieHeader(alice)
                var ids: [String] = []
                for _ in 0..<2 {
                    let allowed = try await proxy.request(
                        host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                    #expect(allowed.status == 200)
                    let id = try #require(allowed.headers.first(name: "Request-Id"))
                    #expect(id.utf8.count == 36)
                    #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
                    let logged = proxy.logs.all.filter {
                        $0.message == "http-request" && $0.metadata["req_id"] == .string(id)
                    }
                    #expect(logged.count == 1)
                    ids.append(id)
                }
                #expect(ids[0] != ids[1])
            }
        }
    }

    @Test("info level logs denials only")
    func infoLevelDecisions() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), infoLogs: true) { proxy in
                let mallory = proxy.session("mallory@corp.test", audience: ["app.example.test"])
                let cookie = try proxy.cookieHeader(mallory)
                for _ in 0..<2 {
                    let denied = try await proxy.request(
                        host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                    #expect(denied.status == 403)
                }
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let allowed = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(alice))])
                #expect(allowed.status == 200)
                let decisions = proxy.logs.all.filter { $0.message == "authorize" }
                #expect(decisions.count == 2)
                #expect(decisions.allSatisfy { $0.metadata["decision"] == "deny" })
                #expect(decisions.allSatisfy { $0.metadata["reason"] == "no-allow-rule-matched" })
                #expect(decisions.allSatisfy { $0.metadata["email"] == "mallory@corp.test" })
                #expect(!proxy.logs.all.contains { $0.message == "http-request" })
            }
        }
    }

    @Test("endpoints on every route host")
    func endpointProbe() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                for host in ["app.example.test", "APP.example.test", "ports.example.test:8443"] {
                    let keys = try await proxy.request(host: host, path: "/.well-known/pomerium/jwks.json")
                    #expect(keys.status == 200, "\(host)")
                    let robots = try await proxy.request(host: host, path: "/robots.txt")
                    #expect(robots.text == "User-agent: *\nDisallow: /\n", "\(host)")
                    let dashboard = try await proxy.request(host: host, path: "/.pomerium")
                    #expect(dashboard.status == 301, "\(host)")
                }
                // Normalised to an endpoint path before the probe.
                let dotted = try await proxy.request(host: "app.example.test", path: "/x/../.pomerium")
                #expect(dotted.status == 301)
                // "/r..." paths that are no endpoint go through the `prefix: /r` route, which wants a session.
                let routed = try await proxy.request(host: "ports.example.test:8443", path: "/robots")
                #expect(routed.status == 302)
                #expect(routed.headers.first(name: "Location")?.contains("sign_in") == true)
                let other = try await proxy.request(host: "ports.example.test:8443", path: "/x")
                #expect(other.status == 404)
            }
        }
    }
}
