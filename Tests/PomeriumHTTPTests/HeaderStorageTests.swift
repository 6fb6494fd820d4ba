import Testing

@testable import PomeriumHTTP

/// The byte storage behind `HTTPHeaders`: parsed fields kept as received, checks on fields added
/// later, name filters on bytes, equality, and bounded growth under repeated edits.
@Suite("Header storage")
struct HeaderStorageTests {
    private func parsedHead(_ extraField: [UInt8] = []) throws -> HTTPRequestHead {
        let bytes =
            Array("GET /a HTTP/1.1\r\nHost: h.example.test\r\nX-One: 1\r\n".utf8) + extraField
            + Array("Accept: */*\r\n\r\n".utf8)
        return try #require(heads(parseRequests(bytes: bytes)).first)
    }

    private func encoded(_ head: HTTPRequestHead) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(head, into: &bytes)
        return bytes
    }

    @Test("obs-text in a parsed value is forwarded byte for byte")
    func obsTextForwardedUnchanged() throws {
        // 0xFF 0xFE is not UTF-8: a string of it reads U+FFFD twice, the wire keeps the bytes.
        let head = try parsedHead(Array("X-Raw: a".utf8) + [0xFF, 0xFE] + Array("b\r\n".utf8))
        #expect(head.headers.first(name: "X-Raw") == "a\u{FFFD}\u{FFFD}b")
        let wire = try encoded(head)
        let expected = Array("X-Raw: a".utf8) + [0xFF, 0xFE] + Array("b\r\n".utf8)
        #expect(wire.firstRange(of: expected) != nil)
    }

    @Test("fields added or replaced after parsing are checked when encoded")
    func addedFieldsChecked() throws {
        var head = try parsedHead()
        head.headers.add(name: "Bad Name", value: "x")
        #expect(throws: HTTPEncodingError(.invalidHeaderName)) { try encoded(head) }

        head = try parsedHead()
        head.headers.replaceOrAdd(name: "x-one", value: "split\r\nInjected: yes")
        var buffer: [UInt8] = Array("kept".utf8)
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) { try HTTPEncoder.encode(head, into: &buffer) }
        #expect(buffer == Array("kept".utf8), "a failed encode leaves the buffer as it was")

        head.headers.replaceOrAdd(name: "X-One", value: "2")
        try HTTPEncoder.encode(head, into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text == "keptGET /a HTTP/1.1\r\nHost: h.example.test\r\nX-One: 2\r\nAccept: */*\r\n\r\n")
    }

    @Test("replaceOrAdd keeps the first field's place and spelling and drops later ones")
    func replaceKeepsPlace() {
        var headers: HTTPHeaders = [:]
        headers.add(name: "A", value: "1")
        headers.add(name: "X-Dup", value: "first")
        headers.add(name: "B", value: "2")
        headers.add(name: "x-dup", value: "second")
        headers.replaceOrAdd(name: "X-DUP", value: "only")
        #expect(headers.map(\.name) == ["A", "X-Dup", "B"])
        #expect(headers["x-dup"] == ["only"])
        headers.replaceOrAdd(name: "C", value: "3")
        #expect(headers.map(\.name) == ["A", "X-Dup", "B", "C"])
    }

    @Test("name filters read bytes with letters folded")
    func nameFilters() throws {
        var headers = try parsedHead().headers
        let xOne = Array("x-one".utf8)
        #expect(headers.containsField(whereName: { HTTPFieldName.matches($0, lowercase: xOne) }))
        #expect(!headers.containsField(whereName: { HTTPFieldName.matches($0, lowercase: Array("x-on".utf8)) }))
        #expect(headers.containsField(whereName: { HTTPFieldName.hasPrefix($0, lowercase: Array("x-o".utf8)) }))
        headers.removeFields(whereName: { HTTPFieldName.hasPrefix($0, lowercase: Array("x-".utf8)) })
        #expect(headers.map(\.name) == ["Host", "Accept"])
        let unchanged = headers
        headers.removeFields(whereName: { _ in false })
        #expect(headers == unchanged)
    }

    @Test("equal lists compare and hash equal however they were built")
    func equality() throws {
        let parsed = try parsedHead().headers
        var built = HTTPHeaders()
        built.add(name: "Host", value: "h.example.test")
        built.add(name: "X-One", value: "1")
        built.add(name: "Accept", value: "*/*")
        #expect(parsed == built)
        #expect(Set([parsed, built]).count == 1)
        var renamed = built
        renamed.remove(name: "accept")
        renamed.add(name: "accept", value: "*/*")
        #expect(renamed != built, "names compare byte for byte, case included")
    }

    @Test("repeated replacement keeps the storage bounded")
    func boundedGrowth() {
        var headers: HTTPHeaders = ["Keep": "k"]
        let value = String(repeating: "v", count: 100)
        for round in 0..<10_000 {
            headers.replaceOrAdd(name: "X-Counter", value: value + String(round))
        }
        #expect(headers.first(name: "x-counter") == value + "9999")
        #expect(headers.first(name: "Keep") == "k")
        #expect(headers.bytes.count < 16 * 1024)
    }

    @Test("socket reads fed as raw buffers parse like arrays", arguments: [1, 2, 7, 1024])
    func rawFeedMatchesArrayFeed(sliceSize: Int) {
        let inputs = [
            "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n",
        ]
        for input in inputs {
            let bytes = Array(input.utf8)
            var parser = HTTPRequestParser()
            var events: [HTTPRequestParser.Event] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + sliceSize)
                bytes[offset..<end].withUnsafeBytes { parser.feed($0) }
                offset = end
                while let event = parser.next() { events.append(event) }
            }
            #expect(
                coalesceBodies(events) == parseRequests(bytes: bytes, sliceSize: sliceSize),
                "input \(input.debugDescription)")
        }
    }

    @Test("value checks find a bad byte at any offset of a long value")
    func valueCheckEveryOffset() throws {
        let filler = Array(repeating: UInt8(ascii: "a"), count: 20)
        for offset in 0..<filler.count {
            for bad: UInt8 in [0x00, 0x01, 0x1F, 0x7F] {
                var value = filler
                value[offset] = bad
                let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\nX: ".utf8) + value + Array("\r\n\r\n".utf8)
                #expect(
                    firstError(parseRequests(bytes: bytes))?.kind == .invalidHeaderValue, "byte \(bad) at \(offset)")
            }
            for good: UInt8 in [0x09, 0x20, 0x7E, 0x80, 0xFF] {
                var value = filler
                value[offset] = good
                let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\nX: ".utf8) + value + Array("\r\n\r\n".utf8)
                #expect(heads(parseRequests(bytes: bytes)).count == 1, "byte \(good) at \(offset)")
            }
        }
    }

    @Test("cookie value checks find a bad byte at any offset of a long value")
    func cookieCheckEveryOffset() {
        let filler = Array(repeating: UInt8(ascii: "v"), count: 20)
        for offset in 0..<filler.count {
            for bad: UInt8 in [0x01, 0x1F, 0x22, 0x5C, 0x7F, 0x80] {
                var value = filler
                value[offset] = bad
                var headers = HTTPHeaders()
                headers.add(name: "Cookie", value: "a=1; s=" + String(decoding: value, as: UTF8.self) + "; b=2")
                #expect(CookieParser.parse(headers: headers).map(\.name) == ["a", "b"], "byte \(bad) at \(offset)")
            }
            for good: UInt8 in [0x20, 0x2C, 0x21, 0x7E] {
                var value = filler
                value[offset] = good
                let text = String(decoding: value, as: UTF8.self)
                let cookies = CookieParser.parse("s=" + text)
                // A space at either end is trimmed, as around any cookie value.
                var expected = Substring(text)
                if good == 0x20 && offset == 0 { expected = expected.dropFirst() }
                if good == 0x20 && offset == filler.count - 1 { expected = expected.dropLast() }
                #expect(cookies.map(\.value) == [String(expected)])
            }
        }
    }

    @Test("fields added as validated skip the encoder's check; plain ones keep it")
    func validatedFieldsSkipCheck() throws {
        var headers = HTTPHeaders()
        headers.add(validatedName: "Content-Type", value: "text/plain")
        headers.add(name: "X-Plain", value: "1")
        #expect(headers.entries.map(\.isChecked) == [true, false])
        #expect(headers.first(name: "content-type") == "text/plain")

        // Replacing a field added unchecked with a validated value marks it checked.
        headers.replaceOrAdd(validatedName: "x-plain", value: "2")
        #expect(headers.entries.map(\.isChecked) == [true, true])
        #expect(headers.first(name: "X-Plain") == "2")
        #expect(headers.firstInvalidFieldKind() == nil)

        // A validated replacement also drops later fields of the same name, like `replaceOrAdd`.
        headers.add(name: "X-Plain", value: "3")
        headers.replaceOrAdd(validatedName: "X-Plain", value: "4")
        #expect(headers["X-Plain"] == ["4"])
        headers.replaceOrAdd(validatedName: "X-New", value: "5")
        #expect(headers.entries.last?.isChecked == true)
        #expect(headers.first(name: "X-New") == "5")

        let head = HTTPResponseHead(status: 200, headers: headers)
        var wire: [UInt8] = []
        try HTTPEncoder.encode(head, into: &wire)
        #expect(
            String(decoding: wire, as: UTF8.self)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Plain: 4\r\nX-New: 5\r\n\r\n")
    }

    @Test("a head built from a validated path and query equals the parsed target")
    func validatedPathHead() throws {
        let cases: [(path: String, query: String?)] = [("/", nil), ("/a/b%20c", "x=1&y=%2F"), ("/q", "")]
        for (path, query) in cases {
            var headers = HTTPHeaders()
            headers.add(validatedName: "Host", value: "h.example.test")
            let built = HTTPRequestHead(method: .post, validatedPath: path, query: query, headers: headers)
            let target = path + (query.map { "?" + $0 } ?? "")
            let parsed = try HTTPRequestHead(method: .post, target: target, headers: headers)
            #expect(built == parsed)
            #expect(built.target == target)
            #expect(built.path == path)
            #expect(built.query == query)
            #expect(try encoded(built) == encoded(parsed))
        }
    }

    @Test("a filtered copy keeps the chosen fields in order, their checks, and only their bytes")
    func filteredCopy() throws {
        var headers = try parsedHead().headers
        headers.add(name: "X-Added", value: "a")
        headers.add(name: "X-Drop", value: "gone")
        let kept = headers.filtered(reservingFields: 2, bytes: 32) { name in
            !HTTPFieldName.matches(name, lowercase: Array("x-one".utf8))
                && !HTTPFieldName.matches(name, lowercase: Array("x-drop".utf8))
        }
        #expect(kept.map(\.name) == ["Host", "Accept", "X-Added"])
        #expect(kept.entries.map(\.isChecked) == [true, true, false])
        #expect(Array(kept.bytes[..<kept.end]) == Array("Hosth.example.testAccept*/*X-Addeda".utf8))
        #expect(kept.bytes[kept.end...].allSatisfy { $0 == 0 }, "spare room for 32 bytes, all zero")
        #expect(kept.bytes.count - kept.end >= 32)
        #expect(headers.count == 5, "the original is unchanged")
        let none = headers.filtered(reservingFields: 0, bytes: 0) { _ in false }
        #expect(none.isEmpty)
    }

    @Test("filtered copy with a first field")
    func filteredCopyWithFirstField() throws {
        let headers = try parsedHead().headers
        let kept = headers.filtered(
            reservingFields: 1, bytes: 16, firstName: "Host", value: "up.example.test:8080", isValidated: true
        ) { name in !HTTPFieldName.matches(name, lowercase: Array("host".utf8)) }
        #expect(kept.map(\.name) == ["Host", "X-One", "Accept"])
        #expect(kept.first(name: "Host") == "up.example.test:8080")
        #expect(kept.entries.map(\.isChecked) == [true, true, true])
        #expect(Array(kept.bytes[..<kept.end]) == Array("Hostup.example.test:8080X-One1Accept*/*".utf8))
        #expect(kept.bytes.count - kept.end >= 16)
        var grown = kept
        grown.add(name: "X-Later", value: "l")
        #expect(grown.map(\.name) == ["Host", "X-One", "Accept", "X-Later"])

        // Not vouched for, the first field is checked when encoded, as an added field is.
        let unchecked = headers.filtered(
            reservingFields: 0, bytes: 0, firstName: "Host", value: "a\r\nInjected: yes", isValidated: false
        ) { _ in false }
        #expect(unchecked.entries.map(\.isChecked) == [false])
        let head = try HTTPRequestHead(method: .get, target: "/", headers: unchecked)
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) { try encoded(head) }
    }

    @Test("replacing fields reuses unshared storage")
    func replaceFieldsReusesStorage() throws {
        let first = try parsedHead(Array("X-Long: \(String(repeating: "v", count: 100))\r\n".utf8)).headers
        let second = try parsedHead().headers
        let keepAll: (UnsafeBufferPointer<UInt8>) -> Bool = { _ in true }
        var built = HTTPHeaders()
        built.replaceFields(
            withFieldsOf: first, reservingFields: 2, bytes: 32, firstName: "Host", value: "up.example.test",
            isValidated: true, keepingName: keepAll)
        #expect(
            built
                == first.filtered(
                    reservingFields: 2, bytes: 32, firstName: "Host", value: "up.example.test", isValidated: true,
                    keepingName: keepAll))
        let storage = built.bytes.withUnsafeBufferPointer { $0.baseAddress }

        built.replaceFields(withFieldsOf: second, reservingFields: 2, bytes: 32) { name in
            !HTTPFieldName.matches(name, lowercase: Array("x-one".utf8))
        }
        #expect(built.map(\.name) == ["Host", "Accept"])
        #expect(built.first(name: "Host") == "h.example.test")
        #expect(built.entries.map(\.isChecked) == [true, true])
        #expect(built.bytes.withUnsafeBufferPointer { $0.baseAddress } == storage, "written in place")
        built.add(name: "X-Added", value: "a")
        #expect(built.map(\.name) == ["Host", "Accept", "X-Added"])
        #expect(built.first(name: "X-Added") == "a")

        // A list that shares the storage keeps its fields.
        let shared = built
        built.replaceFields(withFieldsOf: first, reservingFields: 0, bytes: 0) { _ in false }
        #expect(built.isEmpty)
        #expect(shared.map(\.name) == ["Host", "Accept", "X-Added"])
        #expect(shared.first(name: "X-Added") == "a")
    }

    @Test("copies append independently into shared room")
    func appendsIntoSharedSpareRoom() throws {
        var original = try parsedHead().headers.filtered(reservingFields: 2, bytes: 64) { _ in true }
        var copy = original
        copy.add(validatedName: "X-Copy", value: "c")
        original.add(name: "X-Original", value: "o")
        #expect(copy.map(\.name) == ["Host", "X-One", "Accept", "X-Copy"])
        #expect(original.map(\.name) == ["Host", "X-One", "Accept", "X-Original"])
        #expect(copy.first(name: "X-Copy") == "c")
        #expect(copy.first(name: "X-Original") == nil)
        #expect(original.first(name: "X-Original") == "o")
        #expect(original.first(name: "X-Copy") == nil)
    }

    @Test("appends past spare room grow storage")
    func appendsGrowStorage() {
        var headers = HTTPHeaders()
        var expected: [HTTPHeaders.Field] = []
        for index in 0..<200 {
            let value = String(repeating: "v", count: index % 40)
            headers.add(name: "X-Field-\(index)", value: value)
            expected.append(HTTPHeaders.Field(name: "X-Field-\(index)", value: value))
        }
        #expect(Array(headers) == expected)
        #expect(headers.bytes.count >= headers.end)
        headers.add(name: "", value: "")
        let kept = headers.filtered(reservingFields: 0, bytes: 0) { $0.isEmpty }
        #expect(kept.map(\.name) == [""], "an empty name and value copy without reading storage")
    }

    @Test("validated insert skips encoder check")
    func insertedValidatedField() throws {
        var headers: HTTPHeaders = ["A": "1", "B": "2"]
        headers.insert(validatedName: "Host", value: "h.example.test", at: 0)
        headers.insert(validatedName: "C", value: "3", at: 3)
        #expect(headers.map(\.name) == ["Host", "A", "B", "C"])
        #expect(headers.entries.map(\.isChecked) == [true, false, false, true])
        let wire = try encoded(HTTPRequestHead(method: .get, target: "/", headers: headers))
        #expect(String(decoding: wire, as: UTF8.self).hasPrefix("GET / HTTP/1.1\r\nHost: h.example.test\r\nA: 1\r\n"))
    }

    @Test("copied value keeps bytes and check")
    func valueCopiedFromAnotherList() throws {
        let parsed = try parsedHead(Array("X-Raw: a".utf8) + [0xFF] + Array("b\r\n".utf8)).headers
        var headers = HTTPHeaders()
        let addedHost = headers.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "host", in: parsed)
        let addedRaw = headers.add(validatedName: "X-Copy", valueOfFirstFieldNamed: "X-Raw", in: parsed)
        let addedMissing = headers.add(validatedName: "X-None", valueOfFirstFieldNamed: "X-Missing", in: parsed)
        #expect(addedHost)
        #expect(addedRaw)
        #expect(!addedMissing)
        #expect(headers.map(\.name) == ["X-Forwarded-Host", "X-Copy"])
        #expect(headers.first(name: "X-Forwarded-Host") == "h.example.test")
        #expect(headers.entries.map(\.isChecked) == [true, true])
        let wire = try encoded(HTTPRequestHead(method: .get, target: "/", headers: headers))
        #expect(wire.firstRange(of: Array("X-Copy: a".utf8) + [0xFF] + Array("b\r\n".utf8)) != nil)

        var built: HTTPHeaders = ["Host": "bad\u{01}value"]
        built.add(name: "Other", value: "x")
        var copied = HTTPHeaders()
        copied.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "Host", in: built)
        #expect(copied.entries.map(\.isChecked) == [false], "an unchecked source stays unchecked")
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) {
            try encoded(HTTPRequestHead(method: .get, target: "/", headers: copied))
        }
    }

    @Test("an inserted field takes its place and is checked when encoded")
    func insertedField() throws {
        var headers: HTTPHeaders = ["A": "1", "B": "2"]
        headers.insert(name: "Host", value: "h.example.test", at: 0)
        headers.insert(name: "C", value: "3", at: 3)
        headers.insert(name: "M", value: "m", at: 2)
        #expect(headers.map(\.name) == ["Host", "A", "M", "B", "C"])
        #expect(headers.map(\.value) == ["h.example.test", "1", "m", "2", "3"])
        headers.insert(name: "X", value: "bad\r\nInjected: yes", at: 0)
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) {
            try encoded(HTTPRequestHead(method: .get, target: "/", headers: headers))
        }
    }

    @Test("the token masks accept exactly the tchar bytes of RFC 9110")
    func tokenMasks() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(ASCII.isTokenCharacter(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test("firstValue reports whether the field is known valid")
    func firstValueValidity() throws {
        var headers = try parsedHead().headers
        headers.add(name: "X-Added", value: "a")
        headers.add(validatedName: "X-Constant", value: "b")
        #expect(headers.firstValue(name: "host")?.value == "h.example.test")
        #expect(headers.firstValue(name: "host")?.isValidated == true)
        #expect(headers.firstValue(name: "X-Added")?.isValidated == false)
        #expect(headers.firstValue(name: "X-Constant")?.isValidated == true)
        #expect(headers.firstValue(name: "X-Missing") == nil)
    }
}
