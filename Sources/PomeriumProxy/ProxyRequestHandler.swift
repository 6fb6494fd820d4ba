import PomeriumAuthorize
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// One request through the proxy: the server-side handler and, once forwarded, the upstream
/// client's delegate. Everything runs on the connection's loop; backend refresh runs in a task
/// whose result comes back to the loop.
final class ProxyRequestHandler: HTTPRequestHandler, HTTPClientDelegate {
    let service: ProxyService
    let loop: EventLoop
    var responder: HTTPResponder?
    var head: HTTPRequestHead?
    /// The request's id. When `requestIDBits` are set, each read formats their text. A request
    /// that needs the id only for its `Request-Id` field writes that text straight into the
    /// field, which measured about 390 instructions and one allocation fewer per request.
    var requestID: String {
        get { requestIDBits.map(RequestID.format) ?? requestIDText }
        set {
            requestIDText = newValue
            requestIDBits = nil
        }
    }
    /// The bytes of an id this handler drew (`RequestID.makeBits()`), or nil when
    /// `requestIDText` is the id.
    private var requestIDBits: (UInt64, UInt64)?
    /// The id the dispatcher gave, or "" before the handler has one.
    private var requestIDText = ""
    private var startedAt: UInt64 = 0
    private var clientAddress: String?
    /// The request's cookies, parsed once for session loading and for stripping. Empty when
    /// `keptCookieHeader` came from the cookie header cache, which makes them unnecessary.
    private var parsedCookies: [HTTPCookie] = []
    /// The `Cookie` value for the upstream, when the cookie header cache knew it (see
    /// `UpstreamRequestBuilder.keptCookieHeader`).
    private var keptCookieHeader: String??
    /// The `Host` header value.
    var host = ""
    /// The normalised path that routing, policy and the upstream all see.
    var path = ""
    private var isHead = false
    private var status = 0
    private var bytesSent = 0
    private var logged = false
    /// The session whose email and user the access log line names. The session is kept rather
    /// than its two strings: one reference to retain instead of two.
    var identityForLog: SessionState?
    /// `Set-Cookie` values to add to whatever response goes out (a refreshed or cleared session).
    var responseCookies: [String] = []

    private(set) var finished = false
    private var upstream: HTTPClientRequest?
    private var pendingBody: [[UInt8]] = []
    private var pendingEnd: HTTPHeaders?
    /// Set while a POST endpoint collects its form body.
    private var formConsumer: ((URLQuery) -> Void)?
    private var formBytes: [UInt8] = []
    private var tunnel = false
    /// The next grant check of an open tunnel (see `checkTunnelGrant`).
    private var tunnelCheck: LoopTimer?
    private var clientFinished = false
    private var upstreamFinished = false
    /// Whether a task, a store read or an endpoint may still call this handler after its
    /// response, which keeps it out of reuse (see `prepareForNextRequest()`).
    var mayBeCalledLater = false
    /// The fields of the last upstream head. Once the upstream request that carried them is gone,
    /// the next request on the connection builds its fields in their storage.
    private var forwardedFields = HTTPHeaders()
    /// The fields of the last response head sent downstream, kept for the same reason: once the
    /// server has written that head, the next response builds its fields in their storage.
    private var responseFields = HTTPHeaders()

    /// The largest form body the proxy endpoints read.
    static let maximumFormSize = 64 * 1024

    /// `requestID` is the id the listener's dispatcher made for the request, which leaves the
    /// response fields to this handler (see `ProxyService.makeHandler(loop:requestID:)`).
    init(service: ProxyService, loop: EventLoop, requestID: String? = nil) {
        self.service = service
        self.loop = loop
        if let requestID {
            self.requestID = requestID
            hasAssignedRequestID = true
        }
    }

    var logger: Logger { service.shared.logger }

    /// Whether the listener's dispatcher gave this request its id when it made the handler. The
    /// id goes straight into `requestID`: a second copy of it cost a retain and two releases.
    private var hasAssignedRequestID = false

    /// Resets the handler for the next request of its connection, after a response that ended
    /// normally on the direct path: no liveness read, refresh, endpoint or tunnel, whose
    /// completions could still reach it. A handler made with a request id draws a new one.
    /// Reuse keeps `forwardedFields` and the handler itself: with the dispatcher's reuse, about
    /// 2,260 instructions and four allocations fewer per authenticated keep-alive request. It keeps
    /// `responseFields` too, for about 800 instructions and two allocations fewer.
    func prepareForNextRequest() -> Bool {
        guard finished, upstream == nil, !tunnel, !mayBeCalledLater, pendingEnd == nil, pendingBody.isEmpty,
            formConsumer == nil
        else {
            return false
        }
        responder = nil
        head = nil
        if hasAssignedRequestID {
            requestIDBits = RequestID.makeBits()
        } else {
            requestID = ""
        }
        clientAddress = nil
        if !parsedCookies.isEmpty { parsedCookies = [] }
        keptCookieHeader = nil
        host = ""
        path = ""
        isHead = false
        status = 0
        bytesSent = 0
        logged = false
        identityForLog = nil
        if !responseCookies.isEmpty { responseCookies = [] }
        finished = false
        if !formBytes.isEmpty { formBytes = [] }
        clientFinished = false
        upstreamFinished = false
        return true
    }

