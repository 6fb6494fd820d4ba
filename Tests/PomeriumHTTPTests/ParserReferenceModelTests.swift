import Testing

@testable import PomeriumHTTP

/// Compares the parsers with a byte-by-byte model of the field-line rules they document (RFC 9112
/// §5, RFC 9110 §5.5): a name is a non-empty token ended by a colon, whitespace before the colon
/// and a leading space are errors, a value contains no byte below 0x20 but HTAB and no DEL, and
/// obs-text (0x80 to 0xFF) is kept. The scanner's control-byte flag and the eight-byte name test
/// are shortcuts of these rules, so each case places one byte of every value at every position of
/// a name or value, with the field at eight alignments, and expects the model's error or the exact
/// field bytes.
@Suite("Parsers: field lines against a byte-by-byte model")
struct ParserReferenceModelTests {
    /// What the model expects for one field line: an error, or the field's name and value bytes.
    enum Expected: Equatable {
        case error(HTTPParseError.Kind)
        case field(name: [UInt8], value: [UInt8])
    }

    /// Returns what the model expects for one field line without its CRLF. CR and LF are left to
    /// the line-break cases.
    static func model(_ line: [UInt8]) -> Expected {
        if let first = line.first, first == ASCII.space || first == ASCII.tab { return .error(.obsoleteLineFolding) }
        var colon = 0
        while colon < line.count {
            let byte = line[colon]
            if byte == ASCII.colon { break }
            if byte == ASCII.space || byte == ASCII.tab { return .error(.whitespaceBeforeColon) }
            if !isToken(byte) { return .error(.invalidHeaderName) }
            colon += 1
        }
        guard colon > 0, colon < line.count else { return .error(.invalidHeaderName) }
        var value = Array(line[(colon + 1)...])
        while let first = value.first, first == ASCII.space || first == ASCII.tab { value.removeFirst() }
        while let last = value.last, last == ASCII.space || last == ASCII.tab { value.removeLast() }
        for byte in value where (byte < 0x20 && byte != ASCII.tab) || byte == 0x7F {
            return .error(.invalidHeaderValue)
        }
        return .field(name: Array(line[..<colon]), value: value)
    }

    /// `tchar` of RFC 9110 §5.6.2, spelled out rather than taken from the parser's table.
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    /// Lines that put the tested field at eight different offsets from the start of the head.
    static let shifts: [[UInt8]] = (0..<8).map { Array("Shift-Pad: \(String(repeating: "1", count: $0 + 1))\r\n".utf8) }

    static let nameFiller = Array("Abcdefgh-Ijklmnop-Qr".utf8)
    static let valueFiller = Array("0123456789abcdefghij".utf8)
    /// Every byte but CR and LF.
    static let lineBytes = (UInt8.min...UInt8.max).filter { $0 != ASCII.cr && $0 != ASCII.lf }

    /// Returns the field lines to test: one byte of `lineBytes` at each position of a name and of
    /// a value.
    static func lines() -> [[UInt8]] {
        var result: [[UInt8]] = []
        for position in 0..<nameFiller.count {
            for byte in lineBytes {
                var name = nameFiller
                name[position] = byte
                result.append(name + Array(": v".utf8))
            }
        }
        for position in 0..<valueFiller.count {
            for byte in lineBytes {
                var value = valueFiller
                value[position] = byte
                result.append(Array("X-Field: ".utf8) + value)
            }
        }
        return result
    }

