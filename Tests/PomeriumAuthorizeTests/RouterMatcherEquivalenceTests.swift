import PomeriumCore
import Testing

@testable import PomeriumAuthorize

/// The router compares `path` and `prefix` on bytes prepared once per configuration; it must pick
/// the route a plain scan of `RoutePolicy.matchesHost` and `matchesPath` picks.
@Suite("Router path matchers against a plain scan")
struct RouterMatcherEquivalenceTests {
    static let definitions: [RouteDefinition] = [
        RouteDefinition(id: "exact", host: "a.test", path: "/exact", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "root-prefix", host: "b.test", prefix: "/", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "prefix", host: "a.test", prefix: "/api/", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "both", host: "a.test", prefix: "/both", path: "/both/x", allowedUsers: ["u@a.test"]),
        RouteDefinition(
            id: "prefix-regex", host: "a.test", prefix: "/re", regex: "/re/[0-9]+", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "accented", host: "a.test", prefix: "/caf\u{E9}", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "regex", host: "a.test", regex: "/r[a-z]*", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "port", host: "a.test", port: 8443, prefix: "/p", allowedUsers: ["u@a.test"]),
        RouteDefinition(id: "rest", host: "a.test", prefix: "/", allowedUsers: ["u@a.test"]),
    ]

    static let paths = [
        "", "/", "/exact", "/exact/", "/Exact", "/exac", "/exactly", "/api", "/api/", "/API/x", "/api/x",
        "/both", "/both/x", "/both/xy", "/re", "/re/12", "/re/12a", "/re/", "/caf\u{E9}", "/cafe\u{301}",
        "/caf\u{E9}/menu", "/r", "/rx", "/r1", "/p", "/px", "/.pomerium/", "/%2e", "/\u{0}",
    ]

    @Test("lookup equals a plain scan")
    func sameRoute() throws {
        let router = try Router(definitions: Self.definitions)
        for host in ["a.test", "A.TEST", "a.test:443", "a.test:8443", "b.test", "c.test", "a.test.", "[::1]"] {
            for path in Self.paths {
                let expected = HostAndPort(parsing: host).flatMap { key in
                    router.routes.first { $0.matchesHost(key) && $0.matchesPath(path) }
                }
                let found = router.lookup(host: host, path: path).route
                #expect(found?.id == expected?.id, "host \(host) path \(path.debugDescription)")
            }
        }
    }

    /// The proxy skips the evaluator's match for a route the router found (`foundByRouter`).
    @Test("found route matches its request")
    func foundRouteMatches() throws {
        let router = try Router(definitions: Self.definitions)
        for host in ["a.test", "A.TEST", "a.test:443", "a.test:8443", "b.test", "c.test", "a.test.", "[::1]"] {
            for path in Self.paths {
                guard let found = router.lookup(host: host, path: path).route else { continue }
                #expect(found.matches(host: host, path: path), "host \(host) path \(path.debugDescription)")
            }
        }
    }
}
