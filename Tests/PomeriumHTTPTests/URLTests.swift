import PomeriumHTTP
import Testing

@Suite("URL parsing")
struct URLParsingTests {
    @Test("all components")
    func allComponents() throws {
        let url = try HTTPURL(parsing: "HTTPS://user:p%40ss@Example.TEST:8443/a/b%20c?x=1&y=%2F#frag")
        #expect(url.scheme == "https")
        #expect(url.userInfo == "user:p%40ss")
        #expect(url.host == "example.test")
        #expect(url.port == 8443)
        #expect(url.path == "/a/b%20c")
        #expect(url.query == "x=1&y=%2F")
        #expect(url.fragment == "frag")
        #expect(url.description == "https://user:p%40ss@example.test:8443/a/b%20c?x=1&y=%2F#frag")
    }

    @Test("IPv6 literal")
    func ipv6() throws {
        let url = try HTTPURL(parsing: "http://[2001:DB8::1]:8080/p")
        #expect(url.host == "2001:db8::1")
        #expect(url.port == 8080)
        #expect(url.hostAndPort == "[2001:db8::1]:8080")
        #expect(url.isIPv6Host)
        let loopback = try HTTPURL(parsing: "http://[::1]")
        #expect(loopback.host == "::1")
        #expect(loopback.requestTarget == "/")
        let mapped = try HTTPURL(parsing: "http://[::ffff:127.0.0.1]/")
        #expect(mapped.host == "::ffff:127.0.0.1")
    }

    @Test("defaults and empty parts")
    func defaults() throws {
        let url = try HTTPURL(parsing: "http://example.test")
        #expect(url.path == "")
        #expect(url.query == nil)
        #expect(url.port == nil)
        #expect(url.effectivePort == 80)
        #expect(try HTTPURL(parsing: "https://h/").effectivePort == 443)
        #expect(try HTTPURL(parsing: "http://h:/").port == nil)
        #expect(try HTTPURL(parsing: "http://h/?").query == "")
        #expect(try HTTPURL(parsing: "http://h/p?q=1").requestTarget == "/p?q=1")
    }

    @Test(
        "invalid URLs",
        arguments: [
            ("example.test/path", URLParseError.Kind.invalidScheme),
            ("1http://h/", .invalidScheme),
            ("ht tp://h/", .invalidScheme),
            ("http:h/p", .missingAuthority),
            ("mailto:a@b", .missingAuthority),
            ("http:///p", .invalidHost),
            ("http://:80/", .invalidHost),
            ("http://h h/", .invalidHost),
            ("http://h<h/", .invalidHost),
            ("http://[::1/", .invalidHost),
            ("http://[::1]x/", .invalidHost),
            ("http://[1:2:3:4:5:6:7:8:9]/", .invalidHost),
            ("http://[1::2::3]/", .invalidHost),
            ("http://[::g]/", .invalidHost),
            ("http://[fe80::1%25eth0]/", .invalidHost),
            ("http://h:65536/", .invalidPort),
            ("http://h:-1/", .invalidPort),
            ("http://h:8o/", .invalidPort),
            ("http://h:1:2/", .invalidPort),
            ("http://h:8!/", .invalidPort),
            ("http://h:+8/", .invalidPort),
            ("http://h:123456/", .invalidPort),
            ("http://u s@h/", .invalidUserInfo),
            ("http://h/a b", .invalidPath),
            ("http://h/a\\b", .invalidPath),
            ("http://h/a%2", .invalidPercentEncoding),
            ("http://h/%zz", .invalidPercentEncoding),
            ("http://h/?a=<b>", .invalidQuery),
            ("http://h/#a b", .invalidFragment),
            ("http://h/#a#b", .invalidFragment),
        ])
    func invalid(_ text: String, _ kind: URLParseError.Kind) {
        #expect(throws: URLParseError(kind)) { try HTTPURL(parsing: text) }
    }

    @Test("error message omits the input")
    func errorMessage() {
        do {
            _ = try HTTPURL(parsing: "http://h/secret token")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("secret"))
        }
    }
}

@Suite("Percent-encoding")
struct PercentEncodingTests {
    @Test("decode")
    func decode() throws {
        #expect(try PercentEncoding.decode("a%20b%2Fc%e2%82%ac") == "a b/c€")
        #expect(try PercentEncoding.decode("a+b") == "a+b")
        #expect(try PercentEncoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(try PercentEncoding.decodeBytes("%00%ff".utf8) == [0, 255])
    }

