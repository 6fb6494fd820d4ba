/// An incremental HTTP/1.1 response parser (RFC 9112) for the client side. Before the bytes of a
/// response arrive, the caller records the method of its request with `expectResponse(to:)`, because a `HEAD` response has no body and a `2xx` to `CONNECT` opens a
/// tunnel. Responses arrive in request order, so several requests may be outstanding.
///
/// It applies the request parser's line rules (CRLF only, no folding, no control characters) and
/// its `Content-Length` and `Transfer-Encoding` rules. A response with neither field runs until the
/// connection closes (RFC 9112 §6.3 rule 8). A `Transfer-Encoding` that does not end in `chunked`
/// would also run to the close (rule 4), but it is rejected, because this parser decodes no other
/// coding. Errors here mean the upstream misbehaved: a proxy answers its own client 502 whatever
/// `HTTPParseError.status` says.
public struct HTTPResponseParser: Sendable {
    public enum Event: Hashable, Sendable {
        /// An interim 1xx response other than 101; the final response follows.
        case informational(HTTPResponseHead)
        /// The head of the final response. Body events follow, then `end`.
        case head(HTTPResponseHead)
        /// Body bytes after transfer decoding; never empty.
        case body([UInt8])
        /// The end of the response, with the trailer fields of a chunked body (usually none).
        case end(trailers: HTTPHeaders)
        /// The peer switched protocols (101, or 2xx to `CONNECT`). The parser stops; take the bytes
        /// that follow the head with `takeRemainingBytes()`.
        case upgrade(HTTPResponseHead)
        /// The response is invalid; the parser stops and the connection cannot be reused.
        case error(HTTPParseError)
    }

    /// The phase of the parser. As in `HTTPRequestParser`, the scanner and the decoder are stored
    /// beside it, so that no call copies them out of an enum and back.
    private enum State {
        /// `scanner` is scanning a response head.
        case head
        /// `decoder` is decoding a body.
        case body
        case upgraded
        case failed
    }

    public let limits: HTTPParserLimits
    private var buffer = ParserBuffer()
    private var state = State.head
    private var scanner = SectionScanner(hasStartLine: true)
    private var decoder = BodyDecoder(framing: .none)
    private var inputClosed = false
    /// The fields of the last head. The next head is written into their storage once no other
    /// list references it.
    private var spareHeaders: HTTPHeaders?
    private var pendingMethods: [HTTPMethod] = []
    private var pendingMethodIndex = 0

    /// Whether the current or last response body runs until the connection closes, in which case
    /// the connection cannot carry another request.
    public private(set) var isCloseDelimited = false

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Records that a request with `method` was sent and its response is expected next in line.
    public mutating func expectResponse(to method: HTTPMethod) {
        if pendingMethodIndex > 0 && pendingMethodIndex == pendingMethods.count {
            // Every earlier response has arrived, so the list starts over. A keep-alive connection
            // has one request at a time, whose slot is overwritten: emptying the array with
            // `removeAll(keepingCapacity:)` and appending measured about 150 instructions more.
            pendingMethodIndex = 0
            if pendingMethods.count == 1 {
                pendingMethods[0] = method
                return
            }
            pendingMethods.removeAll(keepingCapacity: true)
        }
        pendingMethods.append(method)
    }

    /// The number of requests whose final response head has not arrived yet.
    public var outstandingRequestCount: Int { pendingMethods.count - pendingMethodIndex }

