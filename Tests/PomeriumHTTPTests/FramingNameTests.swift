import Testing

@testable import PomeriumHTTP

/// The field-line parser recognizes `Host`, `Upgrade`, `Content-Length` and `Transfer-Encoding`
/// by comparing whole words with bit 5 of every byte set. Every spelling of those names must count,
/// and no other token of the same length and first letter may, which these requests check through
/// the framing and routing decisions that depend on them.
@Suite("Parsers: framing field names")
struct FramingNameTests {
    private static func request(_ fields: String, body: String = "") -> String {
        "POST / HTTP/1.1\r\n\(fields)\r\n\(body)"
    }

    @Test(
        "Content-Length in any case",
        arguments: ["content-length", "CONTENT-LENGTH", "Content-Length", "cONTENT-lENGTH", "Content-length"])
    func contentLengthSpellings(name: String) {
        let events = parseRequests(Self.request("Host: h\r\n\(name): 3\r\n", body: "abc"))
        #expect(events.count == 3)
        #expect(events.dropFirst().first == .body(Array("abc".utf8)))
    }

    @Test(
        "near misses of Content-Length",
        arguments: ["content_length", "content^length", "content.length", "content-lengtx", "content~length"])
    func contentLengthNearMisses(name: String) throws {
        let events = parseRequests(Self.request("Host: h\r\n\(name): 3\r\n"))
        try #require(events.count == 2)
        #expect(heads(events).first?.headers.first(name: name) == "3")
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test("Host in any case", arguments: ["host", "HOST", "Host", "hOsT"])
    func hostSpellings(name: String) {
        let events = parseRequests("GET / HTTP/1.1\r\n\(name): h\r\n\r\n")
        #expect(firstError(events) == nil)
        #expect(heads(events).count == 1)
    }

    @Test("near misses of Host", arguments: ["hos~", "ho^t", "h.st", "hosu"])
    func hostNearMisses(name: String) {
        let events = parseRequests("GET / HTTP/1.1\r\n\(name): h\r\n\r\n")
        #expect(firstError(events)?.kind == .missingHost)
    }

    @Test("Transfer-Encoding in any case", arguments: ["transfer-encoding", "TRANSFER-ENCODING", "Transfer-Encoding"])
    func transferEncodingSpellings(name: String) {
        let events = parseRequests(Self.request("Host: h\r\n\(name): chunked\r\n", body: "3\r\nabc\r\n0\r\n\r\n"))
        #expect(events.count == 3)
        #expect(events.dropFirst().first == .body(Array("abc".utf8)))
    }

    @Test(
        "near misses of Transfer-Encoding", arguments: ["transfer_encoding", "transfer-encodinf", "transfer^encoding"])
    func transferEncodingNearMisses(name: String) {
        let events = parseRequests(Self.request("Host: h\r\n\(name): chunked\r\n"))
        #expect(events.count == 2)
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test("Upgrade in any case", arguments: ["upgrade", "UPGRADE", "Upgrade"])
    func upgradeSpellings(name: String) {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\(name): websocket\r\n\r\n".utf8))
        while parser.next() != nil {}
        #expect(parser.isAwaitingUpgradeDecision)
    }

    @Test("near misses of Upgrade", arguments: ["upgrad~", "upgr^de", "u.grade", "upgradf"])
    func upgradeNearMisses(name: String) {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\(name): websocket\r\n\r\n".utf8))
        while parser.next() != nil {}
        #expect(!parser.isAwaitingUpgradeDecision)
    }
}
