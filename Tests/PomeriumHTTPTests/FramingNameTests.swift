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

/// `StartLineSyntax.parseVersion` compares the eight bytes with `HTTP/1.1` as one word before
/// checking them byte by byte. Changing any byte of `HTTP/1.1` to any value must give the result
/// of the byte checks alone.
@Suite("Parsers: version shortcut")
struct VersionShortcutTests {
    private static func reference(_ bytes: [UInt8]) -> Result<HTTPVersion, HTTPParseError> {
        let prefix = Array("HTTP/".utf8)
        guard bytes.count == 8, Array(bytes[0..<5]) == prefix, ASCII.isDigit(bytes[5]), bytes[6] == ASCII.dot,
            ASCII.isDigit(bytes[7])
        else { return .failure(HTTPParseError(.invalidVersion)) }
        guard bytes[5] == UInt8(ascii: "1") else { return .failure(HTTPParseError(.unsupportedVersion)) }
        return .success(HTTPVersion(major: 1, minor: Int(bytes[7] - UInt8(ascii: "0"))))
    }

    @Test("every byte of HTTP/1.1 changed to every value")
    func everyChangedByte() throws {
        let original = Array("HTTP/1.1".utf8)
        var wrong: [String] = []
        for position in 0..<original.count {
            for value in UInt8.min...UInt8.max {
                var bytes = original
                bytes[position] = value
                let parsed = Result { () throws(HTTPParseError) in try StartLineSyntax.parseVersion(bytes[...]) }
                if parsed != Self.reference(bytes) { wrong.append("position \(position), byte \(value)") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(8))")
        #expect(try StartLineSyntax.parseVersion(original[...]) == .http1_1)
    }

    @Test("other lengths never take the shortcut", arguments: ["HTTP/1.1 ", "HTTP/1.", "HTTP/1.10"])
    func otherLengths(text: String) {
        let bytes = Array(text.utf8)
        #expect(throws: HTTPParseError(.invalidVersion)) { try StartLineSyntax.parseVersion(bytes[...]) }
    }
}
