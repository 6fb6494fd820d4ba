import Testing

@testable import PomeriumHTTP

/// A parser writes the fields of a connection's next head into the storage of its last head once
/// nothing else references that storage. A head already handed out must never change, whatever
/// the receiver still keeps when the next head is parsed.
@Suite("Head storage reuse")
struct HeadStorageReuseTests {
    private static let firstRequest =
        "GET /first HTTP/1.1\r\nHost: one.example.test\r\nX-First: alpha\r\nAccept: text/html\r\n\r\n"
    /// Longer fields than the first request, so that they would overrun its bytes if written there.
    private static let longerRequest =
        "POST /second HTTP/1.1\r\nHost: two.example.test\r\nContent-Length: 3\r\n"
        + "X-Second: \(String(repeating: "b", count: 300))\r\nX-Third: gamma\r\n\r\nabc"
    private static let shorterRequest = "GET /s HTTP/1.1\r\nHost: s\r\n\r\n"

    private static let firstFields = [
        HTTPHeaders.Field(name: "Host", value: "one.example.test"),
        HTTPHeaders.Field(name: "X-First", value: "alpha"),
        HTTPHeaders.Field(name: "Accept", value: "text/html"),
    ]

    /// Feeds `text` and returns the events it completes.
    private func events(_ parser: inout HTTPRequestParser, _ text: String) -> [HTTPRequestParser.Event] {
        parser.feed(Array(text.utf8))
        var events: [HTTPRequestParser.Event] = []
        while let event = parser.next() { events.append(event) }
        return events
    }

    private func requestHeads(_ events: [HTTPRequestParser.Event]) -> [HTTPRequestHead] {
        events.compactMap { if case .head(let head) = $0 { head } else { nil } }
    }

