import Foundation
import PomeriumCore
import PomeriumIdentity
import PomeriumTestSupport
import Testing

/// The generic provider against the real `oidc-provider-mock` (an Authlib-based OpenID provider) on
/// a loopback port, through the test transport.
@Suite(.serialized) struct MockProviderIntegrationTests {
    @Test func fullCodeFlowWithPKCEAndNonce() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            try mock.presetUser(
                "bob",
                claims: ["email": "bob@example.test", "groups": ["admins", "devs"], "name": "Bob Builder"]
            )
            let provider = try await mock.discover()
            #expect(provider.metadata.issuer == server.baseURL)
            #expect(provider.sendsPKCE)

            let request = try provider.makeAuthorizationRequest(state: "state-1")
            #expect(request.url.contains("code_challenge_method=S256"))
            let callback = try await mock.login(request, as: "bob")
            #expect(callback.state == "state-1")

            let session = try await provider.authenticate(
                code: callback.code,
                codeVerifier: request.codeVerifier,
                nonce: request.nonce
            )
            #expect(session.claims.subject == "bob")
            #expect(session.claims.issuer == server.baseURL)
            #expect(session.claims.email == "bob@example.test")
            #expect(session.claims.name == "Bob Builder")
            #expect(session.claims.groups == ["admins", "devs"])
            #expect(session.claims.audience == ["pomerium-test-client"])
            #expect(session.tokens.refreshToken != nil)
            #expect(session.tokens.expiry != nil)
            #expect(mock.transport.count(path: "/userinfo") == 1)
            #expect(mock.transport.count(path: "/jwks") == 1)