    @Test("decode rejects malformed input")
    func decodeInvalid() {
        #expect(throws: URLParseError(.invalidPercentEncoding)) { try PercentEncoding.decode("%") }
        #expect(throws: URLParseError(.invalidPercentEncoding)) { try PercentEncoding.decode("%4") }
        #expect(throws: URLParseError(.invalidPercentEncoding)) { try PercentEncoding.decode("%G1") }
        #expect(throws: URLParseError(.invalidUTF8)) { try PercentEncoding.decode("%ff") }
    }

    @Test("query component like Go QueryEscape")
    func queryComponent() {
        #expect(PercentEncoding.encode("a b&c=d/é~-._*", as: .queryComponent) == "a+b%26c%3Dd%2F%C3%A9~-._%2A")
    }

    @Test("path segment like Go PathEscape")
    func pathSegment() {
        #expect(PercentEncoding.encode("a b/c;d,e$&+=:@!", as: .pathSegment) == "a%20b%2Fc%3Bd%2Ce$&+=:@%21")
        #expect(PercentEncoding.encode("/a b/c;d,e", as: .path) == "/a%20b/c;d,e")
    }

    @Test("round trip of every byte value")
    func roundTrip() throws {
        let bytes = (0...255).map { UInt8($0) }
        let text = String(decoding: bytes.prefix(128), as: UTF8.self)
        for component in [PercentEncoding.Component.queryComponent, .pathSegment, .path] {
            let encoded = PercentEncoding.encode(text, as: component)
            #expect(try PercentEncoding.decode(encoded, plusAsSpace: component == .queryComponent) == text)
        }
    }
}

@Suite("Query")
struct QueryTests {
    @Test("parse keeps order and duplicates")
    func parse() throws {
        let query = try URLQuery(parsing: "b=2&a=1&b=3&flag&&e=&sp=a+b%20c")
        #expect(query.map(\.name) == ["b", "a", "b", "flag", "e", "sp"])
        #expect(query.values(for: "b") == ["2", "3"])
        #expect(query.value(for: "flag") == "")
        #expect(query.value(for: "e") == "")
        #expect(query.value(for: "sp") == "a b c")
        #expect(query.value(for: "missing") == nil)
    }

    @Test("sorted encoding matches Go url.Values.Encode")
    func sortedEncoding() throws {
        // Go's Encode sorts names with sort.Strings and writes QueryEscape(name)=QueryEscape(value).
        let query = try URLQuery(
            parsing: "pomerium_redirect_uri=https%3A%2F%2Fa.example.test%2Fp%3Fq%3D1&b=2&a=x+y&b=1&Z=0&%C3%A9=1")
        #expect(
            query.encodedSortedByName
                == "Z=0&a=x+y&b=2&b=1&pomerium_redirect_uri=https%3A%2F%2Fa.example.test%2Fp%3Fq%3D1&%C3%A9=1")
    }

    @Test("sort compares bytes, not Unicode order")
    func byteOrder() {
        // "é" (C3 A9) sorts after "z" (7A) by bytes; "Z" before "a".
        let query: URLQuery = ["é": "1", "z": "2", "a": "3", "Z": "4", "a~": "5", "a-": "6"]
        #expect(query.encodedSortedByName == "Z=4&a=3&a-=6&a~=5&z=2&%C3%A9=1")
    }

    @Test("encoded keeps order")
    func encodedInOrder() {
        var query: URLQuery = ["b": "1 2", "a": "&="]
        query.append(name: "b", value: "3")
        #expect(query.encoded == "b=1+2&a=%26%3D&b=3")
        query.set(name: "b", value: "x")
        #expect(query.encoded == "b=x&a=%26%3D")
        query.remove(name: "a")
        #expect(query.encoded == "b=x")
    }

    @Test("strict parse rejects bad pairs")
    func strictRejects() {
        #expect(throws: URLParseError(.invalidPercentEncoding)) { try URLQuery(parsing: "a=%zz") }
        #expect(throws: URLParseError(.invalidQuery)) { try URLQuery(parsing: "a=1;b=2") }
        #expect(throws: URLParseError(.invalidUTF8)) { try URLQuery(parsing: "a=%ff") }
    }

    @Test("lenient parse drops bad pairs")
    func lenient() {
        let query = URLQuery(parsingLeniently: "a=1&b=%zz&c=1;d&e=%ff&f=2")
        #expect(query.map(\.name) == ["a", "f"])
    }

    @Test(
        "single-slash path join",
        arguments: [
            ("", "/x", "/x"), ("/", "/x", "/x"), ("/api", "/x", "/api/x"), ("/api/", "/x", "/api/x"),
            ("/api", "x", "/api/x"), ("/api/", "x", "/api/x"), ("/api/", "//x", "/api//x"), ("/api", "/", "/api/"),
        ])
    func join(_ base: String, _ path: String, _ expected: String) {
        #expect(UpstreamTarget.joinPaths(base, path) == expected)
    }

    @Test("query merge")
    func merge() throws {
        #expect(UpstreamTarget.mergeQueries("a=1", "b=2") == "a=1&b=2")
        #expect(UpstreamTarget.mergeQueries(nil, "b=2") == "b=2")
        #expect(UpstreamTarget.mergeQueries("a=1", nil) == "a=1")
        #expect(UpstreamTarget.mergeQueries("a=1", "") == "a=1")
        #expect(UpstreamTarget.mergeQueries(nil, nil) == nil)
        let upstream = try HTTPURL(parsing: "http://127.0.0.1:8080/base?k=v")
        #expect(UpstreamTarget.target(upstream: upstream, requestPath: "/p", requestQuery: "q=1") == "/base/p?k=v&q=1")
        let plain = try HTTPURL(parsing: "http://127.0.0.1:8080")
        #expect(UpstreamTarget.target(upstream: plain, requestPath: "/p", requestQuery: nil) == "/p")
    }
}

