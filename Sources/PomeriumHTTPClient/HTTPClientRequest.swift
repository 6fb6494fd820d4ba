import PomeriumHTTP
import PomeriumNet

/// One request in flight. Write the body with `writeBody` and `endBody` (or pass it at start),
/// watch `isWritable` for backpressure, and `cancel()` to abandon it. Loop thread only.
public final class HTTPClientRequest {
    public let head: HTTPRequestHead
    public let upstream: HTTPUpstream
    public let loop: EventLoop
    let timeouts: HTTPClientTimeouts
    /// Strong: the loop state lives as long as the client, and holds no reference to requests.
    private let client: HTTPClientLoopState
    private var delegate: (any HTTPClientDelegate)?
    private var connection: HTTPClientConnection?
    private let chunked: Bool
    private var bodyBytesSent = 0
    /// The body bytes that the head's `Content-Length` still announces, nil without that field.
    /// A body that would pass it fails the request instead: bytes past the announced length
    /// would reach the upstream as the start of another request.
    private var announcedBytesLeft: Int?
    private(set) var requestComplete = false
    private(set) var receivedAnyResponseByte = false
    private(set) var responseReusable = true
    private var finished = false
    private var retried = false
    private var deadlineError = HTTPClientError.connectTimeout
    /// Body written before the connection could take it, kept for a possible retry.
    private var pendingOutput: [[UInt8]] = []
    /// The connect deadline while a host name lookup runs. No connection exists yet to own the
    /// deadline, so the request does until the connection is open.
    private var lookupTimer: LoopTimer?

    init(
        head: consuming HTTPRequestHead,
        upstream: HTTPUpstream,
        loop: EventLoop,
        timeouts: HTTPClientTimeouts,
        client: HTTPClientLoopState,
        delegate: any HTTPClientDelegate
    ) {
        // Bound as a `let`, the head's fields are read in place. Read from the consumed
        // parameter, which is a variable, each read retained and released both header buffers.
        let head = consume head
        let present = Self.framingFieldsPresent(head.headers)
        let hasLength = present.contentLength
        chunked =
            !hasLength && present.transferEncoding && head.headers.containsToken("chunked", name: "Transfer-Encoding")
        if hasLength {
            // A value that is not one plain number leaves -1, which no body fits.
            announcedBytesLeft = Self.announcedLength(head.headers) ?? -1
        } else if !chunked {
            requestComplete = true
        }
        // The head is stored after its last read, so it moves into the request. Stored before a
        // read, it was copied, which retained and released each of its buffers.
        self.head = head
        self.upstream = upstream
        self.loop = loop
        self.timeouts = timeouts
        self.client = client
        self.delegate = delegate
    }

    /// Returns the value of the single `Content-Length` field when it is plain decimal digits.
    private static func announcedLength(_ headers: HTTPHeaders) -> Int? {
        var count = 0
        var length: Int?
        headers.forEachValueBytes(name: "Content-Length") { value in
            count += 1
            guard !value.isEmpty, value.count <= 18,
                value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return }
            length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
        return count == 1 ? length : nil
    }

    /// Returns whether the head has `Content-Length` and `Transfer-Encoding` fields, in one pass over
    /// the names instead of one lookup each.
    private static func framingFieldsPresent(_ headers: HTTPHeaders) -> (contentLength: Bool, transferEncoding: Bool) {
        var found = (contentLength: false, transferEncoding: false)
        headers.forEachName { name in
            switch name.count {
            case 14: if HTTPFieldName.matches(name, lowercase: "content-length") { found.contentLength = true }
            case 17: if HTTPFieldName.matches(name, lowercase: "transfer-encoding") { found.transferEncoding = true }
            default: break
            }
        }
        return found
    }

    /// Whether the body may take more bytes without growing the output buffer past its mark.
    public var isWritable: Bool { !finished && (connection?.isWritable ?? true) }
    /// Whether the response or failure was already delivered.
    public var isFinished: Bool { finished }

    // MARK: Caller API

    public func writeBody(_ bytes: [UInt8]) {
        guard !finished, !requestComplete, !bytes.isEmpty else { return }
        if let left = announcedBytesLeft {
            guard bytes.count <= left else {
                fail(.invalidRequestBody("it is longer than its Content-Length"))
                return
            }
            announcedBytesLeft = left - bytes.count
        }
        var output: [UInt8] = []
        if chunked {
            HTTPEncoder.encodeChunk(bytes, into: &output)
        } else {
            output = bytes
        }
        bodyBytesSent += bytes.count
        send(output)
    }

    public func endBody(trailers: HTTPHeaders = HTTPHeaders()) {
        guard !finished, !requestComplete else { return }
        if let left = announcedBytesLeft, left != 0 {
            // The upstream would wait for the missing bytes, or read the next request as them.
            fail(.invalidRequestBody("it is shorter than its Content-Length"))
            return
        }
        requestComplete = true
        if chunked {
            var output: [UInt8] = []
            try? HTTPEncoder.encodeLastChunk(trailers: trailers, into: &output)
            send(output)
        }
    }

    /// Abandons the request and closes its connection, which stops the upstream's work.
    public func cancel() {
        guard !finished else { return }
        finished = true
        cancelLookupTimer()
        delegate = nil
        connection?.close()
        connection = nil
    }

