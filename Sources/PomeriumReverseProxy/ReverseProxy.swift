import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet

/// A streaming reverse proxy: pass `makeHandler` to an `HTTPServer`. Bodies flow in both
/// directions with backpressure, and upgrades become tunnels once the upstream responds with 101.
public final class ReverseProxy: Sendable {
    public let client: HTTPClient
    public let configuration: ReverseProxyConfiguration
    let decide: ProxyDecide?
    let logger: Logger

    /// `decide` runs for every request before forwarding; nil forwards to `configuration.upstream`.
    public init(
        client: HTTPClient,
        configuration: ReverseProxyConfiguration,
        logger: Logger = Logger(label: "pomerium.reverse-proxy"),
        decide: ProxyDecide? = nil
    ) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.decide = decide
    }

    /// Creates the handler for one request; give this to `HTTPServer`.
    public func makeHandler(_ loop: EventLoop) -> any HTTPRequestHandler {
        ProxyExchange(proxy: self, loop: loop)
    }

    /// Builds the outgoing head for `incoming`: hop-by-hop headers removed, `X-Forwarded-*` set, `Host`
    /// rewritten unless preserved, and the framing header restored for a body.
    public func outgoingHead(
        for incoming: HTTPRequestHead,
        upstream: HTTPUpstream,
        remoteAddress: SocketAddress?,
        isTLS: Bool
    ) throws -> HTTPRequestHead {
        var headers = HTTPHeaders()
        return try outgoingHead(
            for: incoming, upstream: upstream, clientAddress: remoteAddress?.ipString, isTLS: isTLS,
            buildingFieldsIn: &headers)
    }

    /// `outgoingHead(for:upstream:remoteAddress:isTLS:)` with the client's address already
    /// formatted, which the connection keeps instead of formatting it for every request.
    /// `clientAddress` must come from `SocketAddress.ipString`: it goes out as a validated field.
    /// The fields are built in `headers`, whose storage is reused when the previous head built in
    /// it is gone: that saved two allocations per request on a keep-alive connection.
    func outgoingHead(
        for incoming: HTTPRequestHead,
        upstream: HTTPUpstream,
        clientAddress: String?,
        isTLS: Bool,
        buildingFieldsIn headers: inout HTTPHeaders
    ) throws -> HTTPRequestHead {
        let fields = incoming.headers
        let present = PresentFields(of: fields)
        let chunkedBody =
            present.contains(.transferEncoding) && fields.containsToken("chunked", name: "Transfer-Encoding")
        // Without an `Upgrade` field there is no value to pass on, whatever the method.
        let upgrade = present.contains(.upgrade) && incoming.isUpgradeRequest ? fields.first(name: "Upgrade") : nil
        let trusted = configuration.forwardedHeaderTrust.trusts(ip: clientAddress)
        let hasHost = present.contains(.host)
        // A field the hop replaces is dropped while copying; a trusted client's values are kept.
        let dropForwardedFor = clientAddress != nil || !trusted
        let dropForwardedHost = !trusted || !present.contains(.forwardedHost)
        let dropForwardedProto = !trusted || !present.contains(.forwardedProto)
        let replaceHost = !configuration.preserveHost || !hasHost
        var forwardedFor = clientAddress
        var forwardedForIsAddress = true
        if let clientAddress, trusted, present.contains(.forwardedFor) {
            let previous = fields["X-Forwarded-For"].joined(separator: ", ")
            if !previous.isEmpty {
                forwardedFor = "\(previous), \(clientAddress)"
                forwardedForIsAddress = false
            }
        }
        let connectionNamed =
            present.contains(.connection) ? fields.tokens(name: "Connection").map { Array($0.utf8) } : []
        // One copy of the kept fields with room for the added ones, instead of a copy, removals and
        // replacements, each of which would scan the list and leave dead bytes behind.
        // A local function, not a closure in a constant: the constant's context was allocated on the heap.
        func keep(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
            guard let first = name.first else { return true }
            if HopByHopHeaders.isHopByHop(name, named: connectionNamed) { return false }
            switch (name.count, first | 0x20) {
            case (4, UInt8(ascii: "h")): return !(replaceHost && HTTPFieldName.matches(name, lowercase: Self.hostName))
            case (15, UInt8(ascii: "x")):
                return !(dropForwardedFor && HTTPFieldName.matches(name, lowercase: Self.forwardedForName))
            case (16, UInt8(ascii: "x")):
                return !(dropForwardedHost && HTTPFieldName.matches(name, lowercase: Self.forwardedHostName))
            case (17, UInt8(ascii: "x")):
                return !(dropForwardedProto && HTTPFieldName.matches(name, lowercase: Self.forwardedProtoName))
            default: return true
            }
        }
        // The replaced Host goes first, where clients put it and RFC 9110 §7.2 recommends it.
        if replaceHost {
            headers.replaceFields(
                withFieldsOf: fields, reservingFields: 6, bytes: 160, firstName: "Host", value: upstream.authority,
                isValidated: upstream.authorityIsValidFieldValue, keepingName: keep)
        } else {
            headers.replaceFields(withFieldsOf: fields, reservingFields: 6, bytes: 160, keepingName: keep)
        }
        if chunkedBody { headers.add(validatedName: "Transfer-Encoding", value: "chunked") }
        if let upgrade {
            headers.add(validatedName: "Connection", value: "Upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        // An address that `SocketAddress.ipString` wrote, and a Host value that was parsed and
        // checked, need no second check when the head is encoded.
        if let forwardedFor {
            if forwardedForIsAddress {
                headers.add(validatedName: "X-Forwarded-For", value: forwardedFor)
            } else {
                headers.add(name: "X-Forwarded-For", value: forwardedFor)
            }
        }
        if dropForwardedHost {
            // The bytes of the client's Host go over as they are, checked on encoding unless the
            // parser checked them.
            headers.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "Host", in: fields)
        }
        if dropForwardedProto { headers.add(validatedName: "X-Forwarded-Proto", value: isTLS ? "https" : "http") }
        if let via = configuration.via {
            headers.add(name: "Via", value: "\(incoming.version.major).\(incoming.version.minor) \(via)")
        }
        if case .absolute = incoming.targetForm {
            let target = incoming.path + (incoming.query.map { "?\($0)" } ?? "")
            return try HTTPRequestHead(method: incoming.method, target: target, version: .http1_1, headers: headers)
        }
        // The target goes out unchanged, so the parsed target is reused instead of parsing it
        // again, which the initializer would do.
        return incoming.forwarding(version: .http1_1, headers: headers)
    }

    private static let hostName = Array("host".utf8)
    private static let forwardedForName = Array("x-forwarded-for".utf8)
    private static let forwardedHostName = Array("x-forwarded-host".utf8)
    private static let forwardedProtoName = Array("x-forwarded-proto".utf8)
}

