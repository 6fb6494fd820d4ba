import PomeriumHTTP
import Testing

@testable import PomeriumServer

@Suite("Dispatcher authority filter")
struct AuthorityFilterTests {
    static let authenticate = AuthenticateHost(scheme: "https", host: "Auth.Example.Test", port: nil)

    @Test(
        "host part compared without port and brackets",
        arguments: [
            ("auth.example.test", true), ("AUTH.example.TEST:8443", true), ("auth.example.tes", false),
            ("auth.example.test.", false), ("app.example.test", false), ("auth.example.testx:1", false),
            ("[::1]:443", false), ("[::1", true), ("", false),
        ])
    func hostPart(value: String, expected: Bool) {
        #expect(HostDispatcher.hostPart(of: value, equals: Self.authenticate) == expected)
    }

    @Test("an IPv6 host matches inside its brackets")
    func ipv6() {
        let literal = AuthenticateHost(scheme: "https", host: "[::1]", port: 8443)
        #expect(HostDispatcher.hostPart(of: "[::1]:8443", equals: literal))
        #expect(!HostDispatcher.hostPart(of: "[::2]:8443", equals: literal))
        #expect(!HostDispatcher.hostPart(of: "auth.example.test", equals: nil))
    }

    @Test("the authority is parsed only when it could name a service host")
    func authorityOnlyWhenNeeded() throws {
        let services = ServiceSet(
            authenticateHost: Self.authenticate, authenticate: { _ in NamedHandler(name: "authenticate") }, proxy: nil,
            responseHeaders: HTTPHeaders(), generation: 1)
        let app = try HTTPRequestHead(method: .get, target: "/", headers: ["Host": "app.example.test"])
        #expect(HostDispatcher.authorityToMatch(app, services: services) == nil)
        let auth = try HTTPRequestHead(method: .get, target: "/", headers: ["Host": "AUTH.example.test:443"])
        let parsed = try #require(HostDispatcher.authorityToMatch(auth, services: services))
        #expect(parsed.host == "auth.example.test")
        #expect(parsed.port == 443)
        let absolute = try HTTPRequestHead(
            method: .get, target: "https://auth.example.test/x", headers: ["Host": "auth.example.test"])
        #expect(HostDispatcher.authorityToMatch(absolute, services: services)?.host == "auth.example.test")
        let proxyOnly = ServiceSet(
            authenticateHost: nil, authenticate: nil, proxy: nil, responseHeaders: HTTPHeaders(), generation: 1)
        #expect(HostDispatcher.authorityToMatch(auth, services: proxyOnly) == nil)
    }
}
