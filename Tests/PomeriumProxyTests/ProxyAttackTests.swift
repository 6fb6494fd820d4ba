import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

/// Regression tests for defects found by attacking the running product.
@Suite("Proxy attacks")
struct ProxyAttackTests {
    static func config(echo: String) -> String {
        """
        policy:
          - from: https://site.example.test
            prefix: /admin
            to: \(echo)
            allowed_users: [root@corp.test]
          - from: https://site.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
        """
    }

    @Test(
        "encoded session parameter stripped",
        arguments: ["pomerium%5Fsession", "pomerium%5fsession", "%70omerium_session", "pomerium_sessio%6E"])
    func encodedSessionParameter(_ name: String) async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let token = try proxy.token(proxy.session("alice@corp.test", audience: ["site.example.test"]))
                let response = try await proxy.request(
                    host: "site.example.test", path: "/list?a=1&\(name)=\(token)&b=2")
                #expect(response.status == 200, "the loader decodes the name, so the token signs the user in")
                #expect(response.echo?.path == "/list?a=1&b=2")
                #expect(response.echo?.path.contains(String(token.suffix(20))) == false, "no token upstream")
            }
        }
    }

    @Test("session parameter removal keeps other pairs")
    func removingKeepsOtherPairs() {
        #expect(UpstreamRequestBuilder.removingSessionParameter("a=%41&pomerium%5Fsession=t&b=c+d") == "a=%41&b=c+d")
        #expect(UpstreamRequestBuilder.removingSessionParameter("pomerium%5Fsession=t") == nil)
        #expect(
            UpstreamRequestBuilder.removingSessionParameter("x=%zz&pomerium_sessionx=1") == "x=%zz&pomerium_sessionx=1")
    }

    @Test(
        "dot segments with parameters rejected",
        arguments: ["/x/..;/admin", "/.;/admin", "/;/admin", "/x/%2e%2e;/admin/panel"])
    func parameterDotSegments(_ path: String) async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let alice = proxy.session("alice@corp.test", audience: ["site.example.test"])
                let response = try await proxy.request(
                    host: "site.example.test", path: path, headers: [("Cookie", try proxy.cookieHeader(alice))])
                #expect(response.status == 400)
                #expect(response.echo == nil, "nothing reached the upstream")
                let named = try await proxy.request(
                    host: "site.example.test", path: "/page;jsessionid=1",
                    headers: [("Cookie", try proxy.cookieHeader(alice))])
                #expect(
                    named.echo?.path == "/page;jsessionid=1",
                    "parameters on a named segment still pass: status \(named.status), body \(named.bodyPrefix)")
            }
        }
    }
}
