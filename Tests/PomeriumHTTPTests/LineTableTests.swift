import Testing

@testable import PomeriumHTTP

/// The section scanner writes lines into a table that starts with room for 16 and grows when a
/// section has more. A scan that finds the table full stops at the CR of the line that did not
/// fit and resumes there. Heads and trailers with more lines than the table has room for must
/// therefore parse as they do in one piece, wherever the input is split.
@Suite("Parsers: line table growth")
struct LineTableTests {
    private static func fieldLines(_ count: Int, prefix: String) -> [(name: String, value: String)] {
        (0..<count).map { (name: "\(prefix)-\($0)", value: "value \($0)") }
    }

    private static func wire(_ fields: [(name: String, value: String)]) -> String {
        fields.map { "\($0.name): \($0.value)\r\n" }.joined()
    }

    private static func fieldPairs(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name): \($0.value)" }
    }

    private static func expectedPairs(_ fields: [(name: String, value: String)]) -> [String] {
        fields.map { "\($0.name): \($0.value)" }
    }

    /// Feeds `bytes` to one parser in slices of `sliceSize` and returns the events.
    private static func requestEvents(_ bytes: [UInt8], sliceSize: Int) -> [HTTPRequestParser.Event] {
        var parser = HTTPRequestParser()
        var events: [HTTPRequestParser.Event] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + sliceSize)
            parser.feed(bytes[start..<end])
            start = end
            while let event = parser.next() { events.append(event) }
        }
        return coalesceBodies(events)
    }

    @Test("request heads and trailers longer than the table", arguments: [1, 2, 7, 16, 33, Int.max])
    func requestHeadsAndTrailers(sliceSize: Int) throws {
        let long = Self.fieldLines(40, prefix: "X-Long")
        let trailers = Self.fieldLines(20, prefix: "X-Trailer")
        let text =
            "POST /first HTTP/1.1\r\nHost: h\r\n\(Self.wire(long))Transfer-Encoding: chunked\r\n\r\n"
            + "3\r\nabc\r\n0\r\n\(Self.wire(trailers))\r\n"
            + "GET /second HTTP/1.1\r\nHost: h\r\nX-Short: 1\r\n\r\n"
        let events = Self.requestEvents(Array(text.utf8), sliceSize: sliceSize)
        #expect(events.count == 5)
        let requestHeads = heads(events)
        try #require(requestHeads.count == 2)
        #expect(
            Self.fieldPairs(requestHeads[0].headers)
                == ["Host: h"] + Self.expectedPairs(long) + ["Transfer-Encoding: chunked"])
        #expect(Self.fieldPairs(requestHeads[1].headers) == ["Host: h", "X-Short: 1"])
        #expect(requestHeads[1].target == "/second")
        let ends = events.compactMap { if case .end(let trailers) = $0 { trailers } else { nil } }
        try #require(ends.count == 2)
        #expect(Self.fieldPairs(ends[0]) == Self.expectedPairs(trailers))
        #expect(ends[1].isEmpty)
    }

    @Test("request with every split of a head longer than the table")
    func everySplit() {
        let text = "GET / HTTP/1.1\r\nHost: h\r\n\(Self.wire(Self.fieldLines(20, prefix: "A")))\r\n"
        let bytes = Array(text.utf8)
        let expected = Self.requestEvents(bytes, sliceSize: .max)
        #expect(heads(expected).first?.headers.count == 21)
        for offset in 0...bytes.count {
            var parser = HTTPRequestParser()
            var events: [HTTPRequestParser.Event] = []
            for slice in [bytes[..<offset], bytes[offset...]] {
                parser.feed(slice)
                while let event = parser.next() { events.append(event) }
            }
            #expect(events == expected, "split at \(offset)")
        }
    }

    @Test("field count limit with a grown table", arguments: [1, Int.max])
    func countLimit(sliceSize: Int) {
        let limits = HTTPParserLimits(maxHeaderCount: 40)
        let atLimit = "GET / HTTP/1.1\r\nHost: h\r\n\(Self.wire(Self.fieldLines(39, prefix: "A")))\r\n"
        let overLimit = "GET / HTTP/1.1\r\nHost: h\r\n\(Self.wire(Self.fieldLines(40, prefix: "A")))\r\n"
        let accepted = parseRequests(atLimit, sliceSize: sliceSize, limits: limits)
        #expect(heads(accepted).first?.headers.count == 40)
        #expect(firstError(parseRequests(overLimit, sliceSize: sliceSize, limits: limits))?.kind == .tooManyHeaders)
    }

    @Test("response heads longer than the table", arguments: [1, 5, Int.max])
    func responseHeads(sliceSize: Int) throws {
        let long = Self.fieldLines(30, prefix: "X-Response")
        let text =
            "HTTP/1.1 200 OK\r\n\(Self.wire(long))Content-Length: 2\r\n\r\nok"
            + "HTTP/1.1 204 No Content\r\nX-Short: 1\r\n\r\n"
        let bytes = Array(text.utf8)
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.expectResponse(to: .get)
        var responseHeads: [HTTPResponseHead] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + sliceSize)
            parser.feed(bytes[start..<end])
            start = end
            while let event = parser.next() {
                if case .head(let head) = event { responseHeads.append(head) }
                if case .error(let error) = event { Issue.record("unexpected error \(error)") }
            }
        }
        try #require(responseHeads.count == 2)
        #expect(Self.fieldPairs(responseHeads[0].headers) == Self.expectedPairs(long) + ["Content-Length: 2"])
        #expect(Self.fieldPairs(responseHeads[1].headers) == ["X-Short: 1"])
    }

    @Test("first control byte at every lane of a sixteen-byte block")
    func everyLane() {
        // The block test compares sixteen bytes at once. Every byte value in every lane, among
        // fillers next to the marked values, must give the position that a byte loop gives.
        var wrong: [String] = []
        for filler: UInt8 in [0x20, 0x7E, 0x80, 0xFF] {
            for lane in 0..<16 {
                for value in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: filler, count: 24)
                    bytes[lane] = value
                    let expected = bytes.firstIndex { $0 < 0x20 || $0 == 0x7F } ?? bytes.count
                    let found = bytes.withUnsafeBufferPointer {
                        SectionScanner.firstControlByte($0, from: 0, to: bytes.count)
                    }
                    if found != expected { wrong.append("filler \(filler), lane \(lane), byte \(value)") }
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(8))")
    }
}
