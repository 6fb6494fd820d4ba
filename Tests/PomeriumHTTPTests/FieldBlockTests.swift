import Testing

@testable import PomeriumHTTP

/// `HTTPHeaders.FieldBlock` and the reads and copies of field values in place: fields appended in
/// bulk keep their order and offsets, carry the block's checks, and an invalid field still fails
/// encoding.
@Suite("Header field blocks and in-place reads")
struct FieldBlockTests {
    private func wire(_ headers: HTTPHeaders) throws -> String {
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(
            HTTPRequestHead(method: .get, target: "/", version: .http1_1, headers: headers), into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("block appends fields in order")
    func appendsInOrder() throws {
        let block = HTTPHeaders.FieldBlock([("X-Frame-Options", "SAMEORIGIN"), ("X-Test", ""), ("Via", "1.1 p")])
        #expect(block.count == 3)
        #expect(block.byteCount == "X-Frame-OptionsSAMEORIGINX-TestVia1.1 p".utf8.count)
        #expect(block.isValid)
        var headers: HTTPHeaders = ["Host": "h.example.test"]
        headers.append(block)
        headers.append(block)
        #expect(headers.count == 7)
        #expect(headers[1] == HTTPHeaders.Field(name: "X-Frame-Options", value: "SAMEORIGIN"))
        #expect(headers[2] == HTTPHeaders.Field(name: "X-Test", value: ""))
        #expect(headers[6] == HTTPHeaders.Field(name: "Via", value: "1.1 p"))
        #expect(headers["x-frame-options"] == ["SAMEORIGIN", "SAMEORIGIN"])
        #expect(headers.firstValue(name: "Via")?.isValidated == true)
        #expect(try wire(headers).contains("\r\nX-Test: \r\nVia: 1.1 p\r\nX-Frame-Options: SAMEORIGIN\r\n"))
        headers.append(HTTPHeaders.FieldBlock())
        #expect(headers.count == 7)
    }

    @Test("invalid block field fails encoding")
    func invalidFieldsStayChecked() throws {
        let badValue = HTTPHeaders.FieldBlock([("X-Ok", "1"), ("X-Bad", "a\r\nInjected: 1")])
        #expect(!badValue.isValid)
        var headers = HTTPHeaders()
        headers.append(badValue)
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) { try wire(headers) }
        var badName = HTTPHeaders()
        badName.append(HTTPHeaders.FieldBlock([("Bad Name", "1")]))
        #expect(throws: HTTPEncodingError(.invalidHeaderName)) { try wire(badName) }
    }

    @Test("append leaves the original unchanged")
    func copyOnWrite() {
        let original: HTTPHeaders = ["A": "1"]
        var copy = original
        copy.append(HTTPHeaders.FieldBlock([("B", "2")]))
        #expect(original.count == 1)
        #expect(copy.map(\.name) == ["A", "B"])
    }

    @Test("value copy keeps its check")
    func copiesValueInPlace() throws {
        var headers = HTTPHeaders()
        // Many fields first, so the copy has to grow the storage it reads from.
        headers.add(validatedName: "Host", value: "h.example.test")
        for index in 0..<40 {
            headers.add(validatedName: "X-Filler-\(index)", value: String(repeating: "v", count: 20))
        }
        let copied = headers.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "host")
        #expect(copied)
        #expect(headers.firstValue(name: "X-Forwarded-Host")?.value == "h.example.test")
        #expect(headers.firstValue(name: "X-Forwarded-Host")?.isValidated == true)
        let copiedMissing = headers.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "Missing")
        #expect(!copiedMissing)
        #expect(headers.count(name: "X-Forwarded-Host") == 1)

