import PomeriumHTTP
import Testing

private func written(_ actions: [HTTPServerConnection.Action]) -> String {
    var bytes: [UInt8] = []
    for action in actions {
        if case .write(let chunk) = action { bytes += chunk }
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func startedTargets(_ actions: [HTTPServerConnection.Action]) -> [String] {
    actions.compactMap {
        if case .startRequest(let head) = $0 { return head.target }
        return nil
    }
}

private func received(_ connection: inout HTTPServerConnection, _ text: String) -> [HTTPServerConnection.Action] {
    connection.bytesReceived(Array(text.utf8))
}

private let okHead = HTTPResponseHead(status: 200, headers: ["Content-Length": "2"])

@Suite("Server connection")
struct ServerConnectionTests {
    @Test("keep-alive request and response")
    func keepAlive() throws {
        var connection = HTTPServerConnection()
        let actions = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(startedTargets(actions) == ["/"])
        #expect(actions.last == .requestEnd(trailers: HTTPHeaders()))
        let head = try connection.writeHead(okHead)
        #expect(written(head) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        #expect(written(try connection.writeBody(Array("ok".utf8))) == "ok")
        let end = try connection.finishResponse()
        #expect(!end.contains(.close))
        #expect(!connection.isClosed)
        #expect(connection.isIdle)
    }

    @Test("HTTP/1.1 Connection close")
    func connectionClose() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        let head = written(try connection.writeHead(okHead))
        #expect(head.contains("Connection: close\r\n"))
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(try connection.finishResponse() == [.close])
        #expect(connection.isClosed)
    }

    @Test("handler Connection close ends connection")
    func handlerClose() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var head = okHead
        head.headers.add(name: "Connection", value: "close")
        _ = try connection.writeHead(head)
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(try connection.finishResponse().last == .close)
    }

    @Test("handler framing fields in any case")
    func handlerFieldsAnyCase() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var head = okHead
        head.headers.add(name: "transfer-ENCODING", value: "gzip")
        head.headers.add(name: "CONNECTION", value: "upgrade, Close")
        let text = written(try connection.writeHead(head))
        #expect(!text.contains("gzip"))
        #expect(!text.lowercased().contains("transfer-encoding"))
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(try connection.finishResponse().last == .close)
    }

    @Test("HTTP/1.0 closes by default")
    func http10Default() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.0\r\n\r\n")
        let head = written(try connection.writeHead(okHead))
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.contains("Connection: close\r\n"))
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(try connection.finishResponse().last == .close)
    }

    @Test("HTTP/1.0 keep-alive")
    func http10KeepAlive() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let head = written(try connection.writeHead(okHead))
        #expect(head.contains("Connection: keep-alive\r\n"))
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(!(try connection.finishResponse()).contains(.close))
    }

    @Test("HTTP/1.0 without length is close-delimited")
    func http10CloseDelimited() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let head = written(try connection.writeHead(HTTPResponseHead(status: 200)))
        #expect(!head.contains("Transfer-Encoding"))
        #expect(head.contains("Connection: close"))
        #expect(written(try connection.writeBody(Array("raw".utf8))) == "raw")
        #expect(try connection.finishResponse() == [.close])
    }

    @Test("chunked response for HTTP/1.1 without length")
    func chunkedResponse() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = written(
            try connection.writeHead(HTTPResponseHead(status: 200, headers: ["Transfer-Encoding": "gzip"])))
        #expect(head == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(written(try connection.writeBody(Array("hello".utf8))) == "5\r\nhello\r\n")
        #expect(written(try connection.writeBody([UInt8]())) == "")
        #expect(written(try connection.finishResponse(trailers: ["X-T": "1"])) == "0\r\nX-T: 1\r\n\r\n")
    }

    @Test("pipelined requests answered in order")
    func pipelining() throws {
        var connection = HTTPServerConnection()
        let first = received(
            &connection,
            "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(startedTargets(first) == ["/1"])
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("ok".utf8))
        let second = try connection.finishResponse()
        #expect(startedTargets(second) == ["/2"])
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(startedTargets(try connection.finishResponse()) == ["/3"])
    }

    @Test("pipelined request with body")
    func pipelinedBody() throws {
        var connection = HTTPServerConnection()
        let first = received(
            &connection,
            "POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
        )
        #expect(first.contains(.requestBody(Array("abc".utf8))))
        #expect(!first.contains(.requestBody(Array("xyz".utf8))))
        #expect(!connection.isIdle)
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("ok".utf8))
        let second = try connection.finishResponse()
        #expect(startedTargets(second) == ["/2"])
        #expect(second.contains(.requestBody(Array("xyz".utf8))))
        #expect(second.last == .requestEnd(trailers: HTTPHeaders()))
    }

    @Test("same actions at any slicing")
    func anySlicing() throws {
        let input = Array(
            ("POST /1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                + "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n").utf8)
        func run(_ sliceSize: Int) throws -> [String] {
            var connection = HTTPServerConnection()
            var log: [String] = []
            var body: [UInt8] = []
            var offset = 0
            while offset < input.count {
                let end = min(input.count, offset + sliceSize)
                for action in connection.bytesReceived(input[offset..<end]) {
                    switch action {
                    case .startRequest(let head): log.append("start \(head.target)")
                    case .requestBody(let bytes): body += bytes
                    case .requestEnd:
                        log.append("end \(String(decoding: body, as: UTF8.self))")
                        body = []
                        _ = try connection.writeHead(okHead)
                        _ = try connection.writeBody(Array("ok".utf8))
                        for next in try connection.finishResponse() {
                            if case .startRequest(let head) = next { log.append("start \(head.target)") }
                            if case .requestEnd = next { log.append("end ") }
                        }
                    default: log.append("\(action)")
                    }
                }
                offset = end
            }
            return log
        }
        let whole = try run(input.count)
        #expect(whole == ["start /1", "end abc", "start /2", "end "])
        for size in 1..<8 {
            #expect(try run(size) == whole, "slice size \(size)")
        }
    }

    @Test("pipelined bytes pause reading")
    func pipelineBackpressure() throws {
        var connection = HTTPServerConnection(configuration: .init(maxPipelinedBytes: 40))
        _ = received(&connection, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        let more = received(&connection, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(more == [.pauseReading])
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("ok".utf8))
        let next = try connection.finishResponse()
        #expect(next.first == .resumeReading)
        #expect(startedTargets(next) == ["/2"])
    }

    @Test("100-continue sent when handler reads body")
    func expectContinue() throws {
        var connection = HTTPServerConnection()
        let start = received(
            &connection, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        #expect(written(start) == "")
        #expect(written(connection.handlerReadsBody()) == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(connection.handlerReadsBody() == [])
        let body = received(&connection, "abc")
        #expect(body == [.requestBody(Array("abc".utf8)), .requestEnd(trailers: HTTPHeaders())])
    }

    @Test("no 100-continue without body")
    func continueWithoutBody() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
        #expect(connection.handlerReadsBody() == [])
    }

    @Test("partial head for timeouts")
    func partialHead() {
        var connection = HTTPServerConnection()
        #expect(!connection.hasPartialRequestHead)
        #expect(connection.isIdle)
        _ = received(&connection, "GET / HT")
        #expect(connection.hasPartialRequestHead)
        #expect(!connection.isIdle)
        let timeout = String(
            decoding: HTTPServerConnection.errorResponse(status: 408, message: "request\r\ntimed out"), as: UTF8.self)
        #expect(timeout.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(timeout.contains("Content-Length: 19\r\n"))
        #expect(timeout.hasSuffix("\r\n\r\nrequest  timed out\n"))
    }

    @Test("no 100-continue after final head")
    func continueAfterHead() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        let head = written(try connection.writeHead(HTTPResponseHead(status: 401, headers: ["Content-Length": "0"])))
        #expect(head.contains("Connection: close"))
        #expect(connection.handlerReadsBody() == [])
        #expect(try connection.finishResponse() == [.close])
    }

    @Test("100-continue ignored for HTTP/1.0")
    func continueHTTP10() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        #expect(connection.handlerReadsBody() == [])
    }

    @Test("unknown expectation gets 417")
    func unknownExpectation() {
        var connection = HTTPServerConnection()
        let actions = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n")
        #expect(written(actions).hasPrefix("HTTP/1.1 417 Expectation Failed\r\n"))
        #expect(actions.last == .close)
        #expect(startedTargets(actions).isEmpty)
    }

    @Test("HEAD response writes no body")
    func headRequest() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = written(try connection.writeHead(HTTPResponseHead(status: 200, headers: ["Content-Length": "10"])))
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(try connection.writeBody(Array("0123456789".utf8)) == [])
        #expect(try connection.finishResponse() == [])
        let chunkless = HTTPResponseHead(status: 200)
        _ = received(&connection, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(!written(try connection.writeHead(chunkless)).contains("Transfer-Encoding"))
    }

    @Test("204 response writes no body")
    func noContent() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = written(try connection.writeHead(HTTPResponseHead(status: 204)))
        #expect(head == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(try connection.writeBody(Array("x".utf8)) == [])
    }

    @Test("OPTIONS asterisk reaches handler")
    func optionsAsterisk() {
        var connection = HTTPServerConnection()
        let actions = received(&connection, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(startedTargets(actions) == ["*"])
    }

    @Test("upgrade after upstream 101")
    func upgradeAccepted() throws {
        var connection = HTTPServerConnection()
        _ = received(
            &connection,
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{1}x")
        let actions = try connection.writeHead(
            HTTPResponseHead(status: 101, headers: ["Connection": "Upgrade", "Upgrade": "websocket"]))
        #expect(
            written(actions) == "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(actions.last == .startTunnel(initialBytes: Array("\u{81}\u{1}x".utf8)))
        #expect(connection.isTunnel)
        #expect(received(&connection, "more") == [])
    }

    @Test("upgrade refused keeps HTTP")
    func upgradeRefused() throws {
        var connection = HTTPServerConnection()
        _ = received(
            &connection,
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("no".utf8))
        let next = try connection.finishResponse()
        #expect(startedTargets(next) == ["/next"])
        #expect(!connection.isTunnel)
    }

    @Test("101 without upgrade request is rejected")
    func unrequested101() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(throws: HTTPServerConnection.UsageError.switchingProtocolsNotRequested) {
            try connection.writeHead(HTTPResponseHead(status: 101))
        }
    }

    @Test("103 interim head before final")
    func interimHead() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let early = written(try connection.writeHead(HTTPResponseHead(status: 103, headers: ["Link": "</a>"])))
        #expect(early == "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        #expect(written(try connection.writeHead(okHead)).hasPrefix("HTTP/1.1 200"))
    }

    @Test("parse error answered then closed")
    func parseError() {
        var connection = HTTPServerConnection()
        let actions = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n")
        let text = written(actions)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\ninvalid Content-Length\n"))
        #expect(actions.last == .close)
        #expect(connection.isClosed)
    }

    @Test("error in pipelined request after response")
    func pipelinedError() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("ok".utf8))
        let actions = try connection.finishResponse()
        #expect(written(actions).hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(actions.last == .close)
    }

    @Test("body error mid-request")
    func bodyError() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        let actions = received(&connection, "zz\r\n")
        #expect(actions.first == .requestFailed(HTTPParseError(.invalidChunkSize)))
        #expect(written(actions).hasPrefix("HTTP/1.1 400"))
        #expect(actions.last == .close)
    }

    @Test("peer close when idle")
    func peerCloseIdle() {
        var connection = HTTPServerConnection()
        #expect(connection.peerClosed() == [.close])
    }

    @Test("peer close mid-body")
    func peerCloseMidBody() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
        let actions = connection.peerClosed()
        #expect(actions == [.requestFailed(HTTPParseError(.incompleteMessage)), .close])
    }

    @Test("half-close after request still answers")
    func halfClose() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(connection.peerClosed() == [])
        #expect(written(try connection.writeHead(okHead)).contains("Connection: close"))
        _ = try connection.writeBody(Array("ok".utf8))
        #expect(try connection.finishResponse() == [.close])
    }

    @Test("early response closes after unread body")
    func earlyResponse() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial")
        let head = written(try connection.writeHead(HTTPResponseHead(status: 413, headers: ["Content-Length": "0"])))
        #expect(head.contains("Connection: close"))
        #expect(try connection.finishResponse() == [.close])
    }

    @Test("body beyond Content-Length rejected")
    func bodyTooLong() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try connection.writeHead(okHead)
        #expect(throws: HTTPServerConnection.UsageError.bodyExceedsContentLength) {
            try connection.writeBody(Array("too long".utf8))
        }
    }

    @Test("short body closes connection")
    func bodyTooShort() throws {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try connection.writeHead(okHead)
        _ = try connection.writeBody(Array("o".utf8))
        #expect(try connection.finishResponse() == [.close])
    }

    @Test("header injection rejected at write")
    func headerInjection() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let head = HTTPResponseHead(status: 302, headers: ["Location": "/a\r\nSet-Cookie: x=y", "Content-Length": "0"])
        #expect(throws: HTTPServerConnection.UsageError.invalidHead(HTTPEncodingError(.invalidHeaderValue))) {
            try connection.writeHead(head)
        }
    }

    @Test("usage errors")
    func usageErrors() throws {
        var connection = HTTPServerConnection()
        #expect(throws: HTTPServerConnection.UsageError.noActiveRequest) { try connection.writeHead(okHead) }
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(throws: HTTPServerConnection.UsageError.headNotWritten) { try connection.writeBody([1]) }
        #expect(throws: HTTPServerConnection.UsageError.headNotWritten) { try connection.finishResponse() }
        _ = try connection.writeHead(okHead)
        #expect(throws: HTTPServerConnection.UsageError.headAlreadyWritten) { try connection.writeHead(okHead) }
    }

    @Test("abort closes once")
    func abort() {
        var connection = HTTPServerConnection()
        _ = received(&connection, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(connection.abort() == [.close])
        #expect(connection.abort() == [])
    }

    @Test("appending calls keep actions on error")
    func appendingVariants() throws {
        var connection = HTTPServerConnection()
        var actions: [HTTPServerConnection.Action] = [.pauseReading]
        let request = Array("GET /a HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        request.withUnsafeBytes { connection.bytesReceived($0, into: &actions) }
        #expect(actions.first == .pauseReading)
        #expect(startedTargets(actions) == ["/a"])
        #expect(actions.last == .requestEnd(trailers: HTTPHeaders()))

        actions = [.pauseReading]
        #expect(throws: HTTPServerConnection.UsageError.headNotWritten) {
            try connection.writeBody(Array("ok".utf8), into: &actions)
        }
        #expect(throws: HTTPServerConnection.UsageError.headNotWritten) {
            try connection.finishResponse(trailers: HTTPHeaders(), into: &actions)
        }
        var badHead = okHead
        badHead.headers.replaceOrAdd(name: "Content-Length", value: "x")
        #expect(throws: HTTPServerConnection.UsageError.invalidContentLength) {
            try connection.writeHead(badHead, into: &actions)
        }
        #expect(actions == [.pauseReading])

        try connection.writeHead(okHead, into: &actions)
        try connection.writeBody(Array("ok".utf8), into: &actions)
        #expect(actions.first == .pauseReading)
        #expect(written(actions) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(throws: HTTPServerConnection.UsageError.bodyExceedsContentLength) {
            try connection.writeBody(Array("!".utf8), into: &actions)
        }
        #expect(actions.count == 3)

        let second = Array("GET /b HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        second.withUnsafeBytes { connection.bytesReceived($0, into: &actions) }
        #expect(actions.count == 3)
        try connection.finishResponse(trailers: HTTPHeaders(), into: &actions)
        #expect(startedTargets(actions) == ["/b"])
        #expect(actions.last == .requestEnd(trailers: HTTPHeaders()))
    }

    @Test("prepareBodyWrite frames like writeBody: raw, chunked, dropped, bounded by Content-Length")
    func prepareBodyWrite() throws {
        var fixed = HTTPServerConnection()
        _ = received(&fixed, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(throws: HTTPServerConnection.UsageError.headNotWritten) { try fixed.prepareBodyWrite(count: 1) }
        _ = try fixed.writeHead(okHead)
        #expect(try fixed.prepareBodyWrite(count: 0) == .drop)
        #expect(try fixed.prepareBodyWrite(count: 1) == .raw)
        #expect(throws: HTTPServerConnection.UsageError.bodyExceedsContentLength) {
            try fixed.prepareBodyWrite(count: 2)
        }
        #expect(try fixed.prepareBodyWrite(count: 1) == .raw)
        #expect(!(try fixed.finishResponse()).contains(.close), "the whole body was accounted for")

        var chunked = HTTPServerConnection()
        _ = received(&chunked, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try chunked.writeHead(HTTPResponseHead(status: 200))
        #expect(try chunked.prepareBodyWrite(count: 5) == .chunked)

        var head = HTTPServerConnection()
        _ = received(&head, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try head.writeHead(okHead)
        #expect(try head.prepareBodyWrite(count: 2) == .drop)

        var old = HTTPServerConnection()
        _ = received(&old, "GET / HTTP/1.0\r\n\r\n")
        _ = try old.writeHead(HTTPResponseHead(status: 200))
        #expect(try old.prepareBodyWrite(count: 3) == .raw, "close-delimited for HTTP/1.0")
    }

    @Test("writeHead editing matches writeHead")
    func writeHeadEditingInPlace() throws {
        var viaActions = HTTPServerConnection()
        _ = received(&viaActions, "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
        let response = HTTPResponseHead(status: 200, headers: ["Transfer-Encoding": "gzip", "Content-Length": "2"])
        let expected = written(try viaActions.writeHead(response))

        var direct = HTTPServerConnection()
        _ = received(&direct, "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
        var head = response
        var buffer: [UInt8] = []
        var actions: [HTTPServerConnection.Action] = []
        try direct.writeHead(editing: &head, encodingInto: &buffer, actions: &actions)
        #expect(String(decoding: buffer, as: UTF8.self) == expected)
        #expect(head.headers.first(name: "Transfer-Encoding") == nil, "the handler's framing field is dropped")
        #expect(head.headers.first(name: "Connection") == "keep-alive", "an HTTP/1.0 keep-alive is answered")
        #expect(actions.isEmpty)
    }

    @Test("writeHead(encodingInto:) appends the same bytes writeHead returns, and only then")
    func writeHeadIntoBuffer() throws {
        var viaActions = HTTPServerConnection()
        _ = received(&viaActions, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let expected = written(try viaActions.writeHead(okHead))

        var direct = HTTPServerConnection()
        _ = received(&direct, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var buffer = Array("earlier".utf8)
        var actions: [HTTPServerConnection.Action] = []
        try direct.writeHead(okHead, encodingInto: &buffer, actions: &actions)
        #expect(String(decoding: buffer, as: UTF8.self) == "earlier" + expected)
        #expect(actions.isEmpty)
        #expect(throws: HTTPServerConnection.UsageError.headAlreadyWritten) {
            try direct.writeHead(okHead, encodingInto: &buffer, actions: &actions)
        }

        // A rejected head leaves the buffer and the actions alone.
        var rejected = HTTPServerConnection()
        _ = received(&rejected, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        var bad = okHead
        bad.headers.add(name: "X", value: "a\r\nInjected: yes")
        var untouched: [UInt8] = []
        #expect(throws: HTTPServerConnection.UsageError.invalidHead(HTTPEncodingError(.invalidHeaderValue))) {
            try rejected.writeHead(bad, encodingInto: &untouched, actions: &actions)
        }
        #expect(untouched.isEmpty)
        #expect(actions.isEmpty)

        // A 101 puts the head bytes in the buffer and the tunnel start in the actions.
        var upgrade = HTTPServerConnection()
        _ = received(&upgrade, "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nearly")
        var upgradeBuffer: [UInt8] = []
        try upgrade.writeHead(
            HTTPResponseHead(status: 101, headers: ["Connection": "Upgrade", "Upgrade": "x"]),
            encodingInto: &upgradeBuffer, actions: &actions)
        #expect(String(decoding: upgradeBuffer, as: UTF8.self).hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(actions == [.startTunnel(initialBytes: Array("early".utf8))])
    }
}
