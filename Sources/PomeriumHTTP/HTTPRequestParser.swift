/// An incremental HTTP/1.1 request parser (RFC 9112) for the server side. It owns no socket:
/// the caller feeds received bytes in slices of any size, down to one byte, and pulls events.
///
/// Choices where the RFCs leave room, all on the side of rejecting:
/// - Line endings must be CRLF. A bare LF (RFC 9112 §2.2 allows accepting it) and a bare CR are
///   rejected with 400, so no two parsers on the path can disagree about where a line ends.
/// - `Content-Length` must be one field with plain digits. A comma list, even of equal values
///   (RFC 9110 §8.6 allows accepting it), and a second `Content-Length` field are rejected with 400.
/// - `Transfer-Encoding` must be exactly `chunked`. Any other coding gets 501. A repeated `chunked`
///   gets 400, and so does `Transfer-Encoding` with `Content-Length` or in an HTTP/1.0 request.
/// - Obsolete line folding, whitespace before the colon, control characters in field values and
///   non-token field names get 400. Up to 8 empty lines before the request line are skipped.
/// - The request line is `method SP target SP version` with exactly one space each. Targets may
///   contain only RFC 3986 characters, so a raw space, `"`, `<`, `\` or `#` gets 400.
/// - HTTP/1.x with x above 1 is handled as HTTP/1.1 (RFC 9112 §2.3); other major versions get 505.
/// - Duplicate slashes in the path are kept here; `PathNormalization` decides about them.
///
/// After a request to switch protocols (`Upgrade` with `Connection: upgrade`, or
/// `CONNECT`), the parser stops at the end of that request: the caller either calls
/// `takeRemainingBytes()` to start a tunnel or `resumeAfterDeclinedUpgrade()` to keep parsing HTTP.
public struct HTTPRequestParser: Sendable {
    /// An event from the bytes fed so far.
    public enum Event: Hashable, Sendable {
        /// A complete request head. Body events follow, then `end`.
        case head(HTTPRequestHead)
        /// Body bytes after transfer decoding; never empty.
        case body([UInt8])
        /// The end of the request, with the trailer fields of a chunked body (usually none). Trailers
        /// are never merged into the head, so they cannot change framing or routing.
        case end(trailers: HTTPHeaders)
        /// The request is invalid. The parser stops, and the server sends `error.status` and closes.
        case error(HTTPParseError)
    }

    /// The phase of the parser. The scanner and the decoder are stored beside it, not in it.
    /// Taking a scanner out of an enum and putting it back retained and released its lines array
    /// on every call, which made 12 reference counting calls per request.
    private enum State {
        /// `scanner` is scanning a request head.
        case head
        /// `decoder` is decoding a body.
        case body(isUpgrade: Bool)
        case awaitingUpgradeDecision
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

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Appends received bytes. Events become available through `next()`.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard !inputClosed else { return }
        buffer.append(bytes)
    }

