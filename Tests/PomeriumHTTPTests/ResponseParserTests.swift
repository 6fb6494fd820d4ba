import PomeriumHTTP
import Testing

private func parseResponses(
    _ text: String, methods: [HTTPMethod] = [.get], finish: Bool = false, limits: HTTPParserLimits = .init()
) -> [HTTPResponseParser.Event] {
    var parser = HTTPResponseParser(limits: limits)
    for method in methods { parser.expectResponse(to: method) }
    parser.feed(Array(text.utf8))
    var events: [HTTPResponseParser.Event] = []
    while let event = parser.next() { events.append(event) }
    if finish {
        parser.finish()
        while let event = parser.next() { events.append(event) }
    }
    return events
}

private func responseError(_ events: [HTTPResponseParser.Event]) -> HTTPParseError.Kind? {
    for event in events {
        if case .error(let error) = event { return error.kind }
    }
    return nil
}

@Suite("Response parser")
struct ResponseParserTests {
    @Test("content-length response")
    func contentLength() throws {
        let events = parseResponses("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi")
        #expect(events.count == 3)
        guard case .head(let head) = events[0] else {
            Issue.record("expected a head")
            return
        }
        #expect(head.status == 200)
        #expect(head.reason == "OK")
        #expect(head.headers.first(name: "x-a") == "b")
        #expect(head.keepAlive)
        #expect(events[1] == .body(Array("hi".utf8)))
        #expect(events[2] == .end(trailers: HTTPHeaders()))
    }

