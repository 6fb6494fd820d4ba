import PomeriumCore
import PomeriumCrypto
import PomeriumIdentity
import PomeriumSessions

/// Seals global sessions for the store and for programmatic refresh tokens with AES-256-GCM under
/// keys derived from `cookie_secret`, so neither the store nor the script can read the claims.
struct SessionSealer: Sendable {
    private let storeKey: AEADKey
    private let refreshTokenKey: AEADKey

    init(cookieSecret: [UInt8]) throws {
        guard cookieSecret.count == 32 else {
            throw PomeriumError(
                "cookie-secret-invalid", "cookie_secret must decode to 32 bytes, got \(cookieSecret.count)")
        }
        storeKey = try AEADKey(secret: cookieSecret, purpose: "global-session-store")
        refreshTokenKey = try AEADKey(secret: cookieSecret, purpose: "programmatic-refresh-token")
    }

    /// Seals `session` for the store. The store key is the associated data, so a value cannot move
    /// to another key.
    func sealForStore(_ session: SessionState, key: String) throws -> [UInt8] {
        try sealValue(session.jsonBytes(), key: key)
    }

    func openFromStore(_ value: [UInt8], key: String) -> SessionState? {
        guard let plaintext = openValue(value, key: key) else { return nil }
        return try? SessionState(json: plaintext)
    }

    /// Seals any store value, bound to its store key.
    func sealValue(_ plaintext: [UInt8], key: String) throws -> [UInt8] {
        try storeKey.seal(plaintext, associatedData: Array(key.utf8))
    }

    func openValue(_ sealed: [UInt8], key: String) -> [UInt8]? {
        try? storeKey.open(sealed, associatedData: Array(key.utf8))
    }

    /// Returns the `pomerium_refresh_token` for a script: the sealed global session, base64url.
    func refreshToken(for session: SessionState) throws -> String {
        Base64.urlUnpadded.encode(try refreshTokenKey.seal(session.jsonBytes(), associatedData: [UInt8]()))
    }

    func session(fromRefreshToken token: String) -> SessionState? {
        guard token.utf8.count <= 64 * 1024, let sealed = Base64.urlUnpadded.decode(token),
            let plaintext = try? refreshTokenKey.open(sealed, associatedData: [UInt8]())
        else { return nil }
        return try? SessionState(json: plaintext)
    }
}

extension AuthenticateService {
    static func storeKey(accessTokenID: String) -> String {
        SessionLiveness.storeKey(accessTokenID: accessTokenID)
    }

    /// Reads the global session under `accessTokenID`; nil when absent, expired from the store or
    /// unreadable.
    func loadStoredSession(accessTokenID: String) async throws -> SessionState? {
        guard !accessTokenID.isEmpty, accessTokenID.utf8.count <= 128 else { return nil }
        let key = Self.storeKey(accessTokenID: accessTokenID)
        guard let value = try await store.get(key) else { return nil }
        guard let session = sealer.openFromStore(value, key: key) else {
            logger.warning("unreadable session in the store; was cookie_secret changed?")
            return nil
        }
        return session
    }

    /// Returns the store key that records the sign-out of the session `accessTokenID`.
    static func signOutMarkerKey(accessTokenID: String) -> String { "signed-out/" + accessTokenID }

    /// Writes the global session to the store, unless it was signed out.
    ///
    /// A refresh or an impersonation change loads the session, waits (on the provider, say) and
    /// saves it. A sign-out in that wait would be undone by the save, so sign-out leaves a marker
    /// before it deletes, and a save checks for the marker after it writes. Whichever order the
    /// store applies the four steps in, the session ends deleted.
    ///
    /// - Throws: `AuthenticateError.sessionNotFound` when the session was signed out.
    func saveStoredSession(_ session: SessionState) async throws {
        let key = Self.storeKey(accessTokenID: session.accessTokenID)
        try await store.set(key, value: try sealer.sealForStore(session, key: key), ttl: storeTTL)
        if try await store.get(Self.signOutMarkerKey(accessTokenID: session.accessTokenID)) != nil {
            try await store.delete(key)
            logger.info(
                "session not saved: it was signed out meanwhile", metadata: ["ati": .string(session.accessTokenID)])
            throw AuthenticateError.sessionNotFound
        }
    }

    /// Ends the global session `accessTokenID`: marks it signed out for as long as a session may
    /// live in the store, then deletes it (see `saveStoredSession`).
    func endStoredSession(accessTokenID: String) async throws {
        guard !accessTokenID.isEmpty, accessTokenID.utf8.count <= 128 else { return }
        try await store.set(Self.signOutMarkerKey(accessTokenID: accessTokenID), value: [1], ttl: storeTTL)
        try await store.delete(Self.storeKey(accessTokenID: accessTokenID))
    }

