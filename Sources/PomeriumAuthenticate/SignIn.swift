import PomeriumCrypto
import PomeriumHTTP
import PomeriumIdentity
import PomeriumLogging
import PomeriumSessions

extension AuthenticateService {
    static let signatureParameters = [
        URLSigner.issuedParameter, URLSigner.expiryParameter, URLSigner.signatureParameter,
    ]
    /// The proxy's endpoint that receives route sessions.
    static let proxyCallbackPath = "/.pomerium/callback/"

    /// The parsed and checked parameters of a sign-in request.
    struct SignInTargets {
        let redirect: HTTPURL
        let redirectText: String
        let callback: HTTPURL
        let programmatic: Bool
        let forwardAuthHost: String?
        /// The proxy's browser binding, copied into the signed callback URL.
        let binding: String?
    }

    /// `/.pomerium/sign_in`: with a global session, mints a route session and sends it to the
    /// route's callback; without one, starts the login at the identity provider.
    func signIn(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        try checkSignature(request)
        let query = request.query
        let targets = try signInTargets(query)

        guard let loaded = try await loadSession(request) else {
            return try await startLogin(request)
        }
        var session: SessionState
        do {
            session = try await refreshIfNeeded(loaded.session)
        } catch {
            logger.info(
                "session refresh failed; sending the user to the identity provider",
                metadata: ["req_id": .string(request.requestID), "error": .string(String(describing: error))])
            return try await startLogin(request)
        }
        var changed = session != loaded.session
        if query.value(for: "pomerium_impersonate_action") == "set" {
            guard isAdministrator(session) else {
                throw EndpointFailure(403, "only administrators may impersonate other users", reason: "not-admin")
            }
            let email = query.value(for: "pomerium_impersonate_email") ?? ""
            let groups = Self.impersonationGroups(query.value(for: "pomerium_impersonate_groups") ?? "")
            session.impersonateEmail = email.isEmpty && groups.isEmpty ? nil : email
            session.impersonateGroups = email.isEmpty && groups.isEmpty ? nil : groups
            do {
                try await saveStoredSession(session)
            } catch AuthenticateError.sessionNotFound {
                // A sign-out of this session landed after it was loaded, so it no longer counts.
                return try await startLogin(request)
            }
            changed = true
            // The audit line names the administrator and whom they now act as; emails and group
            // names are identities, not credentials.
            logger.info(
                "impersonation changed",
                metadata: [
                    "req_id": .string(request.requestID), "ati": .string(session.accessTokenID),
                    "active": .string(session.impersonateEmail == nil ? "no" : "yes"),
                    "email": .string(session.email),
                    "impersonate_email": .string(session.impersonateEmail ?? ""),
                    "impersonate_groups": .string((session.impersonateGroups ?? []).joined(separator: ",")),
                ])
        }
        var setCookies: [String] = []
        if changed && loaded.fromCookie { setCookies = try sessionCookieHeaders(session) }

        let now = clock.unixSeconds()
        var route = session.routeSession
        route.issuer = authenticateAudience
        route.audience = routeAudience(targets)
        route.issuedAt = now
        route.notBefore = now
        route.programmatic = targets.programmatic
        let sealed = try callbackPayload.seal(routeToken: try routeTokens.sign(route))

        var callbackQuery = URLQuery(parsingLeniently: targets.callback.query ?? "")
        for name in Self.signatureParameters { callbackQuery.remove(name: name) }
        callbackQuery.set(name: "pomerium_redirect_uri", value: targets.redirectText)
        callbackQuery.set(name: CallbackPayloadCodec.parameter, value: sealed)
        callbackQuery.remove(name: SignInBinding.parameter)
        if let binding = targets.binding { callbackQuery.set(name: SignInBinding.parameter, value: binding) }
        if targets.programmatic {
            var scriptSession = session
            scriptSession.programmatic = true
            scriptSession.issuer = route.issuer
            scriptSession.audience = route.audience
            callbackQuery.set(name: "pomerium_programmatic", value: "true")
            callbackQuery.set(name: "pomerium_refresh_token", value: try sealer.refreshToken(for: scriptSession))
        }
        var callback = targets.callback
        callback.query = callbackQuery.encodedSortedByName
        callback.fragment = nil
        let signed = try signer.sign(callback)
        logger.debug(
            "route session issued",
            metadata: [
                "req_id": .string(request.requestID), "ati": .string(session.accessTokenID),
                "route": .string(targets.callback.hostAndPort),
            ])
        return Self.redirect(to: signed.description, setCookies: setCookies)
    }

    /// The route session's audience: the authenticate host, the redirect host, the callback host
    /// and the forward-auth host, each with its port when it is not the scheme's default.
    private func routeAudience(_ targets: SignInTargets) -> [String] {
        var audience = [authenticateAudience]
        for url in [targets.redirect, targets.callback] {
            let host = AudienceHost.format(host: url.host, port: url.port, scheme: url.scheme)
            if !audience.contains(host) { audience.append(host) }
        }
        if let forward = targets.forwardAuthHost, !audience.contains(forward) { audience.append(forward) }
        return audience
    }

