import PomeriumCore
import Testing

@testable import PomeriumAuthorize

@Suite("RoutePolicy validation")
struct RoutePolicyTests {
    struct InvalidCase: Sendable, CustomTestStringConvertible {
        let name: String
        let definition: RouteDefinition
        let codes: [PomeriumError.Code]
        /// Text every message must contain, such as the route id and the offending value.
        let mentions: [String]
        var testDescription: String { name }
    }

    static let invalidCases: [InvalidCase] = [
        InvalidCase(
            name: "empty id", definition: RouteDefinition(id: "", host: "a.example.test", allowedUsers: ["a@b.test"]),
            codes: [.routeIDInvalid], mentions: ["empty id"]),
        InvalidCase(
            name: "empty host", definition: RouteDefinition(id: "r1", host: ""),
            codes: [.routeHostInvalid], mentions: ["r1"]),
        InvalidCase(
            name: "wildcard host", definition: RouteDefinition(id: "r1", host: "*.example.test"),
            codes: [.routeHostInvalid], mentions: ["r1", "*.example.test", "wildcard"]),
        InvalidCase(
            name: "trailing dot", definition: RouteDefinition(id: "r1", host: "a.example.test."),
            codes: [.routeHostInvalid], mentions: ["a.example.test.", "trailing dot"]),
        InvalidCase(
            name: "non-ASCII host", definition: RouteDefinition(id: "r1", host: "bücher.example.test"),
            codes: [.routeHostInvalid], mentions: ["bücher.example.test", "xn--"]),
        InvalidCase(
            name: "port inside host", definition: RouteDefinition(id: "r1", host: "a.example.test:8443"),
            codes: [.routeHostInvalid], mentions: ["a.example.test:8443", "port field"]),
        InvalidCase(
            name: "host with a slash", definition: RouteDefinition(id: "r1", host: "a.example.test/x"),
            codes: [.routeHostInvalid], mentions: ["a.example.test/x"]),
        InvalidCase(
            name: "port zero", definition: RouteDefinition(id: "r1", host: "a.example.test", port: 0),
            codes: [.routePortInvalid], mentions: ["r1", "0"]),
        InvalidCase(
            name: "port too large", definition: RouteDefinition(id: "r1", host: "a.example.test", port: 70_000),
            codes: [.routePortInvalid], mentions: ["70000"]),
        InvalidCase(
            name: "relative prefix", definition: RouteDefinition(id: "r1", host: "a.example.test", prefix: "app"),
            codes: [.routePathInvalid], mentions: ["prefix", "\"app\""]),
        InvalidCase(
            name: "empty path", definition: RouteDefinition(id: "r1", host: "a.example.test", path: ""),
            codes: [.routePathInvalid], mentions: ["path", "\"\""]),
        InvalidCase(
            name: "regex syntax error", definition: RouteDefinition(id: "r1", host: "a.example.test", regex: "/(a"),
            codes: [.routeRegexInvalid], mentions: ["route \"r1\"", "/(a"]),
        InvalidCase(
            name: "regex quantifier out of order",
            definition: RouteDefinition(id: "r1", host: "a.example.test", regex: "/a{3,1}"),
            codes: [.routeRegexInvalid], mentions: ["r1", "/a{3,1}", "out of order"]),
        InvalidCase(
            name: "empty regex", definition: RouteDefinition(id: "r1", host: "a.example.test", regex: ""),
            codes: [.routeRegexInvalid], mentions: ["r1", "empty"]),
        InvalidCase(
            name: "public with allow list",
            definition: RouteDefinition(
                id: "r1", host: "a.example.test", allowedGroups: ["g"], allowPublicUnauthenticatedAccess: true),
            codes: [.routePublicWithAllowList], mentions: ["r1", "allow_public_unauthenticated_access"]),
        InvalidCase(
            name: "user without at sign",
            definition: RouteDefinition(id: "r1", host: "a.example.test", allowedUsers: ["service-account"]),
            codes: [.routeAllowedUserInvalid], mentions: ["service-account"]),
        InvalidCase(
            name: "user with two at signs",
            definition: RouteDefinition(id: "r1", host: "a.example.test", allowedUsers: ["a@b@c"]),
            codes: [.routeAllowedUserInvalid], mentions: ["a@b@c"]),
        InvalidCase(
            name: "domain with at sign",
            definition: RouteDefinition(id: "r1", host: "a.example.test", allowedDomains: ["@example.test"]),
            codes: [.routeAllowedDomainInvalid], mentions: ["@example.test"]),
        InvalidCase(
            name: "empty domain",
            definition: RouteDefinition(id: "r1", host: "a.example.test", allowedDomains: [""]),
            codes: [.routeAllowedDomainInvalid], mentions: ["allowed_domains"]),
        InvalidCase(
            name: "empty group", definition: RouteDefinition(id: "r1", host: "a.example.test", allowedGroups: [""]),
            codes: [.routeAllowedGroupInvalid], mentions: ["allowed_groups"]),
        InvalidCase(
            name: "every problem reported",
            definition: RouteDefinition(
                id: "r1", host: "*", port: 0, prefix: "x", regex: "(", allowedUsers: ["bad"],
                allowedDomains: ["a@b"], allowedGroups: [""], allowPublicUnauthenticatedAccess: true),
            codes: [
                .routeHostInvalid, .routePortInvalid, .routePathInvalid, .routeRegexInvalid,
                .routePublicWithAllowList, .routeAllowedUserInvalid, .routeAllowedDomainInvalid,
                .routeAllowedGroupInvalid,
            ],
            mentions: ["r1"]),
    ]

