import PomeriumHTTP
import Testing

/// One hostile or malformed request with the error it must produce.
struct RejectionCase: CustomTestStringConvertible, Sendable {
    let label: String
    let request: [UInt8]
    let kind: HTTPParseError.Kind
    let status: Int
    var limits = HTTPParserLimits()

    init(
        _ label: String, _ request: String, _ kind: HTTPParseError.Kind, _ status: Int,
        limits: HTTPParserLimits = .init()
    ) {
        self.label = label
        self.request = Array(request.utf8)
        self.kind = kind
        self.status = status
        self.limits = limits
    }

    init(_ label: String, bytes: [UInt8], _ kind: HTTPParseError.Kind, _ status: Int) {
        self.label = label
        self.request = bytes
        self.kind = kind
        self.status = status
    }

    var testDescription: String { label }
}

private let host = "Host: h\r\n"

let framingRejections: [RejectionCase] = [
    RejectionCase(
        "Content-Length with Transfer-Encoding",
        "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        .contentLengthWithTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding before Content-Length",
        "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        .contentLengthWithTransferEncoding, 400),
    RejectionCase(
        "duplicate identical Content-Length fields",
        "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        .multipleContentLength, 400),
    RejectionCase(
        "differing Content-Length fields",
        "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        .multipleContentLength, 400),
    RejectionCase(
        "Content-Length comma list of equal values",
        "POST / HTTP/1.1\r\n\(host)Content-Length: 5, 5\r\n\r\nhello", .invalidContentLength, 400),
    RejectionCase(
        "Content-Length comma list of different values",
        "POST / HTTP/1.1\r\n\(host)Content-Length: 5,6\r\n\r\nhello", .invalidContentLength, 400),
    RejectionCase(
        "Content-Length not a number", "POST / HTTP/1.1\r\n\(host)Content-Length: abc\r\n\r\n",
        .invalidContentLength, 400),
    RejectionCase(
        "Content-Length negative", "POST / HTTP/1.1\r\n\(host)Content-Length: -1\r\n\r\n", .invalidContentLength, 400),
    RejectionCase(
        "Content-Length with plus sign", "POST / HTTP/1.1\r\n\(host)Content-Length: +5\r\n\r\n",
        .invalidContentLength, 400),
    RejectionCase(
        "Content-Length with inner space", "POST / HTTP/1.1\r\n\(host)Content-Length: 1 2\r\n\r\n",
        .invalidContentLength, 400),
    RejectionCase(
        "Content-Length empty", "POST / HTTP/1.1\r\n\(host)Content-Length:\r\n\r\n", .invalidContentLength, 400),
    RejectionCase(
        "Content-Length hex", "POST / HTTP/1.1\r\n\(host)Content-Length: 0x10\r\n\r\n", .invalidContentLength, 400),
    RejectionCase(
        "Content-Length overflow", "POST / HTTP/1.1\r\n\(host)Content-Length: 99999999999999999999999\r\n\r\n",
        .invalidContentLength, 400),
    RejectionCase(
        "Transfer-Encoding gzip", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: gzip\r\n\r\n",
        .unsupportedTransferCoding, 501),
    RejectionCase(
        "Transfer-Encoding gzip then chunked", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: gzip, chunked\r\n\r\n",
        .unsupportedTransferCoding, 501),
    RejectionCase(
        "Transfer-Encoding chunked not last",
        "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
        .unsupportedTransferCoding, 501),
    RejectionCase(
        "Transfer-Encoding unknown token", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: xchunked\r\n\r\n",
        .unsupportedTransferCoding, 501),
    RejectionCase(
        "Transfer-Encoding chunked twice", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, chunked\r\n\r\n",
        .invalidTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding chunked in two fields",
        "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        .invalidTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding quoted", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: \"chunked\"\r\n\r\n",
        .invalidTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding with parameter", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked;q=1\r\n\r\n",
        .invalidTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding empty", "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: \r\n\r\n",
        .invalidTransferEncoding, 400),
    RejectionCase(
        "Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        .transferEncodingInHTTP10, 400),
]

let lineRejections: [RejectionCase] = [
    RejectionCase(
        "obsolete line folding", "GET / HTTP/1.1\r\n\(host)X-A: 1\r\n  continued\r\n\r\n", .obsoleteLineFolding, 400),
    RejectionCase(
        "folding with tab", "GET / HTTP/1.1\r\n\(host)X-A: 1\r\n\tcontinued\r\n\r\n", .obsoleteLineFolding, 400),
    RejectionCase("first field line folded", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", .obsoleteLineFolding, 400),
    RejectionCase("bare CR in field value", "GET / HTTP/1.1\r\n\(host)X-A: a\rb\r\n\r\n", .bareCarriageReturn, 400),
    RejectionCase("bare CR in request line", "GET /\r HTTP/1.1\r\n\(host)\r\n", .bareCarriageReturn, 400),
    RejectionCase("bare LF after request line", "GET / HTTP/1.1\n\(host)\r\n", .bareLineFeed, 400),
    RejectionCase("bare LF after field", "GET / HTTP/1.1\r\nHost: h\n\r\n", .bareLineFeed, 400),
    RejectionCase("bare LF ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", .bareLineFeed, 400),
    RejectionCase("LF only request", "GET / HTTP/1.1\nHost: h\n\n", .bareLineFeed, 400),
    RejectionCase(
        "NUL in field value", bytes: Array("GET / HTTP/1.1\r\n\(host)X-A: a".utf8) + [0] + Array("b\r\n\r\n".utf8),
        .invalidHeaderValue, 400),
    RejectionCase(
        "control character in field value",
        bytes: Array("GET / HTTP/1.1\r\n\(host)X-A: a".utf8) + [0x01] + Array("\r\n\r\n".utf8), .invalidHeaderValue, 400
    ),
    RejectionCase(
        "DEL in field value", bytes: Array("GET / HTTP/1.1\r\n\(host)X-A: a".utf8) + [0x7F] + Array("\r\n\r\n".utf8),
        .invalidHeaderValue, 400),
    RejectionCase(
        "NUL in field name", bytes: Array("GET / HTTP/1.1\r\n\(host)X-".utf8) + [0] + Array("A: b\r\n\r\n".utf8),
        .invalidHeaderName, 400),
    RejectionCase("space before colon", "GET / HTTP/1.1\r\n\(host)X-A : b\r\n\r\n", .whitespaceBeforeColon, 400),
    RejectionCase("tab before colon", "GET / HTTP/1.1\r\n\(host)X-A\t: b\r\n\r\n", .whitespaceBeforeColon, 400),
    RejectionCase("space inside field name", "GET / HTTP/1.1\r\n\(host)X A: b\r\n\r\n", .whitespaceBeforeColon, 400),
    RejectionCase(
        "non-ASCII in field name",
        bytes: Array("GET / HTTP/1.1\r\n\(host)X-".utf8) + [0xC3, 0xA9] + Array(": b\r\n\r\n".utf8),
        .invalidHeaderName, 400),
    RejectionCase("separator in field name", "GET / HTTP/1.1\r\n\(host)X(A): b\r\n\r\n", .invalidHeaderName, 400),
    RejectionCase("empty field name", "GET / HTTP/1.1\r\n\(host): b\r\n\r\n", .invalidHeaderName, 400),
    RejectionCase("field line without colon", "GET / HTTP/1.1\r\n\(host)NoColon\r\n\r\n", .invalidHeaderName, 400),
    RejectionCase(
        "too many empty lines before request", String(repeating: "\r\n", count: 9) + "GET / HTTP/1.1\r\n\(host)\r\n",
        .tooManyEmptyLines, 400),
]

let startLineRejections: [RejectionCase] = [
    RejectionCase("separator in method", "GE(T / HTTP/1.1\r\n\(host)\r\n", .invalidMethod, 400),
    RejectionCase("leading space before method", " GET / HTTP/1.1\r\n\(host)\r\n", .invalidMethod, 400),
    RejectionCase("request line without spaces", "GET\r\n\(host)\r\n", .invalidMethod, 400),
    RejectionCase(
        "non-ASCII in method", bytes: Array("G".utf8) + [0xC3, 0xA9] + Array("T / HTTP/1.1\r\n\(host)\r\n".utf8),
        .invalidMethod, 400),
    RejectionCase("two spaces after method", "GET  / HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("missing version", "GET /\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("space inside target", "GET /a b HTTP/1.1\r\n\(host)\r\n", .invalidVersion, 400),
    RejectionCase("double quote in target", "GET /a\"b HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("angle bracket in target", "GET /<script> HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("backslash in target", "GET /a\\..\\b HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("brace in target", "GET /{x} HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("fragment in target", "GET /a#frag HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("malformed percent in target", "GET /a%zz HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("truncated percent in target", "GET /a% HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("malformed percent in query", "GET /a?x=%g0 HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase(
        "non-ASCII in target", bytes: Array("GET /caf".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\n\(host)\r\n".utf8),
        .invalidTarget, 400),
    RejectionCase("asterisk with GET", "GET * HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("relative target", "GET a/b HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("CONNECT without port", "CONNECT example.test HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("CONNECT with origin-form", "CONNECT / HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("absolute-form with ftp scheme", "GET ftp://h/f HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("absolute-form with user info", "GET http://u:p@h/ HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("absolute-form without host", "GET http:///p HTTP/1.1\r\n\(host)\r\n", .invalidTarget, 400),
    RejectionCase("lowercase version", "GET / http/1.1\r\n\(host)\r\n", .invalidVersion, 400),
    RejectionCase("version with trailing text", "GET / HTTP/1.1x\r\n\(host)\r\n", .invalidVersion, 400),
    RejectionCase("version without dot", "GET / HTTP/11\r\n\(host)\r\n", .invalidVersion, 400),
    RejectionCase("version with trailing space", "GET / HTTP/1.1 \r\n\(host)\r\n", .invalidVersion, 400),
    RejectionCase("HTTP/2.0", "GET / HTTP/2.0\r\n\(host)\r\n", .unsupportedVersion, 505),
    RejectionCase("HTTP/0.9", "GET / HTTP/0.9\r\n\(host)\r\n", .unsupportedVersion, 505),
]

let hostRejections: [RejectionCase] = [
    RejectionCase("missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .missingHost, 400),
    RejectionCase("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .multipleHost, 400),
    RejectionCase("two identical Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", .multipleHost, 400),
    RejectionCase("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", .multipleHost, 400),
    RejectionCase("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host with comma list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host with user info", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host port too large", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host port not numeric", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", .invalidHost, 400),
    RejectionCase("Host invalid IPv6", "GET / HTTP/1.1\r\nHost: [1:2:3]\r\n\r\n", .invalidHost, 400),
]

let limitRejections: [RejectionCase] = [
    RejectionCase(
        "request line too long", "GET /\(String(repeating: "a", count: 8200)) HTTP/1.1\r\n\(host)\r\n",
        .requestLineTooLong, 414),
    RejectionCase(
        "request line over a small limit", "GET /abcdefghij HTTP/1.1\r\n\(host)\r\n", .requestLineTooLong, 414,
        limits: HTTPParserLimits(maxStartLineLength: 16)),
    RejectionCase(
        "header section too large",
        "GET / HTTP/1.1\r\n\(host)X-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n",
        .headerSectionTooLarge, 431),
    RejectionCase(
        "header section over a small limit", "GET / HTTP/1.1\r\n\(host)X-A: 0123456789\r\n\r\n",
        .headerSectionTooLarge, 431, limits: HTTPParserLimits(maxHeaderSectionSize: 16)),
    RejectionCase(
        "too many header fields",
        "GET / HTTP/1.1\r\n\(host)" + (0..<100).map { "X-\($0): v\r\n" }.joined() + "\r\n", .tooManyHeaders, 431),
    RejectionCase(
        "too many fields under a small limit", "GET / HTTP/1.1\r\n\(host)A: 1\r\nB: 2\r\n\r\n", .tooManyHeaders, 431,
        limits: HTTPParserLimits(maxHeaderCount: 2)),
    RejectionCase(
        "Content-Length over the body limit", "POST / HTTP/1.1\r\n\(host)Content-Length: 11\r\n\r\nhello world",
        .bodyTooLarge, 413, limits: HTTPParserLimits(maxBodySize: 10)),
    RejectionCase(
        "chunked body over the body limit",
        "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
        .bodyTooLarge, 413, limits: HTTPParserLimits(maxBodySize: 10)),
]

private let chunkedHead = "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n"

let chunkRejections: [RejectionCase] = [
    RejectionCase("chunk size not hex", chunkedHead + "xyz\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk size negative", chunkedHead + "-1\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk size empty", chunkedHead + "\r\nabc\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk size with 0x prefix", chunkedHead + "0x5\r\nhello\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk size overflow", chunkedHead + "10000000000000000\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk size overflow to negative", chunkedHead + "ffffffffffffffff\r\n", .invalidChunkSize, 400),
    RejectionCase(
        "chunk size line too long", chunkedHead + "5;" + String(repeating: "a", count: 5000) + "\r\n",
        .chunkLineTooLong, 400),
    RejectionCase("chunk extension without name", chunkedHead + "5;\r\nhello\r\n", .invalidChunkExtension, 400),
    RejectionCase("chunk extension with empty value", chunkedHead + "5;a=\r\nhello\r\n", .invalidChunkExtension, 400),
    RejectionCase(
        "chunk extension unterminated quote", chunkedHead + "5;a=\"x\r\nhello\r\n", .invalidChunkExtension, 400),
    RejectionCase("chunk size with trailing space", chunkedHead + "5 \r\nhello\r\n", .invalidChunkExtension, 400),
    RejectionCase("chunk size followed by text", chunkedHead + "5 x\r\nhello\r\n", .invalidChunkExtension, 400),
    RejectionCase("chunk size with letters", chunkedHead + "5g\r\nhello\r\n", .invalidChunkSize, 400),
    RejectionCase("chunk data too long", chunkedHead + "5\r\nhelloX\r\n0\r\n\r\n", .missingChunkTerminator, 400),
    RejectionCase("chunk data with bare LF after", chunkedHead + "5\r\nhello\n0\r\n\r\n", .missingChunkTerminator, 400),
    RejectionCase("chunk size line with bare LF", chunkedHead + "5\nhello\r\n", .bareLineFeed, 400),
    RejectionCase("chunk size line with bare CR", chunkedHead + "5\rhello\r\n", .bareCarriageReturn, 400),
    RejectionCase("trailer with folding", chunkedHead + "0\r\nX-T: 1\r\n more\r\n\r\n", .obsoleteLineFolding, 400),
    RejectionCase("trailer with bad name", chunkedHead + "0\r\nX T: 1\r\n\r\n", .whitespaceBeforeColon, 400),
    RejectionCase("trailer ending with bare LF", chunkedHead + "0\r\nX-T: 1\n\n", .bareLineFeed, 400),
    RejectionCase(
        "trailer section too large", chunkedHead + "0\r\nX-T: \(String(repeating: "t", count: 70_000))\r\n\r\n",
        .headerSectionTooLarge, 431),
]

@Suite("Request parser: rejections")
struct RequestParserRejectionTests {
    private func check(_ testCase: RejectionCase) {
        let events = parseRequests(bytes: testCase.request, limits: testCase.limits)
        let error = firstError(events)
        #expect(error?.kind == testCase.kind)
        #expect(error?.status == testCase.status)
        #expect(events.last.map { if case .error = $0 { true } else { false } } == true)
    }

    @Test("framing", arguments: framingRejections)
    func framing(_ testCase: RejectionCase) { check(testCase) }

    @Test("lines and fields", arguments: lineRejections)
    func lines(_ testCase: RejectionCase) { check(testCase) }

    @Test("start line", arguments: startLineRejections)
    func startLine(_ testCase: RejectionCase) { check(testCase) }

    @Test("Host", arguments: hostRejections)
    func hostField(_ testCase: RejectionCase) { check(testCase) }

    @Test("limits", arguments: limitRejections)
    func limits(_ testCase: RejectionCase) { check(testCase) }

    @Test("chunked body", arguments: chunkRejections)
    func chunked(_ testCase: RejectionCase) { check(testCase) }

    @Test("same error at any slicing", arguments: framingRejections + lineRejections + chunkRejections)
    func sameErrorAnySlicing(_ testCase: RejectionCase) {
        let whole = parseRequests(bytes: testCase.request, limits: testCase.limits)
        let byteByByte = parseRequests(bytes: testCase.request, sliceSize: 1, limits: testCase.limits)
        #expect(firstError(byteByByte) == firstError(whole))
    }

    @Test("parser stops after an error")
    func stopsAfterError() {
        var parser = HTTPRequestParser()
        parser.feed(Array("GET / HTTP/9.9\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(parser.next() == .error(HTTPParseError(.unsupportedVersion)))
        #expect(parser.next() == nil)
        parser.feed(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(parser.next() == nil)
    }

    @Test("request cut short by close")
    func cutShort() {
        let inHead = parseRequests("GET / HTTP/1.1\r\nHost:", finish: true)
        #expect(firstError(inHead)?.kind == .incompleteMessage)
        let inBody = parseRequests("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", finish: true)
        #expect(firstError(inBody)?.kind == .incompleteMessage)
        #expect(inBody.contains(.body(Array("abc".utf8))))
        let inChunk = parseRequests(chunkedHead + "5\r\nhel", finish: true)
        #expect(firstError(inChunk)?.kind == .incompleteMessage)
    }

    @Test("limit exactly reached is accepted")
    func limitBoundary() {
        let line = "GET /abcdefghij HTTP/1.1"
        let exact = HTTPParserLimits(maxStartLineLength: line.utf8.count)
        #expect(firstError(parseRequests("\(line)\r\n\(host)\r\n", limits: exact)) == nil)
        let oneShort = HTTPParserLimits(maxStartLineLength: line.utf8.count - 1)
        #expect(firstError(parseRequests("\(line)\r\n\(host)\r\n", limits: oneShort))?.status == 414)
        let hundred = "GET / HTTP/1.1\r\n\(host)" + (0..<99).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(firstError(parseRequests(hundred)) == nil)
        let exactBody = HTTPParserLimits(maxBodySize: 5)
        #expect(
            firstError(parseRequests("POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\n\r\nhello", limits: exactBody))
                == nil)
    }
}
