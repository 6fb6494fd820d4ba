import PomeriumCore
import Testing

@testable import PomeriumAuthorize

@Suite("Router")
struct RouterTests {
    /// Routes for the host and port table: one per `from` shape.
    static let hostRoutes: [RouteDefinition] = [
        RouteDefinition(id: "https-default", scheme: .https, host: "secure.example.test"),
        RouteDefinition(id: "http-default", scheme: .http, host: "plain.example.test"),
        RouteDefinition(id: "https-8443", scheme: .https, host: "custom.example.test", port: 8443),
        RouteDefinition(id: "https-explicit-443", scheme: .https, host: "explicit.example.test", port: 443),
        RouteDefinition(id: "http-on-443", scheme: .http, host: "odd.example.test", port: 443),
        RouteDefinition(id: "upper-case-from", scheme: .https, host: "UPPER.Example.Test"),
        RouteDefinition(id: "ipv6", scheme: .https, host: "[::1]", port: 8443),
    ]

    struct HostCase: Sendable, CustomTestStringConvertible {
        let host: String
        /// The id of the route expected to match, or nil for "route unknown".
        let routeID: String?
        var testDescription: String { "Host: \(host)" }
    }

    static let hostCases: [HostCase] = [
        HostCase(host: "secure.example.test", routeID: "https-default"),
        HostCase(host: "secure.example.test:443", routeID: "https-default"),
        HostCase(host: "SECURE.Example.TEST", routeID: "https-default"),
        HostCase(host: "SECURE.EXAMPLE.TEST:443", routeID: "https-default"),
        // A portless from is not reachable on another port (the v0.7 routing/authorization mismatch).
        HostCase(host: "secure.example.test:8443", routeID: nil),
        HostCase(host: "secure.example.test:80", routeID: nil),
        // A trailing dot is a different name.
        HostCase(host: "secure.example.test.", routeID: nil),
        HostCase(host: "secure.example.test.:443", routeID: nil),
        HostCase(host: "plain.example.test", routeID: "http-default"),
        HostCase(host: "plain.example.test:80", routeID: "http-default"),
        HostCase(host: "plain.example.test:443", routeID: nil),
        HostCase(host: "custom.example.test:8443", routeID: "https-8443"),
        HostCase(host: "CUSTOM.example.test:8443", routeID: "https-8443"),
        HostCase(host: "custom.example.test", routeID: nil),
        HostCase(host: "custom.example.test:443", routeID: nil),
        HostCase(host: "custom.example.test:08443", routeID: nil),
        HostCase(host: "explicit.example.test", routeID: "https-explicit-443"),
        HostCase(host: "explicit.example.test:443", routeID: "https-explicit-443"),
        HostCase(host: "odd.example.test:443", routeID: "http-on-443"),
        HostCase(host: "odd.example.test", routeID: nil),
        HostCase(host: "upper.example.test", routeID: "upper-case-from"),
        HostCase(host: "[::1]:8443", routeID: "ipv6"),
        HostCase(host: "[::1]", routeID: nil),
        HostCase(host: "unknown.example.test", routeID: nil),
        HostCase(host: "example.test", routeID: nil),
        HostCase(host: "x.secure.example.test", routeID: nil),
        HostCase(host: "", routeID: nil),
        HostCase(host: "secure.example.test:", routeID: nil),
        HostCase(host: "user@secure.example.test", routeID: nil),
    ]