    @Test("invalid definitions", arguments: invalidCases)
    func invalidDefinitions(_ testCase: InvalidCase) {
        do {
            _ = try RoutePolicy(testCase.definition)
            Issue.record("expected a PolicyError")
        } catch {
            #expect(error.problems.map(\.code) == testCase.codes)
            for problem in error.problems {
                for text in testCase.mentions {
                    #expect(problem.reason.contains(text), "\(problem.reason) should mention \(text)")
                }
            }
        }
    }

    @Test("valid definition is normalised")
    func normalised() throws {
        let route = try RoutePolicy(
            RouteDefinition(
                id: "r1", host: "App.Example.TEST", port: 443, allowedUsers: ["Alice@Example.test"],
                allowedDomains: ["Corp.EXAMPLE"], allowedGroups: ["Admins"]))
        #expect(route.host == "app.example.test")
        #expect(route.port == nil)
        #expect(route.allowedUsers == ["Alice@Example.test"])
        #expect(route.allowedDomains == ["corp.example"])
        #expect(route.allowedGroups == ["Admins"])
        #expect(route.hasAllowList)
    }

    @Test("explicit default port equals no port")
    func defaultPortNormalised() throws {
        let http = try RoutePolicy(RouteDefinition(id: "r1", scheme: .http, host: "a.example.test", port: 80))
        #expect(http.port == nil)
        let httpOn443 = try RoutePolicy(RouteDefinition(id: "r2", scheme: .http, host: "a.example.test", port: 443))
        #expect(httpOn443.port == 443)
    }

    @Test("IPv6 host is accepted")
    func ipv6Host() throws {
        let route = try RoutePolicy(RouteDefinition(id: "r1", host: "[::1]", port: 8443))
        #expect(route.host == "[::1]")
        #expect(route.matches(host: "[::1]:8443", path: "/"))
    }

    @Test("Host value spelled like the route host")
    func hostSpelledLikeRoute() throws {
        let portless = try RoutePolicy(RouteDefinition(id: "r1", host: "a.example.test"))
        #expect(portless.matches(host: "a.example.test", path: "/"))
        #expect(portless.matches(host: "A.Example.TEST", path: "/"))
        #expect(portless.matches(host: "a.example.test:443", path: "/"))
        #expect(!portless.matches(host: "a.example.test.", path: "/"))
        let withPort = try RoutePolicy(RouteDefinition(id: "r2", host: "a.example.test", port: 8443))
        #expect(!withPort.matches(host: "a.example.test", path: "/"))
        #expect(withPort.matches(host: "a.example.test:8443", path: "/"))
        let withPath = try RoutePolicy(RouteDefinition(id: "r3", host: "a.example.test", prefix: "/app"))
        #expect(!withPath.matches(host: "a.example.test", path: "/other"))
        #expect(withPath.matches(host: "a.example.test", path: "/app/x"))
    }