@Suite("Path normalisation")
struct PathNormalizationTests {
    @Test(
        "normalised paths",
        arguments: [
            ("/", "/"), ("", "/"), ("/a/b", "/a/b"), ("/a/b/", "/a/b/"), ("//a///b", "/a/b"), ("/a//", "/a/"),
            ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/../../a", "/a"), ("/a/b/..", "/a/"), ("/a/.", "/a/"),
            ("/a/..", "/"), ("/..", "/"), ("/%41%62c", "/Abc"), ("/a%2db%7e", "/a-b~"), ("/a%3fb", "/a%3Fb"),
            ("/a%20b", "/a%20b"), ("/file%2etxt", "/file.txt"), ("/.pomerium/../admin", "/admin"),
            ("/a/...", "/a/..."), ("/a/.b", "/a/.b"), ("/a;jsessionid=1/b", "/a;jsessionid=1/b"),
            ("/a/...;x", "/a/...;x"), ("/a/..%3Bx", "/a/..%3Bx"),
        ])
    func normalised(_ input: String, _ expected: String) throws {
        #expect(try PathNormalization.normalize(input) == expected)
    }

    @Test("duplicate slashes kept on request")
    func keepSlashes() throws {
        #expect(try PathNormalization.normalize("//a//b/./../c", mergeSlashes: false) == "//a//c")
    }

    @Test(
        "hostile paths rejected",
        arguments: [
            ("/a%2fb", PathNormalizationError.Kind.encodedSlash), ("/a%2Fb", .encodedSlash),
            ("/a%5cb", .encodedBackslash), ("/a%5C..%5Cb", .encodedBackslash), ("/a\\b", .invalidCharacter),
            ("/%2e%2e/admin", .encodedDotSegment), ("/.pomerium/%2e%2e/admin", .encodedDotSegment),
            ("/a/.%2e/b", .encodedDotSegment), ("/a/%2E./b", .encodedDotSegment), ("/a/%2e/b", .encodedDotSegment),
            ("/x/..;/admin", .parameterOnDotSegment), ("/.;/admin", .parameterOnDotSegment),
            ("/;/admin", .parameterOnDotSegment), ("/x/..;jsessionid=1/admin", .parameterOnDotSegment),
            ("/x/%2e%2e;/admin", .parameterOnDotSegment), ("/a/;", .parameterOnDotSegment),
            ("/a%00", .nulByte), ("/a\u{0}", .nulByte), ("/a%", .invalidPercentEncoding),
            ("/a%g0", .invalidPercentEncoding),
            ("a/b", .notAbsolute), ("/a b", .invalidCharacter), ("/a?b", .invalidCharacter),
            ("/a#b", .invalidCharacter),
        ])
    func rejected(_ input: String, _ kind: PathNormalizationError.Kind) {
        #expect(throws: PathNormalizationError(kind)) { try PathNormalization.normalize(input) }
    }

    @Test("normalisation is idempotent")
    func idempotent() throws {
        for path in ["/a//b/../c/./d/", "/%41/%7e/x%3F", "/..//../a"] {
            let once = try PathNormalization.normalize(path)
            #expect(try PathNormalization.normalize(once) == once)
        }
    }

    @Test(
        "parameters removed as a servlet container removes them",
        arguments: [
            ("/admin;x/page", "/admin/page"), ("/a;b;c/d;e", "/a/d"), ("/page;jsessionid=1", "/page"),
            ("/a;x/", "/a/"), ("/a%3Bx/b", nil), ("/plain/path", nil), ("/", nil),
        ])
    func parametersRemoved(_ input: String, _ expected: String?) {
        #expect(PathNormalization.removingParameters(input) == expected)
    }
}
