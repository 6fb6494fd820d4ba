import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import Synchronization

/// The HTTP listener's top-level handler. It serves health and ping on every host, then sends
/// requests for the authenticate host to the authenticate service and the rest to the proxy.
/// Every response carries the `headers` setting and a `Request-Id`.
public final class HostDispatcher: Sendable {
    private let current: Mutex<ServiceSet>
    private let userAgent: String
    private let logger: Logger

    public init(services: ServiceSet, userAgent: String = BuildInfo.userAgent, logger: Logger) {
        current = Mutex(services)
        self.userAgent = userAgent
        self.logger = logger
    }

    /// The services new requests go to.
    public var services: ServiceSet { current.withLock { $0 } }

    /// Sends new requests to `services`. Requests already running finish with the set they began
    /// with, and open connections stay open.
    public func replaceServices(_ services: ServiceSet) {
        current.withLock { $0 = services }
    }

    /// The `makeHandler` of the `HTTPServer`: one dispatching handler per request.
    public func makeHandler(loop: EventLoop) -> any HTTPRequestHandler {
        DispatchingHandler(dispatcher: self, loop: loop)
    }

    /// Chooses who takes the request: the connection's spare handler, a new handler of a service,
    /// or the dispatcher itself, which then has responded.
    /// `spareServices` identifies the services whose identified proxy created the connection's
    /// spare handler: the handler of its previous request, already reset by its
    /// `prepareForNextRequest()`, which also drew a new request id. It is nil when there is no
    /// such spare. The spare serves this request only when it is a proxy request of the same services.
    fileprivate func start(
        head: HTTPRequestHead, responder: HTTPResponder, loop: EventLoop, spareServices: ObjectIdentifier?
    ) -> Dispatch {
        let services = self.services
        func addResponseFields(_ requestID: String) {
            var extra = services.responseHeadersWithoutRequestID
            // The id is hexadecimal digits and dashes.
            extra.add(validatedName: RequestID.headerName, value: requestID)
            responder.additionalHeaders = extra
        }

        guard TopLevelRouting.targetAgreesWithHost(head) else {
            let requestID = RequestID.make()
            addResponseFields(requestID)
            logger.debug(
                "http-request",
                metadata: [
                    "req_id": .string(requestID), "method": .string(head.method.rawValue),
                    "status": .stringConvertible(400),
                    "reason": "the absolute-form target names another host than the Host header",
                ])
            respondText(
                responder, head: head, status: 400, body: "400 the request target and the Host header disagree\n")
            return .responded
        }
        let destination = TopLevelRouting.destination(
            method: head.method, path: head.path, authority: Self.authorityToMatch(head, services: services),
            authenticateHost: services.authenticateHost, runsProxy: services.runsProxy,
            query: head.query,
            hasForwardedURI: services.forwardAuthHost != nil && head.headers.contains(name: "X-Forwarded-Uri")
                && services.trustsForwardedHeaders(responder.remoteAddress),
            forwardAuthHost: services.forwardAuthHost)
        if case .proxy = destination, services.identifiedProxy != nil, spareServices == ObjectIdentifier(services) {
            return .spare
        }
        // One id per request. A proxy handler that writes the response fields itself gets it from
        // its factory, and any other reads it back from `additionalHeaders` for its log lines and
        // error pages.
        let requestID = RequestID.make()
        switch destination {
        case .authenticate where services.authenticate != nil, .proxy where services.runsProxy,
            .forwardAuth where services.forwardAuth != nil:
            // The service writes the access log line, with the status and the user.
            break
        default:
            logger.debug(
                "http-request",
                metadata: [
                    "req_id": .string(requestID), "method": .string(head.method.rawValue),
                    "host": .string(head.authority?.host ?? ""), "path": .string(head.path),
                    "destination": .string("\(destination)"),
                ])
        }
        if case .proxy = destination {
            if let factory = services.identifiedProxy {
                return .handler(factory(loop, requestID), proxyServices: services)
            }
            if let factory = services.plainProxy {
                addResponseFields(requestID)
                return .handler(factory(loop), proxyServices: nil)
            }
        }
        addResponseFields(requestID)
        switch destination {
        case .health:
            respondText(responder, head: head, status: 200, body: "OK\n")
        case .ping:
            respondText(responder, head: head, status: 200, body: userAgent)
        case .methodNotAllowed:
            var headers = HTTPHeaders()
            headers.add(name: "Allow", value: "GET, HEAD")
            respondText(responder, head: head, status: 405, body: "405 method not allowed\n", headers: headers)
        case .notFound:
            respondText(responder, head: head, status: 404, body: "404 page not found\n")
        case .authenticate:
            if let factory = services.authenticate { return .handler(factory(loop), proxyServices: nil) }
            respondText(responder, head: head, status: 404, body: "404 page not found\n")
        case .forwardAuth:
            if let factory = services.forwardAuth { return .handler(factory(loop), proxyServices: nil) }
            respondText(responder, head: head, status: 404, body: "404 page not found\n")
        case .proxy:
            // A set with a proxy returned its handler above.
            respondText(responder, head: head, status: 404, body: "404 page not found\n")
        }
        return .responded
    }