    /// Whether bytes were received that no event has consumed yet. After the last expected
    /// response ended, such bytes came unrequested, and the connection must not carry another
    /// request, whose response they would seem to start.
    public var hasUnreadBytes: Bool { buffer.readableCount > 0 }

    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard !inputClosed else { return }
        buffer.append(bytes)
    }

    /// Appends bytes read from a socket, in one copy.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !inputClosed else { return }
        buffer.append(bytes)
    }

    /// Records that the peer closed the connection: a close-delimited body ends, anything else
    /// incomplete becomes an `incompleteMessage` error.
    public mutating func finish() {
        inputClosed = true
    }

    /// Returns the next event, or nil when more bytes are needed or the parser has stopped.
    public mutating func next() -> Event? {
        switch state {
        case .failed, .upgraded:
            return nil
        case .head:
            if buffer.readableCount > 0 && outstandingRequestCount == 0 {
                return fail(.unexpectedResponse)
            }
            switch scanner.scan(buffer, limits: limits) {
            case .incomplete:
                if inputClosed && (buffer.readableCount > 0 || outstandingRequestCount > 0) {
                    return fail(.incompleteMessage)
                }
                return nil
            case .failed(let kind):
                return fail(kind == .requestLineTooLong ? .invalidStatusLine : kind)
            case .complete(let length):
                do {
                    let (head, fields) = try parseHead()
                    spareHeaders = FieldLineParser.spare(from: head.headers)
                    let event = try classify(head, fields: fields)
                    buffer.readIndex += length
                    return event
                } catch {
                    return fail(error.kind)
                }
            }
        case .body:
            let step = decoder.step(&buffer, limits: limits, inputClosed: inputClosed)
            switch consume step {
            case .needMore:
                return nil
            case .failed(let kind):
                return fail(kind)
            case .body(let bytes):
                return .body(bytes)
            case .end(let trailers):
                if isCloseDelimited {
                    state = .failed
                } else {
                    startHead()
                }
                return .end(trailers: trailers)
            }
        }
    }

    /// Starts scanning the next head, in the lines array of the last one.
    private mutating func startHead() {
        scanner.reset()
        state = .head
    }

    /// Passes the next body bytes to `body` in place and returns true, for a fixed-length body,
    /// chunk data, or a close-delimited body within the limit. Otherwise it returns false, and
    /// `next()` yields the next event. The bytes equal those of the `.body` event that `next()`
    /// would return, without the array that the event allocates. `body` must not keep the pointer.
    public mutating func nextBodyBytes(_ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard case .body = state, let range = decoder.takeBodyRun(&buffer, limits: limits) else { return false }
        // A reference of its own, so that `body` may call back into this parser: a change to the
        // buffer then copies the storage instead of moving bytes under the pointer.
        let bytes = buffer.bytes
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
        return true
    }

    /// Returns the bytes received after a 101 or `CONNECT` response head, which belong to the tunnel.
    public mutating func takeRemainingBytes() -> [UInt8] {
        state = .upgraded
        inputClosed = true
        return buffer.takeAll()
    }

    private mutating func fail(_ kind: HTTPParseError.Kind) -> Event {
        state = .failed
        return .error(HTTPParseError(kind))
    }

    /// Decides the event for a parsed head and the framing of what follows it.
    private mutating func classify(_ head: HTTPResponseHead, fields: FramingFields) throws(HTTPParseError) -> Event {
        if head.status == 101 {
            state = .upgraded
            consumePendingMethod()
            return .upgrade(head)
        }
        if head.isInformational {
            startHead()
            return .informational(head)
        }
        let method = consumePendingMethod()
        if method == .connect && (200..<300).contains(head.status) {
            state = .upgraded
            return .upgrade(head)
        }
        // RFC 9112 §6.3: a response to HEAD has no body, whatever its framing fields contain.
        let bodyFraming = method == .head ? .none : try bodyFraming(of: head, fields: fields)
        isCloseDelimited = bodyFraming == .closeDelimited
        decoder = BodyDecoder(framing: bodyFraming)
        state = .body
        return .head(head)
    }

    @discardableResult
    private mutating func consumePendingMethod() -> HTTPMethod {
        let method = pendingMethods[pendingMethodIndex]
        pendingMethodIndex += 1
        return method
    }

    /// RFC 9112 §6.3 for final responses to requests other than `HEAD`. 204 and 304 responses have no
    /// body, whatever their framing fields contain.
    private func bodyFraming(of head: HTTPResponseHead, fields: FramingFields) throws(HTTPParseError) -> BodyFraming {
        if head.status == 204 || head.status == 304 { return .none }
        if fields.hasTransferEncoding {
            if fields.contentLengthCount > 0 {
                throw HTTPParseError(.contentLengthWithTransferEncoding)
            }
            if !head.version.isAtLeastHTTP11 { throw HTTPParseError(.transferEncodingInHTTP10) }
            try FramingRules.checkTransferEncoding(head.headers)
            return .chunked
        }
        guard let length = try FramingRules.contentLength(fields, in: buffer.bytes) else { return .closeDelimited }
        if let max = limits.maxBodySize, length > max { throw HTTPParseError(.bodyTooLarge) }
        return length == 0 ? .none : .fixed(length)
    }

    /// Parses `HTTP-version SP 3DIGIT [SP reason-phrase]`. A missing space before an empty
    /// reason is accepted because common servers omit it.
    private mutating func parseHead() throws(HTTPParseError) -> (HTTPResponseHead, FramingFields) {
        let base = buffer.readIndex
        let bytes = buffer.bytes
        let statusLine = scanner.lines[0]
        let line = bytes[(base + statusLine.lowerBound)..<(base + statusLine.upperBound)]
        guard line.count >= 12, line[line.startIndex + 8] == ASCII.space else {
            throw HTTPParseError(.invalidStatusLine)
        }
        let version: HTTPVersion
        do {
            version = try StartLineSyntax.parseVersion(line[line.startIndex..<(line.startIndex + 8)])
        } catch {
            throw HTTPParseError(.invalidStatusLine)
        }
        let codeStart = line.startIndex + 9
        let codeBytes = line[codeStart..<(codeStart + 3)]
        guard codeBytes.allSatisfy(ASCII.isDigit), codeBytes.first != UInt8(ascii: "0") else {
            throw HTTPParseError(.invalidStatusLine)
        }
        let status = codeBytes.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
        var reason = ""
        if line.count > 12 {
            guard line[codeStart + 3] == ASCII.space else { throw HTTPParseError(.invalidStatusLine) }
            let reasonBytes = line[(codeStart + 4)...]
            guard reasonBytes.allSatisfy(ASCII.isFieldValueCharacter) else { throw HTTPParseError(.invalidStatusLine) }
            // Nearly every upstream sends `OK` with its 200s; a literal skips building and
            // validating a string from the bytes.
            if status == 200 && reasonBytes.count == 2 && reasonBytes.first == UInt8(ascii: "O")
                && reasonBytes.last == UInt8(ascii: "K")
            {
                reason = "OK"
            } else {
                reason = String(decoding: reasonBytes, as: UTF8.self)
            }
        }
        let (headers, fields) = try FieldLineParser.parse(
            scanner.table, from: 1, to: scanner.lineCount, in: bytes, base: base, checkValues: scanner.hasControlBytes,
            reusing: &spareHeaders)
        return (HTTPResponseHead(status: status, reason: reason, version: version, headers: headers), fields)
    }
}

extension HTTPResponseHead {
    /// Whether the server allows another request on the connection: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`. A close-delimited body
    /// also ends the connection; `HTTPResponseParser.isCloseDelimited` reports that.
    public var keepAlive: Bool {
        headers.allowsPersistence(isHTTP11OrLater: version.isAtLeastHTTP11)
    }
}
