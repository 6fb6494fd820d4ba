import PomeriumHTTP
import Testing

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite("Encoder")
struct EncoderTests {
    @Test("request head")
    func requestHead() throws {
        let head = try HTTPRequestHead(
            method: .post, target: "/a?b=c", headers: ["Host": "example.test", "Content-Length": "0"])
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(head, into: &bytes)
        #expect(text(bytes) == "POST /a?b=c HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n")
    }

    @Test("response head")
    func responseHead() throws {
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(HTTPResponseHead(status: 404, headers: ["X": "y"]), into: &bytes)
        #expect(text(bytes) == "HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n")
        bytes = []
        try HTTPEncoder.encode(HTTPResponseHead(status: 299, version: .http1_0), into: &bytes)
        #expect(text(bytes) == "HTTP/1.0 299 \r\n\r\n")
    }

    @Test("version numbers of more than one digit")
    func versionDigits() throws {
        // One-digit numbers take a shortcut; longer ones are written digit by digit.
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(HTTPResponseHead(status: 200, version: HTTPVersion(major: 12, minor: 345)), into: &bytes)
        #expect(text(bytes) == "HTTP/12.345 200 OK\r\n\r\n")
        bytes = []
        try HTTPEncoder.encode(HTTPResponseHead(status: 200, version: HTTPVersion(major: 9, minor: 10)), into: &bytes)
        #expect(text(bytes) == "HTTP/9.10 200 OK\r\n\r\n")
    }

    @Test("field pieces of 1 to 40 bytes")
    func fieldLengths() throws {
        // The copy takes a different path below 4, from 4 to 7, from 8 to 16 and above 16 bytes.
        for length in 1...40 {
            let name = String((0..<length).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })
            let value = String((0..<length).map { Character(UnicodeScalar(UInt8(ascii: "A") + UInt8($0 % 26))) })
            var bytes: [UInt8] = []
            try HTTPEncoder.encode(HTTPResponseHead(status: 200, headers: [name: value, "Z": "z"]), into: &bytes)
            #expect(text(bytes) == "HTTP/1.1 200 OK\r\n\(name): \(value)\r\nZ: z\r\n\r\n")
        }
    }

    @Test("chunks and last chunk")
    func chunks() throws {
        var bytes: [UInt8] = []
        HTTPEncoder.encodeChunk(Array("hello".utf8), into: &bytes)
        HTTPEncoder.encodeChunk([UInt8](), into: &bytes)
        HTTPEncoder.encodeChunk([UInt8](repeating: 0x61, count: 300), into: &bytes)
        try HTTPEncoder.encodeLastChunk(trailers: ["X-Sum": "1"], into: &bytes)
        let expected = "5\r\nhello\r\n12C\r\n" + String(repeating: "a", count: 300) + "\r\n0\r\nX-Sum: 1\r\n\r\n"
        #expect(text(bytes) == expected)
    }

    @Test("encoded request parses back")
    func roundTrip() throws {
        let head = try HTTPRequestHead(
            method: .put, target: "http://example.test:81/x",
            headers: ["Host": "example.test:81", "Transfer-Encoding": "chunked"])
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(head, into: &bytes)
        HTTPEncoder.encodeChunk(Array("abc".utf8), into: &bytes)
        try HTTPEncoder.encodeLastChunk(into: &bytes)
        let events = parseRequests(bytes: bytes)
        #expect(events == [.head(head), .body(Array("abc".utf8)), .end(trailers: HTTPHeaders())])
    }

    @Test(
        "injection rejected",
        arguments: [
            (["X": "a\r\nSet-Cookie: b"], .invalidHeaderValue),
            (["X": "a\nb"], .invalidHeaderValue), (["X": "a\rb"], .invalidHeaderValue),
            (["X": "a\u{0}b"], .invalidHeaderValue), (["X": "a\u{1B}b"], .invalidHeaderValue),
            (["X\r\nY": "v"], .invalidHeaderName), (["X Y": "v"], .invalidHeaderName), (["": "v"], .invalidHeaderName),
            (["X:": "v"], .invalidHeaderName), (["X\u{0}": "v"], .invalidHeaderName),
        ] as [(HTTPHeaders, HTTPEncodingError.Kind)])
    func injection(_ headers: HTTPHeaders, _ kind: HTTPEncodingError.Kind) throws {
        var bytes: [UInt8] = []
        #expect(throws: HTTPEncodingError(kind)) {
            try HTTPEncoder.encode(HTTPResponseHead(status: 200, headers: headers), into: &bytes)
        }
        let request = try HTTPRequestHead(method: .get, target: "/", headers: headers)
        #expect(throws: HTTPEncodingError(kind)) { try HTTPEncoder.encode(request, into: &bytes) }
        #expect(throws: HTTPEncodingError(kind)) { try HTTPEncoder.encodeLastChunk(trailers: headers, into: &bytes) }
        #expect(bytes.isEmpty)
    }

    @Test("reason and status checked")
    func reasonAndStatus() {
        var bytes: [UInt8] = []
        #expect(throws: HTTPEncodingError(.invalidReason)) {
            try HTTPEncoder.encode(HTTPResponseHead(status: 200, reason: "OK\r\nX: y"), into: &bytes)
        }
        #expect(throws: HTTPEncodingError(.invalidStatus)) {
            try HTTPEncoder.encode(HTTPResponseHead(status: 42), into: &bytes)
        }
        #expect(throws: HTTPEncodingError(.invalidStatus)) {
            try HTTPEncoder.encode(HTTPResponseHead(status: 1000), into: &bytes)
        }
    }

    @Test("request head rejects bad targets")
    func badTargets() {
        #expect(throws: HTTPParseError(.invalidTarget)) { try HTTPRequestHead(method: .get, target: "/a b") }
        #expect(throws: HTTPParseError(.invalidTarget)) { try HTTPRequestHead(method: .get, target: "/a\r\nX: y") }
        #expect(throws: HTTPParseError(.invalidTarget)) { try HTTPRequestHead(method: .get, target: "") }
    }
}

