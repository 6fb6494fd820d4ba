import Foundation
import PomeriumCrypto
import PomeriumTestSupport
import Testing

@testable import PomeriumIdentity

@Suite struct AuthorizationRequestTests {
    @Test func urlCarriesEveryParameter() async throws {
        let provider = try await TestIssuer().provider()
        let request = try provider.makeAuthorizationRequest(state: "state value/1")
        #expect(request.url.hasPrefix("https://idp.example.test/authorize?tenant=a&"))
        let query = FormFields.query(of: request.url)
        #expect(query["tenant"] == "a")
        #expect(query["client_id"] == TestIssuer.clientID)
        #expect(query["redirect_uri"] == TestIssuer.redirectURL)
        #expect(query["response_type"] == "code")
        #expect(query["scope"] == "openid profile email offline_access")
        #expect(query["state"] == "state value/1")
        #expect(query["nonce"] == request.nonce)
        #expect(query["access_type"] == "offline")
        #expect(query["prompt"] == nil)
        #expect(query["code_challenge_method"] == "S256")
        #expect(request.state == "state value/1")
    }

    @Test func pkceChallengeIsSHA256OfVerifier() async throws {
        let provider = try await TestIssuer().provider()
        let request = try provider.makeAuthorizationRequest(state: "s")
        let verifier = try #require(request.codeVerifier)
        #expect(verifier.count == 43)
        #expect(verifier.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let expected = Base64.urlUnpadded.encode(try Digest.sha256(Array(verifier.utf8)))
        #expect(FormFields.query(of: request.url)["code_challenge"] == expected)
    }

    @Test func pkceChallengeMatchesPythonHashlib() async throws {
        let provider = try await TestIssuer().provider()
        let request = try provider.makeAuthorizationRequest(state: "s")
        let verifier = try #require(request.codeVerifier)
        let script = """
            import base64, hashlib, sys
            digest = hashlib.sha256(sys.stdin.read().encode("ascii")).digest()
            print(base64.urlsafe_b64encode(digest).decode().rstrip("="))
            """
        let expected = try PythonRunner.run(script, input: verifier).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FormFields.query(of: request.url)["code_challenge"] == expected)
    }

    @Test func nonceAndVerifierAreFreshPerRequest() async throws {
        let provider = try await TestIssuer().provider()
        let first = try provider.makeAuthorizationRequest(state: "s")
        let second = try provider.makeAuthorizationRequest(state: "s")
        #expect(first.nonce.count == 43)
        #expect(first.nonce != second.nonce)
        #expect(first.codeVerifier != second.codeVerifier)
        #expect(first.nonce != first.codeVerifier)
    }

    @Test func pkceOmittedWithoutS256Support() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["code_challenge_methods_supported": ["plain"]])
        let provider = try await issuer.provider()
        let request = try provider.makeAuthorizationRequest(state: "s")
        #expect(request.codeVerifier == nil)
        #expect(FormFields.query(of: request.url)["code_challenge"] == nil)
    }

    @Test func pkceCanBeTurnedOff() async throws {
        let issuer = try TestIssuer()
        var configuration = issuer.configuration()
        configuration.usesPKCE = false
        let provider = try await OIDCProvider.discover(
            configuration: configuration,
            transport: issuer.transport,
            clock: issuer.clock
        )
        let request = try provider.makeAuthorizationRequest(state: "s")
        #expect(request.codeVerifier == nil)
        #expect(FormFields.query(of: request.url)["code_challenge_method"] == nil)
    }

    @Test func googlePromptsForConsent() async throws {
        let provider = try await TestIssuer().provider(kind: .google)
        let query = FormFields.query(of: try provider.makeAuthorizationRequest(state: "s").url)
        #expect(query["prompt"] == "select_account consent")
        #expect(query["access_type"] == "offline")
        #expect(query["scope"] == "openid profile email")
    }

    @Test func configuredScopesReplaceDefaults() async throws {
        let provider = try await TestIssuer().provider(scopes: ["openid", "email", "groups"])
        let query = FormFields.query(of: try provider.makeAuthorizationRequest(state: "s").url)
        #expect(query["scope"] == "openid email groups")
    }

    @Test func emptyStateRejected() async throws {
        let provider = try await TestIssuer().provider()
        #expect(throws: IdentityError.invalidArgument("")) { try provider.makeAuthorizationRequest(state: "") }
    }

    @Test("caller's nonce and verifier are used")
    func callerSecretsUsed() async throws {
        let provider = try await TestIssuer().provider()
        let verifier = String(repeating: "v", count: 42) + "~"
        let request = try provider.makeAuthorizationRequest(state: "s", nonce: "caller-nonce", codeVerifier: verifier)
        let query = FormFields.query(of: request.url)
        #expect(request.nonce == "caller-nonce")
        #expect(query["nonce"] == "caller-nonce")
        #expect(request.codeVerifier == verifier)
        #expect(query["code_challenge"] == Base64.urlUnpadded.encode(try Digest.sha256(Array(verifier.utf8))))
    }

    @Test("invalid caller verifier is rejected")
    func invalidVerifierRejected() async throws {
        let provider = try await TestIssuer().provider()
        for verifier in [
            String(repeating: "a", count: 42), String(repeating: "a", count: 129),
            String(repeating: "a", count: 42) + "+",
        ] {
            #expect(throws: IdentityError.invalidArgument(""), "\(verifier.count) characters") {
                try provider.makeAuthorizationRequest(state: "s", nonce: "n", codeVerifier: verifier)
            }
        }
        #expect(throws: IdentityError.invalidArgument("")) {
            try provider.makeAuthorizationRequest(
                state: "s", nonce: "", codeVerifier: String(repeating: "a", count: 43))
        }
    }

    @Test("verifier is ignored without PKCE")
    func verifierIgnoredWithoutPKCE() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["code_challenge_methods_supported": ["plain"]])
        let provider = try await issuer.provider()
        let request = try provider.makeAuthorizationRequest(state: "s", nonce: "n", codeVerifier: "short")
        #expect(request.codeVerifier == nil)
        #expect(FormFields.query(of: request.url)["code_challenge"] == nil)
    }
}
