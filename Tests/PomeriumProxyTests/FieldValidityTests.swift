import PomeriumHTTP
import Testing

@testable import PomeriumProxy

@Suite("Fields the proxy adds as validated")
struct FieldValidityTests {
    @Test(
        "field names and values",
        arguments: [
            ("X-Test", "on", true), ("X-Test", "tab\tinside", true), ("X-Test", "caf\u{E9}", true),
            ("X-Test", "", true),
            ("X-Test", "a\r\nInjected: 1", false), ("X-Test", "a\nb", false), ("X-Test", "a\u{0}b", false),
            ("X-Test", "a\u{7F}b", false), ("X Test", "on", false), ("X-Test:", "on", false), ("", "on", false),
        ])
    func fields(name: String, value: String, expected: Bool) {
        #expect(FieldValidity.isField(name: name, value: value) == expected)
    }

    @Test(
        "origin paths",
        arguments: [
            ("/", true), ("/a/b;c=d/~x", true), ("/a%2Fb", true), ("/a%2fb", true), ("", false), ("a/b", false),
            ("/a?b", false), ("/a b", false), ("/a%", false), ("/a%4", false), ("/a%zz", false), ("/a\\b", false),
            ("/a#b", false), ("/caf\u{E9}", false),
        ])
    func originPaths(path: String, expected: Bool) {
        #expect(FieldValidity.isOriginPath(path) == expected)
    }

    @Test(
        "queries",
        arguments: [
            ("a=1&b=2", true), ("", true), ("q=/x?y", true), ("a=%20", true), ("a=%2", false), ("a b", false),
            ("a=1#f", false), ("a=\r\n", false),
        ])
    func queries(query: String, expected: Bool) {
        #expect(FieldValidity.isQuery(query) == expected)
    }

    @Test("response policy marks only valid fields")
    func responsePolicy() {
        var headers = HTTPHeaders()
        ResponseHeaderPolicy([("X-Frame-Options", "DENY")]).add(to: &headers, requestID: "id-1")
        #expect(headers.firstValue(name: "X-Frame-Options")?.isValidated == true)
        #expect(headers.firstValue(name: "Request-Id")?.isValidated == true)

        var unchecked = HTTPHeaders()
        ResponseHeaderPolicy([("X-Bad", "a\r\nInjected: 1"), ("X-Good", "on")]).add(to: &unchecked, requestID: "id-2")
        // Each field is checked on its own: the bad one stays unchecked, so the encoder rejects
        // the response that carries it.
        #expect(unchecked.firstValue(name: "X-Bad")?.isValidated == false)
        #expect(unchecked.firstValue(name: "X-Good")?.isValidated == true)
        var wire: [UInt8] = []
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) {
            try HTTPEncoder.encode(HTTPResponseHead(status: 200, headers: unchecked), into: &wire)
        }
    }
}
