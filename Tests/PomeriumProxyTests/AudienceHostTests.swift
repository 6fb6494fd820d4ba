import PomeriumAuthorize
import Testing

@testable import PomeriumProxy

@Suite("Audience host of a matched route")
struct AudienceHostTests {
    @Test(
        "route shortcut agrees with parsing",
        arguments: [
            ("app.example.test", "app.example.test", nil),
            ("app.example.test", "APP.example.test", nil),
            ("app.example.test", "app.example.test:443", nil),
            ("app.example.test", "app.example.test:8443", 8443),
            ("[::1]", "[::1]:8443", 8443),
            ("[::1]", "[::1]", nil),
        ] as [(String, String, Int?)])
    func agreesWithParsing(routeHost: String, requestHost: String, port: Int?) throws {
        let route = try RoutePolicy(RouteDefinition(id: "r1", host: routeHost, port: port))
        let expected = ProxyRequestHandler.audienceHost(requestHost: requestHost, scheme: route.scheme.rawValue)
        #expect(ProxyRequestHandler.audienceHost(requestHost: requestHost, route: route) == expected)
    }

}