/// The fields a forwarded head depends on that a request has, found in one pass over the names.
/// Looking each up by name scanned the list once per name, seven times per request.
struct PresentFields: OptionSet {
    let rawValue: UInt8

    static let host = PresentFields(rawValue: 1 << 0)
    static let connection = PresentFields(rawValue: 1 << 1)
    static let transferEncoding = PresentFields(rawValue: 1 << 2)
    static let upgrade = PresentFields(rawValue: 1 << 3)
    static let forwardedFor = PresentFields(rawValue: 1 << 4)
    static let forwardedHost = PresentFields(rawValue: 1 << 5)
    static let forwardedProto = PresentFields(rawValue: 1 << 6)

    init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    init(of fields: HTTPHeaders) {
        var found = PresentFields()
        fields.forEachName { name in
            guard let first = name.first else { return }
            // The length and the first byte pick the one name a field could be; `| 0x20`
            // lowercases ASCII letters.
            switch (name.count, first | 0x20) {
            case (4, UInt8(ascii: "h")): if HTTPFieldName.matches(name, lowercase: "host") { found.insert(.host) }
            case (10, UInt8(ascii: "c")):
                if HTTPFieldName.matches(name, lowercase: "connection") { found.insert(.connection) }
            case (17, UInt8(ascii: "t")):
                if HTTPFieldName.matches(name, lowercase: "transfer-encoding") { found.insert(.transferEncoding) }
            case (7, UInt8(ascii: "u")): if HTTPFieldName.matches(name, lowercase: "upgrade") { found.insert(.upgrade) }
            case (15, UInt8(ascii: "x")):
                if HTTPFieldName.matches(name, lowercase: "x-forwarded-for") { found.insert(.forwardedFor) }
            case (16, UInt8(ascii: "x")):
                if HTTPFieldName.matches(name, lowercase: "x-forwarded-host") { found.insert(.forwardedHost) }
            case (17, UInt8(ascii: "x")):
                if HTTPFieldName.matches(name, lowercase: "x-forwarded-proto") { found.insert(.forwardedProto) }
            default: break
            }
        }
        self = found
    }
}