            // The mock's ID tokens carry at_hash, so the check above ran; another access token fails it.
            let idToken = try #require(session.tokens.idToken)
            #expect(try await provider.validateIDToken(idToken, nonce: request.nonce).all["at_hash"] != nil)
            await #expect(throws: IdentityError.invalidIDToken(.accessTokenHashMismatch)) {
                try await provider.validateIDToken(idToken, nonce: request.nonce, accessToken: "another-token")
            }
        }
    }

    @Test func clientSecretPostAccepted() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            var configuration = mock.configuration()
            configuration.clientAuthenticationMethod = .clientSecretPost
            let provider = try await OIDCProvider.discover(
                configuration: configuration,
                transport: mock.transport,
                clock: mock.clock
            )
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "carol")
            let session = try await provider.authenticate(
                code: callback.code,
                codeVerifier: request.codeVerifier,
                nonce: request.nonce
            )
            // Without a preset user the mock uses the subject as the email.
            #expect(session.claims.email == "carol")
        }
    }

    @Test func wrongNonceRejected() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "bob")
            await #expect(throws: IdentityError.invalidIDToken(.nonceMismatch)) {
                try await provider.authenticate(
                    code: callback.code,
                    codeVerifier: request.codeVerifier,
                    nonce: "a-different-nonce"
                )
            }
        }
    }

    @Test func codeRedeemedTwiceRejected() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "bob")
            _ = try await provider.exchange(code: callback.code, codeVerifier: request.codeVerifier)
            do throws(IdentityError) {
                _ = try await provider.exchange(code: callback.code, codeVerifier: request.codeVerifier)
                Issue.record("a used authorization code was accepted again")
            } catch {
                guard case .oauthError(let response) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(response.code == .invalidGrant)
                #expect(!error.description.contains(callback.code))
            }
        }
    }

    @Test func tokenSignedWithWrongKeyRejected() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let keyID = try await mock.publishedKeyID()
            let now = mock.clock.unixSeconds()
            let claims: [String: Any] = [
                "iss": server.baseURL, "sub": "bob", "aud": "pomerium-test-client", "exp": now + 600, "iat": now,
                "nonce": "n",
            ]
            for forgedKeyID in [keyID, nil] {
                let forged = try MockProviderSession.forgeRS256(claims: claims, keyID: forgedKeyID)
                await #expect(throws: IdentityError.invalidIDToken(.badSignature)) {
                    try await provider.validateIDToken(forged, nonce: "n")
                }
            }
        }
    }

    @Test func expiredTokenRejected() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "bob")
            let tokens = try await provider.exchange(code: callback.code, codeVerifier: request.codeVerifier)
            let idToken = try #require(tokens.idToken)
            _ = try await provider.validateIDToken(idToken, nonce: request.nonce)

            // The mock issues tokens valid for one hour; past that plus the 60 s leeway they fail.
            mock.clock.advance(by: 3600 + 61)
            await #expect(throws: IdentityError.invalidIDToken(.expired(expiry: 0, now: 0))) {
                try await provider.validateIDToken(idToken, nonce: request.nonce)
            }
        }
    }

    @Test func refreshGrantKeepsTheRefreshToken() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "bob")
            let session = try await provider.authenticate(
                code: callback.code,
                codeVerifier: request.codeVerifier,
                nonce: request.nonce
            )
            let refreshToken = try #require(session.tokens.refreshToken)
            let refreshed = try await provider.refresh(refreshToken: refreshToken, subject: "bob")
            #expect(refreshed.tokens.accessToken != session.tokens.accessToken)
            // The mock returns neither a new refresh token nor an ID token on refresh, so the old
            // refresh token is kept and there are no new claims.
            #expect(refreshed.tokens.refreshToken == refreshToken)
            #expect(refreshed.claims == nil)
            let again = try await provider.refresh(refreshToken: refreshToken, subject: "bob")
            #expect(again.tokens.accessToken != refreshed.tokens.accessToken)

            let userInfo = try await provider.userInfo(accessToken: again.tokens.accessToken)
            #expect(userInfo["sub"] == .string("bob"))

            await #expect(
                throws: IdentityError.oauthError(
                    OAuthErrorResponse(endpoint: "", status: 0, code: .invalidGrant, errorDescription: nil))
            ) {
                try await provider.refresh(refreshToken: "not-a-refresh-token", subject: "bob")
            }
        }
    }

    @Test func revocationAndEndSessionAsAdvertised() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            // oidc-provider-mock 0.3.4 has no RFC 7009 endpoint and lists none in discovery.
            #expect(provider.metadata.revocationEndpoint == nil)
            await #expect(throws: IdentityError.revocationNotSupported) {
                try await provider.revoke(token: "anything", hint: .accessToken)
            }

            let url = try #require(
                provider.endSessionURL(
                    idTokenHint: "hint",
                    postLogoutRedirectURL: "http://127.0.0.1:1/signed-out",
                    state: "bye"
                ))
            #expect(url.hasPrefix(server.baseURL + "/oauth2/end_session?"))
            let page = try await mock.transport.send(
                IdentityHTTPRequest(method: .get, url: url, timeout: 5, maximumResponseBytes: 1 << 20)
            )
            #expect(page.status == 200)
            let html = String(decoding: page.body, as: UTF8.self)
            #expect(html.contains("signed-out?state=bye"))
        }
    }

    @Test func unknownKidTriggersOneThrottledRefetch() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            let provider = try await mock.discover()
            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "bob")
            _ = try await provider.authenticate(
                code: callback.code, codeVerifier: request.codeVerifier, nonce: request.nonce)
            #expect(mock.transport.count(path: "/jwks") == 1)

            let now = mock.clock.unixSeconds()
            let claims: [String: Any] = [
                "iss": server.baseURL, "sub": "bob", "aud": "pomerium-test-client", "exp": now + 600, "iat": now,
            ]
            for index in 0..<3 {
                let forged = try MockProviderSession.forgeRS256(claims: claims, keyID: "unknown-\(index)")
                await #expect(throws: IdentityError.invalidIDToken(.unknownKeyID(""))) {
                    try await provider.validateIDToken(forged, nonce: nil)
                }
            }
            #expect(mock.transport.count(path: "/jwks") == 2)

            mock.clock.advance(by: 60)
            let late = try MockProviderSession.forgeRS256(claims: claims, keyID: "unknown-late")
            await #expect(throws: IdentityError.invalidIDToken(.unknownKeyID(""))) {
                try await provider.validateIDToken(late, nonce: nil)
            }
            #expect(mock.transport.count(path: "/jwks") == 3)
        }
    }

    @Test func providerDownFailsFast() async throws {
        let port = try LoopbackPort.allocate()
        let configuration = ProviderConfiguration(
            providerURL: "http://127.0.0.1:\(port)",
            clientID: "c",
            clientSecret: "s",
            redirectURL: "http://127.0.0.1:1/cb",
            requestTimeout: 2
        )
        let started = ContinuousClock.now
        do {
            _ = try await OIDCProvider.discover(configuration: configuration, transport: LoopbackTestTransport())
            Issue.record("discovery against a closed port succeeded")
        } catch {
            #expect(error == .providerUnreachable(endpoint: "", reason: ""))
            #expect(error.description.contains("127.0.0.1:\(port)/.well-known/openid-configuration"))
            #expect(error.description.contains("connection refused"))
        }
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test func silentProviderTimesOut() async throws {
        let listener = try SilentListener()
        let configuration = ProviderConfiguration(
            providerURL: "http://127.0.0.1:\(listener.port)",
            clientID: "c",
            clientSecret: "s",
            redirectURL: "http://127.0.0.1:1/cb",
            requestTimeout: 0.5
        )
        let started = ContinuousClock.now
        do {
            _ = try await OIDCProvider.discover(configuration: configuration, transport: LoopbackTestTransport())
            Issue.record("discovery against a silent listener succeeded")
        } catch {
            #expect(error == .timedOut(endpoint: "", seconds: 0))
            #expect(error.description.contains("within 0.5 s"))
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(450))
        #expect(elapsed < .seconds(3))
    }

    @Test func wrongIssuerRejectedAtDiscovery() async throws {
        try await Fixtures.withOIDCProvider { server in
            let mock = MockProviderSession(server: server)
            var configuration = mock.configuration()
            // The discovery URL is the same, but the configured issuer differs by its trailing slash.
            configuration.providerURL = server.baseURL + "/"
            do throws(IdentityError) {
                _ = try await OIDCProvider.discover(configuration: configuration, transport: mock.transport)
                Issue.record("an issuer with a trailing slash matched one without")
            } catch {
                #expect(error == .issuerMismatch(expected: "", actual: ""))
                #expect(error.description.contains("\"\(server.baseURL)\""))
            }
        }
    }
}