    private func signInTargets(_ query: URLQuery) throws -> SignInTargets {
        let programmatic = query.value(for: "pomerium_programmatic") == "true"
        guard let redirectText = query.value(for: "pomerium_redirect_uri"), !redirectText.isEmpty else {
            throw EndpointFailure(400, "the pomerium_redirect_uri parameter is missing", reason: "redirect-missing")
        }
        let redirect = try checkedRedirect(redirectText, programmatic: programmatic)
        let callback: HTTPURL
        if let callbackText = query.value(for: "pomerium_callback_uri") {
            callback = try checkedRedirect(callbackText, programmatic: false)
            guard callback.path == Self.proxyCallbackPath else {
                throw EndpointFailure(
                    400, "pomerium_callback_uri must name the path \(Self.proxyCallbackPath)", reason: "callback-path")
            }
        } else {
            guard !programmatic else {
                throw EndpointFailure(
                    400, "programmatic login needs the pomerium_callback_uri parameter", reason: "callback-missing")
            }
            callback = HTTPURL(
                scheme: redirect.scheme, host: redirect.host, port: redirect.port, path: Self.proxyCallbackPath)
        }
        var forward: String?
        if let forwardHost = query.value(for: "pomerium_forward_auth"), !forwardHost.isEmpty {
            let name = forwardHost.split(separator: ":").first.map { String($0).lowercased() } ?? ""
            guard let forwardAuthHost, name == forwardAuthHost else {
                throw EndpointFailure(
                    400, "pomerium_forward_auth does not name the configured forward-auth host", reason: "forward-auth")
            }
            forward = forwardAuthHost
        }
        let binding = query.value(for: SignInBinding.parameter)
        if let binding, !SignInBinding.isWellFormed(binding) {
            throw EndpointFailure(400, "the \(SignInBinding.parameter) parameter is malformed", reason: "binding")
        }
        return SignInTargets(
            redirect: redirect, redirectText: redirectText, callback: callback, programmatic: programmatic,
            forwardAuthHost: forward, binding: binding)
    }

    /// Applies the redirect validator and turns its rejection into a 400 page.
    func checkedRedirect(_ target: String, programmatic: Bool) throws -> HTTPURL {
        do {
            return try redirects.validate(target, programmatic: programmatic)
        } catch {
            throw EndpointFailure(400, error.description, reason: "redirect-rejected")
        }
    }

    func sessionCookieHeaders(_ session: SessionState) throws -> [String] {
        do {
            return try sessionCookies.setCookieHeaders(for: session)
        } catch let error as CookieWriteError {
            throw EndpointFailure(500, error.description, reason: "cookie-too-large")
        }
    }

    // MARK: Session loading

    /// The global session of a request: from `pomerium_programmatic_token`, then
    /// `Authorization: Pomerium <refresh token>`, then the session cookie. A session counts only
    /// while the store still has it, so sign-out elsewhere ends it. The stored copy is returned
    /// because it carries the newest tokens.
    func loadSession(_ request: AuthenticateRequest) async throws -> (session: SessionState, fromCookie: Bool)? {
        guard let candidate = presentedSession(request) else { return nil }
        guard let stored = try await loadStoredSession(accessTokenID: candidate.session.accessTokenID) else {
            logger.debug(
                "session not in the store; treating the request as signed out",
                metadata: ["req_id": .string(request.requestID)])
            return nil
        }
        return (stored, candidate.fromCookie)
    }

    /// Returns the session the request carries, without checking the store. A route session in
    /// the cookie counts only with `admittingRouteCookie`, which sign-out sets: ending a session
    /// grants nothing, and under a shared `cookie_domain` the browser may hold only a route cookie.
    func presentedSession(_ request: AuthenticateRequest, admittingRouteCookie: Bool = false) -> (
        session: SessionState, fromCookie: Bool
    )? {
        if let token = request.query.value(for: "pomerium_programmatic_token"),
            let session = sealer.session(fromRefreshToken: token)
        {
            return (session, false)
        }
        if let token = Self.pomeriumAuthorization(request.headers),
            let session = sealer.session(fromRefreshToken: token)
        {
            return (session, false)
        }
        if let session = sessionCookies.session(
            fromCookies: request.cookies.map { HTTPCookie(name: $0.name, value: $0.value) },
            where: { admittingRouteCookie || Self.isGlobalSession($0) }
        ) {
            return (session, true)
        }
        return nil
    }

