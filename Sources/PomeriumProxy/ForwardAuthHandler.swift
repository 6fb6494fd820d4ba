import PomeriumAuthorize
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// One request to the forward-auth endpoints, which an ingress (nginx `auth_request`, Traefik
/// `forwardAuth`) calls to ask whether a request for another URL may pass:
///
/// - `/verify?uri=<url>` only checks: 200 with the assertion and claim headers when allowed, 401
///   without a usable session, 403 when the policy denies. It never redirects, because nginx's
///   `auth_request` accepts only 2xx, 401 and 403.
/// - `/?uri=<url>` checks the same way but sends a browser without a session to sign in (302).
///
/// Either one, given the callback URL that the authenticate service sent the browser to (the
/// target carries `pomerium_session_encrypted`), checks that URL's signature, stores the route
/// session cookie and responds with 401 (`/verify`, so nginx continues at its sign-in location)
/// or 302 to `pomerium_redirect_uri` (`/`). Only the session cookie is read, as in v0.7.
final class ForwardAuthHandler: HTTPRequestHandler {
    enum Endpoint {
        case verify
        case verifyOrSignIn
    }

    let service: ProxyService
    let loop: EventLoop
    private var responder: HTTPResponder?
    private var head: HTTPRequestHead?
    private var endpoint = Endpoint.verify
    private var requestID = ""
    private var finished = false
    private var status = 0
    private var logged = false
    private var startedAt: UInt64 = 0
    /// `Set-Cookie` values for the response: a stored, refreshed or cleared session.
    private var responseCookies: [String] = []
    private var identityForLog: String?
    private var targetForLog = ""

    /// The path of the verify-only endpoint.
    static let verifyPath = "/verify"
    /// Returns the body of an allowed response, worded as v0.7 did.
    static func allowedText(host: String) -> String { "Access to \(host) is allowed." }

    init(service: ProxyService, loop: EventLoop) {
        self.service = service
        self.loop = loop
    }

    private var logger: Logger { service.shared.logger }

    // MARK: Request

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.head = head
        self.responder = responder
        startedAt = MonotonicClock.nanoseconds()
        requestID = ProxyRequestHandler.requestID(responder)
        endpoint = head.path == Self.verifyPath ? .verify : .verifyOrSignIn