    /// Stops reading the response from the upstream, for backpressure.
    public func pauseResponse() { connection?.stream?.pauseReading() }
    public func resumeResponse() { connection?.stream?.resumeReading() }

    /// Writes tunnel bytes to the upstream after an upgrade.
    public func tunnelWrite(_ bytes: [UInt8]) { connection?.write(bytes) }
    /// Sends EOF to the upstream once queued tunnel bytes are out.
    public func tunnelFinish() { connection?.stream?.shutdownOutputAfterFlush() }
    /// Whether the tunnel's upstream side can take more bytes.
    public var isTunnelWritable: Bool { connection?.isWritable ?? false }

    // MARK: Connection events

    func start(on connection: HTTPClientConnection, reused: Bool) {
        self.connection = connection
        connection.attach(self, reused: reused)
        do {
            // Encoded straight into the connection's output buffer.
            try connection.writeEncoding { try HTTPEncoder.encode(head, into: &$0) }
        } catch {
            fail(.invalidUpstream("the request head cannot be encoded: \(error)"))
            return
        }
        if !pendingOutput.isEmpty {
            for chunk in pendingOutput { connection.write(chunk) }
        }
        if connection.isOpen {
            connectionOpened()
        } else if lookupTimer == nil {
            setDeadline(timeouts.connect, .connectTimeout)
        }
    }

    /// Starts the connect timeout before the host name lookup, so that it bounds the lookup
    /// and the connect together.
    func lookupStarted() {
        lookupTimer?.cancel()
        lookupTimer = loop.schedule(after: timeouts.connect) { [weak self] in
            guard let self else { return }
            lookupTimer = nil
            fail(.connectTimeout)
        }
    }

    private func cancelLookupTimer() {
        lookupTimer?.cancel()
        lookupTimer = nil
    }

    private func send(_ bytes: [UInt8]) {
        if connection == nil || (!retried && bodyBytesSent <= 64 * 1024) { pendingOutput.append(bytes) }
        if let connection, connection.isOpen {
            setDeadline(timeouts.write, .writeTimeout)
        }
        connection?.write(bytes)
    }

    func connectionOpened() {
        cancelLookupTimer()
        setDeadline(timeouts.read, .readTimeout)
    }

    func noteResponseProgress() {
        receivedAnyResponseByte = true
        setDeadline(timeouts.read, .readTimeout)
    }

    func bodyWritable() {
        delegate?.requestBodyWritable(self)
    }

    func receivedHead(_ head: consuming HTTPResponseHead) {
        responseReusable = head.keepAlive
        delegate?.responseHead(head, request: self)
    }

    func receivedBody(_ bytes: [UInt8]) {
        delegate?.responseBody(bytes, request: self)
    }

    func receivedBody(in bytes: UnsafeRawBufferPointer) {
        delegate?.responseBodyBytes(bytes, request: self)
    }

    func receivedEnd(trailers: HTTPHeaders) {
        guard !finished else { return }
        finished = true
        connection?.clearDeadline()
        // Moved out with `take()`, which neither retains nor releases it, unlike a read and a reset.
        let delegate = self.delegate.take()
        if !requestComplete {
            // The upstream responded before the whole body went out, so the connection cannot be reused.
            responseReusable = false
        }
        connection = nil
        delegate?.responseEnded(trailers: trailers, request: self)
    }

    func receivedUpgrade(_ head: HTTPResponseHead, initialBytes: [UInt8]) {
        connection?.clearDeadline()
        delegate?.upgraded(head, initialBytes: initialBytes, request: self)
    }

    func tunnelReceived(_ bytes: [UInt8]) { delegate?.tunnelReceived(bytes, request: self) }

    func tunnelUpstreamFinished() { delegate?.tunnelUpstreamFinished(self) }

    func tunnelUpstreamClosed() {
        delegate?.tunnelUpstreamFinished(self)
        delegate?.tunnelUpstreamClosed(self)
    }

    func tunnelClosed() {
        finished = true
        delegate = nil
        connection = nil
    }

    /// Retries the request once on a fresh connection, or reports the failure, after its connection
    /// ended without a complete response. Only a stale pooled connection that returned no byte is
    /// retried, and only for an idempotent request whose body is still buffered.
    func connectionLost(beforeResponse: Bool, reused: Bool) {
        guard !finished else { return }
        connection = nil
        let idempotent = [HTTPMethod.get, .head, .options, .put, .delete, .trace].contains(head.method)
        let replayable = bodyBytesSent <= 64 * 1024
        if beforeResponse && reused && idempotent && replayable && !retried {
            retried = true
            client.connectFresh(for: self)
            return
        }
        fail(.upstreamClosed)
    }

    func fail(_ error: HTTPClientError) {
        guard !finished else { return }
        finished = true
        cancelLookupTimer()
        let delegate = self.delegate.take()
        connection?.clearDeadline()
        connection?.close()
        connection = nil
        delegate?.requestFailed(error, request: self)
    }

    // MARK: Timeouts

    /// Sets the deadline on the connection, which owns the timer so that a keep-alive connection
    /// reuses one timer across requests.
    private func setDeadline(_ seconds: Double, _ error: HTTPClientError) {
        deadlineError = error
        connection?.setDeadline(seconds: seconds)
    }

    /// Fails the request with the error of the deadline that passed; called by the connection.
    func deadlinePassed() {
        fail(deadlineError)
    }
}
