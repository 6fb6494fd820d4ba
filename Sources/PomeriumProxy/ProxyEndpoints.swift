import PomeriumAuthorize
import PomeriumCore
import PomeriumHTTP
import PomeriumLogging
import PomeriumSessions

/// The endpoints the proxy serves itself on route hosts: `/robots.txt`, the dashboard under
/// `/.pomerium/`, sign-out, the sign-in callbacks, programmatic login, impersonation and the
/// assertion key set.
extension ProxyRequestHandler {
    /// Serves `head` and returns true when it is one of the proxy's own endpoints. Returns false
    /// for a request that goes through a route.
    func handleProxyEndpoint(_ head: HTTPRequestHead) -> Bool {
        // Every endpoint path below starts with "/." or "/r". Most proxied paths do not, so they
        // are passed on after reading one byte.
        let second = path.withUTF8Bytes { $0.count > 1 ? $0[1] : 0 }
        guard second == UInt8(ascii: ".") || second == UInt8(ascii: "r") else { return false }
        let method = head.method
        if path == "/robots.txt" && (method == .get || method == .head) {
            respond(.text(200, "User-agent: *\nDisallow: /\n"))
            return true
        }
        let isPomeriumPath = path == "/.pomerium" || path.hasPrefix("/.pomerium/")
        let isKeySetPath = path == "/.well-known/pomerium/jwks.json"
        guard isPomeriumPath || isKeySetPath else { return false }
        guard service.table.isRouteHost(host) else {
            respondError(404, "\(host) route unknown")
            return true
        }
        switch path {
        case "/.pomerium":
            respond(.redirect(301, to: "/.pomerium/"))
        case "/.pomerium/":
            guard requireMethods([.get, .head], method) else { return true }
            showDashboard()
        case ProxyPages.stylesheetPath:
            guard requireMethods([.get, .head], method) else { return true }
            var response = LocalResponse.text(200, ProxyPages.stylesheet, contentType: "text/css; charset=utf-8")
            response.headers.add(name: "Cache-Control", value: "public, max-age=3600")
            respond(response)
        case "/.pomerium/sign_out":
            guard requireMethods([.get, .post], method) else { return true }
            if method == .post {
                collectForm { [self] form in signOut(form: form) }
            } else {
                signOut(form: nil)
            }
        case "/.pomerium/callback", "/.pomerium/callback/":
            guard requireMethods([.get], method) else { return true }
            callback(head)
        case "/.pomerium/api/v1/login":
            guard requireMethods([.get], method) else { return true }
            programmaticLogin(head)
        case "/.pomerium/admin/impersonate":
            guard requireMethods([.post], method) else { return true }
            collectForm { [self] form in impersonate(form: form) }
        case "/.well-known/pomerium/jwks.json":
            guard requireMethods([.get, .head], method) else { return true }
            respond(
                LocalResponse(
                    status: 200, headers: ["Content-Type": "application/json"], body: service.shared.keySet.jsonBytes))
        default:
            // Other `/.pomerium/*` paths belong to the route, as in v0.7.
            return false
        }
        return true
    }