    @Test("policy error lists each message on a line")
    func policyErrorDescription() {
        do {
            _ = try RoutePolicy(RouteDefinition(id: "r1", host: "", port: 0))
            Issue.record("expected a PolicyError")
        } catch {
            #expect(error.description.split(separator: "\n").count == 2)
        }
    }

    struct PathCase: Sendable, CustomTestStringConvertible {
        let prefix: String?
        let path: String?
        let regex: String?
        let requestPath: String
        let matches: Bool
        var testDescription: String {
            "prefix \(prefix ?? "-") path \(path ?? "-") regex \(regex ?? "-") on \(requestPath)"
        }
    }

    static let pathCases: [PathCase] = [
        PathCase(prefix: nil, path: nil, regex: nil, requestPath: "/anything", matches: true),
        PathCase(prefix: nil, path: nil, regex: nil, requestPath: "*", matches: true),
        PathCase(prefix: "/app", path: nil, regex: nil, requestPath: "/app", matches: true),
        PathCase(prefix: "/app", path: nil, regex: nil, requestPath: "/app/x", matches: true),
        // A plain string prefix, as in Pomerium v0.8.
        PathCase(prefix: "/app", path: nil, regex: nil, requestPath: "/apple", matches: true),
        PathCase(prefix: "/app/", path: nil, regex: nil, requestPath: "/apple", matches: false),
        PathCase(prefix: "/app", path: nil, regex: nil, requestPath: "/APP", matches: false),
        PathCase(prefix: "/app", path: nil, regex: nil, requestPath: "/ap", matches: false),
        PathCase(prefix: nil, path: "/exact", regex: nil, requestPath: "/exact", matches: true),
        PathCase(prefix: nil, path: "/exact", regex: nil, requestPath: "/exact/", matches: false),
        PathCase(prefix: nil, path: "/exact", regex: nil, requestPath: "/exactly", matches: false),
        PathCase(prefix: nil, path: "/caf\u{E9}", regex: nil, requestPath: "/cafe\u{301}", matches: false),
        PathCase(prefix: nil, path: nil, regex: "/api/v[0-9]+/.*", requestPath: "/api/v2/users", matches: true),
        // The regex must match the whole path, not a substring.
        PathCase(prefix: nil, path: nil, regex: "/api/v[0-9]+/.*", requestPath: "/x/api/v2/users", matches: false),
        PathCase(prefix: nil, path: nil, regex: "/api", requestPath: "/api/more", matches: false),
        PathCase(prefix: nil, path: nil, regex: "/caf.", requestPath: "/cafe\u{301}", matches: false),
        PathCase(prefix: nil, path: nil, regex: "/caf.", requestPath: "/caf\u{E9}", matches: true),
        // Every matcher that is set must match.
        PathCase(prefix: "/api/", path: nil, regex: ".*/users", requestPath: "/api/users", matches: true),
        PathCase(prefix: "/api/", path: nil, regex: ".*/users", requestPath: "/web/users", matches: false),
        PathCase(prefix: "/api/", path: "/api/a", regex: nil, requestPath: "/api/b", matches: false),
    ]

    @Test("path matchers", arguments: pathCases)
    func pathMatchers(_ testCase: PathCase) throws {
        let route = try RoutePolicy(
            RouteDefinition(
                id: "r1", host: "a.example.test", prefix: testCase.prefix, path: testCase.path, regex: testCase.regex))
        #expect(route.matchesPath(testCase.requestPath) == testCase.matches)
    }
}
