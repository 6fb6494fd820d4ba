import Foundation
import PomeriumCrypto
import PomeriumLogging
import Testing

@testable import PomeriumIdentity

@Suite struct SessionFlowTests {
    private func serveUserInfo(_ issuer: TestIssuer, _ claims: [String: Any]) {
        let response = IdentityHTTPResponse.json(claims)
        issuer.transport.route("/userinfo") { _ in response }
    }

    @Test func authenticateMergesUserInfo() async throws {
        let issuer = try TestIssuer()
        let idToken = try issuer.sign(issuer.claims(["groups": NSNull()]))
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt-1",
            "id_token": idToken,
        ])
        serveUserInfo(issuer, ["sub": "user-123", "groups": ["ops"], "name": "Alice U.", "iss": "https://evil.test"])
        let provider = try await issuer.provider()
        let session = try await provider.authenticate(code: "code-1", codeVerifier: "v", nonce: "nonce-1")
        #expect(session.tokens.refreshToken == "rt-1")
        #expect(session.tokens.idToken == idToken)
        #expect(session.claims.groups == ["ops"])
        #expect(session.claims.name == "Alice U.")
        #expect(session.claims.issuer == TestIssuer.issuer)
        #expect(session.claims.email == "alice@example.test")

        let userInfoRequest = try #require(issuer.transport.requests(to: "/userinfo").first)
        #expect(userInfoRequest.header("Authorization") == "Bearer at-1")
    }

    @Test func logsNeverContainSecrets() async throws {
        let issuer = try TestIssuer()
        let store = InMemoryLogHandler.Store()
        let idToken = try issuer.sign(issuer.claims())
        issuer.respondToTokenRequests([
            "access_token": "at-secret", "token_type": "Bearer", "refresh_token": "rt-secret", "id_token": idToken,
        ])
        serveUserInfo(issuer, ["sub": "user-123"])
        let provider = try await OIDCProvider.discover(
            configuration: issuer.configuration(),
            transport: issuer.transport,
            clock: issuer.clock,
            logger: Logger.inMemory(store: store)
        )
        _ = try await provider.authenticate(code: "code-secret", codeVerifier: "verifier-secret", nonce: "nonce-1")
        let forged = try issuer.sign(issuer.claims(), key: try ECPrivateKey.generate(curve: .p256), keyID: "other")
        await #expect(throws: IdentityError.self) { try await provider.validateIDToken(forged, nonce: "nonce-1") }
        _ = try await provider.refresh(refreshToken: "rt-secret", subject: "user-123")

        let lines = store.all.map(\.jsonLine)
        #expect(lines.contains { $0.contains("discovered identity provider") })
        #expect(lines.contains { $0.contains("refetching the identity provider's JWKS") })
        for line in lines {
            for secret in [
                "at-secret", "rt-secret", "code-secret", "verifier-secret", TestIssuer.clientSecret, idToken,
            ] {
                #expect(!line.contains(secret), "a log line contains a secret: \(line)")
            }
        }
    }

    @Test func userInfoForAnotherSubjectRejected() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims()),
        ])
        serveUserInfo(issuer, ["sub": "someone-else", "email": "mallory@example.test"])
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.userInfoSubjectMismatch) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
        serveUserInfo(issuer, ["email": "mallory@example.test"])
        await #expect(throws: IdentityError.userInfoSubjectMismatch) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
    }

    @Test func userInfoFailureFailsLogin() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims()),
        ])
        issuer.transport.route("/userinfo") { _ in IdentityHTTPResponse(status: 401) }
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 401)) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
    }

    @Test func signedUserInfoVerified() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims()),
        ])
        let signed = try issuer.sign(["sub": "user-123", "groups": ["signed"]])
        issuer.transport.route("/userinfo") { _ in
            IdentityHTTPResponse(status: 200, headers: [("Content-Type", "application/jwt")], body: Array(signed.utf8))
        }
        let provider = try await issuer.provider()
        let session = try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        #expect(session.claims.groups == ["signed"])

        let forged = try issuer.sign(["sub": "user-123"], key: try ECPrivateKey.generate(curve: .p256))
        issuer.transport.route("/userinfo") { _ in
            IdentityHTTPResponse(status: 200, headers: [("Content-Type", "application/jwt")], body: Array(forged.utf8))
        }
        await #expect(throws: IdentityError.invalidIDToken(.badSignature)) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
    }

    @Test func accessTokenHashChecked() async throws {
        let issuer = try TestIssuer()
        let hash = try Digest.sha256(Array("at-1".utf8))
        let atHash = Base64.urlUnpadded.encode(hash.prefix(16))
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer",
            "id_token": try issuer.sign(issuer.claims(["at_hash": atHash])),
        ])
        serveUserInfo(issuer, ["sub": "user-123"])
        let provider = try await issuer.provider()
        let session = try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        #expect(session.claims.subject == "user-123")

        issuer.respondToTokenRequests([
            "access_token": "at-other", "token_type": "Bearer",
            "id_token": try issuer.sign(issuer.claims(["at_hash": atHash])),
        ])
        await #expect(throws: IdentityError.invalidIDToken(.accessTokenHashMismatch)) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims(["at_hash": 5])),
        ])
        await #expect(throws: IdentityError.invalidIDToken(.accessTokenHashMismatch)) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
    }

    @Test func signedUserInfoForAnotherClientRejected() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests([
            "access_token": "at-1", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims()),
        ])
        let provider = try await issuer.provider()
        for claims: [String: Any] in [
            ["sub": "user-123", "aud": "other-client"],
            ["sub": "user-123", "iss": "https://other.example.test"],
        ] {
            let signed = try issuer.sign(claims)
            issuer.transport.route("/userinfo") { _ in
                IdentityHTTPResponse(
                    status: 200, headers: [("Content-Type", "application/jwt")], body: Array(signed.utf8))
            }
            await #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) {
                try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
            }
        }
    }

    @Test func missingIDTokenFailsLogin() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(["access_token": "at-1", "token_type": "Bearer"])
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) {
            try await provider.authenticate(code: "c", codeVerifier: nil, nonce: "nonce-1")
        }
    }

    @Test func refreshKeepsRotatedToken() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        issuer.respondToTokenRequests([
            "access_token": "at-2", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-2",
        ])
        let rotated = try await provider.refresh(refreshToken: "rt-1", subject: "user-123")
        #expect(rotated.tokens.accessToken == "at-2")
        #expect(rotated.tokens.refreshToken == "rt-2")
        #expect(rotated.tokens.expiry == issuer.clock.unixSeconds() + 600)
        #expect(rotated.claims == nil)
        let request = try #require(issuer.transport.requests(to: "/token").last)
        #expect(request.formFields["grant_type"] == "refresh_token")
        #expect(request.formFields["refresh_token"] == "rt-1")
        #expect(request.header("Authorization") != nil)

        issuer.respondToTokenRequests(["access_token": "at-3", "token_type": "Bearer"])
        let kept = try await provider.refresh(refreshToken: "rt-2", subject: "user-123")
        #expect(kept.tokens.refreshToken == "rt-2")
    }

    @Test func refreshRevalidatesIDTokenWithoutNonce() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        serveUserInfo(issuer, ["sub": "user-123", "groups": ["new-group"]])
        issuer.respondToTokenRequests([
            "access_token": "at-2", "token_type": "Bearer", "id_token": try issuer.sign(issuer.claims(nonce: nil)),
        ])
        let refreshed = try await provider.refresh(refreshToken: "rt-1", subject: "user-123")
        #expect(refreshed.claims?.subject == "user-123")
        #expect(refreshed.claims?.groups == ["new-group"])

        issuer.respondToTokenRequests([
            "access_token": "at-2", "token_type": "Bearer",
            "id_token": try issuer.sign(issuer.claims(["sub": "other"])),
        ])
        await #expect(throws: IdentityError.invalidIDToken(.subjectChanged)) {
            try await provider.refresh(refreshToken: "rt-1", subject: "user-123")
        }

        let forged = try issuer.sign(issuer.claims(), key: try ECPrivateKey.generate(curve: .p256))
        issuer.respondToTokenRequests(["access_token": "at-2", "token_type": "Bearer", "id_token": forged])
        await #expect(throws: IdentityError.invalidIDToken(.badSignature)) {
            try await provider.refresh(refreshToken: "rt-1", subject: "user-123")
        }
    }

    @Test func refreshErrorHidesTheRefreshToken() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        issuer.respondToTokenRequests(
            status: 400, ["error": "invalid_grant", "error_description": "token rt-secret revoked"])
        do {
            _ = try await provider.refresh(refreshToken: "rt-secret", subject: nil)
            Issue.record("a failed refresh returned tokens")
        } catch {
            #expect(
                error
                    == .oauthError(
                        OAuthErrorResponse(endpoint: "", status: 0, code: .invalidGrant, errorDescription: nil)))
            #expect(!error.description.contains("rt-secret"))
        }
    }

    @Test func revocationPostsTokenAndHint() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/revoke") { _ in IdentityHTTPResponse(status: 200) }
        let provider = try await issuer.provider(method: .clientSecretPost)
        try await provider.revoke(token: "at-1", hint: .accessToken)
        let request = try #require(issuer.transport.requests(to: "/revoke").first)
        #expect(request.method == .post)
        #expect(request.formFields["token"] == "at-1")
        #expect(request.formFields["token_type_hint"] == "access_token")
        #expect(request.formFields["client_id"] == TestIssuer.clientID)
        #expect(request.formFields["client_secret"] == TestIssuer.clientSecret)
    }

    @Test func revocationErrorsAreTyped() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/revoke") { _ in .json(["error": "unsupported_token_type"], status: 400) }
        let provider = try await issuer.provider()
        await #expect(
            throws: IdentityError.oauthError(
                OAuthErrorResponse(endpoint: "", status: 0, code: .unsupportedTokenType, errorDescription: nil))
        ) {
            try await provider.revoke(token: "rt-1", hint: .refreshToken)
        }
        issuer.transport.route("/revoke") { _ in IdentityHTTPResponse(status: 503) }
        await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 503)) {
            try await provider.revoke(token: "rt-1", hint: .refreshToken)
        }
    }

    @Test func revocationWithoutEndpointNotSupported() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["revocation_endpoint": NSNull()])
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.revocationNotSupported) {
            try await provider.revoke(token: "at-1", hint: .accessToken)
        }
    }

    @Test func endSessionURLCarriesHintAndState() async throws {
        let provider = try await TestIssuer().provider()
        let url = try #require(
            provider.endSessionURL(
                idTokenHint: "id.token.value",
                postLogoutRedirectURL: "https://app.example.test/bye?x=1",
                state: "st"
            ))
        #expect(url.hasPrefix("https://idp.example.test/logout?"))
        let query = FormFields.query(of: url)
        #expect(query["id_token_hint"] == "id.token.value")
        #expect(query["post_logout_redirect_uri"] == "https://app.example.test/bye?x=1")
        #expect(query["state"] == "st")
        #expect(query["client_id"] == TestIssuer.clientID)
    }

    @Test func endSessionURLAbsentWithoutEndpoint() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["end_session_endpoint": NSNull()])
        let provider = try await issuer.provider()
        #expect(provider.endSessionURL(idTokenHint: "x", postLogoutRedirectURL: nil, state: nil) == nil)
    }

    @Test func transportFailuresNameTheEndpoint() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        issuer.transport.route("/token") { _ in
            throw IdentityTransportError.connectionFailed(reason: "connection refused")
        }
        do {
            _ = try await provider.exchange(code: "code-1", codeVerifier: nil)
            Issue.record("a refused connection returned tokens")
        } catch {
            #expect(error == .providerUnreachable(endpoint: "", reason: ""))
            #expect(error.description.contains("https://idp.example.test/token"))
            #expect(error.description.contains("connection refused"))
        }
        issuer.transport.route("/token") { _ in throw IdentityTransportError.timedOut }
        do {
            _ = try await provider.exchange(code: "code-1", codeVerifier: nil)
            Issue.record("a timed-out request returned tokens")
        } catch {
            #expect(error == .timedOut(endpoint: "", seconds: 0))
            #expect(error.description.contains("within 5 s"))
        }
        issuer.transport.route("/token") { _ in throw IdentityTransportError.responseTooLarge }
        await #expect(throws: IdentityError.transportFailed(endpoint: "", reason: "")) {
            try await provider.exchange(code: "code-1", codeVerifier: nil)
        }
    }

    @Test func requestsCarryLimitsAndCA() async throws {
        let issuer = try TestIssuer()
        var configuration = issuer.configuration()
        configuration.certificateAuthorityPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        configuration.maximumResponseBytes = 4096
        _ = try await OIDCProvider.discover(
            configuration: configuration, transport: issuer.transport, clock: issuer.clock)
        let request = try #require(issuer.transport.requests.first)
        #expect(request.certificateAuthorityPEM == configuration.certificateAuthorityPEM)
        #expect(request.maximumResponseBytes == 4096)
        #expect(request.header("User-Agent")?.hasPrefix("pomerium/") == true)
    }
}
