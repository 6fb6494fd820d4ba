import PomeriumHTTP
import Testing

/// Messages whose events must not depend on where the input is split.
private let splitMessages: [String] = [
    "GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
        + "GET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "4;ext=\"a;b\"\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Sum: 1\r\n\r\n"
        + "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "\r\nGET http://example.test/x HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
]

/// A small deterministic generator, so a failing split can be reproduced.
private struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

private func parse(slices: [ArraySlice<UInt8>]) -> [HTTPRequestParser.Event] {
    var parser = HTTPRequestParser()
    var events: [HTTPRequestParser.Event] = []
    for slice in slices {
        parser.feed(slice)
        while let event = parser.next() { events.append(event) }
    }
    return coalesceBodies(events)
}

@Suite("Parsers: split at every offset")
struct ParserSplitPropertyTests {
    @Test("request split in two at every offset", arguments: splitMessages.indices)
    func requestTwoPieces(_ index: Int) {
        let bytes = Array(splitMessages[index].utf8)
        let expected = parse(slices: [bytes[...]])
        #expect(!expected.isEmpty)
        for offset in 0...bytes.count {
            #expect(parse(slices: [bytes[..<offset], bytes[offset...]]) == expected, "split at \(offset)")
        }
    }

    @Test("request split at random offsets", arguments: splitMessages.indices)
    func requestRandomPieces(_ index: Int) {
        let bytes = Array(splitMessages[index].utf8)
        let expected = parse(slices: [bytes[...]])
        var random = SplitMix64(state: UInt64(index))
        for _ in 0..<50 {
            var slices: [ArraySlice<UInt8>] = []
            var start = 0
            while start < bytes.count {
                let length = Int(random.next() % 7) + 1
                let end = min(bytes.count, start + length)
                slices.append(bytes[start..<end])
                start = end
            }
            #expect(parse(slices: slices) == expected)
        }
    }

    @Test("response split in two at every offset")
    func responseTwoPieces() {
        let bytes = Array(
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n").utf8)
        func run(_ slices: [ArraySlice<UInt8>]) -> [HTTPResponseParser.Event] {
            var parser = HTTPResponseParser()
            parser.expectResponse(to: .post)
            parser.expectResponse(to: .get)
            var events: [HTTPResponseParser.Event] = []
            for slice in slices {
                parser.feed(slice)
                while let event = parser.next() {
                    if case .body(let more) = event, case .body(let previous)? = events.last {
                        events[events.count - 1] = .body(previous + more)
                    } else {
                        events.append(event)
                    }
                }
            }
            return events
        }
        let expected = run([bytes[...]])
        #expect(expected.count == 6)
        for offset in 0...bytes.count {
            #expect(run([bytes[..<offset], bytes[offset...]]) == expected, "split at \(offset)")
        }
    }
}
