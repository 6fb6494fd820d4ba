import PomeriumCore
import PomeriumCrypto
import PomeriumLogging

/// The generic OpenID Connect provider (`idp_provider: oidc`): discovery, the authorization-code
/// flow with PKCE and nonce, ID-token validation, userinfo, refresh, revocation and RP-initiated
/// logout. Every outbound call goes through an `IdentityHTTPTransport` with the configured timeout.
public final class OIDCProvider: IdentityProvider {
    public let configuration: ProviderConfiguration
    public let metadata: ProviderMetadata
    /// The algorithms accepted on ID tokens.
    public let allowedAlgorithms: Set<JWSAlgorithm>
    public let clientAuthenticationMethod: ClientAuthenticationMethod

    private let http: ProviderHTTPClient
    private let tokenEndpoint: TokenEndpointClient
    private let verifier: IDTokenVerifier
    private let claimChecks: IDTokenClaimChecks
    private let clock: any WallClock
    private let logger: Logger

    /// Fetches `<issuer>/.well-known/openid-configuration`, checks that its `issuer` is the configured
    /// one, and returns a provider ready for logins. The JWKS is fetched on first use.
    public static func discover(
        configuration: ProviderConfiguration,
        transport: any IdentityHTTPTransport,
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "pomerium.identity")
    ) async throws(IdentityError) -> OIDCProvider {
        try configuration.validate()
        let http = ProviderHTTPClient(transport: transport, configuration: configuration)
        let url = ProviderMetadata.discoveryURL(issuer: configuration.issuer)
        let response = try await http.get(url)
        guard response.status == 200 else {
            throw .unexpectedStatus(endpoint: url, status: response.status)
        }
        let metadata = try ProviderMetadata.parse(
            response.body,
            expectedIssuer: configuration.issuer,
            allowsPlainHTTP: configuration.allowsPlainHTTP,
            endpoint: url
        )
        let provider = try OIDCProvider(
            configuration: configuration,
            metadata: metadata,
            transport: transport,
            clock: clock,
            logger: logger
        )
        provider.logDiscovery()
        return provider
    }

    /// Logs the discovered provider and warns about features it lacks.
    private func logDiscovery() {
        logger.info(
            "discovered identity provider",
            metadata: [
                "issuer": .string(metadata.issuer),
                "algorithms": .string(allowedAlgorithms.map(\.rawValue).sorted().joined(separator: ",")),
                "client_authentication": .string(clientAuthenticationMethod.rawValue),
                "userinfo": .string(metadata.userInfoEndpoint == nil ? "no" : "yes"),
                "revocation": .string(metadata.revocationEndpoint == nil ? "no" : "yes"),
                "end_session": .string(metadata.endSessionEndpoint == nil ? "no" : "yes"),
                "pkce": .string(sendsPKCE ? "S256" : "off"),
            ]
        )
        if configuration.usesPKCE && !sendsPKCE {
            logger.warning(
                "identity provider does not support PKCE S256; authorization requests carry no code challenge",
                metadata: ["code_challenge_methods": .string(metadata.codeChallengeMethods.joined(separator: ","))]
            )
        }
        if let configured = configuration.clientAuthenticationMethod,
            !metadata.tokenEndpointAuthMethods.contains(configured.rawValue)
        {
            logger.warning(
                "identity provider does not list the configured client authentication method",
                metadata: [
                    "configured": .string(configured.rawValue),
                    "supported": .string(metadata.tokenEndpointAuthMethods.joined(separator: ",")),
                ]
            )
        }
        if configuration.kind.defaults.groupSource != .claim {
            logger.warning(
                "group fetching for this idp_provider is not implemented; groups come from the groups claim",
                metadata: ["idp_provider": .string(configuration.kind.rawValue)]
            )
        }
    }

    /// A provider from already known metadata, for tests and for callers that cache discovery.
    public init(
        configuration: ProviderConfiguration,
        metadata: ProviderMetadata,
        transport: any IdentityHTTPTransport,
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "pomerium.identity")
    ) throws(IdentityError) {
        try configuration.validate()
        guard metadata.issuer == configuration.issuer else {
            throw .issuerMismatch(expected: configuration.issuer, actual: metadata.issuer)
        }
        let allowed = IDTokenVerifier.allowedAlgorithms(advertised: metadata.idTokenSigningAlgorithms)
        guard !allowed.isEmpty else {
            let advertised = metadata.idTokenSigningAlgorithms.map { String($0.prefix(16)) }.joined(separator: ", ")
            throw .invalidConfiguration(
                "the provider signs ID tokens only with [\(advertised)], none of which is accepted; "
                    + "configure it to use ES256, ES384, RS256, PS256 or EdDSA (HS256 and none are never accepted)"
            )
        }
        self.configuration = configuration
        self.metadata = metadata
        self.allowedAlgorithms = allowed
        self.clock = clock
        self.logger = logger
        let http = ProviderHTTPClient(transport: transport, configuration: configuration)
        self.http = http
        let method = TokenEndpointClient.chooseMethod(
            configured: configuration.clientAuthenticationMethod,
            supported: metadata.tokenEndpointAuthMethods
        )
        clientAuthenticationMethod = method
        tokenEndpoint = TokenEndpointClient(
            http: http,
            clientID: configuration.clientID,
            clientSecret: configuration.clientSecret,
            method: method,
            clock: clock
        )
        verifier = IDTokenVerifier(
            allowedAlgorithms: allowed,
            keys: KeySetCache(
                url: metadata.jwksURI,
                http: http,
                clock: clock,
                refetchInterval: configuration.keySetRefetchInterval,
                maximumAge: configuration.keySetMaximumAge,
                logger: logger
            )
        )
        claimChecks = IDTokenClaimChecks(
            issuer: metadata.issuer,
            clientID: configuration.clientID,
            leeway: Int64(configuration.clockLeeway.rounded(.up))
        )
    }

    // MARK: Authorization request

    /// Whether the authorization request carries a PKCE challenge: PKCE is on in the configuration and
    /// the provider either does not list its challenge methods or lists S256.
    public var sendsPKCE: Bool {
        configuration.usesPKCE
            && (metadata.codeChallengeMethods.isEmpty || metadata.codeChallengeMethods.contains("S256"))
    }

    public func makeAuthorizationRequest(state: String, nonce: String, codeVerifier: String) throws(IdentityError)
        -> AuthorizationRequest
    {
        guard !state.isEmpty else { throw .invalidArgument("the OAuth state must not be empty") }
        guard !nonce.isEmpty else { throw .invalidArgument("the nonce must not be empty") }
        var parameters: [(name: String, value: String)] = [
            ("client_id", configuration.clientID),
            ("redirect_uri", configuration.redirectURL),
            ("response_type", "code"),
            ("scope", configuration.effectiveScopes.joined(separator: " ")),
            ("state", state),
            ("nonce", nonce),
        ]
        var verifierValue: String?
        if sendsPKCE {
            guard AuthorizationSecrets.isValidVerifier(codeVerifier) else {
                throw .invalidArgument("the PKCE code verifier must be 43 to 128 unreserved characters")
            }
            parameters.append(("code_challenge", try AuthorizationSecrets.codeChallenge(verifier: codeVerifier)))
            parameters.append(("code_challenge_method", "S256"))
            verifierValue = codeVerifier
        }
        parameters += configuration.kind.defaults.authorizationParameters
        return AuthorizationRequest(
            url: ProviderURL.appendingQuery(metadata.authorizationEndpoint, parameters),
            state: state,
            nonce: nonce,
            codeVerifier: verifierValue
        )
    }

    // MARK: Code exchange

    public func authenticate(code: String, codeVerifier: String?, nonce: String) async throws(IdentityError)
        -> AuthenticatedSession
    {
        guard !nonce.isEmpty else { throw .invalidArgument("the nonce of the authorization request is missing") }
        let tokens = try await exchange(code: code, codeVerifier: codeVerifier)
        guard let idToken = tokens.idToken else {
            throw .invalidResponse(
                endpoint: ProviderURL.redactQuery(metadata.tokenEndpoint),
                reason: "the token response has no id_token; check that idp_scopes contains openid"
            )
        }
        var claims = try await validateIDToken(idToken, nonce: nonce, accessToken: tokens.accessToken)
        if metadata.userInfoEndpoint != nil {
            claims = try claims.merging(userInfo: try await userInfo(accessToken: tokens.accessToken))
        }
        return AuthenticatedSession(tokens: tokens, claims: claims)
    }

    /// Redeems an authorization code at the token endpoint (RFC 6749 section 4.1.3) without
    /// validating the ID token.
    public func exchange(code: String, codeVerifier: String?) async throws(IdentityError) -> OAuthTokens {
        guard !code.isEmpty else { throw .invalidArgument("the authorization code is missing") }
        var parameters: [(name: String, value: String)] = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", configuration.redirectURL),
        ]
        var secrets = [code]
        if let codeVerifier {
            parameters.append(("code_verifier", codeVerifier))
            secrets.append(codeVerifier)
        }
        return try await tokenEndpoint.requestTokens(metadata.tokenEndpoint, parameters: parameters, secrets: secrets)
    }

    /// Verifies an ID token's signature and claims. `nonce` is the authorization request's nonce, or
    /// nil on refresh. When `accessToken` is given, an `at_hash` claim must match it.
    public func validateIDToken(_ idToken: String, nonce: String?, accessToken: String? = nil)
        async throws(IdentityError) -> IdentityClaims
    {
        let token = try await verifier.verify(idToken)
        if let accessToken {
            try IDTokenVerifier.checkAccessTokenHash(token, accessToken: accessToken)
        }
        return try claimChecks.check(
            token.payload,
            now: clock.unixSeconds(),
            expectedNonce: nonce,
            nonceEquals: AuthorizationSecrets.nonceEquals
        )
    }

    // MARK: Userinfo

    /// Fetches the userinfo claims with the access token. A signed (`application/jwt`) response is
    /// verified with the provider's keys like an ID token.
    public func userInfo(accessToken: String) async throws(IdentityError) -> [String: ClaimValue] {
        guard let url = metadata.userInfoEndpoint else {
            throw .invalidConfiguration("the provider's discovery document has no userinfo_endpoint")
        }
        let response = try await http.get(url, headers: [("Authorization", "Bearer " + accessToken)])
        let contentType = response.header("Content-Type")?.lowercased() ?? ""
        if response.status == 200 && contentType.hasPrefix("application/jwt") {
            let compact = String(decoding: response.body, as: UTF8.self).trimmingWhitespace()
            return try checkSignedUserInfo(try await verifier.verify(compact).payload)
        }
        return try http.jsonObject(response, endpoint: url)
    }

    /// Checks `iss` and `aud` of a signed userinfo response when present (OpenID Connect Core
    /// section 5.3.2), so a response signed for another client is not accepted.
    private func checkSignedUserInfo(_ claims: [String: ClaimValue]) throws(IdentityError) -> [String: ClaimValue] {
        let endpoint = ProviderURL.redactQuery(metadata.userInfoEndpoint ?? "")
        if let issuer = claims["iss"], issuer != .string(metadata.issuer) {
            throw .invalidResponse(endpoint: endpoint, reason: "the signed userinfo response has another issuer")
        }
        if let audience = claims["aud"], !(audience.stringList ?? []).contains(configuration.clientID) {
            throw .invalidResponse(endpoint: endpoint, reason: "the signed userinfo response is for another client")
        }
        return claims
    }

    // MARK: Refresh

    public func refresh(refreshToken: String, subject: String?) async throws(IdentityError) -> RefreshedSession {
        guard !refreshToken.isEmpty else { throw .invalidArgument("the refresh token is missing") }
        let parameters: [(name: String, value: String)] = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshToken),
        ]
        var tokens = try await tokenEndpoint.requestTokens(
            metadata.tokenEndpoint,
            parameters: parameters,
            secrets: [refreshToken]
        )
        if tokens.refreshToken == nil { tokens.refreshToken = refreshToken }
        guard let idToken = tokens.idToken else {
            return RefreshedSession(tokens: tokens, claims: nil)
        }
        var claims = try await validateIDToken(idToken, nonce: nil, accessToken: tokens.accessToken)
        if let subject, claims.subject != subject {
            throw .invalidIDToken(.subjectChanged)
        }
        if metadata.userInfoEndpoint != nil {
            claims = try claims.merging(userInfo: try await userInfo(accessToken: tokens.accessToken))
        }
        return RefreshedSession(tokens: tokens, claims: claims)
    }

    // MARK: Sign-out

    /// Posts the token to the discovery `revocation_endpoint` with client authentication (RFC 7009).
    /// Throws `revocationNotSupported` when the provider lists no such endpoint.
    public func revoke(token: String, hint: TokenTypeHint) async throws(IdentityError) {
        guard let url = metadata.revocationEndpoint else { throw .revocationNotSupported }
        guard !token.isEmpty else { throw .invalidArgument("the token to revoke is missing") }
        _ = try await tokenEndpoint.post(
            url,
            parameters: [("token", token), ("token_type_hint", hint.rawValue)],
            secrets: [token]
        )
    }

    public func endSessionURL(idTokenHint: String?, postLogoutRedirectURL: String?, state: String?) -> String? {
        guard let endpoint = metadata.endSessionEndpoint else { return nil }
        var parameters: [(name: String, value: String)] = []
        if let idTokenHint { parameters.append(("id_token_hint", idTokenHint)) }
        parameters.append(("client_id", configuration.clientID))
        if let postLogoutRedirectURL { parameters.append(("post_logout_redirect_uri", postLogoutRedirectURL)) }
        if let state { parameters.append(("state", state)) }
        return ProviderURL.appendingQuery(endpoint, parameters)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