    @Test("chunked response with trailers")
    func chunked() {
        let events = parseResponses(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;e\r\nc\r\n0\r\nT: v\r\n\r\n")
        #expect(events.count == 4)
        #expect(events[1] == .body(Array("ab".utf8)))
        #expect(events[2] == .body(Array("c".utf8)))
        #expect(events[3] == .end(trailers: ["T": "v"]))
    }

    @Test("HEAD response has no body")
    func headResponse() {
        let events = parseResponses(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            methods: [.head, .get])
        #expect(events.count == 5)
        #expect(events[1] == .end(trailers: HTTPHeaders()))
        #expect(events[3] == .body([UInt8(ascii: "x")]))
    }

    @Test("204 and 304 have no body")
    func noContent() {
        let events = parseResponses(
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            methods: [.get, .get])
        #expect(events.count == 4)
        #expect(events[1] == .end(trailers: HTTPHeaders()))
        #expect(events[3] == .end(trailers: HTTPHeaders()))
    }

    @Test("100 Continue then final response")
    func continueThenFinal() {
        let events = parseResponses(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
                + "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            methods: [.post])
        #expect(events.count == 4)
        guard case .informational(let first) = events[0], case .informational(let second) = events[1],
            case .head(let final) = events[2]
        else {
            Issue.record("expected two interim heads and a final head")
            return
        }
        #expect(first.status == 100)
        #expect(second.headers.first(name: "Link") == "</s>")
        #expect(final.status == 201)
    }

    @Test("101 hands over raw bytes")
    func switchingProtocols() {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.feed(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u{81}\u{0}".utf8))
        guard case .upgrade(let head)? = parser.next() else {
            Issue.record("expected an upgrade event")
            return
        }
        #expect(head.status == 101)
        #expect(parser.next() == nil)
        #expect(parser.takeRemainingBytes() == Array("\u{81}\u{0}".utf8))
    }

    @Test("2xx to CONNECT opens a tunnel")
    func connectTunnel() {
        let events = parseResponses("HTTP/1.1 200 Connection established\r\n\r\ntunnel", methods: [.connect])
        #expect(events.count == 1)
        guard case .upgrade = events[0] else {
            Issue.record("expected an upgrade event")
            return
        }
    }

    @Test("CONNECT 2xx ignores framing fields")
    func connectIgnoresFraming() {
        let events = parseResponses(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", methods: [.connect])
        guard case .upgrade? = events.first else {
            Issue.record("expected an upgrade event")
            return
        }
        #expect(events.count == 1)
    }

    @Test("HEAD response ignores framing fields")
    func headIgnoresFraming() {
        let events = parseResponses("HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", methods: [.head])
        #expect(events.count == 2)
        #expect(events.last == .end(trailers: HTTPHeaders()))
    }

    @Test("close-delimited body")
    func closeDelimited() {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.feed(Array("HTTP/1.0 200 OK\r\n\r\npart one ".utf8))
        var events: [HTTPResponseParser.Event] = []
        while let event = parser.next() { events.append(event) }
        parser.feed(Array("part two".utf8))
        while let event = parser.next() { events.append(event) }
        #expect(parser.isCloseDelimited)
        #expect(events.count == 3)
        parser.finish()
        #expect(parser.next() == .end(trailers: HTTPHeaders()))
        #expect(parser.next() == nil)
    }

    @Test("status line without reason")
    func noReason() {
        let events = parseResponses(
            "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
            methods: [.get, .get])
        #expect(events.count == 4)
        guard case .head(let head) = events[2] else {
            Issue.record("expected a head")
            return
        }
        #expect(head.status == 404)
        #expect(head.reason == "")
    }

    @Test("reasons other than OK kept")
    func otherReasons() {
        let events = parseResponses(
            "HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK \r\nContent-Length: 0\r\n\r\n"
                + "HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n",
            methods: [.get, .get, .get])
        let reasons = events.compactMap { event -> String? in
            if case .head(let head) = event { return head.reason }
            return nil
        }
        #expect(reasons == ["Fine", "OK ", "OK"])
    }

    @Test("HTTP/1.0 response keep-alive")
    func http10KeepAlive() {
        let events = parseResponses("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
        guard case .head(let head) = events[0] else {
            Issue.record("expected a head")
            return
        }
        #expect(head.keepAlive)
        let closing = parseResponses("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        guard case .head(let closingHead) = closing[0] else {
            Issue.record("expected a head")
            return
        }
        #expect(!closingHead.keepAlive)
    }

    @Test(
        "response rejections",
        arguments: [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HTTPParseError.Kind.contentLengthWithTransferEncoding
            ),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .multipleContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n", .invalidContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferCoding),
            ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
            ("HTTP/1.1 2000 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 099 Low\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 20x OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/2 200 OK\r\n\r\n", .invalidStatusLine),
            ("ICY 200 OK\r\n\r\n", .invalidStatusLine),
            ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", .bareLineFeed),
            ("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", .obsoleteLineFolding),
            ("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", .whitespaceBeforeColon),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunkSize),
        ])
    func rejections(_ response: String, _ kind: HTTPParseError.Kind) {
        #expect(responseError(parseResponses(response)) == kind)
    }

    @Test("methods recorded one at a time")
    func methodsRecordedInTurn() {
        var parser = HTTPResponseParser()
        var events: [HTTPResponseParser.Event] = []
        func deliver(_ text: String) {
            parser.feed(Array(text.utf8))
            while let event = parser.next() { events.append(event) }
        }
        parser.expectResponse(to: .head)
        deliver("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        #expect(parser.outstandingRequestCount == 0)
        parser.expectResponse(to: .get)
        #expect(parser.outstandingRequestCount == 1)
        deliver("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        parser.expectResponse(to: .get)
        parser.expectResponse(to: .head)
        #expect(parser.outstandingRequestCount == 2)
        deliver("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
        #expect(parser.outstandingRequestCount == 0)
        let bodies = events.compactMap { event -> [UInt8]? in
            if case .body(let bytes) = event { return bytes }
            return nil
        }
        #expect(bodies == [Array("ok".utf8), Array("x".utf8)], "the HEAD responses have no body")
        #expect(events.filter { if case .end = $0 { true } else { false } }.count == 4)
        deliver("HTTP/1.1 200 OK\r\n\r\n")
        #expect(responseError(events) == .unexpectedResponse)
    }

    @Test("response without request")
    func unexpected() {
        #expect(responseError(parseResponses("HTTP/1.1 200 OK\r\n\r\n", methods: [])) == .unexpectedResponse)
    }

    @Test("truncated response")
    func truncated() {
        let events = parseResponses("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", finish: true)
        #expect(responseError(events) == .incompleteMessage)
        let noHead = parseResponses("", finish: true)
        #expect(responseError(noHead) == .incompleteMessage)
    }

    @Test("body limit on close-delimited body")
    func closeDelimitedLimit() {
        let events = parseResponses("HTTP/1.1 200 OK\r\n\r\n0123456789", limits: HTTPParserLimits(maxBodySize: 4))
        #expect(responseError(events) == .bodyTooLarge)
    }

    /// Feeds `pieces` one by one and collects events, taking body bytes in place where the parser
    /// offers them, as the client does, and turning them into `.body` events to compare.
    private func parseInPlace(
        _ pieces: [String], finish: Bool = false, limits: HTTPParserLimits = .init()
    ) -> (events: [HTTPResponseParser.Event], inPlaceRuns: Int) {
        var parser = HTTPResponseParser(limits: limits)
        parser.expectResponse(to: .get)
        var events: [HTTPResponseParser.Event] = []
        var runs = 0
        func drain() {
            while true {
                if parser.nextBodyBytes({ events.append(.body(Array($0))) }) {
                    runs += 1
                    continue
                }
                guard let event = parser.next() else { return }
                events.append(event)
            }
        }
        for piece in pieces {
            parser.feed(Array(piece.utf8))
            drain()
        }
        if finish {
            parser.finish()
            drain()
        }
        return (events, runs)
    }

    /// Chunk data is taken in place only when its size line was already read. The parser reads a
    /// size line only in `next()`, so later chunks of one read arrive as `.body` events.
    @Test(
        "in-place body matches body events",
        arguments: [
            (["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "defg", "hij"], 3),
            (["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "c\r\n4\r\ndefg\r\n0\r\n\r\n"], 1),
            (["HTTP/1.1 200 OK\r\n\r\npart one ", "part two"], 2),
        ])
    func inPlaceBodyMatchesEvents(pieces: [String], expectedRuns: Int) {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        var expected: [HTTPResponseParser.Event] = []
        for piece in pieces {
            parser.feed(Array(piece.utf8))
            while let event = parser.next() { expected.append(event) }
        }
        parser.finish()
        while let event = parser.next() { expected.append(event) }
        let (events, runs) = parseInPlace(pieces, finish: true)
        #expect(events == expected)
        #expect(runs == expectedRuns)
    }

    @Test("in-place body keeps the size limit")
    func inPlaceBodyKeepsTheLimit() {
        let (events, runs) = parseInPlace(
            ["HTTP/1.1 200 OK\r\n\r\n0123", "456789"], limits: HTTPParserLimits(maxBodySize: 6))
        #expect(runs == 1)
        #expect(events.dropFirst().first == .body(Array("0123".utf8)))
        #expect(responseError(events) == .bodyTooLarge)
    }

    @Test("in-place body only inside a body")
    func inPlaceBodyOnlyInBody() {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
        var bodyRuns: [[UInt8]] = []
        let beforeHead = parser.nextBodyBytes { bodyRuns.append(Array($0)) }
        guard case .head = parser.next() else {
            Issue.record("expected the head")
            return
        }
        let inBody = parser.nextBodyBytes { bodyRuns.append(Array($0)) }
        let afterBody = parser.nextBodyBytes { bodyRuns.append(Array($0)) }
        #expect(!beforeHead)
        #expect(inBody)
        #expect(!afterBody)
        #expect(bodyRuns == [Array("ok".utf8)])
        #expect(parser.next() == .end(trailers: HTTPHeaders()))
    }
}