    // MARK: Request start

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
        self.head = head
        startedAt = MonotonicClock.nanoseconds()
        // Formatted once per connection.
        clientAddress = responder.remoteIPString
        if hasAssignedRequestID {
            // The dispatcher left the response fields to this handler (see `init`).
            if !responder.additionalHeaders.isEmpty { responder.additionalHeaders = HTTPHeaders() }
        } else if let dispatched = Self.dispatchedRequestID(responder) {
            // The dispatcher's fields are the `headers` setting of this configuration and the id.
            // This handler writes them itself with one pass per response (`ResponseHeaderPolicy`),
            // so the responder does not set each of them again with its own lookup.
            requestID = dispatched
            responder.additionalHeaders = HTTPHeaders()
        } else {
            requestIDBits = RequestID.makeBits()
        }
        isHead = head.method == .head
        guard let hostValue = head.headers.first(name: "Host"), !hostValue.isEmpty else {
            respondError(400, "The request has no Host header.")
            return
        }
        host = hostValue

        if head.method == .connect {
            respondError(405, "CONNECT is not supported.")
            return
        }
        let normalizedPath: String
        do {
            normalizedPath = try PathNormalization.normalize(head.path)
        } catch {
            path = ""
            respondError(400, "The request path is invalid.")
            return
        }
        path = normalizedPath

        if handleProxyEndpoint(head) {
            mayBeCalledLater = true
            return
        }

        // The local copies of the host and path go on from here: passing `self.host` or
        // `self.path` to a call retains and releases the string each time.
        guard let (route, upstreamRoute, audienceHost) = service.table.route(host: hostValue, path: normalizedPath)
        else {
            respondError(404, "\(host) route unknown")
            return
        }
        if service.table.parametersChangeRoute(host: hostValue, path: normalizedPath, route: route) {
            respondError(400, "The request path is invalid.")
            return
        }