        var unchecked = HTTPHeaders()
        unchecked.add(name: "Host", value: "bad\u{1}host")
        unchecked.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "Host")
        #expect(unchecked.firstValue(name: "X-Forwarded-Host")?.isValidated == false)
        #expect(throws: HTTPEncodingError(.invalidHeaderValue)) { try wire(unchecked) }
    }

    @Test("value bytes add like a string")
    func addsValueBytes() throws {
        var fromBytes: HTTPHeaders = ["Host": "h.example.test"]
        let text = Array("0a1b2c3d-0000-4e5f-a6b7-c8d9e0f1a2b3".utf8)
        text.withUnsafeBytes { fromBytes.add(validatedName: "Request-Id", valueBytes: $0) }
        fromBytes.add(validatedName: "X-Empty", valueBytes: UnsafeRawBufferPointer(start: nil, count: 0))
        var fromString: HTTPHeaders = ["Host": "h.example.test"]
        fromString.add(validatedName: "Request-Id", value: "0a1b2c3d-0000-4e5f-a6b7-c8d9e0f1a2b3")
        fromString.add(validatedName: "X-Empty", value: "")
        #expect(Array(fromBytes) == Array(fromString))
        #expect(fromBytes.firstValue(name: "Request-Id")?.isValidated == true)
        #expect(try wire(fromBytes) == wire(fromString))
    }

    @Test("persistence matches token lookups")
    func persistenceMatchesTokens() {
        let connectionFields: [[(name: String, value: String)]] = [
            [], [("Connection", "keep-alive")], [("Connection", "close")], [("connection", "Keep-Alive")],
            [("CONNECTION", " Close ")], [("Connection", "upgrade, close")], [("Connection", "keep-alive, close")],
            [("Connection", "X-Drop"), ("Connection", "close")], [("Connection", ",, ,")], [("Connection", "")],
            [("Connection", "closed")], [("Connection", "keep-alive2")], [("Connection", "clo se")],
            [("Proxy-Connection", "close")], [("Connectio", "close")], [("Connection", "\tkeep-alive\t,x")],
        ]
        for fields in connectionFields {
            var headers: HTTPHeaders = ["Host": "h.example.test"]
            for field in fields { headers.add(name: field.name, value: field.value) }
            let tokens = headers.tokens(name: "Connection")
            for version in [HTTPVersion.http1_1, .http1_0] {
                // The rule of RFC 9112 §9.3, spelt out with the token list.
                let expected =
                    !tokens.contains("close") && (version.isAtLeastHTTP11 || tokens.contains("keep-alive"))
                let response = HTTPResponseHead(status: 200, version: version, headers: headers)
                #expect(response.keepAlive == expected, "\(fields) \(version)")
                let request = HTTPRequestHead(
                    method: .get, validatedPath: "/", query: nil, version: version, headers: headers)
                #expect(request.keepAlive == expected, "\(fields) \(version)")
            }
        }
    }

    @Test("first value bytes read in place")
    func readsFirstValueBytes() {
        let headers: HTTPHeaders = ["Host": "h.example.test:8443", "host": "second", "X-Empty": ""]
        #expect(headers.withFirstValueBytes(name: "HOST") { Array($0) } == Array("h.example.test:8443".utf8))
        #expect(headers.withFirstValueBytes(name: "X-Empty") { $0.count } == 0)
        #expect(headers.withFirstValueBytes(name: "Cookie") { $0.count } == nil)
    }

    @Test("every value visited in order")
    func visitsEveryValue() {
        let headers: HTTPHeaders = ["Connection": "keep-alive", "X-Other": "x", "connection": "X-Drop, TE"]
        var seen: [String] = []
        headers.forEachValueBytes(name: "Connection") { seen.append(String(decoding: $0, as: UTF8.self)) }
        #expect(seen == ["keep-alive", "X-Drop, TE"])
        var none = 0
        headers.forEachValueBytes(name: "Upgrade") { _ in none += 1 }
        #expect(none == 0)
    }

    @Test("list tokens found in any field")
    func findsListTokens() {
        let headers: HTTPHeaders = [
            "Connection": " , keep-alive ,\tX-A", "X-Other": "close", "CONNECTION": "te,\t Close\t,",
        ]
        #expect(headers.containsToken("close", name: "connection"))
        #expect(headers.containsToken("KEEP-ALIVE", name: "Connection"))
        #expect(headers.containsToken("x-a", name: "Connection"))
        #expect(!headers.containsToken("clos", name: "Connection"))
        #expect(!headers.containsToken("", name: "Connection"))
        #expect(!headers.containsToken("close", name: "Upgrade"))
        let empty: HTTPHeaders = ["Connection": ""]
        #expect(!empty.containsToken("close", name: "Connection"))
    }
}