    /// Returns whether the ID token (`exp`) or the access token expires within `refreshMargin` seconds.
    func needsRefresh(_ session: SessionState) -> Bool {
        let deadline = clock.unixSeconds() + Self.refreshMargin
        if let expiry = session.expiry, expiry <= deadline { return true }
        if let expiry = session.oauthToken?.expiry, expiry <= deadline { return true }
        return false
    }

    /// Returns `session` unchanged while it is fresh. Otherwise refreshes it with the provider once
    /// per session, however many requests arrive at the same time, and saves the result to the store.
    ///
    /// - Throws: `AuthenticateError.refreshFailed` when there is no refresh token or the provider
    ///   refuses it, `AuthenticateError.sessionNotFound` when the store lost the session.
    func refreshIfNeeded(_ session: SessionState) async throws -> SessionState {
        guard needsRefresh(session) else { return session }
        let accessTokenID = session.accessTokenID
        return try await singleFlight.run(
            "refresh/" + accessTokenID,
            reread: { [self] in
                guard let stored = try await loadStoredSession(accessTokenID: accessTokenID) else { return nil }
                return needsRefresh(stored) ? nil : stored
            },
            perform: { [self] in
                // Another instance may have refreshed before this one took the lock, and the store
                // holds the newest refresh token when the provider rotates them.
                guard let stored = try await loadStoredSession(accessTokenID: accessTokenID) else {
                    throw AuthenticateError.sessionNotFound
                }
                if !needsRefresh(stored) { return stored }
                let refreshed = try await refreshWithProvider(stored)
                try await saveStoredSession(refreshed)
                return refreshed
            }
        )
    }

    /// Runs the refresh-token grant and returns the session with the new tokens and claims.
    /// Impersonation and the session id (`ati`) are kept.
    private func refreshWithProvider(_ session: SessionState) async throws -> SessionState {
        guard let token = session.oauthToken, !token.refreshToken.isEmpty else {
            throw AuthenticateError.refreshFailed("the session has no refresh token")
        }
        let result: RefreshedSession
        do {
            result = try await provider.refresh(refreshToken: token.refreshToken, subject: session.subject)
        } catch {
            logger.warning(
                "session refresh failed at the identity provider",
                metadata: [
                    "error": .string(error.code), "detail": .string(error.description),
                    "ati": .string(session.accessTokenID),
                ])
            throw AuthenticateError.refreshFailed(error.code)
        }
        var refreshed: SessionState
        if let claims = result.claims {
            refreshed = Self.sessionState(claims: claims, tokens: result.tokens, issuer: session.issuer)
        } else {
            // OpenID Connect Core section 12.2 lets a refresh response omit the ID token. The
            // identity claims then stay as they were, and the session lasts as long as the new
            // access token. v0.7 sent the user back to the provider instead.
            guard let accessExpiry = result.tokens.expiry else {
                throw AuthenticateError.refreshFailed("the provider returned neither an ID token nor a token lifetime")
            }
            refreshed = session
            refreshed.expiry = accessExpiry
            refreshed.oauthToken = OAuthToken(
                accessToken: result.tokens.accessToken,
                tokenType: result.tokens.tokenType,
                refreshToken: result.tokens.refreshToken ?? token.refreshToken,
                expiry: accessExpiry
            )
        }
        refreshed.accessTokenID = session.accessTokenID
        refreshed.impersonateEmail = session.impersonateEmail
        refreshed.impersonateGroups = session.impersonateGroups
        refreshed.programmatic = session.programmatic
        logger.info("session refreshed", metadata: ["ati": .string(session.accessTokenID)])
        return refreshed
    }

    /// Builds a global session from the provider's claims and tokens.
    static func sessionState(claims: IdentityClaims, tokens: OAuthTokens, issuer: String) -> SessionState {
        var session = SessionState()
        session.issuer = issuer
        session.subject = claims.subject
        session.expiry = claims.expiry
        session.issuedAt = claims.issuedAt
        session.id = claims.tokenID ?? ""
        session.email = claims.email ?? ""
        session.groups = claims.groups
        session.user = claims.user
        session.name = claims.name
        session.givenName = claims.givenName
        session.familyName = claims.familyName
        session.picture = claims.picture
        session.emailVerified = claims.emailVerified
        session.oauthToken = OAuthToken(
            accessToken: tokens.accessToken,
            tokenType: tokens.tokenType,
            refreshToken: tokens.refreshToken ?? "",
            expiry: tokens.expiry
        )
        return session
    }
}
