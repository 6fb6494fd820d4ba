import Testing

@testable import PomeriumAuthorize

@Suite("HostAndPort")
struct HostAndPortTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let text: String
        /// The expected canonical `host[:port]`, or nil when the text must not parse.
        let expected: String?
        var testDescription: String { "\"\(text)\"" }
    }

    static let cases: [Case] = [
        Case(text: "app.example.test", expected: "app.example.test"),
        Case(text: "App.EXAMPLE.test", expected: "app.example.test"),
        Case(text: "app.example.test:443", expected: "app.example.test:443"),
        Case(text: "app.example.test:8443", expected: "app.example.test:8443"),
        Case(text: "app.example.test:65535", expected: "app.example.test:65535"),
        Case(text: "app.example.test.", expected: "app.example.test."),
        Case(text: "under_score.example.test", expected: "under_score.example.test"),
        Case(text: "127.0.0.1:80", expected: "127.0.0.1:80"),
        Case(text: "[::1]", expected: "[::1]"),
        Case(text: "[::1]:8443", expected: "[::1]:8443"),
        Case(text: "[2001:DB8::1]", expected: "[2001:db8::1]"),
        Case(text: "[::ffff:127.0.0.1]", expected: "[::ffff:127.0.0.1]"),
        Case(text: "", expected: nil),
        Case(text: ":443", expected: nil),
        Case(text: "app.example.test:", expected: nil),
        Case(text: "app.example.test:0", expected: nil),
        Case(text: "app.example.test:0443", expected: nil),
        Case(text: "app.example.test:65536", expected: nil),
        Case(text: "app.example.test:99999999999999999999", expected: nil),
        Case(text: "app.example.test:44a", expected: nil),
        Case(text: "app.example.test:443:443", expected: nil),
        Case(text: "user@app.example.test", expected: nil),
        Case(text: "app.example.test/path", expected: nil),
        Case(text: "app example.test", expected: nil),
        Case(text: "app%2eexample.test", expected: nil),
        Case(text: "bücher.example.test", expected: nil),
        Case(text: "*.example.test", expected: nil),
        Case(text: "::1", expected: nil),
        Case(text: "[::1", expected: nil),
        Case(text: "[::1]x", expected: nil),
        Case(text: "[::1]:", expected: nil),
        Case(text: "[fe80::1%25eth0]", expected: nil),
        Case(text: "[g::1]", expected: nil),
        Case(text: "[]", expected: nil),
    ]

    @Test("parsing", arguments: cases)
    func parsing(_ testCase: Case) {
        #expect(HostAndPort(parsing: testCase.text)?.description == testCase.expected)
    }

    @Test("parsed parts")
    func parsedParts() throws {
        let parsed = try #require(HostAndPort(parsing: "APP.example.test:8443"))
        #expect(parsed.host == "app.example.test")
        #expect(parsed.port == 8443)
        let portless = try #require(HostAndPort(parsing: "app.example.test"))
        #expect(portless.port == nil)
    }
}
