import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Proxy policy")
struct ProxyPolicyTests {
    static func config(echo: String) -> String {
        """
        administrators: [root@corp.test]
        policy:
          - from: https://users.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
          - from: https://domains.example.test
            to: \(echo)
            allowed_domains: [partner.test]
          - from: https://shared.example.test
            prefix: /ops
            to: \(echo)
            allowed_groups: [ops]
          - from: https://shared.example.test
            to: \(echo)
            allowed_users: [bob@corp.test]
          - from: https://public.example.test
            to: \(echo)
            allow_public_unauthenticated_access: true
        """
    }

    static let hosts = [
        "users.example.test", "domains.example.test", "shared.example.test", "public.example.test",
    ]

    @Test("two-route matrix grants nothing across routes")
    func policyMatrix() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let identities: [String: (email: String, groups: [String])] = [
                    "alice": ("alice@corp.test", []), "carol": ("carol@partner.test", []),
                    "bob": ("bob@corp.test", []), "dave": ("dave@corp.test", ["ops"]),
                    "root": ("root@corp.test", ["ops"]),
                ]
                // host, path, the identities allowed; everyone else gets 403.
                let cases: [(String, String, Set<String>)] = [
                    ("users.example.test", "/", ["alice"]),
                    ("domains.example.test", "/", ["carol"]),
                    ("shared.example.test", "/ops/panel", ["dave", "root"]),
                    ("shared.example.test", "/home", ["bob"]),
                    ("public.example.test", "/", ["alice", "carol", "bob", "dave", "root"]),
                    ("users.example.test", "/.pomerium/admin/tools", []),
                ]
                for (host, path, allowed) in cases {
                    for (name, identity) in identities {
                        let session = proxy.session(identity.email, groups: identity.groups, audience: Self.hosts)
                        let response = try await proxy.request(
                            host: host, path: path, headers: [("Cookie", try proxy.cookieHeader(session))])
                        let expected = allowed.contains(name) ? 200 : 403
                        #expect(response.status == expected, "\(name) on \(host)\(path)")
                        if expected == 200 {
                            #expect(response.echo?.path == path, "\(name) on \(host)\(path) reached the upstream")
                        }
                    }
                }
            }
        }
    }

    @Test("anonymous requests redirect to sign-in")
    func anonymousRedirect() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let response = try await proxy.request(host: "users.example.test", path: "/x?y=1")
                #expect(response.status == 302)
                let location = try #require(response.location)
                #expect(location.hasPrefix("https://authn.example.test/.pomerium/sign_in?"))
                let query = try ProxyHarness.query(of: location)
                #expect(query.value(for: "pomerium_redirect_uri") == "https://users.example.test/x?y=1")
                try proxy.urlSigner.validate(try HTTPURL(parsing: location))
                #expect(response.headers.first(name: "X-Pomerium-Intercepted-Response") == "true")

                let publicResponse = try await proxy.request(host: "public.example.test", path: "/open")
                #expect(publicResponse.status == 200)
                #expect(publicResponse.echo?.path == "/open")
            }
        }
    }

    @Test("XHR and JSON clients get 401 instead of a redirect")
    func scriptClients() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let xhr = try await proxy.request(
                    host: "users.example.test", path: "/", headers: [("X-Requested-With", "XMLHttpRequest")])
                #expect(xhr.status == 401)
                #expect(xhr.location == nil)
                let json = try await proxy.request(
                    host: "users.example.test", path: "/", headers: [("Accept", "application/json")])
                #expect(json.status == 401)
                #expect(json.headers.first(name: "Content-Type") == "application/json")
                #expect(json.text.contains("\"Status\":401"))
                #expect(json.text.contains("\"RequestID\":\""))
            }
        }
    }

    @Test("the dispatcher's request id is the one the page, the header and the log show")
    func dispatchedRequestID() async throws {
        let id = "0123abcd-4567-89ef-0123-456789abcdef"
        try await ProxyHarness.run(config: Self.config(echo: "http://127.0.0.1:9"), dispatchedRequestID: id) { proxy in
            let json = try await proxy.request(
                host: "users.example.test", path: "/", headers: [("Accept", "application/json")])
            #expect(json.status == 401)
            #expect(json.text.contains("\"RequestID\":\"\(id)\""))
            #expect(json.headers["Request-Id"] == [id])
            #expect(json.headers["X-Frame-Options"] == ["SAMEORIGIN"])
            let lines = proxy.logs.all.filter { $0.message == "http-request" }
            #expect(lines.last?.metadata["req_id"] == .string(id))
        }
    }

    @Test("without a dispatcher the handler makes a UUID-shaped id")
    func ownRequestID() async throws {
        try await ProxyHarness.run(config: Self.config(echo: "http://127.0.0.1:9")) { proxy in
            let json = try await proxy.request(
                host: "users.example.test", path: "/", headers: [("Accept", "application/json")])
            let id = try #require(json.headers.first(name: "Request-Id"))
            #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
            #expect(json.text.contains("\"RequestID\":\"\(id)\""))
        }
    }

    @Test("denied page hides reasons that the log keeps")
    func deniedPage() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("mallory@corp.test", audience: Self.hosts)
                let response = try await proxy.request(
                    host: "users.example.test", path: "/secret?token=abc",
                    headers: [("Cookie", try proxy.cookieHeader(session))])
                #expect(response.status == 403)
                #expect(!response.text.contains("alice"))
                #expect(!response.text.contains("no-allow-rule-matched"))
                #expect(response.headers.first(name: "Content-Security-Policy") == ProxyPages.contentSecurityPolicy)
                let decisions = proxy.logs.all.filter { $0.message == "authorize" }
                #expect(decisions.count == 1)
                #expect(decisions.first?.metadata["reason"] == "no-allow-rule-matched")
                #expect(decisions.first?.metadata["decision"] == "deny")
                #expect(decisions.first?.metadata["route"] == "policy[0]")
                #expect(decisions.first?.level == .warning, "log_level warn keeps denials")
                let access = proxy.logs.all.filter { $0.message == "http-request" }
                #expect(access.count == 1)
                #expect(access.first?.metadata["path"] == "/secret")
                #expect(access.first?.metadata["status"] == .stringConvertible(403))
                #expect(access.first?.metadata["email"] == nil)
                for entry in proxy.logs.all {
                    #expect(!entry.jsonLine.contains("token=abc"))
                    #expect(!entry.jsonLine.contains(String(try proxy.cookieHeader(session).prefix(30))))
                }
            }
        }
    }

    @Test("sessions for another host are not accepted")
    func audienceMismatch() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["domains.example.test"])
                let cookie = try await proxy.request(
                    host: "users.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(session))])
                #expect(cookie.status == 302)
                let header = try await proxy.request(
                    host: "users.example.test", path: "/",
                    headers: [("Authorization", "Pomerium " + (try proxy.token(session)))])
                #expect(header.status == 302)
            }
        }
    }

    @Test("route tokens load from headers and the query")
    func tokenSources() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let token = try proxy.token(
                    proxy.session("alice@corp.test", groups: ["Team A", "ops"], audience: Self.hosts))
                let pomerium = try await proxy.request(
                    host: "users.example.test", path: "/", headers: [("Authorization", "Pomerium " + token)])
                #expect(pomerium.status == 200)
                #expect(pomerium.echo?.values("Authorization") == [], "the product's credential is not forwarded")
                let bearer = try await proxy.request(
                    host: "users.example.test", path: "/", headers: [("Authorization", "Bearer " + token)])
                #expect(bearer.status == 200)
                #expect(bearer.echo?.values("Authorization") == [], "a Bearer route token is not forwarded")
                let application = try await proxy.request(
                    host: "public.example.test", path: "/", headers: [("Authorization", "Bearer app-token")])
                #expect(application.echo?.values("Authorization") == ["Bearer app-token"])
                let publicBearer = try await proxy.request(
                    host: "public.example.test", path: "/", headers: [("Authorization", "Bearer " + token)])
                #expect(publicBearer.status == 200)
                #expect(publicBearer.echo?.values("Authorization") == [], "nor on a public route")
                let query = try await proxy.request(
                    host: "users.example.test", path: "/list?a=1&pomerium_session=\(token)&b=2",
                    headers: [("X-Forwarded-For", "203.0.113.7")])
                #expect(query.status == 200)
                #expect(query.echo?.path == "/list?a=1&b=2")
                let access = proxy.logs.all.filter { $0.message == "http-request" }
                #expect(access.count == 5)
                #expect(access.last?.metadata["path"] == "/list")
                #expect(access.last?.metadata["email"] == "alice@corp.test")
                #expect(access.last?.metadata["status"] == .stringConvertible(200))
                #expect(access.last?.metadata["ip"] == "127.0.0.1")
                #expect(access.last?.metadata["groups"] == ["Team A", "ops"])
                #expect(access.last?.metadata["X-Forwarded-For"] == ["203.0.113.7"])
                for entry in proxy.logs.all {
                    #expect(!entry.jsonLine.contains(String(token.suffix(20))), "no token in the log")
                }
            }
        }
    }

    @Test("CORS preflight passes without a session")
    func corsPreflight() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://api.example.test
                    to: \(echo.baseURL)
                    allowed_users: [alice@corp.test]
                    cors_allow_preflight: true
                    allow_websockets: true
                    set_request_headers:
                      X-Set: route
                """
            try await ProxyHarness.run(config: config) { proxy in
                let preflight = try await proxy.request(
                    .options, host: "api.example.test", path: "/items",
                    headers: [
                        ("Origin", "https://app.example.test"), ("Access-Control-Request-Method", "PUT"),
                        ("X-Pomerium-Claim-Email", "forged@corp.test"),
                    ])
                #expect(preflight.status == 200)
                #expect(preflight.echo?.method == "OPTIONS")
                #expect(preflight.echo?.values("X-Pomerium-Jwt-Assertion") == [])
                #expect(preflight.echo?.values("X-Pomerium-Claim-Email") == [])
                #expect(preflight.echo?.values("X-Set") == [], "preflights skip set_request_headers")
                let plainOptions = try await proxy.request(.options, host: "api.example.test", path: "/items")
                #expect(plainOptions.status == 302)
                let origin = [("Origin", "https://app.example.test"), ("Access-Control-Request-Method", "PUT")]
                let withBody = try await proxy.request(
                    .options, host: "api.example.test", path: "/items", headers: origin, body: Array("data".utf8))
                #expect(withBody.status == 302, "a preflight never has a body")
                let upgrade = try await proxy.request(
                    .options, host: "api.example.test", path: "/items",
                    headers: origin + [
                        ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ])
                #expect(upgrade.status == 302, "a preflight is never an upgrade")
                let emptyBody = try await proxy.request(
                    .options, host: "api.example.test", path: "/items", headers: origin + [("Content-Length", "0")])
                #expect(emptyBody.status == 200)
            }
        }
    }
}