/// One proxied request: the server-side handler and the client-side delegate at once.
final class ProxyExchange: HTTPRequestHandler, HTTPClientDelegate {
    private let proxy: ReverseProxy
    private let loop: EventLoop
    private var responder: HTTPResponder?
    private var upstream: HTTPClientRequest?
    private var pendingBody: [[UInt8]] = []
    private var pendingEnd: HTTPHeaders?
    private var headSent = false
    private var finished = false
    private var tunnel = false
    private var clientFinished = false
    private var upstreamFinished = false
    private var isHead = false
    /// The fields of the last forwarded head. Once the upstream request that carried them is gone,
    /// the next head is built in their storage.
    private var forwardedFields = HTTPHeaders()
    /// Whether a decision ran as a task, whose completion keeps a reference to this exchange.
    private var decidedLater = false

    init(proxy: ReverseProxy, loop: EventLoop) {
        self.proxy = proxy
        self.loop = loop
    }

    /// Resets the exchange for the next request of its connection after a response that ended
    /// normally. The upstream request dropped its delegate before reporting the end, so only a
    /// task's completion could still call this exchange, and an exchange that started one stays
    /// out of reuse.
    func prepareForNextRequest() -> Bool {
        guard finished, responder == nil, upstream == nil, !tunnel, !decidedLater, pendingEnd == nil,
            pendingBody.isEmpty
        else {
            return false
        }
        headSent = false
        finished = false
        clientFinished = false
        upstreamFinished = false
        isHead = false
        return true
    }

