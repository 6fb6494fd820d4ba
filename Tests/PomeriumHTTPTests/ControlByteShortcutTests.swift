import PomeriumHTTP
import Testing

/// The section scanner notes control bytes as it finds the lines, and the field-line parser checks
/// values only when it saw one. These tests place every rejected byte where the scan could miss it
/// (first and last word of a line, the overlapping last word, a slice boundary) and expect the
/// rejection of the long way.
@Suite("Parsers: control bytes found while scanning")
struct ControlByteShortcutTests {
    /// Every byte a field value may not contain, apart from CR and LF, which end lines.
    static let rejectedBytes: [UInt8] = Array(0x00...0x08) + [0x0B, 0x0C] + Array(0x0E...0x1F) + [0x7F]

    static func responseEvents(_ bytes: [UInt8], sliceSize: Int) -> [HTTPResponseParser.Event] {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        var events: [HTTPResponseParser.Event] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + sliceSize)
            parser.feed(bytes[offset..<end])
            offset = end
            while let event = parser.next() { events.append(event) }
        }
        return events
    }

    static func responseError(_ events: [HTTPResponseParser.Event]) -> HTTPParseError.Kind? {
        for case .error(let error) in events { return error.kind }
        return nil
    }

    @Test("request value with a control byte", arguments: [1, 7, Int.max])
    func requestValue(sliceSize: Int) {
        let filler = Array("0123456789abcdefghijk".utf8)
        for offset in 0..<filler.count {
            for bad in Self.rejectedBytes {
                var value = filler
                value[offset] = bad
                for (before, after) in [("X: ", "\r\nY: 1"), ("A: 1\r\nX: ", ""), ("X: a\tb ", "")] {
                    let bytes =
                        Array("GET / HTTP/1.1\r\nHost: h\r\n\(before)".utf8) + value + Array("\(after)\r\n\r\n".utf8)
                    #expect(
                        firstError(parseRequests(bytes: bytes, sliceSize: sliceSize))?.kind == .invalidHeaderValue,
                        "byte \(bad) at \(offset) after \(before.debugDescription), slices of \(sliceSize)")
                }
            }
        }
    }

    @Test("response value with a control byte", arguments: [1, 5, Int.max])
    func responseValue(sliceSize: Int) {
        let filler = Array("0123456789abcdefghijk".utf8)
        for offset in 0..<filler.count {
            for bad in Self.rejectedBytes {
                var value = filler
                value[offset] = bad
                let bytes =
                    Array("HTTP/1.1 200 OK\r\nServer: s\r\nX-Long: ".utf8) + value
                    + Array("\r\nContent-Length: 0\r\n\r\n".utf8)
                #expect(
                    Self.responseError(Self.responseEvents(bytes, sliceSize: sliceSize)) == .invalidHeaderValue,
                    "byte \(bad) at \(offset), slices of \(sliceSize)")
            }
        }
    }

    @Test("trailer value with a control byte", arguments: [1, Int.max])
    func trailerValue(sliceSize: Int) {
        for bad in Self.rejectedBytes {
            let bytes =
                Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 12".utf8) + [bad]
                + Array("34\r\n\r\n".utf8)
            #expect(
                firstError(parseRequests(bytes: bytes, sliceSize: sliceSize))?.kind == .invalidHeaderValue,
                "byte \(bad), slices of \(sliceSize)")
        }
    }

    @Test("HTAB kept inside values", arguments: [1, Int.max])
    func tabInValues(sliceSize: Int) throws {
        let text = "GET / HTTP/1.1\r\nHost: h\r\nX: \ta\tb\t\r\nY: c\r\n\r\n"
        let head = try #require(heads(parseRequests(text, sliceSize: sliceSize)).first)
        #expect(head.headers.first(name: "X") == "a\tb")
        #expect(head.headers.first(name: "Y") == "c")
    }

    /// The limits are checked where a run of bytes ends, so a control byte just before a line
    /// break must not hide the last byte of the run from the check.
    @Test("section limit at a control byte", arguments: [1, Int.max])
    func sectionLimitAtControlByte(sliceSize: Int) {
        let text = "GET / HTTP/1.1\r\nX: a\t\r\n\r\n"
        let tight = HTTPParserLimits(maxHeaderSectionSize: 4)
        let exact = HTTPParserLimits(maxHeaderSectionSize: 5)
        #expect(firstError(parseRequests(text, sliceSize: sliceSize, limits: tight))?.kind == .headerSectionTooLarge)
        // Five bytes of line fit; this head then fails only for its missing `Host`.
        #expect(firstError(parseRequests(text, sliceSize: sliceSize, limits: exact))?.kind == .missingHost)
    }

    @Test("start line limit at a control byte", arguments: [1, Int.max])
    func startLineLimitAtControlByte(sliceSize: Int) {
        let text = "GET / HTTP/1.1\u{7F}\r\nHost: h\r\n\r\n"
        let tight = HTTPParserLimits(maxStartLineLength: 14)
        let exact = HTTPParserLimits(maxStartLineLength: 15)
        #expect(firstError(parseRequests(text, sliceSize: sliceSize, limits: tight))?.kind == .requestLineTooLong)
        #expect(firstError(parseRequests(text, sliceSize: sliceSize, limits: exact))?.kind == .invalidVersion)
    }

    /// Control bytes right after a head belong to what follows it, here a WebSocket frame.
    @Test("upgrade head split before frame bytes")
    func upgradeThenFrame() {
        let head = Array(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
        let frame: [UInt8] = [0x81, 0x05, 0x68, 0x00, 0x0D, 0x0A, 0x7F]
        let bytes = head + frame
        for offset in 0...bytes.count {
            var parser = HTTPResponseParser()
            parser.expectResponse(to: .get)
            var events: [HTTPResponseParser.Event] = []
            for slice in [bytes[..<offset], bytes[offset...]] {
                parser.feed(slice)
                while let event = parser.next() { events.append(event) }
            }
            guard case .upgrade(let upgraded)? = events.first else {
                Issue.record("no upgrade at split \(offset): \(events)")
                continue
            }
            #expect(events.count == 1, "split at \(offset)")
            #expect(upgraded.status == 101, "split at \(offset)")
            #expect(parser.takeRemainingBytes() == frame, "split at \(offset)")
        }
    }
}
