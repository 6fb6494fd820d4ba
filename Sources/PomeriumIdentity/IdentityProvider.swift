/// The operations the authenticate service calls on an identity provider. `OIDCProvider` implements
/// the generic OpenID Connect flow, and provider-specific types (google, azure, ...) can wrap it and
/// add their group fetchers.
public protocol IdentityProvider: Sendable {
    /// Prepares the redirect to the provider's login page for the caller's `state`, with the
    /// caller's `nonce` and PKCE `codeVerifier` (43 to 128 unreserved characters). The result
    /// carries the verifier only when the provider is sent a PKCE challenge.
    func makeAuthorizationRequest(state: String, nonce: String, codeVerifier: String) throws(IdentityError)
        -> AuthorizationRequest

    /// Redeems the authorization code from the callback and returns the validated identity.
    func authenticate(code: String, codeVerifier: String?, nonce: String) async throws(IdentityError)
        -> AuthenticatedSession

    /// Renews the tokens with a refresh token. `subject` is the session's `sub`, which a new ID token
    /// must repeat.
    func refresh(refreshToken: String, subject: String?) async throws(IdentityError) -> RefreshedSession

    /// Revokes a token at the provider (RFC 7009).
    func revoke(token: String, hint: TokenTypeHint) async throws(IdentityError)

    /// Builds the provider's RP-initiated logout URL, or returns nil when the provider offers none.
    func endSessionURL(idTokenHint: String?, postLogoutRedirectURL: String?, state: String?) -> String?
}

/// The result of a completed login.
public struct AuthenticatedSession: Sendable, Equatable {
    public let tokens: OAuthTokens
    public let claims: IdentityClaims

    public init(tokens: OAuthTokens, claims: IdentityClaims) {
        self.tokens = tokens
        self.claims = claims
    }
}

/// The result of a refresh-token grant.
public struct RefreshedSession: Sendable, Equatable {
    /// The new tokens. `refreshToken` is the rotated one when the provider returned one, else the
    /// refresh token that was used.
    public let tokens: OAuthTokens
    /// The claims of the new ID token, merged with userinfo. They are nil when the provider returned
    /// no ID token, and Pomerium v0.7 then sends the user back to the provider.
    public let claims: IdentityClaims?

    public init(tokens: OAuthTokens, claims: IdentityClaims?) {
        self.tokens = tokens
        self.claims = claims
    }
}

/// The `token_type_hint` of a revocation request (RFC 7009 section 2.1).
public enum TokenTypeHint: String, Sendable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
}

extension IdentityProvider {
    /// Prepares the redirect to the provider's login page with a random nonce and PKCE verifier.
    public func makeAuthorizationRequest(state: String) throws(IdentityError) -> AuthorizationRequest {
        try makeAuthorizationRequest(
            state: state, nonce: try AuthorizationSecrets.randomToken(),
            codeVerifier: try AuthorizationSecrets.randomToken())
    }
}
