import PomeriumHTTP
import Testing

@testable import PomeriumProxy

/// `ProxyPages.prefersJSON` decides from the bytes for fields that never mention JSON, and parses
/// the others. Both ways must give the documented result.
@Suite("JSON preference")
struct PrefersJSONTests {
    @Test(
        "Accept fields",
        arguments: [
            ([], false),
            (["*/*"], false),
            (["text/html,application/xhtml+xml,*/*;q=0.8"], false),
            (["application/json"], true),
            (["Application/JSON"], true),
            (["  APPLICATION/json  ;q=1"], true),
            (["application/json;q=0.9, text/plain"], true),
            (["text/html, application/json"], false),
            (["application/jsonp"], false),
            (["text/plain", "application/json"], true),
            (["application/json", "TEXT/HTML"], false),
        ] as [([String], Bool)])
    func accept(_ values: [String], _ expected: Bool) {
        let headers = HTTPHeaders([(name: "Host", value: "app.example.test")] + values.map { ("Accept", $0) })
        #expect(ProxyPages.prefersJSON(headers) == expected)
    }
}