    // MARK: Server side

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
        isHead = head.method == .head
        if head.method == .connect {
            respondLocally(status: 405, body: "CONNECT is not supported\n")
            return
        }
        if proxy.decide == nil, let upstream = proxy.configuration.upstream {
            // Without a decision hook the route is known: forward without building the context
            // and decision values, each of which would copy the head once more.
            let outgoing: HTTPRequestHead
            do {
                outgoing = try proxy.outgoingHead(
                    for: head, upstream: upstream, clientAddress: responder.remoteIPString, isTLS: responder.isTLS,
                    buildingFieldsIn: &forwardedFields)
            } catch {
                respondLocally(status: 400, body: "invalid request target\n")
                return
            }
            forward(outgoing, to: upstream, timeouts: proxy.configuration.timeouts)
            return
        }
        var context = ProxyRequestContext(
            incoming: head, remoteAddress: responder.remoteAddress, isTLS: responder.isTLS,
            serverName: responder.serverName, route: nil)
        if let upstream = proxy.configuration.upstream {
            do {
                let outgoing = try proxy.outgoingHead(
                    for: head, upstream: upstream, remoteAddress: responder.remoteAddress, isTLS: responder.isTLS)
                context.route = ProxyRoute(upstream: upstream, head: outgoing, timeouts: proxy.configuration.timeouts)
            } catch {
                respondLocally(status: 400, body: "invalid request target\n")
                return
            }
        }
        let step: ProxyDecisionStep
        if let decide = proxy.decide {
            step = decide(context)
        } else if let route = context.route {
            step = .now(.forward(route))
        } else {
            step = .now(.respond(status: 502, headers: HTTPHeaders(), body: Array("no upstream configured\n".utf8)))
        }
        switch step {
        case .now(let decision):
            apply(decision)
        case .later(let work):
            decidedLater = true
            responder.pauseRequestBody()
            loop.submit(
                { await work() },
                completion: { [self] result in
                    guard !finished else { return }
                    switch result {
                    case .success(let decision): apply(decision)
                    case .failure: respondLocally(status: 500, body: "internal error\n")
                    }
                    self.responder?.resumeRequestBody()
                })
        }
    }

    private func apply(_ decision: ProxyDecision) {
        switch decision {
        case .respond(let status, let headers, let body):
            guard let responder else { return }
            headSent = true
            responder.respond(status: status, headers: headers, body: body)
            finished = true
        case .forward(let route):
            forward(route.head, to: route.upstream, timeouts: route.timeouts)
        }
    }

    private func forward(_ head: consuming HTTPRequestHead, to target: HTTPUpstream, timeouts: HTTPClientTimeouts) {
        let request = proxy.client.execute(head, to: target, on: loop, timeouts: timeouts, delegate: self)
        upstream = request
        if !pendingBody.isEmpty {
            for chunk in pendingBody { request.writeBody(chunk) }
            pendingBody.removeAll()
        }
        if let trailers = pendingEnd {
            request.endBody(trailers: trailers)
        } else {
            responder?.readRequestBody()
            if !request.isWritable { responder?.pauseRequestBody() }
        }
    }

    private func respondLocally(status: Int, body: String) {
        guard let responder, !headSent else {
            responder?.abort()
            return
        }
        headSent = true
        finished = true
        responder.respond(
            status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(body.utf8))
    }

    func requestBody(_ bytes: [UInt8]) {
        guard let upstream else {
            pendingBody.append(bytes)
            return
        }
        upstream.writeBody(bytes)
        if !upstream.isWritable { responder?.pauseRequestBody() }
    }

    func requestEnded(trailers: HTTPHeaders) {
        guard let upstream else {
            pendingEnd = trailers
            return
        }
        upstream.endBody(trailers: trailers)
    }

    func requestFailed(_ error: HTTPServerError) {
        // The client is gone or broke the request: stop the upstream's work too.
        finished = true
        upstream?.cancel()
        upstream = nil
        responder = nil
    }

    func responseWritable() {
        upstream?.resumeResponse()
    }

    func tunnelReceived(_ bytes: [UInt8]) {
        guard let upstream else { return }
        upstream.tunnelWrite(bytes)
        if !upstream.isTunnelWritable { responder?.pauseRequestBody() }
    }

    func tunnelClientFinished() {
        clientFinished = true
        upstream?.tunnelFinish()
        closeTunnelIfDone()
    }

    // MARK: Upstream side

    /// Passes the upstream's head on with its fields edited in place. A consumed head is edited
    /// without copying its field storage, and forwarding it saved about 6 retains and releases.
    func responseHead(_ head: consuming HTTPResponseHead, request: HTTPClientRequest) {
        guard let responder else { return }
        let hadContentLength = isHead && head.headers.contains(name: "Content-Length")
        HopByHopHeaders.remove(from: &head.headers)
        if let via = proxy.configuration.via {
            head.headers.add(name: "Via", value: "\(head.version.major).\(head.version.minor) \(via)")
        }
        if isHead && !hadContentLength {
            head.headers.remove(name: "Content-Length")
        }
        // The client gets HTTP/1.1 whatever version the upstream used.
        head.version = .http1_1
        headSent = true
        responder.writeHead(head)
    }

    func responseBody(_ bytes: [UInt8], request: HTTPClientRequest) {
        bytes.withUnsafeBytes { responseBodyBytes($0, request: request) }
    }

    func responseBodyBytes(_ bytes: UnsafeRawBufferPointer, request: HTTPClientRequest) {
        guard let responder else { return }
        responder.writeBody(bytes)
        if !responder.isWritable { request.pauseResponse() }
    }

    func responseEnded(trailers: HTTPHeaders, request: HTTPClientRequest) {
        finished = true
        upstream = nil
        responder?.finish(trailers: trailers)
        responder = nil
    }

    func requestFailed(_ error: HTTPClientError, request: HTTPClientRequest) {
        upstream = nil
        guard !finished else { return }
        if tunnel {
            responder?.abort()
            return
        }
        proxy.logger.warning(
            "upstream request failed", metadata: ["upstream": "\(request.upstream)", "error": "\(error)"])
        if headSent {
            finished = true
            responder?.abort()
            return
        }
        if error.isTimeout {
            respondLocally(status: 504, body: "upstream timed out\n")
        } else {
            respondLocally(status: 502, body: "upstream unavailable\n")
        }
    }

    func requestBodyWritable(_ request: HTTPClientRequest) {
        responder?.resumeRequestBody()
    }

    func upgraded(_ head: HTTPResponseHead, initialBytes: [UInt8], request: HTTPClientRequest) {
        guard let responder else {
            request.cancel()
            return
        }
        tunnel = true
        headSent = true
        var headers = head.headers
        let upgrade = head.headers.first(name: "Upgrade")
        HopByHopHeaders.remove(from: &headers)
        headers.add(name: "Connection", value: "Upgrade")
        if let upgrade { headers.add(name: "Upgrade", value: upgrade) }
        responder.writeHead(HTTPResponseHead(status: 101, reason: head.reason, headers: headers))
        if !initialBytes.isEmpty { responder.tunnelWrite(initialBytes) }
    }

    func tunnelReceived(_ bytes: [UInt8], request: HTTPClientRequest) {
        guard let responder else { return }
        responder.tunnelWrite(bytes)
        if !responder.isWritable { request.pauseResponse() }
    }

    func tunnelUpstreamFinished(_ request: HTTPClientRequest) {
        guard !upstreamFinished else { return }
        upstreamFinished = true
        responder?.tunnelFinish()
        closeTunnelIfDone()
    }

    /// With the upstream connection gone, what the client sends can no longer arrive, so the
    /// client side closes too once the upstream's bytes are out. Waiting for the client's end
    /// instead would keep a client whose reading was paused until `timeout_idle`.
    func tunnelUpstreamClosed(_ request: HTTPClientRequest) {
        guard !finished else { return }
        clientFinished = true
        closeTunnelIfDone()
    }

    private func closeTunnelIfDone() {
        guard clientFinished && upstreamFinished else { return }
        finished = true
        responder?.closeTunnel()
        upstream?.cancel()
        upstream = nil
    }
}