        // Unwrapping the result once moves its values out. Copying each out of the optional
        // retained it, and releasing the optional released it again.
        var session: SessionState?
        var facts: SessionFacts?
        let source: SessionLoader.Source?
        if let loaded = loadSession(head, audienceHost: audienceHost) {
            facts = loaded.facts ?? loaded.session.derived(SessionFacts.init)
            session = loaded.session
            source = loaded.source
        } else {
            source = nil
        }
        if source == .cookie, let cookieSession = session, !cookieSession.audienceContains(audienceHost) {
            logger.debug(
                "session cookie ignored: its audience does not include the request host",
                metadata: ["req_id": .string(requestID), "host": .string(host)])
            session = nil
            facts = nil
        }
        let context = RouteContext(
            route: route, upstream: upstreamRoute, audienceHost: audienceHost, source: source, host: hostValue,
            path: normalizedPath, facts: facts)
        // A session seen live moments ago, or no liveness check at all, decides at once, with no
        // closure to allocate. The head goes on as this call's argument: reading it back from
        // `self.head` copies its strings and arrays.
        if let outcome = SessionLivenessGate.immediateOutcome(
            session, facts: context.facts, liveness: service.shared.liveness)
        {
            livenessChecked(outcome, head: head, context: context, session: session)
            return
        }
        checkLiveness(context: context, session: session, responder: responder)
    }

    /// Reads the session's liveness from the store and goes on once it is known. A separate
    /// function, so the variables its closures capture are allocated only on this path.
    private func checkLiveness(context: RouteContext, session: SessionState?, responder: HTTPResponder) {
        mayBeCalledLater = true
        var paused = false
        SessionLivenessGate.check(
            session, liveness: service.shared.liveness, loop: loop,
            waiting: {
                paused = true
                responder.pauseRequestBody()
            },
            completion: { [self] outcome in
                guard !finished, let head else { return }
                if paused { self.responder?.resumeRequestBody() }
                livenessChecked(outcome, head: head, context: context, session: session)
            })
    }

    /// Parses the request's cookies into `parsedCookies` and loads its session. A `Cookie` header
    /// that gave a session before gives the same cookies and session from the cache, with the
    /// session's facts. The facts are nil for a session loaded the long way.
    private func loadSession(
        _ head: HTTPRequestHead, audienceHost: String
    ) -> (session: SessionState, source: SessionLoader.Source, facts: SessionFacts?)? {
        // The cache takes the one `Cookie` field a browser sends. Several fields take the long way.
        // The field's bytes are looked up where they lie in the head: building the header string
        // for every request cost about 600 instructions and an allocation.
        var cookieFields = 0
        var cached: CookieHeaderCache.Entry?
        head.headers.forEachValueBytes(name: "Cookie") { bytes in
            cookieFields += 1
            if cookieFields == 1 { cached = service.cookieHeaderCache.entry(forHeaderBytes: bytes) }
        }
        let singleField = cookieFields == 1
        if singleField, let cached {
            // `parsedCookies` stays empty: with the kept header known, the builder never reads
            // the cookies, and storing them cost a retain and a release.
            keptCookieHeader = .some(cached.keptCookieHeader)
            return (cached.session, .cookie, cached.facts)
        }
        let cookieHeader = singleField ? head.headers.first(name: "Cookie") : nil
        parsedCookies = CookieParser.parse(headers: head.headers)
        let loaded = service.loader.load(
            cookies: parsedCookies, authorization: { head.headers.first(name: "Authorization") },
            sessionQueryParameter: {
                head.query.flatMap { URLQuery(parsingLeniently: $0).value(for: "pomerium_session") }
            },
            audienceHost: audienceHost)
        if let cookieHeader, let loaded, loaded.source == .cookie {
            service.cookieHeaderCache.store(
                CookieHeaderCache.Entry(
                    header: cookieHeader, cookies: parsedCookies, session: loaded.session,
                    keptCookieHeader: UpstreamRequestBuilder.keptCookieHeader(
                        parsedCookies, cookieName: service.options.cookieName)))
        }
        return loaded.map { ($0.session, $0.source, nil) }
    }

    /// Goes on with the request once `SessionLivenessGate` decided.
    private func livenessChecked(
        _ outcome: SessionLivenessGate.Outcome, head: HTTPRequestHead, context: RouteContext, session: SessionState?
    ) {
        guard !finished else { return }
        switch outcome {
        case .proceed: decide(context, head: head, session: session, refreshed: false)
        case .signedOut:
            if context.source == .cookie { responseCookies = (try? service.cookies.clearingHeaders()) ?? [] }
            respondSignIn(scheme: context.upstream.from.scheme)
        case .unavailable: respondError(503, "The session store is unavailable; try again shortly.")
        }
    }

    struct RouteContext {
        /// The route that the router found for `host` and `path`.
        let route: RoutePolicy
        let upstream: UpstreamRoute
        let audienceHost: String
        let source: SessionLoader.Source?
        /// Copies of `ProxyRequestHandler.host` and `path`, so the decision and the upstream
        /// request read them without retaining the handler's copies.
        let host: String
        let path: String
        /// The facts of the request's session (`SessionState.derived(_:)`), nil without a
        /// session. They travel with the context because each lookup takes the session's lock.
        /// A renewed session gets a context with its own facts.
        var facts: SessionFacts?
    }

    // MARK: Decision

    private func decide(_ context: RouteContext, head: HTTPRequestHead, session: SessionState?, refreshed: Bool) {
        // Only an OPTIONS request can be a CORS preflight, so other methods skip the lookups.
        let isCORSPreflight = head.method == .options && Self.isCORSPreflight(head)
        let now = service.shared.clock.unixSeconds()
        let decision = service.evaluator.evaluate(
            route: context.route, host: context.host, path: context.path, isCORSPreflight: isCORSPreflight,
            prepared: context.facts?.identity, now: now, foundByRouter: true)
        logDecision(decision, routeID: context.route.id, session: session)
        switch decision.outcome {
        case .allow:
            let identified = decision.reason != .publicRoute && decision.reason != .corsPreflight
            if identified, let session { identityForLog = session }
            // A Bearer route token is the product's credential on public routes and preflights
            // too: the upstream there could replay it on the host's other routes.
            forward(
                context, head: head, session: identified ? session : nil, preflight: decision.reason == .corsPreflight,
                removeBearer: context.source == .authorizationBearer)
        case .denyUnauthenticated:
            // Expired tokens from any source are renewed: v0.7 let scripts keep sending an
            // expired `Authorization: Pomerium` token while the global session lives.
            if decision.reason == .sessionExpired, !refreshed, context.source != nil, let session,
                session.hasAccessTokenID
            {
                refresh(context, expired: session)
                return
            }
            respondSignIn(scheme: context.upstream.from.scheme)
        case .denyForbidden:
            respondError(403, decision.reason.publicMessage)
        }
    }

    private func logDecision(_ decision: Decision, routeID: String, session: SessionState?) {
        // The metadata is built inside the log call's autoclosure, so a level that drops the line
        // costs no dictionary. An allowed request at a level above debug does not even copy the
        // logger. A denial of a signed-in user is a warning, as in v0.7, so `log_level: warn` keeps
        // it. A request without a valid session is only sent to sign in, so it stays at info.
        if decision.isAllowed {
            guard service.logLevel.level <= .debug else { return }
            logger.debug("authorize", metadata: decisionMetadata(decision, routeID: routeID, session: session))
        } else if decision.outcome == .denyForbidden {
            logger.warning("authorize", metadata: decisionMetadata(decision, routeID: routeID, session: session))
        } else {
            logger.info("authorize", metadata: decisionMetadata(decision, routeID: routeID, session: session))
        }
    }

    private func decisionMetadata(_ decision: Decision, routeID: String, session: SessionState?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "req_id": .string(requestID), "route": .string(routeID), "reason": .string(decision.reason.rawValue),
            "decision": .string(decision.isAllowed ? "allow" : "deny"),
        ]
        if let session {
            metadata["email"] = .string(session.email)
            if let impersonated = session.impersonateEmail { metadata["impersonate_email"] = .string(impersonated) }
            if let groups = session.impersonateGroups, !groups.isEmpty {
                metadata["impersonate_groups"] = .string(groups.joined(separator: ","))
            }
        }
        return metadata
    }

    /// Returns the session's identity for the evaluator, parsed once per session and shared by
    /// the copies of the session that the cookie caches hand out.
    static func preparedIdentity(_ session: SessionState) -> PreparedSessionIdentity {
        session.derived(SessionFacts.init).identity
    }

    static func identity(_ session: SessionState) -> SessionIdentity {
        SessionIdentity(
            email: session.email, groups: session.groups, subject: session.subject, user: session.user,
            impersonatedEmail: session.impersonateEmail, impersonatedGroups: session.impersonateGroups ?? [],
            notBefore: session.notBefore, expiresAt: session.expiry)
    }

    /// Asks the authenticate service for a new route session. Nothing reaches the upstream until
    /// the new session is verified and authorized. A failure clears the cookie and sends the user
    /// to sign in, where v0.7 still forwarded the request. Only a cookie session gets its cookie
    /// replaced or cleared: a script that sent a header or query token keeps its own token.
    private func refresh(_ context: RouteContext, expired: SessionState) {
        mayBeCalledLater = true
        responder?.pauseRequestBody()
        BackendRefresh.renew(
            expired, audienceHost: context.audienceHost, makeCookies: context.source == .cookie, service: service,
            loop: loop, requestID: requestID, isFinished: { [self] in finished },
            completion: { [self] renewal in
                responder?.resumeRequestBody()
                if let renewal {
                    if let cookies = renewal.cookies { responseCookies = cookies }
                    guard let head else { return }
                    var renewed = context
                    renewed.facts = renewal.session.derived(SessionFacts.init)
                    decide(renewed, head: head, session: renewal.session, refreshed: true)
                    return
                }
                if context.source == .cookie { responseCookies = (try? service.cookies.clearingHeaders()) ?? [] }
                respondSignIn(scheme: context.upstream.from.scheme)
            })
    }

    // MARK: Forwarding

    /// Sends the request upstream. `removeBearer` drops an `Authorization: Bearer` header that
    /// carried the route session, because that token is the product's credential.
    /// `head` is the request's head, which `decide` has unwrapped already.
    private func forward(
        _ context: RouteContext, head: HTTPRequestHead, session: SessionState?, preflight: Bool, removeBearer: Bool
    ) {
        guard let responder else { return }
        var keepUpgrade = true
        if head.isUpgradeRequest && !context.upstream.allowWebsockets {
            guard Self.mayIgnoreUpgrade(head) else {
                respondError(400, "WebSocket upgrades are not enabled on this route.")
                return
            }
            // A server may ignore an optional upgrade such as h2c (RFC 9110, section 7.8), so the
            // request goes on as plain HTTP/1.1 without its Upgrade field.
            keepUpgrade = false
        }
        // Nothing reads the cookies or the upstream `Cookie` value after the upstream request is
        // built, so they move out of the handler instead of being copied (measured: 4 reference
        // count operations fewer per request).
        var cookies: [HTTPCookie] = []
        swap(&cookies, &parsedCookies)
        let upstreamCookieHeader = keptCookieHeader.take()
        let outgoing: HTTPRequestHead
        do {
            outgoing = try UpstreamRequestBuilder(service: service).build(
                incoming: head, path: context.path, route: context.upstream, session: session, facts: context.facts,
                keepUpgrade: keepUpgrade,
                applySetHeaders: !preflight,
                removeBearer: removeBearer, cookies: cookies, keptCookieHeader: upstreamCookieHeader,
                remoteAddress: responder.remoteAddress, clientAddress: clientAddress, isTLS: responder.isTLS,
                buildingFieldsIn: &forwardedFields)
        } catch {
            logger.error(
                "building the upstream request failed",
                metadata: ["req_id": .string(requestID), "route": .string(context.upstream.id), "error": "\(error)"])
            respondError(500, "The request could not be forwarded.")
            return
        }
        let request = service.shared.client.execute(
            consume outgoing, to: context.upstream.upstream, on: loop, timeouts: context.upstream.timeouts,
            delegate: self)
        upstream = request
        // Most requests have no body waiting here, and the empty list is left as it is.
        if !pendingBody.isEmpty {
            for chunk in pendingBody { request.writeBody(chunk) }
            pendingBody.removeAll()
        }
        if let trailers = pendingEnd {
            request.endBody(trailers: trailers)
        } else {
            responder.readRequestBody()
            if !request.isWritable { responder.pauseRequestBody() }
        }
    }

    // MARK: Request body

    /// Collects the request body as a form and calls `consumer` with it once complete.
    func collectForm(_ consumer: @escaping (URLQuery) -> Void) {
        formConsumer = consumer
        for chunk in pendingBody { appendForm(chunk) }
        pendingBody.removeAll()
        if pendingEnd != nil {
            finishForm()
        } else {
            responder?.readRequestBody()
        }
    }

    private func appendForm(_ bytes: [UInt8]) {
        guard formConsumer != nil else { return }
        formBytes.append(contentsOf: bytes)
        if formBytes.count > Self.maximumFormSize {
            formConsumer = nil
            respondError(413, "The form is too large.")
        }
    }

    private func finishForm() {
        guard let consumer = formConsumer else { return }
        formConsumer = nil
        guard let form = try? URLQuery(parsing: String(decoding: formBytes, as: UTF8.self)) else {
            respondError(400, "The form is malformed.")
            return
        }
        consumer(form)
    }

    func requestBody(_ bytes: [UInt8]) {
        if formConsumer != nil {
            appendForm(bytes)
            return
        }
        guard let upstream else {
            if !finished { pendingBody.append(bytes) }
            return
        }
        upstream.writeBody(bytes)
        if !upstream.isWritable { responder?.pauseRequestBody() }
    }

    func requestEnded(trailers: HTTPHeaders) {
        // Most requests have no trailers, and those are passed on without a copy to edit.
        guard !trailers.isEmpty else {
            relayRequestEnd(trailers: trailers)
            return
        }
        var trailers = trailers
        // The route is looked up again only for the rare request with trailers.
        let settingNames = service.table.route(host: host, path: path)?.upstream.setRequestHeaders.map(\.name) ?? []
        UpstreamRequestBuilder.removeTrustedFields(fromTrailers: &trailers, settingNames: settingNames)
        relayRequestEnd(trailers: trailers)
    }

    private func relayRequestEnd(trailers: HTTPHeaders) {
        if formConsumer != nil {
            pendingEnd = trailers
            finishForm()
            return
        }
        guard let upstream else {
            pendingEnd = trailers
            return
        }
        upstream.endBody(trailers: trailers)
    }

    // NOTE: this exchange (body relay, backpressure, tunnel) repeats ReverseProxy's handler instead
    // of plugging into its decision hook; a fix in one must be made in the other until they merge.
    func requestFailed(_ error: HTTPServerError) {
        finished = true
        tunnelCheck?.cancel()
        tunnelCheck = nil
        upstream?.cancel()
        upstream = nil
        if status == 0 { status = 499 }
        writeAccessLog()
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

    // MARK: Local responses

    /// Sends a response the proxy generated, with the configured headers, the page headers and
    /// any pending session cookies.
    func respond(_ response: LocalResponse) {
        guard let responder, !finished else { return }
        var headers = response.headers
        // Room for every field added below (the `headers` setting, `Request-Id`, cookies and at
        // most four page fields). A sign-in redirect measured two allocations and about 1,000
        // instructions fewer than with the list growing as fields arrive.
        let policy = service.responseHeaderPolicy
        headers.reserveCapacity(
            fields: policy.fields.count + responseCookies.count + 5,
            bytes: policy.byteCount + responseCookies.reduce(0) { $0 + $1.utf8.count + 12 } + 240)
        applyResponseHeaders(&headers)
        headers.replaceOrAdd(name: "X-Pomerium-Intercepted-Response", value: "true")
        if headers.first(name: "Content-Type")?.hasPrefix("text/html") == true {
            headers.replaceOrAdd(name: "Content-Security-Policy", value: ProxyPages.contentSecurityPolicy)
            headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        }
        if response.status >= 300 { headers.replaceOrAdd(name: "Cache-Control", value: "no-store") }
        finished = true
        status = response.status
        bytesSent = isHead ? 0 : response.body.count
        responder.respond(status: response.status, headers: headers, body: response.body)
        writeAccessLog()
    }

    func respondError(_ status: Int, _ message: String, retryURL: String? = nil) {
        let json = head.map { ProxyPages.prefersJSON($0.headers) } ?? false
        respond(
            ProxyPages.error(status: status, message: message, requestID: requestID, json: json, retryURL: retryURL))
    }

    /// Sends the user to sign in: a redirect to the signed authenticate URL, or 401 for XHR and
    /// JSON clients, which cannot follow a redirect to an identity provider.
    func respondSignIn(scheme: String, returnPath: String? = nil) {
        guard let head else { return }
        let isScript =
            head.headers.first(name: "X-Requested-With")?.lowercased() == "xmlhttprequest"
            || ProxyPages.prefersJSON(head.headers)
        if isScript {
            respondError(401, "Sign in to continue.")
            return
        }
        let target = returnPath ?? (head.path + (head.query.map { "?\($0)" } ?? ""))
        let original = "\(scheme)://\(host)\(target)"
        do {
            let url = try service.signedAuthenticateURL(
                path: ProxyService.signInPath,
                parameters: [("pomerium_redirect_uri", original), try signInBindingParameter()])
            respond(.redirect(to: url))
        } catch {
            logger.error(
                "building the sign-in URL failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The sign-in URL could not be built.")
        }
    }

    private func applyResponseHeaders(_ headers: inout HTTPHeaders) {
        service.responseHeaderPolicy.apply(to: &headers, requestID: requestID)
        for cookie in responseCookies {
            headers.add(name: "Set-Cookie", value: cookie)
        }
    }

    /// Returns an upstream response's fields without the hop-by-hop fields, every identity header,
    /// every `Set-Cookie` of a product cookie and the fields of the `headers` setting, followed by the setting, `Request-Id` and pending
    /// cookies. Copying the list and removing fields in place measured fewer instructions than
    /// copying the kept fields one by one.
    private func upstreamResponseHeaders(_ upstreamHeaders: HTTPHeaders) -> HTTPHeaders {
        let policy = service.responseHeaderPolicy
        // The fields `Connection` names are hop-by-hop too, except those the fixed list has anyway
        // (upstreams mostly send `Connection: keep-alive`). Its options are read during the copy,
        // and any field they name is removed afterwards: a lookup of `Connection` before the copy
        // measured about 360 instructions more per response.
        var connectionNamed: [[UInt8]] = []
        // The kept fields are copied once, with room for what is added below. They go into the
        // storage of the last response's fields when the server no longer references that head,
        // which gives what `filtered` gives without its two allocations.
        responseFields.replaceFields(
            withFieldsOf: upstreamHeaders, reservingFields: policy.fields.count + 1 + responseCookies.count,
            bytes: policy.byteCount + responseCookies.reduce(0) { $0 + $1.utf8.count + 10 }
        ) { name, value in
            if name.count == 10 {
                if HTTPFieldName.matches(name, lowercase: "connection") {
                    UpstreamRequestBuilder.appendConnectionNames(of: value, to: &connectionNamed)
                    return false
                }
                // An application must not set the product's cookies: under a shared
                // `cookie_domain` a planted session cookie would sign the browser in as someone
                // else at every route.
                if HTTPFieldName.matches(name, lowercase: "set-cookie") {
                    return !service.options.cookieName.withUTF8Bytes {
                        UpstreamRequestBuilder.setsProductCookie(value, cookieName: $0)
                    }
                }
            }
            return
                !(UpstreamRequestBuilder.isHopByHopName(name) || UpstreamRequestBuilder.isIdentityHeaderName(name)
                || policy.isPolicyName(name))
        }
        if !connectionNamed.isEmpty {
            responseFields.removeFields(whereName: { name in
                connectionNamed.contains { HTTPFieldName.matches(name, lowercase: $0) }
            })
        }
        if let requestIDBits {
            RequestID.withText(of: requestIDBits) { policy.add(to: &responseFields, requestIDText: $0) }
        } else {
            policy.add(to: &responseFields, requestID: requestIDText)
        }
        for cookie in responseCookies {
            responseFields.add(name: "Set-Cookie", value: cookie)
        }
        return responseFields
    }

    // MARK: Upstream side

    func responseHead(_ head: HTTPResponseHead, request: HTTPClientRequest) {
        guard let responder else { return }
        let headers = upstreamResponseHeaders(head.headers)
        status = head.status
        responder.writeHead(HTTPResponseHead(status: head.status, reason: head.reason, headers: headers))
    }

    func responseBody(_ bytes: [UInt8], request: HTTPClientRequest) {
        bytes.withUnsafeBytes { responseBodyBytes($0, request: request) }
    }

    /// Writes body bytes as they sit in the client's read buffer, so no array is built per chunk.
    func responseBodyBytes(_ bytes: UnsafeRawBufferPointer, request: HTTPClientRequest) {
        guard let responder else { return }
        bytesSent += bytes.count
        responder.writeBody(bytes)
        if !responder.isWritable { request.pauseResponse() }
    }

    func responseEnded(trailers: HTTPHeaders, request: HTTPClientRequest) {
        finished = true
        upstream = nil
        // The assertion never goes back to the browser, in the trailers either. Empty trailers,
        // the common case, go on without a copy to edit.
        if trailers.isEmpty {
            responder?.finish(trailers: trailers)
        } else {
            var trailers = trailers
            UpstreamRequestBuilder.removeIdentityHeaders(&trailers)
            responder?.finish(trailers: trailers)
        }
        responder = nil
        writeAccessLog()
        // With the response ended and logged, nothing reads the request head, because `respond`
        // sends nothing once `finished` is set. The server calls `prepareForNextRequest()` only
        // after parsing the next head. Dropping the head here leaves the parser the only owner of
        // its field storage, so the parser reuses it for the next request (two allocations and
        // about 500 instructions fewer per keep-alive request).
        head = nil
    }

    func requestFailed(_ error: HTTPClientError, request: HTTPClientRequest) {
        upstream = nil
        guard !finished else { return }
        if tunnel {
            finished = true
            tunnelCheck?.cancel()
            tunnelCheck = nil
            responder?.abort()
            writeAccessLog()
            return
        }
        logger.warning(
            "upstream request failed",
            metadata: ["req_id": .string(requestID), "upstream": "\(request.upstream)", "error": "\(error)"])
        if status != 0 {
            finished = true
            responder?.abort()
            writeAccessLog()
            return
        }
        if error.isTimeout {
            respondError(504, "The upstream timed out.")
        } else {
            respondError(502, "The upstream is unavailable.")
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
        status = 101
        let upgrade = head.headers.first(name: "Upgrade")
        var headers = upstreamResponseHeaders(head.headers)
        headers.add(name: "Connection", value: "Upgrade")
        if let upgrade { headers.add(name: "Upgrade", value: upgrade) }
        responder.writeHead(HTTPResponseHead(status: 101, reason: head.reason, headers: headers))
        if !initialBytes.isEmpty { responder.tunnelWrite(initialBytes) }
        scheduleTunnelCheck()
    }

    /// Checks again, after `tunnelCheckInterval`, what allowed the tunnel's request.
    private func scheduleTunnelCheck() {
        tunnelCheck = loop.schedule(after: service.shared.tunnelCheckInterval) { [self] in
            tunnelCheck = nil
            checkTunnelGrant()
        }
    }

    /// Ends an open tunnel whose request would no longer be allowed: the policy of the
    /// configuration in effect denies its session (a reload removed the grant, or the route or
    /// its `allow_websockets`), or the user signed out. The expiry of the route session does not
    /// end it: the global session behind it, which the liveness check reads, decides how long
    /// the user stays signed in.
    private func checkTunnelGrant() {
        guard tunnel, !finished else { return }
        let current = service.shared.currentService.service ?? service
        let session = identityForLog
        var allowed = false
        if let (route, upstreamRoute, _) = current.table.route(host: host, path: path), upstreamRoute.allowWebsockets {
            let decision = current.evaluator.evaluate(
                route: route, host: host, path: path, isCORSPreflight: false,
                prepared: session.map(Self.preparedIdentity), now: service.shared.clock.unixSeconds(),
                foundByRouter: true)
            allowed = decision.isAllowed || (session != nil && decision.reason == .sessionExpired)
            if !allowed { logDecision(decision, routeID: route.id, session: session) }
        }
        guard allowed else {
            endTunnel("the policy no longer allows the tunnel's request")
            return
        }
        SessionLivenessGate.check(session, liveness: current.shared.liveness, loop: loop) { [self] outcome in
            guard tunnel, !finished else { return }
            switch outcome {
            case .proceed, .unavailable: scheduleTunnelCheck()
            case .signedOut: endTunnel("the tunnel's session was signed out")
            }
        }
    }

    /// Closes both sides of the tunnel at once.
    private func endTunnel(_ reason: String) {
        logger.info("tunnel closed", metadata: ["req_id": .string(requestID), "reason": .string(reason)])
        finished = true
        responder?.abort()
        responder = nil
        upstream?.cancel()
        upstream = nil
        writeAccessLog()
    }

    func tunnelReceived(_ bytes: [UInt8], request: HTTPClientRequest) {
        guard let responder else { return }
        bytesSent += bytes.count
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
        tunnelCheck?.cancel()
        tunnelCheck = nil
        responder?.closeTunnel()
        upstream?.cancel()
        upstream = nil
        writeAccessLog()
    }

    // MARK: Access log

    /// Writes the `http-request` line once: no query string, no cookie, no token.
    private func writeAccessLog() {
        guard !logged else { return }
        logged = true
        // The level is read first, so a logger that drops debug lines costs no copy of the head.
        guard service.logLevel.level <= .debug, let head else { return }
        let elapsed = Double(MonotonicClock.nanoseconds() &- startedAt) / 1_000_000
        logger.debug("http-request", metadata: accessLogMetadata(head, elapsed: elapsed))
    }

    /// The fields of the `http-request` line, built only when the logger keeps debug lines. The
    /// status, size and duration are JSON numbers, as v0.7 wrote them, so log queries can compare them.
    private func accessLogMetadata(_ head: HTTPRequestHead, elapsed: Double) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "method": .string(head.method.rawValue), "host": .string(host),
            "path": .string(path.isEmpty ? "(invalid)" : path), "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(format3(elapsed)), "size": .stringConvertible(bytesSent),
            "req_id": .string(requestID), "service": "proxy",
        ]
        if let clientAddress { metadata["ip"] = .string(clientAddress) }
        if let agent = head.headers.first(name: "User-Agent") { metadata["user_agent"] = .string(agent) }
        // Behind a load balancer `ip` is the balancer's address and the client's is in this field.
        // As in v0.7 it is logged as sent, whether or not the peer is in `trusted_proxies`.
        let forwardedFor = head.headers["X-Forwarded-For"]
        if !forwardedFor.isEmpty { metadata["X-Forwarded-For"] = .array(forwardedFor.map { .string($0) }) }
        if let identity = identityForLog {
            metadata["email"] = .string(identity.email)
            if let user = identity.user { metadata["user"] = .string(user) }
            if !identity.groups.isEmpty { metadata["groups"] = .array(identity.groups.map { .string($0) }) }
        }
        return metadata
    }

    private func format3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    // MARK: Helpers

    /// The request's id: the one the listener's dispatcher set as the `Request-Id` header of
    /// the response, so the log lines, the error page and the header agree, or a new one when the
    /// handler runs without the dispatcher.
    static func requestID(_ responder: HTTPResponder) -> String {
        dispatchedRequestID(responder) ?? RequestID.make()
    }

    /// Returns the id the listener's dispatcher set in the responder's additional headers, next to
    /// the `headers` setting.
    /// Returns whether an upgrade request can be served as plain HTTP instead: every protocol it
    /// offers is one a client falls back from (h2c), and it is not a CONNECT or WebSocket request.
    static func mayIgnoreUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.method != .connect else { return false }
        let offered = head.headers.tokens(name: "Upgrade")
        return !offered.isEmpty && offered.allSatisfy { $0.lowercased() == "h2c" }
    }

    /// Returns whether `head` is a CORS preflight that `cors_allow_preflight` lets through without
    /// a session: `OPTIONS` with non-empty `Origin` and `Access-Control-Request-Method`, as
    /// `AccessRequest.isCORSPreflight` checks, and also without a body and without an upgrade.
    /// Browsers send neither with a preflight. Let through, a body would reach the upstream
    /// unauthenticated, and an `Upgrade` would open a tunnel until the next grant check.
    static func isCORSPreflight(_ head: HTTPRequestHead) -> Bool {
        guard
            AccessRequest.isCORSPreflight(
                method: head.method.rawValue, origin: head.headers.first(name: "Origin"),
                accessControlRequestMethod: head.headers.first(name: "Access-Control-Request-Method"))
        else { return false }
        if head.isUpgradeRequest || head.headers.contains(name: "Transfer-Encoding") { return false }
        // The parser accepted only plain digits here, so any digit but 0 announces a body.
        if let length = head.headers.first(name: "Content-Length") {
            return length.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
        }
        return true
    }

    static func dispatchedRequestID(_ responder: HTTPResponder) -> String? {
        responder.additionalHeaders.isEmpty ? nil : responder.additionalHeaders.first(name: RequestID.headerName)
    }

    /// Returns the request host as `iss` and `aud` write it, for a route of `scheme`.
    /// The audience host for a request that `route` matched. A `Host` value spelled exactly like
    /// the route's lower-cased, portless host name is its own audience host, so it is not parsed again.
    static func audienceHost(requestHost: String, route: RoutePolicy) -> String {
        if route.host.utf8.first != UInt8(ascii: "["), route.hostHasSameBytes(as: requestHost) { return route.host }
        return audienceHost(requestHost: requestHost, scheme: route.scheme.rawValue)
    }

    static func audienceHost(requestHost: String, scheme: String) -> String {
        guard let key = HostAndPort(parsing: requestHost) else { return requestHost.lowercased() }
        var host = key.host
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return AudienceHost.format(host: host, port: key.port, scheme: scheme)
    }
}

/// The facts the proxy derives from a session's claims for its decisions, kept with the session
/// (see `SessionState.derived(_:)`).
final class SessionFacts: Sendable {
    let identity: PreparedSessionIdentity
    /// The last assertion and claim headers built for the session.
    let identityHeaders = IdentityHeadersMemo()
    /// The session's last live verdict (see `SessionLiveness.cached(_:memo:)`).
    let livenessMemo = LivenessMemo()

    init(_ session: SessionState) {
        identity = PreparedSessionIdentity(ProxyRequestHandler.identity(session))
    }
}
