import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Proxy headers")
struct ProxyHeaderTests {
    static func config(echo: String, extra: String = "") -> String {
        """
        jwt_claims_headers: [email, groups]
        \(extra)
        policy:
          - from: https://app.example.test
            to: \(echo)/base?fixed=1
            allowed_users: [alice@corp.test]
            set_request_headers:
              X-Set: route-value
          - from: https://public.example.test
            to: \(echo)
            allow_public_unauthenticated_access: true
          - from: https://kept.example.test
            to: \(echo)
            allow_public_unauthenticated_access: true
            preserve_host_header: true
        """
    }

    static let forgedHeaders: [(String, String)] = [
        ("X-Pomerium-Jwt-Assertion", "forged-1"), ("x-pomerium-jwt-assertion", "forged-2"),
        ("X_Pomerium_Jwt_Assertion", "forged-3"), ("X-POMERIUM-JWT_ASSERTION", "forged-4"),
        ("X-Pomerium-Claim-Email", "evil@corp.test"), ("x_pomerium_claim_email", "evil@corp.test"),
        ("X-POMERIUM-CLAIM-GROUPS", "admins"), ("X-Pomerium-Claim-Role", "admin"),
        ("X-Pomerium-Authenticated-User-Email", "evil@corp.test"),
    ]

    @Test("client identity headers never reach the upstream")
    func headerSmuggling() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session(
                    "alice@corp.test", groups: ["staff", "dev"], audience: ["app.example.test"])
                let response = try await proxy.request(
                    host: "app.example.test", path: "/page",
                    headers: [("Cookie", try proxy.cookieHeader(session))] + Self.forgedHeaders)
                #expect(response.status == 200)
                let answer = try #require(response.echo)
                let expected = try proxy.signer.assertion(
                    for: session, sessionID: session.accessTokenID, route: "policy[0]")
                #expect(answer.values("X-Pomerium-Jwt-Assertion") == [expected])
                #expect(answer.values("X-Pomerium-Claim-Email") == ["alice@corp.test"])
                #expect(answer.values("X-Pomerium-Claim-Groups") == ["staff,dev"])
                let smuggled = answer.names.filter {
                    let name = $0.lowercased().replacingOccurrences(of: "_", with: "-")
                    return name.hasPrefix("x-pomerium") && $0 != "X-Pomerium-Jwt-Assertion"
                        && $0 != "X-Pomerium-Claim-Email" && $0 != "X-Pomerium-Claim-Groups"
                }
                #expect(smuggled == [])
                #expect(response.headers.first(name: "X-Pomerium-Jwt-Assertion") == nil)