    private func requireMethods(_ allowed: [HTTPMethod], _ method: HTTPMethod) -> Bool {
        guard allowed.contains(method) else {
            var response = ProxyPages.error(
                status: 405, message: "Method \(method.rawValue) is not allowed here.", requestID: requestID,
                json: head.map { ProxyPages.prefersJSON($0.headers) } ?? false)
            response.headers.add(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
            respond(response)
            return false
        }
        return true
    }

    /// The scheme of the request as the client sent it: a trusted hop's `X-Forwarded-Proto`, else
    /// whether the connection uses TLS.
    private var requestScheme: String {
        if service.trustedProxies.trusts(responder?.remoteAddress),
            let forwarded = head?.headers.first(name: "X-Forwarded-Proto")?.lowercased(),
            forwarded == "https" || forwarded == "http"
        {
            return forwarded
        }
        return responder?.isTLS == true ? "https" : "http"
    }

    /// The scheme of the public URLs on this host: that of the first route's `from` for the
    /// host, else `https`.
    private var publicScheme: String {
        service.table.router.routes.first { route in
            HostAndPort(parsing: host).map { route.matchesHost($0) } ?? false
        }?.scheme.rawValue ?? "https"
    }

    /// Loads the route session from the cookie only, checked for this host's audience, as the
    /// dashboard and its forms require.
    private func cookieSession() -> SessionState? {
        guard let session = cookieSessionForThisHost() else { return nil }
        let now = service.shared.clock.unixSeconds()
        if let expiry = session.expiry, now >= expiry { return nil }
        if let notBefore = session.notBefore, now < notBefore { return nil }
        return session
    }

    /// Calls `body` with the route session of `cookieSession()` once the global session behind it
    /// is known to exist, as for a proxied request. A session signed out here or in another
    /// process gives nil and clears the cookie. A failed store read responds 503 instead of
    /// calling `body`.
    private func withLiveCookieSession(_ body: @escaping (SessionState?) -> Void) {
        guard let session = cookieSession() else {
            body(nil)
            return
        }
        if let outcome = SessionLivenessGate.immediateOutcome(session, liveness: service.shared.liveness) {
            liveCookieSession(outcome, session: session, body)
            return
        }
        mayBeCalledLater = true
        SessionLivenessGate.check(
            session, liveness: service.shared.liveness, loop: loop,
            completion: { [self] outcome in
                guard !finished else { return }
                liveCookieSession(outcome, session: session, body)
            })
    }

    private func liveCookieSession(
        _ outcome: SessionLivenessGate.Outcome, session: SessionState, _ body: (SessionState?) -> Void
    ) {
        switch outcome {
        case .proceed:
            body(session)
        case .signedOut:
            responseCookies = (try? service.cookies.clearingHeaders()) ?? []
            body(nil)
        case .unavailable:
            respondError(503, "The session store is unavailable; try again shortly.")
        }
    }

    // MARK: Dashboard

    private func showDashboard() {
        withLiveCookieSession { [self] session in showDashboard(session: session) }
    }

    private func showDashboard(session: SessionState?) {
        guard let session else {
            respondSignIn(scheme: publicScheme, returnPath: "/.pomerium/")
            return
        }
        identityForLog = session
        var response = ProxyPages.dashboard(
            session: session, csrfToken: service.csrf.token(for: session, host: host),
            isAdministrator: service.evaluator.isAdministrator(session.email))
        response.headers.add(name: "Cache-Control", value: "no-store")
        respond(response)
    }

    // MARK: Sign-out

    /// Clears the route session and sends the browser to the authenticate service's sign-out,
    /// which returns to `pomerium_redirect_uri` when that is a route host or the authenticate
    /// host (v0.7 accepted any URL, an open redirect).
    private func signOut(form: URLQuery?) {
        if let form {
            guard let session = cookieSession(),
                service.csrf.isValid(form.value(for: ProxyCSRF.fieldName), for: session, host: host)
            else {
                respondError(403, "The sign-out form is invalid or expired. Reload the page and try again.")
                return
            }
        }
        let query = URLQuery(parsingLeniently: head?.query ?? "")
        let requested = form?.value(for: "pomerium_redirect_uri") ?? query.value(for: "pomerium_redirect_uri")
        let target = requested ?? "\(publicScheme)://\(host)/"
        guard isSignOutTarget(target) else {
            respondError(400, "The redirect target is not allowed.")
            return
        }
        // The route session's id goes along in the signed URL, so that the authenticate service
        // ends the session even when the browser has no cookie there.
        var parameters = [(name: "pomerium_redirect_uri", value: target)]
        if let accessTokenID = signOutAccessTokenID() {
            parameters.append((name: "pomerium_session_access_token_id", value: accessTokenID))
        }
        do {
            let url = try service.signedAuthenticateURL(path: "/.pomerium/sign_out", parameters: parameters)
            responseCookies = try service.cookies.clearingHeaders()
            respond(.redirect(to: url))
        } catch {
            logger.error("sign-out failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "Signing out failed.")
        }
    }

    /// Returns the route session of the cookie whose audience names this host, expired or not.
    private func cookieSessionForThisHost() -> SessionState? {
        guard let head else { return nil }
        let cookies = CookieParser.parse(headers: head.headers).map { (name: $0.name, value: $0.value) }
        guard let session = service.cookies.session(fromCookies: cookies),
            session.audience.contains(Self.audienceHost(requestHost: host, scheme: publicScheme))
        else { return nil }
        return session
    }

    /// Returns the session id of the route cookie for this host, expired or not: sign-out ends the
    /// global session behind it, which may outlive the route session.
    private func signOutAccessTokenID() -> String? {
        guard let session = cookieSessionForThisHost(), !session.accessTokenID.isEmpty else { return nil }
        return session.accessTokenID
    }

    private func isSignOutTarget(_ text: String) -> Bool {
        guard let url = Self.absoluteWebURL(text) else { return false }
        let authority = url.hostAndPort
        if service.table.isRouteHost(authority) { return true }
        guard let key = HostAndPort(parsing: authority), let authenticate = service.authenticateHostKey else {
            return false
        }
        return key == authenticate
    }

    /// Parses an absolute `http` or `https` URL without user information, or returns nil.
    static func absoluteWebURL(_ text: String) -> HTTPURL? {
        guard let url = try? HTTPURL(parsing: text), url.scheme == "https" || url.scheme == "http",
            url.userInfo == nil, !url.host.isEmpty
        else { return nil }
        return url
    }

    // MARK: Callback

    /// Stores the route session that the authenticate service sent through the browser, then
    /// redirects to `pomerium_redirect_uri` on this host (or, for programmatic login, to the
    /// allowed local callback with the tokens).
    private func callback(_ head: HTTPRequestHead) {
        do {
            try service.urlSigner.validate(
                scheme: requestScheme, hostAndPort: host, path: head.path, rawQuery: head.query ?? "")
        } catch {
            respondError(400, "The sign-in link is invalid or expired.")
            return
        }

        let query = URLQuery(parsingLeniently: head.query ?? "")
        guard let sealed = query.value(for: CallbackPayloadCodec.parameter),
            let redirect = query.value(for: "pomerium_redirect_uri")
        else {
            respondError(400, "The sign-in link is missing a parameter.")
            return
        }

        let audienceHost = Self.audienceHost(requestHost: host, scheme: publicScheme)
        let token: String
        let session: SessionState
        do {
            token = try service.callbackCodec.open(sealed)
            session = try service.tokens.verify(Array(token.utf8), audienceHost: audienceHost)
        } catch {
            respondError(400, "The sign-in link carries no valid session.")
            return
        }
        guard let redirectURL = Self.absoluteWebURL(redirect) else {
            respondError(400, "The redirect target is not allowed.")
            return
        }

        let programmatic = query.value(for: "pomerium_programmatic") == "true"
        var acceptance: SignInBinding.Acceptance?
        if programmatic {
            guard service.programmaticRedirectHosts.contains(redirectURL.host.lowercased()) else {
                respondError(400, "The redirect target is not allowed.")
                return
            }
        } else {
            guard let target = HostAndPort(parsing: redirectURL.hostAndPort), let own = HostAndPort(parsing: host),
                target == own
            else {
                respondError(400, "The redirect target is not allowed.")
                return
            }
            acceptance = checkSignInBinding(query.value(for: SignInBinding.parameter), head: head)
            guard acceptance != nil else {
                respondError(
                    400, "This sign-in link was used already or was started in another browser. Sign in again.",
                    retryURL: redirectURL.description)
                return
            }
        }
        do {
            // A programmatic login's tokens go to the script's loopback listener only. Its callback
            // URL is not bound to a browser, so it must not sign the browser in to the route. A
            // browser's callback removes its own sign-in from the cookie and keeps other tabs' ones.
            if let acceptance {
                responseCookies =
                    try service.cookies.setCookieHeaders(for: session)
                    + [signInBinding.setCookieHeader(keeping: acceptance.remainingEntries)]
            } else {
                responseCookies = []
            }
        } catch {
            logger.error(
                "storing the session cookie failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The session could not be stored.")
            return
        }
        identityForLog = session

        guard programmatic else {
            respond(.redirect(to: redirectURL.description))
            return
        }
        var destination = redirectURL
        var destinationQuery = URLQuery(parsingLeniently: destination.query ?? "")
        destinationQuery.set(name: "pomerium_jwt", value: token)
        if let refreshToken = query.value(for: "pomerium_refresh_token") {
            destinationQuery.set(name: "pomerium_refresh_token", value: refreshToken)
        }
        destination.query = destinationQuery.encoded
        destination.fragment = nil
        respond(.redirect(to: destination.description))
    }

    // MARK: Sign-in binding

    var signInBinding: SignInBinding { SignInBinding(settings: service.cookies.settings, clock: service.shared.clock) }

    /// Starts binding a sign-in to this browser: queues the sign-in cookie with a new entry added
    /// and returns the parameter for the signed sign-in URL.
    func signInBindingParameter() throws -> (name: String, value: String) {
        let cookies =
            head.map { CookieParser.parse(headers: $0.headers).map { (name: $0.name, value: $0.value) } } ?? []
        let start = try signInBinding.start(cookies: cookies)
        responseCookies.append(start.setCookie)
        return (SignInBinding.parameter, start.binding)
    }

    /// Checks the callback's binding against this browser's sign-in cookie. Returns nil, and logs
    /// the reason, when it does not match.
    private func checkSignInBinding(_ binding: String?, head: HTTPRequestHead) -> SignInBinding.Acceptance? {
        let cookies = CookieParser.parse(headers: head.headers).map { (name: $0.name, value: $0.value) }
        do throws(SignInBinding.Failure) {
            return try signInBinding.check(binding: binding, cookies: cookies)
        } catch {
            logger.info(
                "sign-in callback rejected: not bound to this browser",
                metadata: ["req_id": .string(requestID), "reason": .string("\(error)")])
            return nil
        }
    }

    // MARK: Programmatic login

    /// Returns, as text, the signed sign-in URL a script opens in a browser. The local callback in
    /// `pomerium_redirect_uri` must be on a host of `programmatic_redirect_domains` (loopback by
    /// default), so a crafted link cannot deliver tokens to another site.
    private func programmaticLogin(_ head: HTTPRequestHead) {
        let query = URLQuery(parsingLeniently: head.query ?? "")
        guard let redirect = query.value(for: "pomerium_redirect_uri") else {
            respondError(400, "The pomerium_redirect_uri parameter is missing.")
            return
        }
        guard let url = Self.absoluteWebURL(redirect), service.programmaticRedirectHosts.contains(url.host.lowercased())
        else {
            respondError(400, "The redirect target is not allowed; add its host to programmatic_redirect_domains.")
            return
        }
        do {
            let signed = try service.signedAuthenticateURL(
                path: ProxyService.signInPath,
                parameters: [
                    ("pomerium_callback_uri", "\(publicScheme)://\(host)/.pomerium/callback/"),
                    ("pomerium_programmatic", "true"), ("pomerium_redirect_uri", url.description),
                ])
            respond(.text(200, signed))
        } catch {
            logger.error(
                "building the login URL failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The login URL could not be built.")
        }
    }

    // MARK: Impersonation

    /// Sends an administrator to the authenticate service with the impersonation fields, which it
    /// writes into the session.
    private func impersonate(form: URLQuery) {
        withLiveCookieSession { [self] session in impersonate(form: form, session: session) }
    }

    private func impersonate(form: URLQuery, session: SessionState?) {
        let decision = service.evaluator.evaluateAdminEndpoint(
            session: session.map(Self.identity), now: service.shared.clock.unixSeconds())
        logger.info(
            "authorize",
            metadata: [
                "req_id": .string(requestID), "route": "admin", "reason": .string(decision.reason.rawValue),
                "decision": .string(decision.isAllowed ? "allow" : "deny"),
            ])
        guard let session else {
            respondSignIn(scheme: publicScheme, returnPath: "/.pomerium/")
            return
        }
        guard decision.isAllowed else {
            respondError(403, decision.reason.publicMessage)
            return
        }
        guard service.csrf.isValid(form.value(for: ProxyCSRF.fieldName), for: session, host: host) else {
            respondError(403, "The form is invalid or expired. Reload the page and try again.")
            return
        }
        identityForLog = session
        do {
            let url = try service.signedAuthenticateURL(
                path: ProxyService.signInPath,
                parameters: [
                    ("pomerium_impersonate_action", form.value(for: "pomerium_impersonate_action") ?? "set"),
                    ("pomerium_impersonate_email", form.value(for: "pomerium_impersonate_email") ?? ""),
                    ("pomerium_impersonate_groups", form.value(for: "pomerium_impersonate_groups") ?? ""),
                    ("pomerium_redirect_uri", "\(publicScheme)://\(host)/.pomerium/"), try signInBindingParameter(),
                ])
            respond(.redirect(to: url))
        } catch {
            logger.error(
                "building the impersonation URL failed", metadata: ["req_id": .string(requestID), "error": "\(error)"])
            respondError(500, "The impersonation URL could not be built.")
        }
    }
}
