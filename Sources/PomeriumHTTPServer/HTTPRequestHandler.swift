import PomeriumHTTP
import PomeriumNet

/// One request's handler, created by the server for each request (unless the previous handler of
/// the connection takes it, see `prepareForNextRequest()`) and called on the connection's loop. Request body bytes arrive as they are read; call `responder.pauseRequestBody()` when the
/// consumer falls behind, which stops reading from the socket.
public protocol HTTPRequestHandler: AnyObject {
    /// Handles a request head. Respond now, or after the body, through `responder`.
    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder)
    func requestBody(_ bytes: [UInt8])
    func requestEnded(trailers: HTTPHeaders)
    /// Releases the request's resources (cancel an upstream request, for example) because the
    /// exchange ended early: the client disconnected, a timeout fired, or the body was malformed.
    func requestFailed(_ error: HTTPServerError)
    /// Resumes response output after `responder.isWritable` was false and the buffer drained.
    func responseWritable()
    /// Tunnel bytes from the client after a 101 or CONNECT 2xx.
    func tunnelReceived(_ bytes: [UInt8])
    /// Handles the end (EOF) of the client's tunnel bytes.
    func tunnelClientFinished()
    /// Resets the handler for the next request on its connection and returns true, or returns
    /// false when it cannot serve another request. The server calls it before it would otherwise call
    /// `makeHandler`, with the handler's last response finished. Return true only when nothing else
    /// (an upstream request, a pending task) can still call the handler. The default returns false.
    func prepareForNextRequest() -> Bool
}

extension HTTPRequestHandler {
    public func responseWritable() {}
    public func tunnelReceived(_ bytes: [UInt8]) {}
    public func tunnelClientFinished() {}
    public func prepareForNextRequest() -> Bool { false }
}

/// Why the server ended an exchange before the handler finished it.
public enum HTTPServerError: Error, Sendable, CustomStringConvertible {
    case clientDisconnected
    case timeout(String)
    case malformedRequest(HTTPParseError)
    case shutdown
    case io(String)

    public var description: String {
        switch self {
        case .clientDisconnected: return "the client disconnected"
        case .timeout(let which): return "the \(which) timeout expired"
        case .malformedRequest(let error): return "malformed request: \(error.reason)"
        case .shutdown: return "the server is shutting down"
        case .io(let message): return message
        }
    }
}

/// Handler-facing side of a connection for the current request.
public final class HTTPResponder {
    // Strong, although a handler may outlive its connection (while an upstream call finishes, for
    // example): `live` checks `isClosed` and the generation, so a stale responder does nothing. A
    // weak reference would give the connection a side table and make every retain and release of
    // it take the runtime's slow path. The cycle (connection, handler, responder) ends when the
    // connection drops its handler, which it does when the response finishes, fails or the
    // connection closes.
    private let connection: HTTPServerConnectionHandler
    private(set) var generation: Int
    public let loop: EventLoop
    /// The client's address.
    public let remoteAddress: SocketAddress?
    /// The client's IP address as `SocketAddress.ipString` writes it, formatted once per connection.
    public var remoteIPString: String? { connection.remoteIPString }
    /// Whether the request arrived over TLS.
    public let isTLS: Bool
    /// The SNI name the client sent, over TLS.
    public let serverName: String?
    /// Headers set on the final response head of this exchange, replacing a field of the same
    /// name that the handler wrote: the `headers` setting and the `Request-Id` of the top-level
    /// dispatcher, which sets them before a service handler sees the request.
    public var additionalHeaders = HTTPHeaders()
    /// The status of the final response head, once it was written.
    public private(set) var responseStatus: Int?

    init(connection: HTTPServerConnectionHandler, generation: Int) {
        self.connection = connection
        self.generation = generation
        loop = connection.loop
        remoteAddress = connection.stream.remoteAddress
        isTLS = connection.stream.tls != nil
        serverName = connection.stream.tls?.serverName
    }

    /// Makes this responder serve the exchange `generation` of the same connection. The
    /// connection calls it only when nothing else references the responder, so no handler can see the
    /// change.
    func reuse(generation: Int) {
        self.generation = generation
        if !additionalHeaders.isEmpty { additionalHeaders = HTTPHeaders() }
        responseStatus = nil
    }

    /// The connection, while this responder's exchange is still its current one.
    private var live: HTTPServerConnectionHandler? {
        guard connection.generation == generation, !connection.isClosed else {
            return nil
        }
        return connection
    }

    private var isCurrent: Bool { live != nil }

    /// Whether more response bytes may be written without growing the buffer past its mark.
    public var isWritable: Bool { live?.stream.isWritable ?? false }
    /// Whether the exchange is still live (the client is connected and the response not finished).
    public var isActive: Bool { isCurrent }

    /// Writes the response head. A 101 (or 2xx to CONNECT) switches the connection to a tunnel.
    public func writeHead(_ head: consuming HTTPResponseHead) {
        guard let connection = live else { return }
        if !head.isInformational {
            for field in additionalHeaders {
                head.headers.replaceOrAdd(name: field.name, value: field.value)
            }
            responseStatus = head.status
        }
        connection.writeHead(head)
    }

    public func writeBody(_ bytes: some Collection<UInt8>) {
        guard let connection = live else { return }
        connection.writeBody(bytes)
    }

    /// Writes body bytes from memory that the caller owns, such as bytes read from an upstream.
    public func writeBody(_ bytes: UnsafeRawBufferPointer) {
        guard let connection = live else { return }
        connection.writeBody(bytes)
    }

    /// Writes body bytes; the overload spares callers in other modules the generic path.
    public func writeBody(_ bytes: [UInt8]) {
        guard let connection = live else { return }
        bytes.withUnsafeBytes { connection.writeBody($0) }
    }

    /// Ends the response; the connection moves on to the next request or closes.
    public func finish(trailers: HTTPHeaders = HTTPHeaders()) {
        guard let connection = live else { return }
        connection.finishResponse(trailers: trailers)
    }

    /// Sends a complete response with a fixed body.
    public func respond(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        var headers = headers
        headers.replaceOrAdd(validatedName: "Content-Length", value: String(body.count))
        writeHead(HTTPResponseHead(status: status, headers: headers))
        if !body.isEmpty { writeBody(body) }
        finish()
    }

    /// Closes the connection at once, for a failure after the response head went out.
    public func abort() {
        guard let connection = live else { return }
        connection.abort()
    }

    /// Signals that the handler is ready for the request body; sends `100 Continue` when asked for.
    public func readRequestBody() {
        guard let connection = live else { return }
        connection.handlerReadsBody()
    }

    /// Stops reading the socket until `resumeRequestBody`, for request-body backpressure.
    public func pauseRequestBody() {
        guard let connection = live else { return }
        connection.handlerPausedReading = true
        connection.updateReading()
    }

    public func resumeRequestBody() {
        guard let connection = live else { return }
        connection.handlerPausedReading = false
        connection.updateReading()
    }

    /// Writes raw tunnel bytes to the client after a switch of protocols.
    public func tunnelWrite(_ bytes: some Collection<UInt8>) {
        guard let connection = live, connection.isTunnel else { return }
        connection.noteTunnelActivity()
        connection.stream.write(bytes)
    }

    /// Closes the tunnel once queued bytes are out.
    public func closeTunnel() {
        guard let connection = live, connection.isTunnel else { return }
        connection.stream.closeAfterFlush()
    }

    /// Sends EOF to the client once queued tunnel bytes are out.
    public func tunnelFinish() {
        guard let connection = live, connection.isTunnel else { return }
        connection.tunnelFinishedByHandler()
    }
}
