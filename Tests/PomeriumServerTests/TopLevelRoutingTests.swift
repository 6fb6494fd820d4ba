import PomeriumHTTP
import PomeriumServer
import Testing

@Suite("Top-level routing")
struct TopLevelRoutingTests {
    let authenticate = AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: nil)

    func destination(
        _ method: HTTPMethod = .get, _ path: String = "/", host: String? = "app.example.test", port: Int? = nil,
        authenticateHost: AuthenticateHost? = AuthenticateHost(
            scheme: "https", host: "authenticate.example.test", port: nil),
        runsProxy: Bool = true
    ) -> TopLevelDestination {
        TopLevelRouting.destination(
            method: method, path: path, authority: host.map { ($0, port) }, authenticateHost: authenticateHost,
            runsProxy: runsProxy)
    }

    @Test("healthz answers GET and HEAD on every host and refuses other methods")
    func health() {
        #expect(destination(.get, "/healthz") == .health)
        #expect(destination(.head, "/healthz", host: "authenticate.example.test") == .health)
        #expect(destination(.post, "/healthz") == .methodNotAllowed)
        #expect(destination(.get, "/healthz", host: nil, runsProxy: false) == .health)
    }

    @Test("ping answers GET and HEAD on every host, before the authenticate host")
    func ping() {
        #expect(destination(.get, "/ping", host: "authenticate.example.test") == .ping)
        #expect(destination(.head, "/ping") == .ping)
        #expect(destination(.delete, "/ping") == .methodNotAllowed)
    }

    /// The local paths are compared by length first, so paths one byte off in length or content
    /// must still reach the services.
    @Test("paths next to the local paths go on")
    func nearLocalPaths() {
        for path in ["/healthz/", "/health", "/healthy", "/Healthz", "/pin", "/pings", "/pinG", "/ping?", "//ping"] {
            #expect(destination(.get, path) == .proxy, "\(path)")
            #expect(destination(.get, path, host: "authenticate.example.test") == .authenticate, "\(path)")
            #expect(destination(.get, path, host: nil) == .proxy, "\(path)")
            #expect(destination(.get, path, host: nil, runsProxy: false) == .notFound, "\(path)")
        }
    }

    @Test("the authenticate host goes to the authenticate service, in any letter case")
    func authenticateHost() {
        #expect(destination(host: "authenticate.example.test") == .authenticate)
        #expect(destination(host: "Authenticate.Example.Test") == .authenticate)
        #expect(destination(.post, "/oauth2/callback", host: "authenticate.example.test") == .authenticate)
        #expect(destination(host: "app.example.test") == .proxy)
        #expect(destination(host: "authenticate.example.test.evil.test") == .proxy)
    }

    @Test("the request port is ignored when the authenticate URL has the default port")
    func defaultPortIgnored() {
        #expect(destination(host: "authenticate.example.test", port: 443) == .authenticate)
        #expect(destination(host: "authenticate.example.test", port: 8443) == .authenticate)
        let explicitDefault = AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: 443)
        #expect(explicitDefault.port == nil)
        #expect(AuthenticateHost(scheme: "http", host: "a.test", port: 80).port == nil)
    }

    @Test("a non-default port in the authenticate URL must match the request's port")
    func nonDefaultPortMatters() {
        let host = AuthenticateHost(scheme: "https", host: "authenticate.localhost", port: 8443)
        #expect(destination(host: "authenticate.localhost", port: 8443, authenticateHost: host) == .authenticate)
        #expect(destination(host: "authenticate.localhost", port: 9443, authenticateHost: host) == .proxy)
        #expect(destination(host: "authenticate.localhost", port: nil, authenticateHost: host) == .proxy)
    }

    @Test("IPv6 literals match with or without brackets")
    func ipv6() {
        let host = AuthenticateHost(scheme: "https", host: "[::1]", port: nil)
        #expect(host.host == "::1")
        #expect(host.matches(host: "[::1]", port: 443))
        #expect(host.matches(host: "::1", port: nil))
    }

    @Test(
        "absolute target against Host",
        arguments: [
            ("https://app.example.test/x", "app.example.test", true),
            ("https://app.example.test/x", "APP.example.test:443", true),
            ("http://app.example.test:8080/", "app.example.test:8080", true),
            ("https://other.example.test/x", "app.example.test", false),
            ("https://authenticate.example.test/.pomerium/sign_out", "app.example.test", false),
            ("https://app.example.test:8443/", "app.example.test", false),
            ("https://app.example.test/", "app.example.test:8443", false),
            ("https://[::1]:8443/", "[::1]:8443", true),
        ])
    func absoluteTargetAgainstHost(_ target: String, _ host: String, _ agrees: Bool) throws {
        let head = try HTTPRequestHead(method: .get, target: target, headers: ["Host": host])
        #expect(TopLevelRouting.targetAgreesWithHost(head) == agrees)
    }

    @Test("origin-form target always agrees")
    func originFormAgrees() throws {
        #expect(TopLevelRouting.targetAgreesWithHost(try HTTPRequestHead(method: .get, target: "/a")))
        #expect(!TopLevelRouting.targetAgreesWithHost(try HTTPRequestHead(method: .get, target: "https://a.test/")))
    }

    @Test("without the proxy, other hosts get 404; without authenticate, everything goes to the proxy")
    func modes() {
        #expect(destination(host: "app.example.test", runsProxy: false) == .notFound)
        #expect(destination(host: nil, runsProxy: false) == .notFound)
        #expect(destination(host: "authenticate.example.test", authenticateHost: nil) == .proxy)
    }

    @Test("forward-auth takes verify and root with a uri on its host")
    func forwardAuth() {
        let forward = AuthenticateHost(scheme: "http", host: "127.0.0.1", port: 8080)
        func route(
            _ path: String, _ query: String?, host: String = "127.0.0.1", port: Int? = 8080, forwarded: Bool = false
        )
            -> TopLevelDestination
        {
            TopLevelRouting.destination(
                method: .get, path: path, authority: (host, port), authenticateHost: authenticate, runsProxy: true,
                query: query, hasForwardedURI: forwarded, forwardAuthHost: forward)
        }
        #expect(route("/verify", "uri=http://127.0.0.1:8080/a?b=1") == .forwardAuth)
        #expect(route("/", "auth_status=403&uri=http%3A%2F%2Fapp") == .forwardAuth)
        #expect(route("/", nil, forwarded: true) == .forwardAuth)
        #expect(route("/", nil) == .proxy, "a request without uri belongs to a route on the same host")
        #expect(route("/verify", "url=http://app") == .proxy)
        #expect(route("/other", "uri=http://app") == .proxy)
        #expect(route("/verify", "uri=http://app", port: 9090) == .proxy, "a non-default port must match")
        #expect(route("/healthz", "uri=http://app") == .health)
        let anyPort = AuthenticateHost(scheme: "https", host: "fwdauth.example.test", port: nil)
        #expect(
            TopLevelRouting.destination(
                method: .get, path: "/verify", authority: ("fwdauth.example.test", 8443),
                authenticateHost: authenticate,
                runsProxy: true, query: "uri=https://app", forwardAuthHost: anyPort) == .forwardAuth)
    }

}