    @Test("host and port matching", arguments: hostCases)
    func hostMatching(_ testCase: HostCase) throws {
        let router = try Router(definitions: Self.hostRoutes)
        #expect(router.route(host: testCase.host, path: "/")?.id == testCase.routeID)
        // The lookup's index names the same route, which is the router's own instance.
        let lookup = router.lookup(host: testCase.host, path: "/")
        #expect(lookup.index.map { router.routes[$0].id } == testCase.routeID)
        if let index = lookup.index, let route = lookup.route { #expect(route === router.routes[index]) }
        // The route agrees with the router, so the evaluator's host check cannot disagree with routing.
        for route in router.routes {
            let expected = route.id == testCase.routeID
            #expect(route.matches(host: testCase.host, path: "/") == expected, "route \(route.id)")
        }
    }

    /// Routes sharing one host, in configuration order.
    static let sharedHostRoutes: [RouteDefinition] = [
        RouteDefinition(id: "exact-health", host: "app.example.test", path: "/health"),
        RouteDefinition(id: "prefix-api", host: "app.example.test", prefix: "/api/"),
        RouteDefinition(id: "regex-api-v", host: "app.example.test", regex: "/api/v[0-9]+/.*"),
        RouteDefinition(id: "regex-reports", host: "app.example.test", regex: "/reports/[a-z]+"),
        RouteDefinition(id: "prefix-reports-shadowed", host: "app.example.test", prefix: "/reports/"),
        RouteDefinition(id: "catch-all", host: "app.example.test"),
        RouteDefinition(id: "after-catch-all", host: "app.example.test", path: "/never"),
    ]

    struct PrecedenceCase: Sendable, CustomTestStringConvertible {
        let path: String
        let routeID: String
        let evaluations: Int
        var testDescription: String { path }
    }

    static let precedenceCases: [PrecedenceCase] = [
        PrecedenceCase(path: "/health", routeID: "exact-health", evaluations: 1),
        PrecedenceCase(path: "/health/", routeID: "catch-all", evaluations: 6),
        // The earlier prefix route wins over a later regex that also matches.
        PrecedenceCase(path: "/api/v1/users", routeID: "prefix-api", evaluations: 2),
        PrecedenceCase(path: "/api", routeID: "catch-all", evaluations: 6),
        PrecedenceCase(path: "/reports/daily", routeID: "regex-reports", evaluations: 4),
        // The regex needs the whole path, so a deeper path falls to the later prefix.
        PrecedenceCase(path: "/reports/daily/x", routeID: "prefix-reports-shadowed", evaluations: 5),
        PrecedenceCase(path: "/never", routeID: "catch-all", evaluations: 6),
        PrecedenceCase(path: "/", routeID: "catch-all", evaluations: 6),
    ]

    @Test("prefix, path and regex in configuration order", arguments: precedenceCases)
    func precedence(_ testCase: PrecedenceCase) throws {
        let router = try Router(definitions: Self.sharedHostRoutes)
        let lookup = router.lookup(host: "app.example.test", path: testCase.path)
        #expect(lookup.route?.id == testCase.routeID)
        #expect(lookup.pathMatcherEvaluations == testCase.evaluations)
    }

    @Test("unknown host evaluates no path matcher")
    func unknownHost() throws {
        let router = try Router(definitions: Self.sharedHostRoutes)
        let lookup = router.lookup(host: "other.example.test", path: "/api/")
        #expect(lookup.route == nil)
        #expect(lookup.pathMatcherEvaluations == 0)
    }

    @Test("no path match on a known host")
    func noPathMatch() throws {
        let router = try Router(definitions: [RouteDefinition(id: "only", host: "a.example.test", prefix: "/x/")])
        let lookup = router.lookup(host: "a.example.test", path: "/y")
        #expect(lookup.route == nil)
        #expect(lookup.pathMatcherEvaluations == 1)
    }

    /// `^/admin/(a+)+$` backtracks exponentially on a run of `a` that ends in another byte (Swift's
    /// `Regex` took 50 s on 22 bytes with `^/(a+)+$`). The match stops at its limit instead, and the
    /// lookup must not go on to the broader catch-all route after it.
    @Test("regex past its limit selects no route")
    func regexLimitEndsLookup() throws {
        let router = try Router(definitions: [
            RouteDefinition(id: "admins", host: "a.example.test", regex: "^/admin/(a+)+$"),
            RouteDefinition(id: "everyone", host: "a.example.test"),
        ])
        let hostile = "/admin/" + String(repeating: "a", count: 64) + "b"
        #expect(router.routes[0].regexResult(hostile) == .undecided)
        #expect(router.lookup(host: "a.example.test", path: hostile).route == nil)
        #expect(!router.routes[0].matches(host: "a.example.test", path: hostile))
        // Paths the pattern decides quickly still route as before.
        #expect(router.route(host: "a.example.test", path: "/admin/aaaa")?.id == "admins")
        #expect(router.route(host: "a.example.test", path: "/admin/b")?.id == "everyone")
    }

    @Test(
        "regex syntax of RE2 routes",
        arguments: [
            ("^/v\\d+/.*", "/v2/users", true),
            // RE2's \\d is ASCII only, so an Arabic-Indic digit is no digit.
            ("^/v\\d+/.*", "/v\u{0662}/users", false),
            ("(?i)/ADMIN/.*", "/admin/x", true),
            ("/(?:api|web)/[^/]+?", "/web/page", true),
            ("/caf.", "/caf\u{E9}", true),
        ])
    func re2Syntax(_ pattern: String, _ path: String, _ matches: Bool) throws {
        let router = try Router(definitions: [RouteDefinition(id: "r", host: "a.example.test", regex: pattern)])
        #expect((router.route(host: "a.example.test", path: path) != nil) == matches)
    }

    @Test("http and https routes on one host")
    func mixedSchemes() throws {
        let router = try Router(definitions: [
            RouteDefinition(id: "http", scheme: .http, host: "a.example.test"),
            RouteDefinition(id: "https", scheme: .https, host: "a.example.test"),
        ])
        #expect(router.route(host: "a.example.test", path: "/")?.id == "http")
        #expect(router.route(host: "a.example.test:80", path: "/")?.id == "http")
        #expect(router.route(host: "a.example.test:443", path: "/")?.id == "https")
    }

    @Test("duplicate ids are rejected")
    func duplicateIDs() {
        do {
            _ = try Router(definitions: [
                RouteDefinition(id: "same", host: "a.example.test"),
                RouteDefinition(id: "same", host: "b.example.test"),
            ])
            Issue.record("expected a PolicyError")
        } catch {
            #expect(error.problems.map(\.code) == [.routeIDInvalid])
            #expect(error.problems.first?.reason.contains("\"same\"") == true)
        }
    }

    @Test("problems of all routes are collected")
    func collectsAllRoutes() {
        do {
            _ = try Router(definitions: [
                RouteDefinition(id: "r1", host: "a.example.test", regex: "("),
                RouteDefinition(id: "r2", host: "b.example.test", allowedUsers: ["nobody"]),
            ])
            Issue.record("expected a PolicyError")
        } catch {
            #expect(error.problems.map(\.code) == [.routeRegexInvalid, .routeAllowedUserInvalid])
            #expect(error.problems.first?.reason.contains("r1") == true)
            #expect(error.problems.last?.reason.contains("r2") == true)
        }
    }

    struct ShadowCase: Sendable, CustomTestStringConvertible {
        let name: String
        let earlier: RouteDefinition
        let later: RouteDefinition
        let shadowed: Bool
        var testDescription: String { name }
    }

    static let shadowCases: [ShadowCase] = [
        ShadowCase(
            name: "same from twice", earlier: RouteDefinition(id: "first", host: "a.example.test"),
            later: RouteDefinition(id: "second", host: "a.example.test"), shadowed: true),
        ShadowCase(
            name: "same from, explicit default port",
            earlier: RouteDefinition(id: "first", host: "a.example.test"),
            later: RouteDefinition(id: "second", host: "a.example.test", port: 443), shadowed: true),
        ShadowCase(
            name: "catch-all before prefix", earlier: RouteDefinition(id: "first", host: "a.example.test"),
            later: RouteDefinition(id: "second", host: "a.example.test", prefix: "/api/"), shadowed: true),
        ShadowCase(
            name: "shorter prefix before longer prefix",
            earlier: RouteDefinition(id: "first", host: "a.example.test", prefix: "/api"),
            later: RouteDefinition(id: "second", host: "a.example.test", prefix: "/api/v1/"), shadowed: true),
        ShadowCase(
            name: "prefix before exact path under it",
            earlier: RouteDefinition(id: "first", host: "a.example.test", prefix: "/api/"),
            later: RouteDefinition(id: "second", host: "a.example.test", path: "/api/health"), shadowed: true),
        ShadowCase(
            name: "same regex", earlier: RouteDefinition(id: "first", host: "a.example.test", regex: "/r/[0-9]+"),
            later: RouteDefinition(id: "second", host: "a.example.test", regex: "/r/[0-9]+"), shadowed: true),
        ShadowCase(
            name: "longer prefix before shorter prefix",
            earlier: RouteDefinition(id: "first", host: "a.example.test", prefix: "/api/v1/"),
            later: RouteDefinition(id: "second", host: "a.example.test", prefix: "/api"), shadowed: false),
        ShadowCase(
            name: "different exact paths",
            earlier: RouteDefinition(id: "first", host: "a.example.test", path: "/a"),
            later: RouteDefinition(id: "second", host: "a.example.test", path: "/b"), shadowed: false),
        ShadowCase(
            name: "exact path before prefix",
            earlier: RouteDefinition(id: "first", host: "a.example.test", path: "/api/"),
            later: RouteDefinition(id: "second", host: "a.example.test", prefix: "/api/"), shadowed: false),
        ShadowCase(
            name: "different regexes",
            earlier: RouteDefinition(id: "first", host: "a.example.test", regex: "/r/.*"),
            later: RouteDefinition(id: "second", host: "a.example.test", regex: "/r/[0-9]+"), shadowed: false),
        ShadowCase(
            name: "regex before catch-all", earlier: RouteDefinition(id: "first", host: "a.example.test", regex: "/.*"),
            later: RouteDefinition(id: "second", host: "a.example.test"), shadowed: false),
        ShadowCase(
            name: "different hosts", earlier: RouteDefinition(id: "first", host: "a.example.test"),
            later: RouteDefinition(id: "second", host: "b.example.test"), shadowed: false),
        ShadowCase(
            name: "http and https on one host",
            earlier: RouteDefinition(id: "first", scheme: .http, host: "a.example.test"),
            later: RouteDefinition(id: "second", scheme: .https, host: "a.example.test"), shadowed: false),
        ShadowCase(
            name: "same host, different ports",
            earlier: RouteDefinition(id: "first", host: "a.example.test", port: 8443),
            later: RouteDefinition(id: "second", host: "a.example.test", port: 9443), shadowed: false),
    ]

    @Test("shadowed routes are reported", arguments: shadowCases)
    func shadowedRoutes(_ testCase: ShadowCase) throws {
        let router = try Router(definitions: [testCase.earlier, testCase.later])
        let expected = testCase.shadowed ? [Router.Shadowing(routeID: "second", shadowedByID: "first")] : []
        #expect(router.shadowedRoutes == expected)
    }

    @Test("route shadowed on only some keys is not reported")
    func partlyShadowed() throws {
        // The https route matches a.example.test and a.example.test:443. The http route before it takes only the
        // portless key, so requests with :443 still reach the https route.
        let router = try Router(definitions: [
            RouteDefinition(id: "http", scheme: .http, host: "a.example.test"),
            RouteDefinition(id: "https", scheme: .https, host: "a.example.test"),
            RouteDefinition(id: "https-again", scheme: .https, host: "a.example.test", prefix: "/x"),
        ])
        #expect(router.shadowedRoutes == [Router.Shadowing(routeID: "https-again", shadowedByID: "http")])
    }

    static func distinctHostRoutes(count: Int) throws -> Router {
        let definitions = (0..<count).map { index in
            RouteDefinition(id: "route-\(index)", host: "app\(index).example.test", prefix: "/")
        }
        return try Router(definitions: definitions)
    }

    @Test("10,000 routes cost what 10 cost per lookup")
    func lookupScales() throws {
        let small = try Self.distinctHostRoutes(count: 10)
        let large = try Self.distinctHostRoutes(count: 10_000)
        for host in ["app0.example.test", "app9.example.test"] {
            let smallLookup = small.lookup(host: host, path: "/x")
            let largeLookup = large.lookup(host: host, path: "/x")
            #expect(smallLookup.route?.id == largeLookup.route?.id)
            #expect(smallLookup.pathMatcherEvaluations == 1)
            #expect(largeLookup.pathMatcherEvaluations == 1)
        }
        let last = large.lookup(host: "app9999.example.test:443", path: "/x")
        #expect(last.route?.id == "route-9999")
        #expect(last.pathMatcherEvaluations == 1)
        #expect(large.lookup(host: "app10000.example.test", path: "/x").pathMatcherEvaluations == 0)
    }

    /// Prints the time per lookup for 10 and 10,000 routes. Only the counts above are asserted: CPU time depends
    /// on the machine. Run in release mode for meaningful numbers.
    @Test("lookup timing print")
    func lookupTiming() throws {
        // Debug builds are about 20 times slower, so they run fewer iterations.
        #if DEBUG
            let iterations = 10_000
        #else
            let iterations = 200_000
        #endif
        var results: [String] = []
        for count in [10, 10_000] {
            let router = try Self.distinctHostRoutes(count: count)
            let hosts = (0..<10).map { "app\($0 * (count / 10)).example.test" }
            var found = 0
            let nanoseconds = threadCPUNanoseconds {
                for iteration in 0..<iterations where router.route(host: hosts[iteration % 10], path: "/x") != nil {
                    found += 1
                }
            }
            #expect(found == iterations)
            results.append("\(count) routes: \(nanoseconds / Int64(iterations)) ns/lookup")
        }
        print("router lookup timing: " + results.joined(separator: ", "))
    }
}