    private func encoded(_ headers: HTTPHeaders) throws -> String {
        let head = try HTTPRequestHead(method: .get, target: "/", headers: headers)
        var bytes: [UInt8] = []
        try HTTPEncoder.encode(head, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private func byteAddress(_ headers: HTTPHeaders) -> UnsafeRawPointer? {
        headers.bytes.withUnsafeBytes { $0.baseAddress }
    }

    @Test("kept request head is unchanged", arguments: [longerRequest, shorterRequest])
    func keptRequestHeadUnchanged(next: String) throws {
        var parser = HTTPRequestParser()
        let kept = try #require(requestHeads(events(&parser, Self.firstRequest)).first)
        let keptWire = try encoded(kept.headers)
        for _ in 0..<3 {
            let nextHead = try #require(requestHeads(events(&parser, next)).first)
            #expect(nextHead.headers != kept.headers)
        }
        #expect(Array(kept.headers) == Self.firstFields)
        #expect(try encoded(kept.headers) == keptWire)
        #expect(kept.target == "/first")
    }

    @Test("pipelined heads keep their own fields")
    func pipelinedHeadsKeepTheirFields() throws {
        var parser = HTTPRequestParser()
        let heads = requestHeads(events(&parser, Self.firstRequest + Self.longerRequest + Self.shorterRequest))
        try #require(heads.count == 3)
        #expect(Array(heads[0].headers) == Self.firstFields)
        #expect(heads[1].headers.first(name: "X-Second") == String(repeating: "b", count: 300))
        #expect(heads[1].headers.first(name: "X-Third") == "gamma")
        #expect(Array(heads[2].headers) == [HTTPHeaders.Field(name: "Host", value: "s")])
    }

    @Test("added fields survive the next head")
    func editedHeadUnchanged() throws {
        var parser = HTTPRequestParser()
        var kept = try #require(requestHeads(events(&parser, Self.firstRequest)).first)
        kept.headers.add(name: "X-Added", value: "by the receiver")
        _ = try #require(requestHeads(events(&parser, Self.longerRequest)).first)
        #expect(
            Array(kept.headers) == Self.firstFields + [HTTPHeaders.Field(name: "X-Added", value: "by the receiver")])
    }

    @Test("released request storage is reused")
    func releasedRequestStorageReused() throws {
        var parser = HTTPRequestParser()
        var address: UnsafeRawPointer?
        do {
            let first = try #require(requestHeads(events(&parser, Self.firstRequest)).first)
            address = byteAddress(first.headers)
        }
        let second = try #require(requestHeads(events(&parser, Self.shorterRequest)).first)
        #expect(byteAddress(second.headers) == address)
        #expect(Array(second.headers) == [HTTPHeaders.Field(name: "Host", value: "s")])
    }

    @Test("large head storage is not kept")
    func largeStorageNotKept() throws {
        let large = "GET / HTTP/1.1\r\nHost: h\r\nX-Large: \(String(repeating: "l", count: 17 * 1024))\r\n\r\n"
        var parser = HTTPRequestParser()
        let largeHead = try #require(requestHeads(events(&parser, large)).first)
        #expect(FieldLineParser.spare(from: largeHead.headers).storageCapacity == 0)
        let small = try #require(requestHeads(events(&parser, Self.firstRequest)).first)
        #expect(FieldLineParser.spare(from: small.headers).storageCapacity == small.headers.storageCapacity)
        #expect(small.headers.storageCapacity > 0)
    }

    /// Feeds `text` as the response to a request with `method` and returns the events it completes.
    private func events(
        _ parser: inout HTTPResponseParser, _ text: String, method: HTTPMethod = .get
    ) -> [HTTPResponseParser.Event] {
        parser.expectResponse(to: method)
        parser.feed(Array(text.utf8))
        var events: [HTTPResponseParser.Event] = []
        while let event = parser.next() { events.append(event) }
        return events
    }

    private func responseHeads(_ events: [HTTPResponseParser.Event]) -> [HTTPResponseHead] {
        events.compactMap {
            switch $0 {
            case .head(let head), .informational(let head): head
            default: nil
            }
        }
    }

    private static let firstResponse =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: first\r\nCache-Control: no-store\r\n\r\nok"
    private static let firstResponseFields = [
        HTTPHeaders.Field(name: "Content-Length", value: "2"),
        HTTPHeaders.Field(name: "X-Upstream", value: "first"),
        HTTPHeaders.Field(name: "Cache-Control", value: "no-store"),
    ]

    @Test(
        "kept response head is unchanged",
        arguments: [
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Upstream: \(String(repeating: "z", count: 300))\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nA: b\r\n\r\n",
        ])
    func keptResponseHeadUnchanged(next: String) throws {
        var parser = HTTPResponseParser()
        let kept = try #require(responseHeads(events(&parser, Self.firstResponse)).first)
        for _ in 0..<3 {
            let nextHead = try #require(responseHeads(events(&parser, next)).first)
            #expect(nextHead.headers != kept.headers)
        }
        #expect(Array(kept.headers) == Self.firstResponseFields)
        #expect(kept.status == 200)
    }

    @Test("kept interim head is unchanged")
    func keptInformationalHeadUnchanged() {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.feed(Array("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n".utf8))
        let interim = parser.next()
        guard case .informational(let hints)? = interim else {
            Issue.record("expected an interim response, got \(String(describing: interim))")
            return
        }
        parser.feed(Array(Self.firstResponse.utf8))
        let final = parser.next()
        guard case .head(let head)? = final else {
            Issue.record("expected the final head, got \(String(describing: final))")
            return
        }
        #expect(Array(head.headers) == Self.firstResponseFields)
        #expect(Array(hints.headers) == [HTTPHeaders.Field(name: "Link", value: "</style.css>; rel=preload")])
    }

    @Test("released response storage is reused")
    func releasedResponseStorageReused() throws {
        var parser = HTTPResponseParser()
        var address: UnsafeRawPointer?
        do {
            let first = try #require(responseHeads(events(&parser, Self.firstResponse)).first)
            address = byteAddress(first.headers)
        }
        let second = try #require(responseHeads(events(&parser, "HTTP/1.1 204 No Content\r\nA: b\r\n\r\n")).first)
        #expect(byteAddress(second.headers) == address)
        #expect(Array(second.headers) == [HTTPHeaders.Field(name: "A", value: "b")])
    }
}