    /// Appends bytes read from a socket, in one copy.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !inputClosed else { return }
        buffer.append(bytes)
    }

    /// Records that the peer closed its sending side. A request cut short then yields an
    /// `incompleteMessage` error; a connection closed between requests yields no event.
    public mutating func finish() {
        inputClosed = true
    }

    /// The number of received bytes not yet turned into events.
    public var bufferedByteCount: Int { buffer.readableCount }

    /// Whether the parser is between requests with nothing buffered, so closing loses nothing.
    public var isIdle: Bool {
        if case .head = state { return buffer.readableCount == 0 }
        return false
    }

    /// Whether the parser stopped after a request to switch protocols.
    public var isAwaitingUpgradeDecision: Bool {
        if case .awaitingUpgradeDecision = state { return true }
        return false
    }

    /// Returns the next event, or nil when more bytes are needed (or the parser has stopped after
    /// an error, an upgrade request or the end of input).
    public mutating func next() -> Event? {
        switch state {
        case .failed, .upgraded, .awaitingUpgradeDecision:
            return nil
        case .head:
            switch scanner.scan(buffer, limits: limits) {
            case .incomplete:
                if inputClosed && buffer.readableCount > 0 { return fail(.incompleteMessage) }
                return nil
            case .failed(let kind):
                return fail(kind)
            case .complete(let length):
                do {
                    let (head, fields) = try parseHead()
                    spareHeaders = FieldLineParser.spare(from: head.headers)
                    let framing = try bodyFraming(of: head, fields: fields)
                    let isUpgrade =
                        head.method == .connect
                        || (fields.hasUpgrade && head.headers.containsToken("upgrade", name: "Connection"))
                    buffer.readIndex += length
                    decoder = BodyDecoder(framing: framing)
                    state = .body(isUpgrade: isUpgrade)
                    return .head(head)
                } catch {
                    return fail(error.kind)
                }
            }
        case .body(let isUpgrade):
            let step = decoder.step(&buffer, limits: limits, inputClosed: inputClosed)
            switch consume step {
            case .needMore:
                return nil
            case .failed(let kind):
                return fail(kind)
            case .body(let bytes):
                return .body(bytes)
            case .end(let trailers):
                if isUpgrade {
                    state = .awaitingUpgradeDecision
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

    /// Stops parsing and returns every byte received after the upgrade request, which belongs to
    /// the new protocol. Later `feed` calls are ignored; the caller forwards bytes directly.
    public mutating func takeRemainingBytes() -> [UInt8] {
        state = .upgraded
        inputClosed = true
        return buffer.takeAll()
    }

    /// Continues parsing HTTP after the upstream refused to switch protocols.
    public mutating func resumeAfterDeclinedUpgrade() {
        if case .awaitingUpgradeDecision = state { startHead() }
    }

    private mutating func fail(_ kind: HTTPParseError.Kind) -> Event {
        state = .failed
        return .error(HTTPParseError(kind))
    }

    /// Parses the head whose lines `scanner` found.
    private mutating func parseHead() throws(HTTPParseError) -> (HTTPRequestHead, FramingFields) {
        let base = buffer.readIndex
        let bytes = buffer.bytes
        let requestLine = scanner.lines[0]
        let line = bytes[(base + requestLine.lowerBound)..<(base + requestLine.upperBound)]
        guard let firstSpace = line.firstIndex(of: ASCII.space) else { throw HTTPParseError(.invalidMethod) }
        let methodBytes = line[line.startIndex..<firstSpace]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(ASCII.isTokenCharacter) else {
            throw HTTPParseError(.invalidMethod)
        }
        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: ASCII.space) else { throw HTTPParseError(.invalidTarget) }
        let targetBytes = afterMethod[afterMethod.startIndex..<secondSpace]
        let method = HTTPMethod(validatedBytes: methodBytes)
        let targetForm = try HTTPRequestTarget.parse(targetBytes, method: method)
        let version = try StartLineSyntax.parseVersion(afterMethod[(secondSpace + 1)...])
        let (headers, fields) = try FieldLineParser.parse(
            scanner.table, from: 1, to: scanner.lineCount, in: bytes, base: base, checkValues: scanner.hasControlBytes,
            reusing: &spareHeaders)
        try checkHost(fields, version: version)
        // An origin-form target without a query is its path, so the path's string serves as both.
        let target: String
        if case .origin(let path, nil) = targetForm {
            target = path
        } else {
            target = String(decoding: targetBytes, as: UTF8.self)
        }
        let head = HTTPRequestHead(
            method: method, target: target, targetForm: targetForm, version: version, headers: headers)
        return (head, fields)
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host`; any request has at most one,
    /// and its value must be `uri-host [":" port]` (empty is allowed).
    private func checkHost(_ fields: FramingFields, version: HTTPVersion) throws(HTTPParseError) {
        if fields.hostCount > 1 { throw HTTPParseError(.multipleHost) }
        if fields.hostCount == 0 {
            if version.isAtLeastHTTP11 { throw HTTPParseError(.missingHost) }
            return
        }
        guard HostSyntax.isValid(buffer.bytes[fields.hostValue]) else { throw HTTPParseError(.invalidHost) }
    }

    /// RFC 9112 §6.3 for requests: chunked when `Transfer-Encoding` is present, else the
    /// `Content-Length`, else no body.
    private func bodyFraming(of head: HTTPRequestHead, fields: FramingFields) throws(HTTPParseError) -> BodyFraming {
        if fields.hasTransferEncoding {
            if fields.contentLengthCount > 0 {
                throw HTTPParseError(.contentLengthWithTransferEncoding)
            }
            if !head.version.isAtLeastHTTP11 { throw HTTPParseError(.transferEncodingInHTTP10) }
            try FramingRules.checkTransferEncoding(head.headers)
            return .chunked
        }
        guard let length = try FramingRules.contentLength(fields, in: buffer.bytes) else { return .none }
        if let max = limits.maxBodySize, length > max { throw HTTPParseError(.bodyTooLarge) }
        return length == 0 ? .none : .fixed(length)
    }
}

/// Start-line pieces shared by the request and response parsers.
enum StartLineSyntax {
    /// Parses `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3). Malformed text throws `invalidVersion`, and a
    /// major version other than 1 throws `unsupportedVersion`.
    static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        // Nearly every message is HTTP/1.1, which one comparison of the eight bytes as a word
        // finds, where the byte checks below took about 70 instructions.
        if bytes.count == 8
            && UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) == http11Word
        {
            return .http1_1
        }
        let start = bytes.startIndex
        // Byte by byte: `starts(with: "HTTP/".utf8)` measured 250 instructions per head.
        guard bytes.count == 8, bytes[start] == UInt8(ascii: "H"), bytes[start + 1] == UInt8(ascii: "T"),
            bytes[start + 2] == UInt8(ascii: "T"), bytes[start + 3] == UInt8(ascii: "P"),
            bytes[start + 4] == ASCII.slash
        else { throw HTTPParseError(.invalidVersion) }
        let major = bytes[start + 5]
        let minor = bytes[start + 7]
        guard ASCII.isDigit(major), bytes[start + 6] == ASCII.dot, ASCII.isDigit(minor) else {
            throw HTTPParseError(.invalidVersion)
        }
        guard major == UInt8(ascii: "1") else { throw HTTPParseError(.unsupportedVersion) }
        return HTTPVersion(major: 1, minor: Int(minor &- UInt8(ascii: "0")))
    }

    /// The bytes `HTTP/1.1` as a little-endian word, the first byte lowest. A literal, because a
    /// stored constant computed from the text was initialized lazily, with a call on every use.
    private static var http11Word: UInt64 { 0x312E_312F_5054_5448 }
}
