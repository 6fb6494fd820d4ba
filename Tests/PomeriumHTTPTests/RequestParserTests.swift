import PomeriumHTTP
import Testing

@Suite("Request parser: valid requests")
struct RequestParserValidTests {
    @Test("simple GET")
    func simpleGet() throws {
        let events = parseRequests("GET /a/b?x=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
        #expect(events.count == 2)
        let head = try #require(heads(events).first)
        #expect(head.method == .get)
        #expect(head.target == "/a/b?x=1")
        #expect(head.targetForm == .origin(path: "/a/b", query: "x=1"))
        #expect(head.version == .http1_1)
        #expect(head.headers.first(name: "host") == "example.test")
        #expect(head.headers.first(name: "ACCEPT") == "*/*")
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test("header order and case kept")
    func headerOrderAndCase() throws {
        let events = parseRequests("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B:3\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.headers.map(\.name) == ["Host", "X-A", "x-a", "X-B"])
        #expect(head.headers["X-a"] == ["1", "2"])
        #expect(head.headers.first(name: "x-b") == "3")
    }

    @Test("field value whitespace trimmed")
    func valueWhitespaceTrimmed() throws {
        let events = parseRequests("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a b \t\r\nX-E:\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.headers.first(name: "X-A") == "a b")
        #expect(head.headers.first(name: "X-E") == "")
    }

    @Test("any token method accepted")
    func tokenMethod() throws {
        let events = parseRequests("PROPFIND! / HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.method.rawValue == "PROPFIND!")
    }

    @Test("content-length body")
    func contentLengthBody() {
        let events = parseRequests("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        #expect(events.count == 3)
        #expect(events[1] == .body(Array("hello".utf8)))
        #expect(events[2] == .end(trailers: HTTPHeaders()))
    }

    @Test("content-length zero has no body event")
    func contentLengthZero() {
        let events = parseRequests("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        #expect(events.count == 2)
        #expect(events[1] == .end(trailers: HTTPHeaders()))
    }

    @Test("content-length leading zeros")
    func contentLengthLeadingZeros() {
        let events = parseRequests("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc")
        #expect(events[1] == .body(Array("abc".utf8)))
    }

    @Test("chunked with extensions and trailers")
    func chunkedWithExtensionsAndTrailers() {
        let request =
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n"
            + "6 ; q=\"quoted \\\" text\"\r\n world\r\n"
            + "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        let events = parseRequests(request)
        #expect(events.count == 3)
        #expect(events[1] == .body(Array("hello world".utf8)))
        #expect(events[2] == .end(trailers: ["X-Checksum": "abc", "X-Other": "1"]))
    }

    @Test("chunked with uppercase hex size")
    func chunkedUppercaseHex() {
        let body = String(repeating: "z", count: 26)
        let events = parseRequests(
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1A\r\n\(body)\r\n0\r\n\r\n")
        #expect(events[1] == .body(Array(body.utf8)))
        #expect(events.count == 3)
    }

    @Test("pipelined requests in one buffer")
    func pipelined() {
        let request =
            "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
            + "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
        let events = parseRequests(request)
        #expect(heads(events).map(\.target) == ["/1", "/2", "/3"])
        #expect(events.count == 7)
        #expect(events[3] == .body(Array("ok".utf8)))
    }

    @Test("byte at a time feeding")
    func byteAtATime() {
        let request =
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parseRequests(request, sliceSize: 1) == parseRequests(request))
        #expect(heads(parseRequests(request, sliceSize: 1)).count == 2)
    }

    @Test("absolute-form target")
    func absoluteForm() throws {
        let events = parseRequests("GET http://Example.TEST:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
        let head = try #require(heads(events).first)
        let url = HTTPURL(scheme: "http", host: "example.test", port: 8080, path: "/p", query: "q")
        #expect(head.targetForm == .absolute(url))
        #expect(head.path == "/p")
        #expect(head.query == "q")
        #expect(head.authority?.host == "example.test")
        #expect(head.authority?.port == 8080)
    }

    @Test("OPTIONS asterisk")
    func optionsAsterisk() throws {
        let events = parseRequests("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.targetForm == .asterisk)
    }

    @Test("CONNECT authority-form")
    func connectAuthority() throws {
        let events = parseRequests("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.targetForm == .authority(host: "example.test", port: 443))
        #expect(head.isUpgradeRequest)
    }

    @Test("HTTP/1.0 without Host")
    func http10WithoutHost() throws {
        let events = parseRequests("GET / HTTP/1.0\r\n\r\n")
        let head = try #require(heads(events).first)
        #expect(head.version == .http1_0)
        #expect(!head.keepAlive)
    }

    @Test("HTTP/1.2 handled as 1.1")
    func higherMinorVersion() throws {
        let head = try #require(heads(parseRequests("GET / HTTP/1.2\r\nHost: h\r\n\r\n")).first)
        #expect(head.version == HTTPVersion(major: 1, minor: 2))
        #expect(head.version.isAtLeastHTTP11)
        #expect(head.keepAlive)
    }

    @Test("leading empty lines skipped")
    func leadingEmptyLines() {
        let events = parseRequests("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(heads(events).count == 1)
    }

    @Test("IPv6 Host header")
    func ipv6Host() throws {
        let head = try #require(heads(parseRequests("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n")).first)
        #expect(head.authority?.host == "::1")
        #expect(head.authority?.port == 8443)
    }

    @Test("obs-text in value kept")
    func obsText() throws {
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\nX-U: caf".utf8) + [0xC3, 0xA9] + Array("\r\n\r\n".utf8)
        let head = try #require(heads(parseRequests(bytes: bytes)).first)
        #expect(head.headers.first(name: "X-U") == "café")
    }

    @Test("upgrade request pauses parser")
    func upgradePauses() {
        var parser = HTTPRequestParser()
        parser.feed(
            Array("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{1}\u{2}".utf8))
        var events: [HTTPRequestParser.Event] = []
        while let event = parser.next() { events.append(event) }
        #expect(events.count == 2)
        #expect(parser.isAwaitingUpgradeDecision)
        #expect(parser.takeRemainingBytes() == [1, 2])
        parser.feed([3])
        #expect(parser.next() == nil)
    }

    @Test("declined upgrade resumes HTTP")
    func declinedUpgrade() {
        var parser = HTTPRequestParser()
        parser.feed(
            Array(
                ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                    + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n").utf8))
        var count = 0
        while parser.next() != nil { count += 1 }
        #expect(count == 2)
        parser.resumeAfterDeclinedUpgrade()
        guard case .head(let head)? = parser.next() else {
            Issue.record("expected the next request head")
            return
        }
        #expect(head.target == "/next")
    }

    @Test("clean close between requests")
    func cleanClose() {
        let events = parseRequests("GET / HTTP/1.1\r\nHost: h\r\n\r\n", finish: true)
        #expect(events.count == 2)
    }
}