        let rawQuery = head.query ?? ""
        if ForwardAuthTarget.split(rawQuery: rawQuery).others.value(for: "auth_status") == "403" {
            respondError(403, "The ingress reported that access is denied.")
            return
        }
        let target: HTTPURL
        do {
            target = try ForwardAuthTarget.resolve(
                rawQuery: head.query, headers: head.headers,
                trustsForwardedHeaders: service.trustedProxies.trusts(responder.remoteAddress))
        } catch {
            respondError(400, error.description)
            return
        }
        targetForLog = target.hostAndPort
        let targetQuery = URLQuery(parsingLeniently: target.query ?? "")
        if targetQuery.value(for: CallbackPayloadCodec.parameter) != nil {
            completeSignIn(target: target, query: targetQuery)
        } else {
            authorize(target: target)
        }
    }

    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}

    func requestFailed(_ error: HTTPServerError) {
        finished = true
        if status == 0 { status = 499 }
        writeAccessLog()
        responder = nil
    }

    // MARK: Authorization

    private func authorize(target: HTTPURL) {
        guard let head else { return }
        let path: String
        do {
            path = try PathNormalization.normalize(target.path.isEmpty ? "/" : target.path)
        } catch {
            respondError(400, "The path of the URL to check is invalid.")
            return
        }
        let authority = target.hostAndPort
        guard let route = service.table.router.route(host: authority, path: path) else {
            // auth_request turns any status but 2xx, 401 and 403 into a 500, so /verify denies.
            respondError(endpoint == .verify ? 403 : 404, "\(authority) route unknown")
            return
        }
        if service.table.parametersChangeRoute(host: authority, path: path, route: route) {
            respondError(400, "The path of the URL to check is invalid.")
            return
        }
        let audienceHost = AudienceHost.format(host: target.host, port: target.port, scheme: target.scheme)
        let cookies = CookieParser.parse(headers: head.headers).map { (name: $0.name, value: $0.value) }
        var session = service.cookies.session(fromCookies: cookies)
        if let candidate = session, !Self.audience(candidate.audience, namesHostOf: audienceHost) {
            logger.debug(
                "session cookie ignored: its audience does not name the forward-auth target's host",
                metadata: ["req_id": .string(requestID), "target": .string(authority)])
            session = nil
        }
        let context = Context(target: target, path: path, route: route, audienceHost: audienceHost)
        SessionLivenessGate.check(session, liveness: service.shared.liveness, loop: loop) { [self] outcome in
            guard !finished else { return }
            switch outcome {
            case .proceed: decide(context, session: session, refreshed: false)
            case .signedOut:
                responseCookies = (try? service.cookies.clearingHeaders()) ?? []
                respondUnauthenticated(target: context.target)
            case .unavailable: respondError(503, "The session store is unavailable; try again shortly.")
            }
        }
    }

    struct Context {
        let target: HTTPURL
        let path: String
        let route: RoutePolicy
        let audienceHost: String
    }

    /// Whether `audience` names the host of `audienceHost`, on any port.
    ///
    /// Browsers send a host's cookies to all of its ports (RFC 6265 section 8.5). A port-exact
    /// check would therefore only loop through sign-in when an ingress serves the application on
    /// another port of the session's host. The session proves who the user is, and the target
    /// route's own policy still decides.
    static func audience(_ audience: [String], namesHostOf audienceHost: String) -> Bool {
        let wanted = hostName(audienceHost)
        return audience.contains { hostName($0.lowercased()) == wanted }
    }

    /// Returns the entry of `audience` that names the host of `audienceHost`: the exact one when
    /// present, else the first on another port.
    static func audienceEntry(_ audience: [String], namingHostOf audienceHost: String) -> String? {
        let expected = audienceHost.lowercased()
        if let exact = audience.first(where: { $0.lowercased() == expected }) { return exact }
        let name = hostName(expected)
        return audience.first { hostName($0.lowercased()) == name }
    }

    /// Returns `host` of `host:port` or `[v6]` of `[v6]:port`.
    static func hostName(_ audienceHost: String) -> String {
        if audienceHost.hasPrefix("["), let close = audienceHost.firstIndex(of: "]") {
            return String(audienceHost[...close])
        }
        return String(audienceHost.prefix { $0 != ":" })
    }

    private func decide(_ context: Context, session: SessionState?, refreshed: Bool) {
        guard let head else { return }
        let trusted = service.trustedProxies.trusts(responder?.remoteAddress)
        // An nginx subrequest is always a GET; the ingress reports the original method.
        let method = (trusted ? head.headers.first(name: "X-Forwarded-Method") : nil) ?? head.method.rawValue
        let access = AccessRequest(
            method: method.uppercased(), host: context.target.hostAndPort, path: context.path,
            origin: head.headers.first(name: "Origin"),
            accessControlRequestMethod: head.headers.first(name: "Access-Control-Request-Method"))
        let decision = service.evaluator.evaluate(
            route: context.route, request: access, prepared: session.map(ProxyRequestHandler.preparedIdentity),
            now: service.shared.clock.unixSeconds())
        logDecision(decision, routeID: context.route.id, session: session)
        switch decision.outcome {
        case .allow:
            let identified = decision.reason != .publicRoute && decision.reason != .corsPreflight
            respondAllowed(context, session: identified ? session : nil)
        case .denyUnauthenticated:
            if decision.reason == .sessionExpired, !refreshed, let session, !session.accessTokenID.isEmpty {
                refresh(context, expired: session)
                return
            }
            respondUnauthenticated(target: context.target)
        case .denyForbidden:
            // v0.7 responded with 401 here, so nginx sent denied users through sign-in again and again.
            respondError(403, decision.reason.publicMessage)
        }
    }

    private func logDecision(_ decision: Decision, routeID: String, session: SessionState?) {
        var metadata: Logger.Metadata = [
            "req_id": .string(requestID), "route": .string(routeID), "reason": .string(decision.reason.rawValue),
            "decision": .string(decision.isAllowed ? "allow" : "deny"), "forward_auth": "true",
        ]
        if let session { metadata["email"] = .string(session.email) }
        if decision.isAllowed {
            logger.debug("authorize", metadata: metadata)
        } else if decision.outcome == .denyForbidden {
            logger.warning("authorize", metadata: metadata)
        } else {
            logger.info("authorize", metadata: metadata)
        }
    }

    /// Responds with 200, the assertion and the `jwt_claims_headers` for the ingress to copy onto
    /// the upstream request. The assertion's `aud` gains the target host when the session was
    /// minted for another port of it, so an upstream that checks `aud` against its own host
    /// accepts it.
    private func respondAllowed(_ context: Context, session: SessionState?) {
        var response = LocalResponse.text(200, Self.allowedText(host: context.target.hostAndPort))
        if var asserted = session {
            identityForLog = asserted.email
            if !asserted.audience.contains(context.audienceHost) { asserted.audience.append(context.audienceHost) }
            let sessionID = asserted.accessTokenID.isEmpty ? asserted.subject : asserted.accessTokenID
            do {
                let assertion = try service.shared.signer.assertion(
                    for: asserted, sessionID: sessionID, route: context.route.id)
                response.headers.add(name: IdentityAssertionSigner.headerName, value: assertion)
            } catch {
                logger.error(
                    "signing the identity assertion failed",
                    metadata: ["req_id": .string(requestID), "error": .string("\(error)")])
                respondError(500, "The identity assertion could not be signed.")
                return
            }
            for claim in ClaimHeaders.headers(claims: asserted.claims, names: service.options.jwtClaimsHeaders) {
                response.headers.add(name: claim.name, value: claim.value)
            }
        }
        respond(response)
    }

    /// Responds to a request without a usable session: 401 on `/verify` and for scripts, else a
    /// redirect to the signed sign-in URL, which returns the browser to exactly `target`.
    private func respondUnauthenticated(target: HTTPURL) {
        guard let head else { return }
        let isScript =
            head.headers.first(name: "X-Requested-With")?.lowercased() == "xmlhttprequest"
            || ProxyPages.prefersJSON(head.headers)
        if endpoint == .verify || isScript {
            respondError(401, "Sign in to continue.")
            return
        }
        var destination = target
        if destination.path.isEmpty { destination.path = "/" }
        let callback = HTTPURL(
            scheme: destination.scheme, host: destination.host, port: destination.port,
            path: "/.pomerium/callback/")
        var parameters: [(name: String, value: String)] = [
            ("pomerium_redirect_uri", destination.description), ("pomerium_callback_uri", callback.description),
        ]
        if let forwardAuthURL = service.options.forwardAuthURL {
            parameters.append(("pomerium_forward_auth", forwardAuthURL.host))
        }
        do {
            let url = try service.signedAuthenticateURL(path: ProxyService.signInPath, parameters: parameters)
            respond(.redirect(to: url))
        } catch {
            logger.error(
                "building the sign-in URL failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The sign-in URL could not be built.")
        }
    }

    /// Asks the authenticate service for a new route session, and writes no response until the
    /// new session is verified and authorized. A failure clears the cookie and responds as for no
    /// session, with that one response only (v0.7 appended the "allowed" text to its redirect).
    private func refresh(_ context: Context, expired: SessionState) {
        // The new session keeps the old audience, which may name another port of the target's
        // host (see `audience(_:namesHostOf:)`).
        let minted = Self.audienceEntry(expired.audience, namingHostOf: context.audienceHost)
        BackendRefresh.renew(
            expired, audienceHost: minted ?? context.audienceHost, makeCookies: true, service: service, loop: loop,
            requestID: requestID, isFinished: { [self] in finished },
            completion: { [self] renewal in
                if let renewal {
                    responseCookies = renewal.cookies ?? []
                    decide(context, session: renewal.session, refreshed: true)
                    return
                }
                responseCookies = (try? service.cookies.clearingHeaders()) ?? []
                respondUnauthenticated(target: context.target)
            })
    }

    // MARK: Sign-in callback

    /// Stores the route session that the authenticate service sent to the target's
    /// `/.pomerium/callback/`. v0.7 did not check the signature here. This checks it over the
    /// target URL exactly as the ingress reported it, because that is the URL the service signed.
    private func completeSignIn(target: HTTPURL, query: URLQuery) {
        let failed: (String) -> Void = { [self] message in
            // A failed callback on /verify gets 401, so nginx sends the browser on to `/`,
            // which shows the reason instead of nginx's bare 500.
            respondError(endpoint == .verify ? 401 : 400, message)
        }
        do {
            try service.urlSigner.validate(target)
        } catch {
            failed("The sign-in link is invalid or expired.")
            return
        }
        guard let sealed = query.value(for: CallbackPayloadCodec.parameter),
            let redirect = query.value(for: "pomerium_redirect_uri")
        else {
            failed("The sign-in link is missing a parameter.")
            return
        }
        let audienceHost = AudienceHost.format(host: target.host, port: target.port, scheme: target.scheme)
        let session: SessionState
        do {
            let token = try service.callbackCodec.open(sealed)
            session = try service.tokens.verify(Array(token.utf8), audienceHost: audienceHost)
        } catch {
            failed("The sign-in link carries no valid session.")
            return
        }
        guard let redirectURL = ProxyRequestHandler.absoluteWebURL(redirect),
            let redirectHost = HostAndPort(parsing: redirectURL.hostAndPort),
            let targetHost = HostAndPort(parsing: target.hostAndPort), redirectHost == targetHost
        else {
            failed("The redirect target is not allowed.")
            return
        }
        // NOTE: sign-ins started here carry no binding: the browser meets this service on the
        // forward-auth host, where a cookie for the route host cannot be set (docs/forward-auth.md).
        // A link started by the proxy's own sign-in is bound, and then the browser's sign-in cookie
        // for the route host, which the ingress passes on, must match.
        let binding = query.value(for: SignInBinding.parameter)
        let signInBinding = SignInBinding(settings: service.cookies.settings, clock: service.shared.clock)
        var acceptance: SignInBinding.Acceptance?
        if binding != nil {
            let cookies = head.map { CookieParser.parse(headers: $0.headers).map { (name: $0.name, value: $0.value) } }
            do throws(SignInBinding.Failure) {
                acceptance = try signInBinding.check(binding: binding, cookies: cookies ?? [])
            } catch {
                logger.info(
                    "sign-in callback rejected: not bound to this browser",
                    metadata: ["req_id": .string(requestID), "reason": .string("\(error)")])
                failed("This sign-in link was used already or was started in another browser. Sign in again.")
                return
            }
        }
        do {
            responseCookies = try service.cookies.setCookieHeaders(for: session)
            if let acceptance {
                responseCookies.append(try signInBinding.setCookieHeader(keeping: acceptance.remainingEntries))
            }
        } catch {
            logger.error(
                "storing the session cookie failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The session could not be stored.")
            return
        }
        identityForLog = session.email
        switch endpoint {
        case .verify:
            respondError(401, "Signed in; continue at the sign-in URL.")
        case .verifyOrSignIn:
            respond(.redirect(to: redirectURL.description))
        }
    }

    // MARK: Responses

    private func respond(_ response: LocalResponse) {
        guard let responder, !finished else { return }
        var headers = response.headers
        for header in service.responseHeaders { headers.replaceOrAdd(name: header.name, value: header.value) }
        headers.replaceOrAdd(name: "Request-Id", value: requestID)
        headers.replaceOrAdd(name: "X-Pomerium-Intercepted-Response", value: "true")
        headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        if headers.first(name: "Content-Type")?.hasPrefix("text/html") == true {
            headers.replaceOrAdd(name: "Content-Security-Policy", value: ProxyPages.contentSecurityPolicy)
            headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        }
        for cookie in responseCookies { headers.add(name: "Set-Cookie", value: cookie) }
        finished = true
        status = response.status
        responder.respond(status: response.status, headers: headers, body: response.body)
        writeAccessLog()
    }

    private func respondError(_ status: Int, _ message: String) {
        let json = head.map { ProxyPages.prefersJSON($0.headers) } ?? false
        respond(ProxyPages.error(status: status, message: message, requestID: requestID, json: json))
    }

    /// Writes the `http-request` line once, without the query, which carries the target URL and
    /// possibly a sealed session.
    private func writeAccessLog() {
        guard !logged, let head else { return }
        logged = true
        let elapsed = Double(MonotonicClock.nanoseconds() &- startedAt) / 1_000_000
        var metadata: Logger.Metadata = [
            "method": .string(head.method.rawValue), "host": .string(head.headers.first(name: "Host") ?? ""),
            "path": .string(head.path), "status": .stringConvertible(status), "target": .string(targetForLog),
            "duration_ms": .stringConvertible((elapsed * 1000).rounded() / 1000), "req_id": .string(requestID),
            "service": "forward-auth",
        ]
        if let identityForLog { metadata["email"] = .string(identityForLog) }
        logger.debug("http-request", metadata: metadata)
    }
}
