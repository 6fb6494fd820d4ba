import PomeriumCrypto
import Testing

@testable import PomeriumIdentity

@Suite struct TokenEndpointTests {
    @Test func codeExchangeWithClientSecretBasic() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(["access_token": "at-1", "token_type": "Bearer", "expires_in": 3600])
        let provider = try await issuer.provider()
        #expect(provider.clientAuthenticationMethod == .clientSecretBasic)
        let tokens = try await provider.exchange(code: "code-1", codeVerifier: "verifier-1")
        #expect(tokens.accessToken == "at-1")
        #expect(tokens.expiry == issuer.clock.unixSeconds() + 3600)

        let request = try #require(issuer.transport.requests(to: "/token").first)
        #expect(request.method == .post)
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
        #expect(
            request.header("Authorization")
                == TokenEndpointClient.basicAuthorization(
                    clientID: TestIssuer.clientID, clientSecret: TestIssuer.clientSecret))
        let fields = request.formFields
        #expect(fields["grant_type"] == "authorization_code")
        #expect(fields["code"] == "code-1")
        #expect(fields["redirect_uri"] == TestIssuer.redirectURL)
        #expect(fields["code_verifier"] == "verifier-1")
        #expect(fields["client_secret"] == nil)
        #expect(fields["client_id"] == nil)
    }

    @Test func codeExchangeWithClientSecretPost() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(["access_token": "at-1", "token_type": "Bearer"])
        let provider = try await issuer.provider(method: .clientSecretPost)
        let tokens = try await provider.exchange(code: "code-1", codeVerifier: nil)
        #expect(tokens.expiry == nil)
        let request = try #require(issuer.transport.requests(to: "/token").first)
        #expect(request.header("Authorization") == nil)
        #expect(request.formFields["client_id"] == TestIssuer.clientID)
        #expect(request.formFields["client_secret"] == TestIssuer.clientSecret)
        #expect(request.formFields["code_verifier"] == nil)
    }

    @Test func postChosenWhenProviderListsOnlyPost() async throws {
        let issuer = try TestIssuer(discoveryOverrides: [
            "token_endpoint_auth_methods_supported": ["client_secret_post"]
        ])
        let provider = try await issuer.provider()
        #expect(provider.clientAuthenticationMethod == .clientSecretPost)
    }

    @Test func invalidGrantIsTyped() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(
            status: 400,
            ["error": "invalid_grant", "error_description": "authorization code expired"]
        )
        let provider = try await issuer.provider()
        do {
            _ = try await provider.exchange(code: "code-1", codeVerifier: nil)
            Issue.record("an error response was accepted")
        } catch {
            guard case .oauthError(let response) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(response.code == .invalidGrant)
            #expect(response.status == 400)
            #expect(response.errorDescription == "authorization code expired")
            #expect(error.code == "idp-oauth-error-invalid_grant")
        }
    }

    @Test func errorDescriptionEchoingASecretIsDropped() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(
            status: 401,
            ["error": "invalid_client", "error_description": "bad secret \(TestIssuer.clientSecret) for code-1"]
        )
        let provider = try await issuer.provider()
        do {
            _ = try await provider.exchange(code: "code-1", codeVerifier: "verifier-1")
            Issue.record("an error response was accepted")
        } catch {
            #expect(
                error
                    == .oauthError(
                        OAuthErrorResponse(endpoint: "", status: 0, code: .invalidClient, errorDescription: nil)))
            #expect(!error.description.contains(TestIssuer.clientSecret))
            #expect(!error.description.contains("code-1"))
            #expect(error.description.contains("invalid_client"))
        }
    }

    @Test func nonJSONErrorIsUnexpectedStatus() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/token") { _ in IdentityHTTPResponse(status: 502, body: Array("<html>".utf8)) }
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 502)) {
            try await provider.exchange(code: "c", codeVerifier: nil)
        }
    }

    @Test func malformedSuccessResponsesRejected() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        let bodies: [[String: Any]] = [
            ["token_type": "Bearer"],
            ["access_token": "a"],
            ["access_token": "a", "token_type": "Bearer", "expires_in": -5],
            ["access_token": "a", "token_type": "Bearer", "expires_in": "soon"],
            ["access_token": "a", "token_type": "Bearer", "refresh_token": 5],
        ]
        for body in bodies {
            issuer.respondToTokenRequests(body)
            await #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) {
                try await provider.exchange(code: "c", codeVerifier: nil)
            }
        }
        issuer.transport.route("/token") { _ in IdentityHTTPResponse(status: 200, body: Array("{not json".utf8)) }
        await #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) {
            try await provider.exchange(code: "c", codeVerifier: nil)
        }
    }

    @Test func expiresInAsStringAccepted() async throws {
        let issuer = try TestIssuer()
        issuer.respondToTokenRequests(["access_token": "a", "token_type": "Bearer", "expires_in": "3599"])
        let tokens = try await issuer.provider().exchange(code: "c", codeVerifier: nil)
        #expect(tokens.expiry == issuer.clock.unixSeconds() + 3599)
    }

    @Test func tokensDescriptionHidesValues() {
        let tokens = OAuthTokens(accessToken: "secret-at", refreshToken: "secret-rt", idToken: "secret-id", expiry: 5)
        #expect(!tokens.description.contains("secret"))
        #expect(tokens.description.contains("refresh_token: [redacted]"))
    }

    @Test func emptyCodeRejectedWithoutARequest() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.invalidArgument("")) {
            try await provider.exchange(code: "", codeVerifier: nil)
        }
        #expect(issuer.transport.requests(to: "/token").isEmpty)
    }
}