                let anonymous = try await proxy.request(
                    host: "public.example.test", path: "/", headers: Self.forgedHeaders)
                #expect(anonymous.status == 200)
                let publicNames = try #require(anonymous.echo).names.map { $0.lowercased() }
                #expect(!publicNames.contains { $0.hasPrefix("x-pomerium") || $0.hasPrefix("x_pomerium") })
            }
        }
    }

    @Test("product cookies are stripped and app cookies kept")
    func cookieStripping() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let cookie =
                    try proxy.cookieHeader(session)
                    + "; _pomerium_1=chunk; _pomerium_csrf=token; _pomerium_signin=1.nonce; _pomerium_app=keep; theme=dark"
                    + "; _pomerium_01=keep2"
                let response = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(response.status == 200)
                #expect(response.echo?.values("Cookie") == ["_pomerium_app=keep; theme=dark; _pomerium_01=keep2"])

                let publicResponse = try await proxy.request(
                    host: "public.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(publicResponse.echo?.values("Cookie") == ["_pomerium_app=keep; theme=dark; _pomerium_01=keep2"])
                let onlyProduct = try await proxy.request(
                    host: "public.example.test", path: "/", headers: [("Cookie", "_pomerium=x; _pomerium_2=y")])
                #expect(onlyProduct.echo?.values("Cookie") == [])
            }
        }
    }

    @Test("forwarded headers are replaced for untrusted clients")
    func untrustedForwarding() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let response = try await proxy.request(
                    host: "public.example.test", path: "/",
                    headers: [
                        ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Host", "evil.test"),
                        ("X-Forwarded-Proto", "https"), ("X_Forwarded_Host", "evil.test"), ("Forwarded", "for=1.2.3.4"),
                        ("X-Real-Ip", "1.2.3.4"),
                    ])
                let answer = try #require(response.echo)
                #expect(answer.values("X-Forwarded-For") == ["127.0.0.1"])
                #expect(answer.values("X-Forwarded-Host") == ["public.example.test"])
                #expect(answer.values("X-Forwarded-Proto") == ["http"])
                #expect(answer.values("X_Forwarded_Host") == [])
                #expect(answer.values("Forwarded") == [])
                #expect(answer.values("X-Real-Ip") == [])
            }
        }
    }

    @Test("forwarded headers are kept from trusted proxies")
    func trustedForwarding() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = Self.config(echo: echo.baseURL, extra: "trusted_proxies: [127.0.0.0/8]")
            try await ProxyHarness.run(config: config) { proxy in
                let response = try await proxy.request(
                    host: "public.example.test", path: "/",
                    headers: [
                        ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Host", "front.example.test"),
                        ("X-Forwarded-Proto", "https"),
                    ])
                let answer = try #require(response.echo)
                #expect(answer.values("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"])
                #expect(answer.values("X-Forwarded-Host") == ["front.example.test"])
                #expect(answer.values("X-Forwarded-Proto") == ["https"])
            }
        }
    }

    @Test("upstream target joins paths and merges queries")
    func upstreamTarget() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let response = try await proxy.request(
                    host: "app.example.test", path: "/items/7?q=2",
                    headers: [("Cookie", try proxy.cookieHeader(session)), ("X-Set", "client-value")])
                let answer = try #require(response.echo)
                #expect(answer.path == "/base/items/7?fixed=1&q=2")
                #expect(answer.values("X-Set") == ["route-value"])
                #expect(answer.values("Host") == ["127.0.0.1:\(echo.port)"])

                let kept = try await proxy.request(host: "kept.example.test", path: "/")
                #expect(kept.echo?.values("Host") == ["kept.example.test"])
            }
        }
    }

    @Test("response headers are set once on every response")
    func responseHeaders() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let proxied = try await proxy.request(host: "public.example.test", path: "/")
                let page = try await proxy.request(host: "unknown.example.test", path: "/")
                for response in [proxied, page] {
                    #expect(response.headers["X-Frame-Options"] == ["SAMEORIGIN"])
                    #expect(response.headers["X-Content-Type-Options"] == ["nosniff"])
                    #expect(response.headers["X-XSS-Protection"] == ["1; mode=block"])
                    #expect(response.headers.count(name: "Strict-Transport-Security") == 1)
                    #expect(response.headers.count(name: "Request-Id") == 1)
                }
                #expect(proxied.headers.first(name: "X-Pomerium-Intercepted-Response") == nil)
                #expect(page.status == 404)
                #expect(page.text.contains("unknown.example.test route unknown"))
                #expect(page.headers.first(name: "X-Pomerium-Intercepted-Response") == "true")
            }
            let disabled = Self.config(echo: echo.baseURL, extra: "headers:\n  disable: \"true\"")
            try await ProxyHarness.run(config: disabled) { proxy in
                let proxied = try await proxy.request(host: "public.example.test", path: "/")
                #expect(proxied.headers.first(name: "X-Frame-Options") == nil)
                #expect(proxied.headers.first(name: "X-Content-Type-Options") == nil)
            }
        }
    }

    @Test("response fields Connection names are dropped")
    func connectionNamedResponseFields() async throws {
        let fields: [(name: String, value: String)] = [
            ("X-Early", "e"), ("Connection", "keep-alive, X-Early"), ("connection", "x-LATE, Upgrade"),
            ("X-Late", "l"), ("Keep-Alive", "timeout=5"), ("X-Kept", "k"), ("X-Pomerium-Jwt-Assertion", "forged"),
            ("Content-Type", "text/plain"),
        ]
        try await FixedFieldsUpstream.with(fields: fields) { port in
            let config = """
                policy:
                  - from: https://public.example.test
                    to: http://127.0.0.1:\(port)
                    allow_public_unauthenticated_access: true
                """
            try await ProxyHarness.run(config: config) { proxy in
                // Twice, so the second response is built in the storage of the first.
                for _ in 0..<2 {
                    let response = try await proxy.request(host: "public.example.test", path: "/")
                    #expect(response.status == 200)
                    #expect(response.headers.first(name: "X-Early") == nil)
                    #expect(response.headers.first(name: "X-Late") == nil)
                    #expect(response.headers.first(name: "Keep-Alive") == nil)
                    #expect(response.headers.first(name: "Connection") == nil)
                    #expect(response.headers.first(name: "X-Pomerium-Jwt-Assertion") == nil)
                    #expect(response.headers["X-Kept"] == ["k"])
                    #expect(response.headers["Content-Type"] == ["text/plain"])
                    #expect(response.headers.count(name: "Request-Id") == 1)
                }
            }
        }
    }

    @Test("Connection options cannot remove Host or Content-Length")
    func connectionCannotNameHostOrLength() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                for option in ["Host", "keep-alive, HOST", "Content-Length, host"] {
                    let response = try await proxy.request(
                        .post, host: "kept.example.test", path: "/form", headers: [("Connection", option)],
                        body: Array("a=1&b=2".utf8))
                    #expect(response.status == 200)
                    let answer = try #require(response.echo)
                    #expect(answer.values("Host") == ["kept.example.test"], "\(option)")
                    #expect(answer.values("X-Forwarded-Host") == ["kept.example.test"], "\(option)")
                    #expect(answer.values("Content-Length") == ["7"], "\(option)")
                }
                let named = try await proxy.request(
                    host: "public.example.test", path: "/", headers: [("Connection", "X-Drop"), ("X-Drop", "1")])
                #expect(named.echo?.values("X-Drop") == [], "other fields that Connection names are still removed")
            }
        }
    }

    @Test("an upstream cannot set the product's cookies")
    func upstreamProductCookiesDropped() async throws {
        let fields: [(name: String, value: String)] = [
            ("Set-Cookie", "_pomerium=planted; Domain=example.test; Path=/"), ("set-cookie", " _pomerium_2=planted"),
            ("SET-COOKIE", "_pomerium_csrf=planted"), ("Set-Cookie", "_pomerium_signin=planted"),
            ("Set-Cookie", "app=kept; Path=/"), ("Set-Cookie", "_pomerium_app=kept"),
        ]
        try await FixedFieldsUpstream.with(fields: fields) { port in
            let config = """
                policy:
                  - from: https://public.example.test
                    to: http://127.0.0.1:\(port)
                    allow_public_unauthenticated_access: true
                """
            try await ProxyHarness.run(config: config) { proxy in
                let response = try await proxy.request(host: "public.example.test", path: "/")
                #expect(response.status == 200)
                #expect(response.headers["Set-Cookie"] == ["app=kept; Path=/", "_pomerium_app=kept"])
            }
        }
    }

    @Test("path normalisation attacks cannot reach a protected path")
    func pathNormalisation() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://site.example.test
                    prefix: /admin
                    to: \(echo.baseURL)
                    allowed_users: [root@corp.test]
                  - from: https://site.example.test
                    prefix: /secret/
                    to: \(echo.baseURL)
                    allowed_users: [root@corp.test]
                  - from: https://site.example.test
                    to: \(echo.baseURL)
                    allow_public_unauthenticated_access: true
                """
            try await ProxyHarness.run(config: config) { proxy in
                // A servlet container serves `/secret;x/page` as `/secret/page`, which the
                // `/secret/` route protects, so parameters that change the route get 400.
                let cases: [(String, Int)] = [
                    ("/admin", 302), ("//admin", 302), ("/public/../admin", 302), ("/./admin/", 302),
                    ("/%2e%2e/admin", 400), ("/public/%2e%2e/admin", 400), ("/admin%2Fx", 400), ("/%61dmin", 302),
                    ("/public/.%2e/admin", 400), ("/public", 200), ("/secret;x/page", 400), ("/secret/a;x/b", 302),
                    ("/public;jsessionid=1", 200), ("/secret;x", 200), ("/secret%3Bx/page", 200),
                ]
                for (path, status) in cases {
                    let response = try await proxy.request(host: "site.example.test", path: path)
                    #expect(response.status == status, "\(path)")
                }
                let merged = try await proxy.request(host: "site.example.test", path: "/public//x/./y")
                #expect(merged.echo?.path == "/public/x/y", "the upstream sees the path that policy saw")
            }
        }
    }
}

/// An upstream in the test process that responds to every request with fixed response fields.
final class FixedFieldsUpstream: HTTPRequestHandler {
    let fields: [(name: String, value: String)]

    init(fields: [(name: String, value: String)]) { self.fields = fields }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        responder.respond(status: 200, headers: HTTPHeaders(fields), body: Array("ok".utf8))
    }

    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}

    /// Runs `body` with the upstream's port, the upstream serving on its own loop.
    static func with<T>(
        fields: [(name: String, value: String)], _ body: (Int) async throws -> T
    ) async throws -> T {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        ) { _ in
            FixedFieldsUpstream(fields: fields)
        }
        do {
            let result = try await body(server.localAddress.port)
            await server.shutdown(gracePeriod: 1)
            return result
        } catch {
            await server.shutdown(gracePeriod: 1)
            throw error
        }
    }
}