@Suite("HTTPS redirect location")
struct HTTPSRedirectTests {
    func head(_ target: String, host: String?) throws -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let host { headers.add(name: "Host", value: host) }
        return try HTTPRequestHead(method: .get, target: target, headers: headers)
    }

    @Test("redirect keeps path and query")
    func keepsPathAndQuery() throws {
        let location = HTTPSRedirect.location(
            for: try head("/a/b%20c?x=1&y=2", host: "app.example.test"), httpsPort: 443)
        #expect(location == "https://app.example.test/a/b%20c?x=1&y=2")
    }

    @Test("the port of the request is replaced by the TLS listener's port, omitted when 443")
    func port() throws {
        #expect(
            HTTPSRedirect.location(for: try head("/", host: "app.example.test:80"), httpsPort: 443)
                == "https://app.example.test/")
        #expect(
            HTTPSRedirect.location(for: try head("/x", host: "app.example.test:8080"), httpsPort: 8443)
                == "https://app.example.test:8443/x")
        #expect(HTTPSRedirect.location(for: try head("/", host: "[::1]:80"), httpsPort: 443) == "https://[::1]/")
    }

    @Test("a request without a host gets no location")
    func noHost() throws {
        #expect(HTTPSRedirect.location(for: try head("/", host: nil), httpsPort: 443) == nil)
    }
}

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test("an empty host means every interface and localhost means 127.0.0.1")
    func forms() throws {
        #expect(try ListenAddress.parse(":443", key: "address").description == "0.0.0.0:443")
        #expect(try ListenAddress.parse("localhost:8443", key: "address").description == "127.0.0.1:8443")
        #expect(try ListenAddress.parse("127.0.0.1:80", key: "address").port == 80)
        #expect(try ListenAddress.parse("[::1]:80", key: "address").description == "[::1]:80")
    }

    @Test("a host name or a missing port is refused with the key in the message")
    func problems() {
        #expect(throws: ListenAddress.Problem.self) { try ListenAddress.parse("example.test:443", key: "address") }
        do {
            _ = try ListenAddress.parse("127.0.0.1", key: "http_redirect_addr")
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("http_redirect_addr \"127.0.0.1\""))
        }
    }

}