@Suite("Types")
struct HTTPTypesTests {
    @Test("method validation")
    func method() {
        #expect(HTTPMethod("GET") == .get)
        #expect(HTTPMethod("M-SEARCH")?.rawValue == "M-SEARCH")
        #expect(HTTPMethod("get") != .get)
        #expect(HTTPMethod("") == nil)
        #expect(HTTPMethod("GE T") == nil)
        #expect(HTTPMethod("GET\r\n") == nil)
        #expect(HTTPMethod("(GET)") == nil)
    }

    @Test("headers editing")
    func headers() {
        var headers: HTTPHeaders = ["A": "1", "b": "2", "a": "3"]
        #expect(headers["a"] == ["1", "3"])
        #expect(headers.count(name: "A") == 2)
        headers.replaceOrAdd(name: "a", value: "x")
        #expect(headers.map(\.name) == ["A", "b"])
        #expect(headers.first(name: "A") == "x")
        headers.replaceOrAdd(name: "C", value: "new")
        #expect(headers.map(\.name) == ["A", "b", "C"])
        headers.remove(name: "B")
        #expect(!headers.contains(name: "b"))
        #expect(headers.count == 2)
    }

    @Test("token lists")
    func tokens() {
        let headers: HTTPHeaders = ["Connection": "Keep-Alive, ,Upgrade", "connection": " close "]
        #expect(headers.tokens(name: "Connection") == ["keep-alive", "upgrade", "close"])
        #expect(headers.containsToken("UPGRADE", name: "connection"))
        #expect(!headers.containsToken("up", name: "connection"))
    }

    @Test("version ordering")
    func version() {
        #expect(HTTPVersion.http1_0 < .http1_1)
        #expect(HTTPVersion.http1_1.description == "HTTP/1.1")
        #expect(!HTTPVersion.http1_0.isAtLeastHTTP11)
        #expect(!HTTPVersion(major: 2, minor: 0).isAtLeastHTTP11)
    }

    @Test("request head helpers")
    func requestHelpers() throws {
        let head = try HTTPRequestHead(method: .get, target: "/p?q", headers: ["Host": "Example.Test:8080"])
        #expect(head.path == "/p")
        #expect(head.query == "q")
        #expect(head.authority?.host == "example.test")
        #expect(head.authority?.port == 8080)
        let noHost = try HTTPRequestHead(method: .get, target: "/", headers: ["Host": ""])
        #expect(noHost.authority == nil)
        let upgrade = try HTTPRequestHead(
            method: .get, target: "/", headers: ["Connection": "keep-alive, Upgrade", "Upgrade": "websocket"])
        #expect(upgrade.isUpgradeRequest)
        let notUpgrade = try HTTPRequestHead(method: .get, target: "/", headers: ["Upgrade": "websocket"])
        #expect(!notUpgrade.isUpgradeRequest)
    }
}

@Suite("Hop-by-hop fields")
struct HopByHopTests {
    @Test("standard and named fields removed")
    func removed() {
        var headers: HTTPHeaders = [
            "Host": "h", "Connection": "keep-alive, X-Private", "Keep-Alive": "timeout=5", "x-private": "1",
            "Transfer-Encoding": "chunked", "Upgrade": "websocket", "TE": "trailers", "Trailer": "X",
            "Proxy-Authorization": "Basic eA==", "Proxy-Connection": "close", "Proxy-Authenticate": "Basic",
            "Accept": "*/*",
        ]
        headers.removeHopByHopFields()
        #expect(headers.map(\.name) == ["Host", "Accept"])
    }
}