/// The generic provider against `oidc-provider-mock` extended with RFC 7009 revocation, refresh-token
/// rotation and PKCE enforcement, which the mock itself lacks.
@Suite(.serialized) struct ExtendedProviderIntegrationTests {
    private func signIn(_ mock: MockProviderSession) async throws -> (OIDCProvider, AuthenticatedSession) {
        let provider = try await mock.discover()
        let request = try provider.makeAuthorizationRequest(state: "s")
        let callback = try await mock.login(request, as: "dave")
        let session = try await provider.authenticate(
            code: callback.code,
            codeVerifier: request.codeVerifier,
            nonce: request.nonce
        )
        return (provider, session)
    }

    @Test func revocationStopsBothTokens() async throws {
        try await ExtendedMockProvider.run { port in
            let mock = MockProviderSession(port: port)
            let (provider, session) = try await signIn(mock)
            #expect(provider.metadata.revocationEndpoint == mock.issuer + "/oauth2/revoke")
            let refreshToken = try #require(session.tokens.refreshToken)
            _ = try await provider.userInfo(accessToken: session.tokens.accessToken)

            try await provider.revoke(token: session.tokens.accessToken, hint: .accessToken)
            await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 401)) {
                try await provider.userInfo(accessToken: session.tokens.accessToken)
            }

            try await provider.revoke(token: refreshToken, hint: .refreshToken)
            await #expect(
                throws: IdentityError.oauthError(
                    OAuthErrorResponse(endpoint: "", status: 0, code: .invalidGrant, errorDescription: nil))
            ) {
                try await provider.refresh(refreshToken: refreshToken, subject: "dave")
            }

            // RFC 7009: an unknown or already revoked token is not an error.
            try await provider.revoke(token: refreshToken, hint: .refreshToken)

            let log = try await mock.transport.send(
                IdentityHTTPRequest(
                    method: .get,
                    url: mock.issuer + "/test/revocations",
                    timeout: 5,
                    maximumResponseBytes: 4096
                )
            )
            let recorded = try JSONSerialization.jsonObject(with: Data(log.body)) as? [String: [String]]
            #expect(recorded?["revocations"] == ["access_token", "refresh_token", "refresh_token"])
        }
    }

    @Test func refreshRotationKeepsTheNewToken() async throws {
        try await ExtendedMockProvider.run { port in
            let mock = MockProviderSession(port: port)
            let (provider, session) = try await signIn(mock)
            let first = try #require(session.tokens.refreshToken)

            let rotated = try await provider.refresh(refreshToken: first, subject: "dave")
            let second = try #require(rotated.tokens.refreshToken)
            #expect(second != first)

            await #expect(
                throws: IdentityError.oauthError(
                    OAuthErrorResponse(endpoint: "", status: 0, code: .invalidGrant, errorDescription: nil))
            ) {
                try await provider.refresh(refreshToken: first, subject: "dave")
            }
            let again = try await provider.refresh(refreshToken: second, subject: "dave")
            #expect(again.tokens.refreshToken != second)
            _ = try await provider.userInfo(accessToken: again.tokens.accessToken)
        }
    }

    @Test func pkceVerifierEnforced() async throws {
        try await ExtendedMockProvider.run { port in
            let mock = MockProviderSession(port: port)
            let provider = try await mock.discover()
            #expect(provider.metadata.codeChallengeMethods == ["S256"])
            let invalidGrant = IdentityError.oauthError(
                OAuthErrorResponse(endpoint: "", status: 0, code: .invalidGrant, errorDescription: nil)
            )

            let request = try provider.makeAuthorizationRequest(state: "s")
            let callback = try await mock.login(request, as: "dave")
            await #expect(throws: invalidGrant) {
                try await provider.exchange(code: callback.code, codeVerifier: "a-wrong-verifier")
            }

            let second = try provider.makeAuthorizationRequest(state: "s")
            let secondCallback = try await mock.login(second, as: "dave")
            await #expect(throws: invalidGrant) {
                try await provider.exchange(code: secondCallback.code, codeVerifier: nil)
            }

            let third = try provider.makeAuthorizationRequest(state: "s")
            let thirdCallback = try await mock.login(third, as: "dave")
            let session = try await provider.authenticate(
                code: thirdCallback.code,
                codeVerifier: third.codeVerifier,
                nonce: third.nonce
            )
            #expect(session.claims.subject == "dave")
        }
    }
}