    /// Parses a request head with `line` as its last field and returns the result in the form
    /// `model` gives.
    static func requestResult(_ line: [UInt8], shift: [UInt8], sliceSize: Int) -> Expected? {
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8) + shift + line + Array("\r\n\r\n".utf8)
        let events = parseRequests(bytes: bytes, sliceSize: sliceSize)
        if let error = firstError(events) { return .error(error.kind) }
        return heads(events).first.flatMap { lastField($0.headers) }
    }

    static func lastField(_ headers: HTTPHeaders) -> Expected? {
        guard let field = headers.last else { return nil }
        let name = Array(field.name.utf8)
        let value = headers.withFirstValueBytes(name: field.name) { Array($0) }
        return value.map { .field(name: name, value: $0) }
    }

    @Test("request heads: every byte in every name and value position, at eight alignments")
    func requestHeads() {
        for line in Self.lines() {
            let expected = Self.model(line)
            for shift in Self.shifts {
                let actual = Self.requestResult(line, shift: shift, sliceSize: .max)
                #expect(actual == expected, "line \(line) after \(shift.count) bytes")
            }
        }
    }

    @Test("request heads fed one byte at a time")
    func requestHeadsByteByByte() {
        for line in Self.lines() {
            let actual = Self.requestResult(line, shift: Self.shifts[3], sliceSize: 1)
            #expect(actual == Self.model(line), "line \(line)")
        }
    }

    @Test("trailer sections: every byte in every name and value position")
    func trailers() {
        for line in Self.lines() {
            let bytes =
                Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n".utf8)
                + Self.shifts[5] + line + Array("\r\n\r\n".utf8)
            let events = parseRequests(bytes: bytes)
            var actual: Expected?
            if let error = firstError(events) { actual = .error(error.kind) }
            for case .end(let trailers) in events { actual = Self.lastField(trailers) }
            #expect(actual == Self.model(line), "line \(line)")
        }
    }

    @Test("response heads: every byte in every name and value position")
    func responseHeads() {
        for line in Self.lines() {
            for sliceSize in [Int.max, 3] {
                let bytes =
                    Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".utf8) + Self.shifts[sliceSize % 8] + line
                    + Array("\r\n\r\n".utf8)
                var parser = HTTPResponseParser()
                parser.expectResponse(to: .get)
                var actual: Expected?
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + min(sliceSize, bytes.count - offset))
                    parser.feed(bytes[offset..<end])
                    offset = end
                    while let event = parser.next() {
                        switch event {
                        case .error(let error): if actual == nil { actual = .error(error.kind) }
                        case .head(let head): actual = Self.lastField(head.headers)
                        default: break
                        }
                    }
                }
                #expect(actual == Self.model(line), "line \(line), slices of \(sliceSize)")
            }
        }
    }

    /// A CR not followed by LF, and an LF not preceded by CR, anywhere in a name or value.
    @Test("bare CR and bare LF at every position")
    func bareLineBreaks() {
        let line = Array("Abcdefgh-Ijklmnop: 0123456789abcdefghij".utf8)
        for position in 0..<line.count {
            for (byte, kind) in [(ASCII.cr, HTTPParseError.Kind.bareCarriageReturn), (ASCII.lf, .bareLineFeed)] {
                var changed = line
                changed[position] = byte
                for sliceSize in [Int.max, 1] {
                    let actual = Self.requestResult(changed, shift: Self.shifts[position % 8], sliceSize: sliceSize)
                    #expect(actual == .error(kind), "byte \(byte) at \(position), slices of \(sliceSize)")
                }
            }
        }
    }

    /// A head split in two at every byte: the first part ends where the scan stops mid-word, on a
    /// CR whose LF has not arrived, or right after a control byte.
    @Test("heads split at every byte boundary")
    func everySplit() {
        let cases: [([UInt8], Expected)] = ([0x00, 0x09, 0x1F, 0x7F, 0x80, 0xFF] as [UInt8]).map { byte in
            let line = Array("X-Abcdefghijk: 0123456".utf8) + [byte] + Array("789abcdef".utf8)
            return (line, Self.model(line))
        }
        for (line, expected) in cases {
            let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8) + line + Array("\r\nY: 1\r\n\r\n".utf8)
            for split in 1..<bytes.count {
                var parser = HTTPRequestParser()
                var events: [HTTPRequestParser.Event] = []
                parser.feed(bytes[..<split])
                while let event = parser.next() { events.append(event) }
                parser.feed(bytes[split...])
                while let event = parser.next() { events.append(event) }
                var actual: Expected?
                if let error = firstError(events) {
                    actual = .error(error.kind)
                } else if let head = heads(events).first {
                    let value = head.headers.withFirstValueBytes(name: "X-Abcdefghijk") { Array($0) }
                    actual = value.map { .field(name: Array("X-Abcdefghijk".utf8), value: $0) }
                }
                #expect(actual == expected, "line \(line) split at \(split)")
            }
        }
    }

    /// The flag covers the whole section: an allowed HTAB in one line makes the parser check the
    /// values of every line, and a control byte in a later line is still rejected.
    @Test("a control byte in one line and a rejected one in another")
    func flagCoversEveryLine() {
        for bad in [UInt8(0x00), 0x01, 0x1B, 0x7F] {
            for order in [true, false] {
                let tabbed = Array("T: a\tb\r\n".utf8)
                let rejected = Array("U: c".utf8) + [bad] + Array("d\r\n".utf8)
                let fields = order ? tabbed + rejected : rejected + tabbed
                let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8) + fields + Array("\r\n".utf8)
                #expect(firstError(parseRequests(bytes: bytes))?.kind == .invalidHeaderValue, "byte \(bad)")
            }
        }
    }

    /// Two requests on one connection: the first one's HTAB sets the flag of its own scanner only,
    /// and the second one's NUL is rejected whatever the first one contained.
    @Test("each message starts with a clear flag")
    func flagPerMessage() {
        let first = "GET /1 HTTP/1.1\r\nHost: h\r\nT: a\tb\r\n\r\n"
        let second = Array("GET /2 HTTP/1.1\r\nHost: h\r\nU: c".utf8) + [0x00] + Array("d\r\n\r\n".utf8)
        let clean = "GET /3 HTTP/1.1\r\nHost: h\r\nV: \u{e9}t\u{e9}\r\n\r\n"
        let events = parseRequests(bytes: Array(first.utf8) + second)
        #expect(heads(events).count == 1)
        #expect(firstError(events)?.kind == .invalidHeaderValue)
        let cleanEvents = parseRequests(first + clean)
        #expect(heads(cleanEvents).map { $0.headers.first(name: "V") } == [nil, "\u{e9}t\u{e9}"])
    }
}
