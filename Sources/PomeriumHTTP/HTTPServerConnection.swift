/// The HTTP/1.1 server side of one connection as a state machine without I/O. The owner feeds it
/// socket events and handler calls, and performs the returned actions in order. Timeouts belong to
/// the owner: on expiry it closes the socket.
///
/// Rules it enforces:
/// - Persistence (RFC 9112 §9.3): HTTP/1.1 stays open unless either side sends `Connection: close`;
///   HTTP/1.0 closes unless the request has `Connection: keep-alive`, which the response then repeats.
/// - Pipelining: requests read ahead stay in the parser until the current response has ended, so
///   responses go out in request order. Reading pauses while more than
///   `maxPipelinedBytes` wait.
/// - `Expect: 100-continue` (RFC 9110 §10.1.1) sends `100 Continue` only once the handler starts
///   reading the body, and never after the final response head. Any other expectation gets 417.
/// - Response framing: the connection owns it. A `Transfer-Encoding` from the handler is dropped.
///   A `Content-Length` from the handler is kept and enforced. Without one, the body is chunked for
///   HTTP/1.1 clients and close-delimited for HTTP/1.0. `HEAD`, 204 and 304 responses never carry
///   body bytes.
/// - Upgrades: a request with `Upgrade` (or `CONNECT`) turns the connection into a tunnel only
///   when the handler writes a 101 (or a 2xx to `CONNECT`), that is after the upstream agreed.
/// - A response that starts before the request body is complete closes the connection when it
///   ends, since the unread body cannot be told apart from the next request.
/// - A parse error is answered with its status and a plain-text reason, then the connection closes.
public struct HTTPServerConnection: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var limits: HTTPParserLimits
        /// The maximum number of bytes of pipelined requests that may wait while a response is in
        /// progress. Beyond it the connection returns `pauseReading`.
        public var maxPipelinedBytes: Int

        public init(limits: HTTPParserLimits = HTTPParserLimits(), maxPipelinedBytes: Int = 64 * 1024) {
            self.limits = limits
            self.maxPipelinedBytes = maxPipelinedBytes
        }
    }

    /// A step for the owner to perform, in the order returned.
    public enum Action: Hashable, Sendable {
        /// Hand a new request to the handler.
        case startRequest(HTTPRequestHead)
        /// Hand request body bytes to the handler.
        case requestBody([UInt8])
        /// The request body is complete.
        case requestEnd(trailers: HTTPHeaders)
        /// The request body broke off; the handler abandons the request. A `close` follows.
        case requestFailed(HTTPParseError)
        /// Write these bytes to the socket.
        case write([UInt8])
        /// Stop reading from the socket until `resumeReading`.
        case pauseReading
        case resumeReading
        /// Close the socket once the writes before this action are flushed.
        case close
        /// Stop speaking HTTP: relay bytes both ways. `initialBytes` came from the client after the
        /// request and belong to the new protocol.
        case startTunnel(initialBytes: [UInt8])
    }

    /// A handler call that does not fit the state of the exchange. The connection state is
    /// unchanged, so the owner can still abort.
    public enum UsageError: Error, Hashable, Sendable {
        case noActiveRequest
        case headAlreadyWritten
        case headNotWritten
        case switchingProtocolsNotRequested
        case requestBodyIncomplete
        case invalidContentLength
        case bodyExceedsContentLength
        case invalidHead(HTTPEncodingError)
    }

    private enum ResponseFraming: Equatable {
        case none
        case fixed(remaining: Int)
        case chunked
        case closeDelimited
    }

    private enum ResponseState: Equatable {
        case notStarted
        case streaming(ResponseFraming)
    }

    /// The state of the current exchange. It stores flags instead of the method, which is a string,
    /// because the state is copied out and back on every event.
    private struct Exchange {
        var isHeadRequest: Bool
        var isConnect: Bool
        var version: HTTPVersion
        var keepAlive: Bool
        var isUpgrade: Bool
        var expectsContinue: Bool
        var continueSent = false
        var requestComplete = false
        var response = ResponseState.notStarted
        var closeAfterResponse = false
    }

    private enum State {
        case idle
        case active(Exchange)
        case tunnel
        case closed
    }

    public let configuration: Configuration
    private var parser: HTTPRequestParser
    private var state = State.idle
    private var readingPaused = false
    private var peerHasClosed = false

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        parser = HTTPRequestParser(limits: configuration.limits)
    }

    /// Whether the connection has ended: the owner closes the socket.
    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether the connection has become a byte tunnel.
    public var isTunnel: Bool {
        if case .tunnel = state { return true }
        return false
    }

    /// Whether no request is in progress and no bytes of the next one have arrived, the state in
    /// which an idle timeout may close the connection without losing a request.
    /// Whether the machine asked for reading to pause (too many pipelined bytes wait behind the
    /// current request) and has not asked for it to resume since.
    public var isReadingPaused: Bool { readingPaused }

    public var isIdle: Bool {
        if case .idle = state { return parser.isIdle }
        return false
    }

    /// Whether part of a request head has arrived but not all of it. A header timeout in this state
    /// should send a 408 (built by `errorResponse(status:message:)`) before closing.
    public var hasPartialRequestHead: Bool {
        if case .idle = state { return parser.bufferedByteCount > 0 }
        return false
    }

    // MARK: Socket events

    /// Processes bytes read from the socket.
    public mutating func bytesReceived(_ bytes: some Sequence<UInt8>) -> [Action] {
        switch state {
        case .closed, .tunnel:
            return []
        case .idle, .active:
            parser.feed(bytes)
            var actions: [Action] = []
            pump(into: &actions)
            return actions
        }
    }

    /// Processes bytes read from the socket, copied in one step.
    public mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer) -> [Action] {
        var actions: [Action] = []
        bytesReceived(bytes, into: &actions)
        return actions
    }

    /// Processes bytes read from the socket and appends the resulting actions to `actions`, so an
    /// owner can reuse one array instead of allocating one per event.
    public mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer, into actions: inout [Action]) {
        switch state {
        case .closed, .tunnel:
            return
        case .idle, .active:
            parser.feed(bytes)
            pump(into: &actions)
        }
    }

    /// Processes the end of the client's byte stream.
    public mutating func peerClosed() -> [Action] {
        peerHasClosed = true
        switch state {
        case .closed, .tunnel:
            return []
        case .idle:
            parser.finish()
            var actions: [Action] = []
            pump(into: &actions)
            if case .idle = state {
                state = .closed
                actions.append(.close)
            }
            return actions
        case .active(var exchange):
            parser.finish()
            if exchange.requestComplete {
                // The client may half-close after its request; the response still goes out.
                exchange.closeAfterResponse = true
                state = .active(exchange)
                return []
            }
            var actions: [Action] = []
            pump(into: &actions)
            return actions
        }
    }

    // MARK: Handler calls

    /// Records that the handler started reading the request body, which sends `100 Continue` when
    /// the client asked for it and no response head was written yet.
    public mutating func handlerReadsBody() -> [Action] {
        guard case .active(var exchange) = state, exchange.expectsContinue, !exchange.continueSent,
            !exchange.requestComplete, exchange.response == .notStarted
        else { return [] }
        exchange.continueSent = true
        state = .active(exchange)
        return [.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))]
    }

    /// Writes a response head. Interim 1xx heads (except 101) may come before the final one and
    /// are dropped for HTTP/1.0 clients. A 101, or a 2xx to `CONNECT`, starts the tunnel.
    public mutating func writeHead(_ head: HTTPResponseHead) throws(UsageError) -> [Action] {
        var actions: [Action] = []
        try writeHead(head, into: &actions)
        return actions
    }

    /// Writes a response head as `writeHead(_:)` does, appending to `actions`, which is unchanged when it throws.
    public mutating func writeHead(_ head: consuming HTTPResponseHead, into actions: inout [Action]) throws(UsageError)
    {
        var bytes: [UInt8] = []
        var followUp: [Action] = []
        try writeHead(head, encodingInto: &bytes, actions: &followUp)
        if !bytes.isEmpty { actions.append(.write(bytes)) }
        actions.append(contentsOf: followUp)
    }

    /// Writes a response head as `writeHead(_:into:)` does, except that the head's bytes are
    /// appended to `buffer`, the owner's output buffer, instead of going into a `write` action
    /// that the owner would copy once more. The bytes go out before the appended `actions`.
    /// Neither `buffer` nor `actions` changes when it throws.
    public mutating func writeHead(
        _ head: consuming HTTPResponseHead, encodingInto buffer: inout [UInt8], actions: inout [Action]
    ) throws(UsageError) {
        var head = head
        try writeHead(editing: &head, encodingInto: &buffer, actions: &actions)
    }

    /// Writes a response head as `writeHead(_:encodingInto:actions:)` does and adjusts the framing
    /// fields of `head` in place. An owner whose head is a variable captured by a closure passes
    /// it this way without the copy that a consuming parameter would need.
    public mutating func writeHead(
        editing head: inout HTTPResponseHead, encodingInto buffer: inout [UInt8], actions: inout [Action]
    ) throws(UsageError) {
        guard case .active(var exchange) = state else { throw .noActiveRequest }
        guard exchange.response == .notStarted else { throw .headAlreadyWritten }
        let opensTunnel =
            (head.status == 101 && exchange.isUpgrade && !exchange.isConnect)
            || (exchange.isConnect && (200..<300).contains(head.status))
        if head.status == 101 && !opensTunnel { throw .switchingProtocolsNotRequested }
        if opensTunnel {
            guard exchange.requestComplete else { throw .requestBodyIncomplete }
            do {
                try HTTPEncoder.encode(head, into: &buffer)
            } catch {
                throw .invalidHead(error)
            }
            state = .tunnel
            actions.append(.startTunnel(initialBytes: parser.takeRemainingBytes()))
            return
        }
        if head.isInformational {
            guard exchange.version.isAtLeastHTTP11 else { return }
            do {
                try HTTPEncoder.encode(head, into: &buffer)
            } catch {
                throw .invalidHead(error)
            }
            return
        }

        head.version = .http1_1
        // One pass over the names finds whether the two lookups below have anything to find. Most
        // responses have neither field, and skipping both measured about 270 instructions fewer.
        let present = Self.transferEncodingAndConnectionPresent(head.headers)
        if present.transferEncoding { head.headers.remove(name: "Transfer-Encoding") }
        let framing = try responseFraming(for: &head, exchange: exchange)
        if !exchange.keepAlive || peerHasClosed
            || (present.connection && head.headers.containsToken("close", name: "Connection"))
            || framing == .closeDelimited || (!exchange.requestComplete)
        {
            exchange.closeAfterResponse = true
        }
        if exchange.closeAfterResponse {
            head.headers.replaceOrAdd(validatedName: "Connection", value: "close")
        } else if !exchange.version.isAtLeastHTTP11 {
            head.headers.replaceOrAdd(validatedName: "Connection", value: "keep-alive")
        }
        do {
            try HTTPEncoder.encode(head, into: &buffer)
        } catch {
            throw .invalidHead(error)
        }
        exchange.response = .streaming(framing)
        state = .active(exchange)
    }

    /// Writes response body bytes, framed as `writeHead` decided. Bytes for a `HEAD`, 204 or 304
    /// response are dropped.
    public mutating func writeBody(_ bytes: some Collection<UInt8>) throws(UsageError) -> [Action] {
        var actions: [Action] = []
        try writeBody(bytes, into: &actions)
        return actions
    }

    /// Writes body bytes as `writeBody(_:)` does, appending to `actions`, which is unchanged when it throws.
    public mutating func writeBody(_ bytes: some Collection<UInt8>, into actions: inout [Action]) throws(UsageError) {
        guard case .active(var exchange) = state else { throw .noActiveRequest }
        guard case .streaming(let framing) = exchange.response else { throw .headNotWritten }
        guard !bytes.isEmpty else { return }
        switch framing {
        case .none:
            return
        case .fixed(let remaining):
            guard bytes.count <= remaining else { throw .bodyExceedsContentLength }
            exchange.response = .streaming(.fixed(remaining: remaining - bytes.count))
            state = .active(exchange)
            actions.append(.write(Array(bytes)))
        case .chunked:
            var output: [UInt8] = []
            output.reserveCapacity(bytes.count + 12)
            HTTPEncoder.encodeChunk(bytes, into: &output)
            actions.append(.write(output))
        case .closeDelimited:
            actions.append(.write(Array(bytes)))
        }
    }

    /// The framing that `prepareBodyWrite(count:)` returns for body bytes.
    public enum BodyWrite: Hashable, Sendable {
        /// Send nothing: the response has no body (`HEAD`, 204, 304).
        case drop
        /// Send the bytes as they are.
        case raw
        /// Send the bytes as one chunk (`HTTPEncoder.encodeChunk`).
        case chunked
    }

    /// Accounts for `count` body bytes of the response and returns how to send them, for an owner
    /// that writes body bytes to its socket itself instead of through a `write` action, which
    /// would copy them once more. Same rules and errors as `writeBody(_:into:)`; `count` of zero
    /// returns `drop`.
    public mutating func prepareBodyWrite(count: Int) throws(UsageError) -> BodyWrite {
        guard case .active(var exchange) = state else { throw .noActiveRequest }
        guard case .streaming(let framing) = exchange.response else { throw .headNotWritten }
        guard count > 0 else { return .drop }
        switch framing {
        case .none:
            return .drop
        case .fixed(let remaining):
            guard count <= remaining else { throw .bodyExceedsContentLength }
            exchange.response = .streaming(.fixed(remaining: remaining - count))
            state = .active(exchange)
            return .raw
        case .chunked:
            return .chunked
        case .closeDelimited:
            return .raw
        }
    }

    /// Ends the response, with trailer fields when the body is chunked (dropped otherwise), and
    /// starts the next pipelined request, if any, or closes the connection.
    public mutating func finishResponse(trailers: HTTPHeaders = HTTPHeaders()) throws(UsageError) -> [Action] {
        var actions: [Action] = []
        try finishResponse(trailers: trailers, into: &actions)
        return actions
    }

    /// Ends the response as `finishResponse(trailers:)` does, appending to `actions`, which is unchanged when it
    /// throws.
    public mutating func finishResponse(trailers: HTTPHeaders, into actions: inout [Action]) throws(UsageError) {
        guard case .active(var exchange) = state else { throw .noActiveRequest }
        guard case .streaming(let framing) = exchange.response else { throw .headNotWritten }
        switch framing {
        case .chunked:
            var output: [UInt8] = []
            do {
                try HTTPEncoder.encodeLastChunk(trailers: trailers, into: &output)
            } catch {
                throw .invalidHead(error)
            }
            actions.append(.write(output))
        case .fixed(let remaining) where remaining > 0:
            // The body fell short of its Content-Length, and only closing signals that to the client.
            exchange.closeAfterResponse = true
        case .fixed, .none, .closeDelimited:
            break
        }
        if exchange.closeAfterResponse || !exchange.requestComplete {
            state = .closed
            actions.append(.close)
            return
        }
        state = .idle
        parser.resumeAfterDeclinedUpgrade()
        if readingPaused {
            readingPaused = false
            actions.append(.resumeReading)
        }
        pump(into: &actions)
    }

    /// Ends the connection at once, for example after an upstream failure in the middle of a body.
    public mutating func abort() -> [Action] {
        if case .closed = state { return [] }
        state = .closed
        return [.close]
    }

    // MARK: Parsing

    /// Pulls parser events while the current state can use them.
    private mutating func pump(into actions: inout [Action]) {
        while true {
            switch state {
            case .closed, .tunnel:
                return
            case .idle:
                guard let event = parser.next() else { return }
                // Consumed, so the head moves into the action instead of being copied.
                switch consume event {
                case .head(let head):
                    if let rejection = startExchange(consume head, actions: &actions) {
                        fail(rejection, actions: &actions)
                        return
                    }
                case .error(let error):
                    fail(error, actions: &actions)
                    return
                case .body, .end:
                    // The parser yields body events only after a head, which moves the state on.
                    return
                }
            case .active(var exchange):
                if exchange.requestComplete {
                    if !readingPaused && parser.bufferedByteCount > configuration.maxPipelinedBytes {
                        readingPaused = true
                        actions.append(.pauseReading)
                    }
                    return
                }
                guard let event = parser.next() else { return }
                switch consume event {
                case .body(let bytes):
                    actions.append(.requestBody(bytes))
                case .end(let trailers):
                    exchange.requestComplete = true
                    state = .active(exchange)
                    actions.append(.requestEnd(trailers: trailers))
                case .error(let error):
                    actions.append(.requestFailed(error))
                    if exchange.response == .notStarted && !peerHasClosed {
                        fail(error, actions: &actions)
                    } else {
                        state = .closed
                        actions.append(.close)
                    }
                    return
                case .head:
                    return
                }
            }
        }
    }

    /// Starts the exchange for `head`, or returns the error to send instead.
    private mutating func startExchange(_ head: consuming HTTPRequestHead, actions: inout [Action]) -> HTTPParseError? {
        var expectsContinue = false
        // One pass over the names finds which of the three fields read here are present, instead
        // of one lookup each. Most requests have none of them.
        let present = head.headers.connectionFieldsPresent()
        let expectations = present.expect ? head.headers.tokens(name: "Expect") : []
        for expectation in expectations {
            guard expectation == "100-continue" else { return HTTPParseError(.expectationFailed) }
            // RFC 9110 §10.1.1: a server ignores 100-continue from an HTTP/1.0 client.
            expectsContinue = head.version.isAtLeastHTTP11
        }
        let keepAlive = present.connection ? head.keepAlive : head.version.isAtLeastHTTP11
        let isUpgrade = head.method == .connect || (present.connection && present.upgrade && head.isUpgradeRequest)
        state = .active(
            Exchange(
                isHeadRequest: head.method == .head, isConnect: head.method == .connect, version: head.version,
                keepAlive: keepAlive, isUpgrade: isUpgrade, expectsContinue: expectsContinue))
        actions.append(.startRequest(consume head))
        return nil
    }

    /// Sends an error response with the status and reason of `error`, then closes.
    private mutating func fail(_ error: HTTPParseError, actions: inout [Action]) {
        state = .closed
        actions.append(.write(Self.errorResponse(error)))
        actions.append(.close)
    }

    /// Builds a plain-text error response for a parse error, which closes the connection.
    public static func errorResponse(_ error: HTTPParseError) -> [UInt8] {
        errorResponse(status: error.status, message: error.reason)
    }

    /// Builds a plain-text error response that closes the connection, for example the 408 the owner
    /// sends when a request head times out. `message` must not contain received bytes, and control
    /// characters in it become spaces. A status outside 100...999 becomes 500.
    public static func errorResponse(status: Int, message: String) -> [UInt8] {
        let safeMessage = message.utf8.map { $0 < 0x20 || $0 == 0x7F ? ASCII.space : $0 }
        let body = safeMessage + [ASCII.lf]
        let head = HTTPResponseHead(
            status: (100...999).contains(status) ? status : 500,
            headers: [
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": String(body.count),
                "Connection": "close",
            ])
        var bytes: [UInt8] = []
        // The status is in range and the fields are fixed and valid, so encoding cannot fail.
        try? HTTPEncoder.encode(head, into: &bytes)
        return bytes + body
    }

    /// Returns whether `headers` have a `Transfer-Encoding` and a `Connection` field.
    private static func transferEncodingAndConnectionPresent(
        _ headers: HTTPHeaders
    ) -> (transferEncoding: Bool, connection: Bool) {
        var found = (transferEncoding: false, connection: false)
        headers.forEachName { name in
            switch name.count {
            case 17: if HTTPFieldName.matches(name, lowercase: "transfer-encoding") { found.transferEncoding = true }
            case 10: if HTTPFieldName.matches(name, lowercase: "connection") { found.connection = true }
            default: break
            }
        }
        return found
    }

    private func responseFraming(
        for head: inout HTTPResponseHead, exchange: Exchange
    ) throws(UsageError) -> ResponseFraming {
        let bodyless = exchange.isHeadRequest || head.status == 204 || head.status == 304
        // One scan finds and parses Content-Length: nil means the field is absent, and a
        // repeated or malformed field throws.
        let length: Int?
        do {
            length = try FramingRules.contentLength(head.headers)
        } catch {
            throw .invalidContentLength
        }
        if let length { return bodyless ? .none : .fixed(remaining: length) }
        if bodyless { return .none }
        if exchange.version.isAtLeastHTTP11 {
            head.headers.add(validatedName: "Transfer-Encoding", value: "chunked")
            return .chunked
        }
        return .closeDelimited
    }
}