    /// Returns `head.authority` when it could name the authenticate or forward-auth host, else
    /// nil, which routes alike. Parsing the `Host` value measured about 2,000 instructions, so a
    /// `Host` whose host part differs from both hosts is not parsed.
    static func authorityToMatch(_ head: HTTPRequestHead, services: ServiceSet) -> (host: String, port: Int?)? {
        guard services.authenticateHost != nil || services.forwardAuthHost != nil else { return nil }
        // The value is read as bytes in place: most requests match neither host.
        guard case .origin = head.targetForm,
            let matches = head.headers.withFirstValueBytes(
                name: "Host",
                { value in
                    hostPart(of: value, equals: services.authenticateHost)
                        || hostPart(of: value, equals: services.forwardAuthHost)
                })
        else {
            return head.authority
        }
        return matches ? head.authority : nil
    }

    /// Returns whether the host part of a `Host` value (the text before the port, without the
    /// brackets of an IPv6 literal) equals `expected`'s host with ASCII letters compared
    /// case-insensitively. Brackets that do not close count as a possible match, so the caller
    /// parses the value.
    static func hostPart(of value: String, equals expected: AuthenticateHost?) -> Bool {
        value.withUTF8Bytes { hostPart(of: $0, equals: expected) }
    }

    /// `hostPart(of:equals:)` for the value's bytes.
    static func hostPart(of bytes: UnsafeBufferPointer<UInt8>, equals expected: AuthenticateHost?) -> Bool {
        guard let expected else { return false }
        var start = 0
        var end = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.count
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return true }
            start = 1
            end = close
        }
        return expected.host.withUTF8Bytes { wanted in
            guard wanted.count == end - start else { return false }
            for index in 0..<wanted.count where bytes[start + index] | 0x20 != wanted[index] | 0x20 {
                return false
            }
            return true
        }
    }

    private func respondText(
        _ responder: HTTPResponder, head: HTTPRequestHead, status: Int, body: String,
        headers: HTTPHeaders = HTTPHeaders()
    ) {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        let bytes = Array(body.utf8)
        if head.method == .head {
            headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            responder.writeHead(HTTPResponseHead(status: status, headers: headers))
            responder.finish()
        } else {
            responder.respond(status: status, headers: headers, body: bytes)
        }
    }
}

/// The taker of a request, as `HostDispatcher.start` chose it.
private enum Dispatch {
    /// The connection's spare handler.
    case spare
    /// A new handler, and the services when it is their identified proxy's.
    case handler(any HTTPRequestHandler, proxyServices: ServiceSet?)
    /// No handler, because the dispatcher responded itself.
    case responded
}

/// Routes one request. It responds to health, ping and 404 itself, or passes every event to the
/// chosen service's handler.
final class DispatchingHandler: HTTPRequestHandler {
    private let dispatcher: HostDispatcher
    private let loop: EventLoop
    private var inner: (any HTTPRequestHandler)?
    /// The services whose identified proxy made `inner`; nil for any other handler.
    private var proxyServices: ServiceSet?

    init(dispatcher: HostDispatcher, loop: EventLoop) {
        self.dispatcher = dispatcher
        self.loop = loop
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        // The previous request's handler, reset already, is offered for reuse; `start` keeps it
        // only for another proxy request. A reused spare stays in `inner`, and the services go to
        // `start` as an identity. Moving the two references out and back cost 8 more reference
        // count operations per request.
        var spareServices: ObjectIdentifier?
        if inner != nil, let proxyServices { spareServices = ObjectIdentifier(proxyServices) }
        switch dispatcher.start(head: head, responder: responder, loop: loop, spareServices: spareServices) {
        case .spare:
            break
        case .handler(let handler, let services):
            inner = handler
            proxyServices = services
        case .responded:
            inner = nil
            proxyServices = nil
        }
        inner?.requestStarted(head, responder: responder)
    }

    /// Resets the inner handler and returns true in every case, because only the server calls this
    /// handler. An inner handler that resets itself stays as the spare for the next request, so a
    /// proxy handler keeps the storage of its last upstream fields. The reset happens here, before
    /// the server creates the next responder, so the inner handler drops the previous responder
    /// and the server can reuse it.
    func prepareForNextRequest() -> Bool {
        if let handler = inner, !handler.prepareForNextRequest() {
            inner = nil
            proxyServices = nil
        }
        return true
    }

    func requestBody(_ bytes: [UInt8]) { inner?.requestBody(bytes) }
    func requestEnded(trailers: HTTPHeaders) { inner?.requestEnded(trailers: trailers) }
    func requestFailed(_ error: HTTPServerError) { inner?.requestFailed(error) }
    func responseWritable() { inner?.responseWritable() }
    func tunnelReceived(_ bytes: [UInt8]) { inner?.tunnelReceived(bytes) }
    func tunnelClientFinished() { inner?.tunnelClientFinished() }
}
