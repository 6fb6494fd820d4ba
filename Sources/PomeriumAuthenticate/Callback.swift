import PomeriumCrypto
import PomeriumHTTP
import PomeriumIdentity
import PomeriumLogging
import PomeriumSessions

extension AuthenticateService {
    /// Handles the identity provider's redirect back (`/oauth2/callback` and
    /// `authenticate_callback_path`): checks the state against the CSRF cookie, redeems the code with the PKCE verifier and nonce,
    /// saves a new global session, and continues the sign-in with a freshly signed link.
    func callback(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        let query = request.query
        if let error = query.value(for: "error") {
            let code = String(error.prefix(64).filter { $0.isLetter || $0 == "_" })
            let status = code == "access_denied" || code == "unauthorized_client" ? 401 : 400
            throw EndpointFailure(
                status, "the identity provider refused the login (\(code.isEmpty ? "unknown error" : code))",
                reason: "idp-error")
        }
        guard let state = query.value(for: "state"), !state.isEmpty else {
            throw EndpointFailure(400, "the state parameter is missing", reason: "state-missing")
        }
        let returnText: String
        do {
            returnText = try oauthState.openState(state, cookies: request.cookies)
        } catch let rejection as SessionRejection {
            throw EndpointFailure(400, Self.stateRejectionDetail(rejection.reason), reason: "state-\(rejection.reason)")
        }
        guard let code = query.value(for: "code"), !code.isEmpty else {
            throw EndpointFailure(400, "the code parameter is missing", reason: "code-missing")
        }
        guard let flow = try await takeLoginFlow(state: state) else {
            throw EndpointFailure(
                400, "the login expired or was already completed; start again", reason: "flow-missing")
        }
        guard let returnURL = try? HTTPURL(parsing: returnText), returnURL.path == Self.signInPath,
            returnURL.host == authenticateURL.host
        else {
            throw EndpointFailure(400, "the state does not lead back to sign-in", reason: "state-return-url")
        }

        let authenticated: AuthenticatedSession
        do {
            authenticated = try await provider.authenticate(
                code: code, codeVerifier: flow.codeVerifier, nonce: flow.nonce)
        } catch {
            logger.warning(
                "login failed at the identity provider",
                metadata: [
                    "req_id": .string(request.requestID), "error": .string(error.code),
                    "detail": .string(error.description),
                ])
            throw Self.loginFailure(error)
        }

        var session = Self.sessionState(
            claims: authenticated.claims, tokens: authenticated.tokens, issuer: authenticateAudience)
        // A new id on every login, so a session from before the login can never be continued.
        session.accessTokenID = Base64.urlUnpadded.encode(try SecureRandom.bytes(18))
        try await saveStoredSession(session)
        let cookies = try sessionCookieHeaders(session)
        logger.info(
            "user signed in",
            metadata: [
                "req_id": .string(request.requestID), "ati": .string(session.accessTokenID),
                "sub": .string(session.subject),
            ])
        let signed = try signer.sign(returnURL)
        return Self.redirect(to: signed.description, setCookies: cookies)
    }

    static func stateRejectionDetail(_ reason: RejectionReason) -> String {
        switch reason {
        case .expired: "the login took longer than 5 minutes; start again from the application"
        case .issuedInFuture: "the login state is from the future; check the server's clock"
        case .replayed: "this login was already completed; start again from the application"
        case .csrfMismatch: "the login cookie is missing; allow cookies for this site and start again"
        case .decryptionFailed: "the login state is invalid or was started in another browser; start again"
        default: "the login state is malformed; start again from the application"
        }
    }

    /// Maps a failed code exchange to the error page for the user.
    static func loginFailure(_ error: IdentityError) -> EndpointFailure {
        switch error {
        case .providerUnreachable, .timedOut:
            EndpointFailure(
                502, "the identity provider is unreachable; try again later", reason: error.code)
        // A TLS failure, a malformed HTTP message or an oversized body means that the provider responded.
        case .transportFailed, .unexpectedStatus, .invalidResponse:
            EndpointFailure(502, "the identity provider sent an invalid response", reason: error.code)
        case .invalidIDToken, .userInfoSubjectMismatch:
            EndpointFailure(401, "the identity provider's ID token was rejected", reason: error.code)
        case .oauthError(let response) where response.isProviderFailure:
            EndpointFailure(502, "the identity provider is failing; try again later", reason: error.code)
        case .oauthError:
            EndpointFailure(401, "the identity provider did not accept the login; start again", reason: error.code)
        default:
            EndpointFailure(500, "the login could not be completed", reason: error.code)
        }
    }
}
