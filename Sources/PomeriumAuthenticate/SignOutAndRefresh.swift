import PomeriumCrypto
import PomeriumHTTP
import PomeriumIdentity
import PomeriumLogging
import PomeriumSessions

extension AuthenticateService {
    /// `/.pomerium/sign_out`: deletes the global session from the store, revokes its token at the
    /// provider when it offers revocation, clears every cookie chunk, and redirects to the checked
    /// `pomerium_redirect_uri`, through the provider's end-session endpoint when it has one.
    /// Without a session it only clears cookies; it never starts a login.
    func signOut(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        guard request.method == .get || request.method == .post || request.method == .head else {
            throw EndpointFailure(405, "the method \(request.method) is not allowed here", reason: "method")
        }
        try checkSignature(request)
        var target: HTTPURL?
        if let text = request.query.value(for: "pomerium_redirect_uri"), !text.isEmpty {
            target = try checkedRedirect(text, programmatic: false)
        }

        var hadSession = false
        var ended: String?
        if let presented = presentedSession(request, admittingRouteCookie: true) {
            hadSession = true
            ended = presented.session.accessTokenID
            let stored = try await loadStoredSession(accessTokenID: presented.session.accessTokenID)
            try await endSession(
                presented.session.accessTokenID, revoking: stored ?? presented.session, request: request)
        }
        // The proxy names the route cookie's session in the signed URL, because the browser may
        // have no cookie at this host (it was cleared, or never stored).
        if let named = request.query.value(for: "pomerium_session_access_token_id"), !named.isEmpty, named != ended,
            let stored = try await loadStoredSession(accessTokenID: named)
        {
            hadSession = true
            try await endSession(named, revoking: stored, request: request)
        }

        var setCookies = try sessionCookies.clearingHeaders()
        setCookies.append(try clearingCSRFCookie())
        var location = target?.description
        if hadSession,
            let endSession = provider.endSessionURL(
                idTokenHint: nil, postLogoutRedirectURL: target?.description, state: nil)
        {
            location = endSession
        }
        guard let location else {
            var response = AuthenticateResponse(
                status: 200, headers: ["Content-Type": "text/html; charset=utf-8"],
                body: Array(
                    "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Signed out</title></head><body><p>You are signed out.</p></body></html>\n"
                        .utf8))
            for cookie in setCookies { response.headers.add(name: "Set-Cookie", value: cookie) }
            return response
        }
        return Self.redirect(to: location, setCookies: setCookies)
    }

    /// Revokes the refresh token (or the access token when there is none). Failure is logged and
    /// does not stop the sign-out: the session is already gone from the store and the cookies.
    private func revoke(_ session: SessionState, requestID: String) async {
        guard let token = session.oauthToken else { return }
        let (value, hint): (String, TokenTypeHint) =
            token.refreshToken.isEmpty ? (token.accessToken, .accessToken) : (token.refreshToken, .refreshToken)
        guard !value.isEmpty else { return }
        do {
            try await provider.revoke(token: value, hint: hint)
        } catch .revocationNotSupported {
            logger.debug(
                "the identity provider offers no token revocation", metadata: ["req_id": .string(requestID)])
        } catch {
            logger.warning(
                "token revocation failed at sign-out",
                metadata: [
                    "req_id": .string(requestID), "error": .string(error.code),
                    "detail": .string(error.description),
                ])
        }
    }

    private func clearingCSRFCookie() throws -> String {
        let settings = sessionCookies.settings
        let cookie = SetCookie(
            name: settings.csrfName, value: "", path: "/", domain: settings.domain,
            expires: clock.unixSeconds() - 3600, maxAge: 0, secure: settings.secure, httpOnly: true,
            sameSite: settings.sameSite)
        do {
            return try cookie.serialized()
        } catch {
            throw EndpointFailure(500, "the CSRF cookie cannot be cleared: \(error)", reason: "cookie")
        }
    }

    /// Ends the global session `accessTokenID`: marks it signed out in this process and in the
    /// store, deletes it, and revokes the token of `session` at the provider.
    private func endSession(_ accessTokenID: String, revoking session: SessionState, request: AuthenticateRequest)
        async throws
    {
        liveness?.markSignedOut(accessTokenID)
        try await endStoredSession(accessTokenID: accessTokenID)
        await revoke(session, requestID: request.requestID)
        logger.info(
            "user signed out", metadata: ["req_id": .string(request.requestID), "ati": .string(accessTokenID)])
    }

    // MARK: Refresh endpoints

    /// `/.pomerium/refresh` (signed): backend refresh for a proxy in another process. Returns
    /// `200 application/jwt` with a route session for `pomerium_session_audience`.
    func backendRefresh(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        try checkSignature(request)
        let query = request.query
        guard let accessTokenID = query.value(for: "pomerium_session_access_token_id"), !accessTokenID.isEmpty else {
            throw EndpointFailure(
                400, "the pomerium_session_access_token_id parameter is missing", reason: "ati-missing")
        }
        let audience = (query.value(for: "pomerium_session_audience") ?? "").split(separator: ",").map(String.init)
        guard !audience.isEmpty else {
            throw EndpointFailure(400, "the pomerium_session_audience parameter is missing", reason: "aud-missing")
        }
        let token: String
        do {
            token = try await refreshRouteSession(
                accessTokenID: accessTokenID, audience: audience, issuerHost: request.audienceHost)
        } catch let error as AuthenticateError {
            throw EndpointFailure(401, error.description, reason: "refresh-failed")
        }
        return AuthenticateResponse(status: 200, headers: ["Content-Type": "application/jwt"], body: Array(token.utf8))
    }

    /// `/api/v1/refresh`: a script presents `Authorization: Pomerium <refresh token>` and gets
    /// `{"jwt","refresh_token"}` with a new route session for the same issuer and audience.
    func programmaticRefresh(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        guard request.method == .get || request.method == .post else {
            throw EndpointFailure(405, "the method \(request.method) is not allowed here", reason: "method")
        }
        guard let token = Self.pomeriumAuthorization(request.headers) else {
            throw EndpointFailure(
                401, "send the refresh token as `Authorization: Pomerium <refresh_token>`", reason: "token-missing")
        }
        guard let presented = sealer.session(fromRefreshToken: token), presented.programmatic else {
            throw EndpointFailure(400, "the refresh token is invalid", reason: "token-invalid")
        }
        guard let stored = try await loadStoredSession(accessTokenID: presented.accessTokenID) else {
            throw EndpointFailure(401, "the session was signed out or has expired; sign in again", reason: "no-session")
        }
        let session: SessionState
        do {
            session = try await refreshIfNeeded(stored)
        } catch let error as AuthenticateError {
            throw EndpointFailure(401, error.description, reason: "refresh-failed")
        }
        let now = clock.unixSeconds()
        var route = session.routeSession
        route.issuer = presented.issuer
        route.audience = presented.audience
        route.issuedAt = now
        route.notBefore = now
        route.programmatic = true
        var scriptSession = session
        scriptSession.programmatic = true
        scriptSession.issuer = presented.issuer
        scriptSession.audience = presented.audience
        let body = JSONWriter.encode(
            .object(
                JSONObject([
                    ("jwt", .string(try routeTokens.sign(route))),
                    ("refresh_token", .string(try sealer.refreshToken(for: scriptSession))),
                ])))
        return AuthenticateResponse(status: 200, headers: ["Content-Type": "application/json"], body: body)
    }
}