    /// Returns whether a session opened from a cookie is a global session, which this service wrote, and
    /// not a route session, which the proxy seals with the same key and name. A route session
    /// always names its hosts in `aud` and carries no identity-provider tokens. A client that reads
    /// a route cookie (an application behind forward-auth receives its visitors' cookies) must not get
    /// route sessions for other hosts from it.
    /// Splits the dashboard's comma-separated group list, trimming spaces and tabs around each name
    /// and dropping empty names. Spaces inside a name stay, because group names may contain them.
    static func impersonationGroups(_ text: String) -> [String] {
        text.split(separator: ",").map { name in
            var trimmed = Substring(name)
            while let first = trimmed.first, first == " " || first == "\t" { trimmed = trimmed.dropFirst() }
            while let last = trimmed.last, last == " " || last == "\t" { trimmed = trimmed.dropLast() }
            return String(trimmed)
        }.filter { !$0.isEmpty }
    }

    static func isGlobalSession(_ session: SessionState) -> Bool {
        session.audience.isEmpty && session.oauthToken != nil
    }

    /// Returns the token of an `Authorization: Pomerium <token>` header. The type word is case-insensitive.
    static func pomeriumAuthorization(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "Authorization") else { return nil }
        let prefix = "pomerium "
        guard value.utf8.count > prefix.utf8.count, value.prefix(prefix.count).lowercased() == prefix else {
            return nil
        }
        let token = String(value.dropFirst(prefix.count))
        return token.isEmpty ? nil : token
    }

    // MARK: Starting a login

    /// Sends the browser to the identity provider. The OAuth state is bound to the browser's CSRF
    /// cookie and carries the unsigned sign-in URL, which the callback signs afresh. The link's own
    /// 5-minute signature therefore does not run out while the user is at the provider. The nonce
    /// and PKCE verifier wait in the store under a hash of the state.
    func startLogin(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        if request.headers.first(name: "X-Requested-With")?.lowercased() == "xmlhttprequest" {
            throw EndpointFailure(401, "sign in again: the session is missing or expired", reason: "xhr-login")
        }
        let csrf = try oauthState.csrfSecret(fromCookies: request.cookies)
        var query = request.query
        for name in Self.signatureParameters { query.remove(name: name) }
        query.remove(name: "pomerium_programmatic_token")
        var returnURL = HTTPURL(
            scheme: authenticateURL.scheme, host: authenticateURL.host, port: authenticateURL.port,
            path: Self.signInPath)
        returnURL.query = query.encodedSortedByName
        let state = try oauthState.makeState(returnURL: returnURL.description, secret: csrf.secret)
        let authorization = try authorizationRequest(state: state)

        var setCookies: [String] = []
        if let cookie = csrf.setCookie { setCookies.append(cookie) }
        if sessionCookies.hasCookie(in: request.cookies) { setCookies += try sessionCookies.clearingHeaders() }
        logger.debug("login started at the identity provider", metadata: ["req_id": .string(request.requestID)])
        return Self.redirect(to: authorization.url, setCookies: setCookies)
    }

    static func loginFlowKey(state: String) throws -> String {
        let digest = try Digest.sha256(Array(state.utf8))
        return "login-flow/" + Base64.urlUnpadded.encode(digest)
    }

    /// Builds the provider's authorization request for `state`, with the nonce and PKCE verifier
    /// derived from it: HMAC-SHA-256 under the cookie secret, one label each. The callback derives
    /// them again from the state it gets back, so starting a login stores nothing, and a flood of
    /// starts cannot evict other logins or sessions. Without the cookie secret the values cannot be
    /// computed from the state, which the browser and the provider see.
    func authorizationRequest(state: String) throws -> AuthorizationRequest {
        let nonce: [UInt8]
        let verifier: [UInt8]
        do {
            nonce = try loginSecretKey.authenticate(Array(("pomerium-login-nonce\n" + state).utf8))
            verifier = try loginSecretKey.authenticate(Array(("pomerium-login-pkce-verifier\n" + state).utf8))
        } catch {
            throw EndpointFailure(500, "the login request could not be built: \(error)", reason: "login-secrets")
        }
        do {
            return try provider.makeAuthorizationRequest(
                state: state, nonce: Base64.urlUnpadded.encode(nonce), codeVerifier: Base64.urlUnpadded.encode(verifier)
            )
        } catch {
            throw EndpointFailure(500, "the login request could not be built: \(error.code)", reason: error.code)
        }
    }

    /// Returns the nonce and PKCE verifier of the login that `state` started, once: a lock on the
    /// state's key, left to expire, makes a second callback with the same state fail, at other
    /// instances too when the store is shared. Without `loginFlows` the replay guard that
    /// `openState` applies first is the only check.
    func takeLoginFlow(state: String) async throws -> (nonce: String, codeVerifier: String?)? {
        let key = try Self.loginFlowKey(state: state)
        if let loginFlows {
            guard try await loginFlows.acquireLock(key, owner: LockOwner(), ttl: .seconds(Self.loginFlowLifetime))
            else { return nil }
        }
        let request = try authorizationRequest(state: state)
        return (request.nonce, request.codeVerifier)
    }
}
