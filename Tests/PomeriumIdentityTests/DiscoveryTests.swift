import Foundation
import PomeriumCore
import PomeriumLogging
import Testing

@testable import PomeriumIdentity

@Suite struct DiscoveryTests {
    private func parse(_ document: [String: Any], issuer: String = TestIssuer.issuer) throws(IdentityError)
        -> ProviderMetadata
    {
        let body = (try? JSONSerialization.data(withJSONObject: document)) ?? Data()
        return try ProviderMetadata.parse(Array(body), expectedIssuer: issuer, allowsPlainHTTP: false, endpoint: "d")
    }

    @Test func parsesEndpointsAndLists() throws {
        let metadata = try parse(TestIssuer.discoveryDocument(overrides: [:]))
        #expect(metadata.issuer == TestIssuer.issuer)
        #expect(metadata.tokenEndpoint == "https://idp.example.test/token")
        #expect(metadata.revocationEndpoint == "https://idp.example.test/revoke")
        #expect(metadata.endSessionEndpoint == "https://idp.example.test/logout")
        #expect(metadata.idTokenSigningAlgorithms == ["ES256", "RS256"])
        #expect(metadata.codeChallengeMethods == ["S256"])
    }

    @Test func missingOptionalMembersUseDefaults() throws {
        let document = TestIssuer.discoveryDocument(overrides: [
            "revocation_endpoint": NSNull(), "id_token_signing_alg_values_supported": NSNull(),
            "token_endpoint_auth_methods_supported": NSNull(), "code_challenge_methods_supported": NSNull(),
        ])
        let metadata = try parse(document)
        #expect(metadata.revocationEndpoint == nil)
        #expect(metadata.idTokenSigningAlgorithms == ["RS256"])
        #expect(metadata.tokenEndpointAuthMethods == ["client_secret_basic"])
        #expect(metadata.codeChallengeMethods.isEmpty)
    }

    @Test func issuerMustMatchExactly() {
        let document = TestIssuer.discoveryDocument(overrides: ["issuer": "https://evil.example.test"])
        #expect(throws: IdentityError.issuerMismatch(expected: "", actual: "")) { try parse(document) }
        let trailingSlash = TestIssuer.discoveryDocument(overrides: ["issuer": TestIssuer.issuer + "/"])
        #expect(throws: IdentityError.issuerMismatch(expected: "", actual: "")) { try parse(trailingSlash) }
    }

    @Test func issuerMismatchMessageNamesBoth() {
        let error = IdentityError.issuerMismatch(expected: "https://a.test", actual: "https://b.test")
        #expect(error.description.contains("\"https://b.test\""))
        #expect(error.description.contains("\"https://a.test\""))
        #expect(error.description.contains("idp_provider_url"))
    }

    @Test func requiredEndpointsMustBePresent() {
        for name in ["authorization_endpoint", "token_endpoint", "jwks_uri", "issuer"] {
            let document = TestIssuer.discoveryDocument(overrides: [name: NSNull()])
            do {
                _ = try parse(document)
                Issue.record("a document without \(name) was accepted")
            } catch {
                #expect(error.description.contains(name))
            }
        }
    }

    @Test func plainHTTPEndpointRejected() {
        let document = TestIssuer.discoveryDocument(overrides: ["token_endpoint": "http://idp.example.test/token"])
        #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) { try parse(document) }
    }

    @Test func malformedDocumentsRejected() {
        let bodies: [[UInt8]] = [Array("not json".utf8), Array("[1,2]".utf8), Array("{\"issuer\":1}".utf8), []]
        for body in bodies {
            #expect(throws: IdentityError.self) {
                try ProviderMetadata.parse(
                    body, expectedIssuer: TestIssuer.issuer, allowsPlainHTTP: false, endpoint: "d")
            }
        }
    }

    @Test func discoveryURLDropsTrailingSlash() {
        #expect(
            ProviderMetadata.discoveryURL(issuer: "https://a.test/tenant/")
                == "https://a.test/tenant/.well-known/openid-configuration")
    }

    @Test func discoverFetchesTheDocumentOnce() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        #expect(provider.metadata.jwksURI == "https://idp.example.test/jwks")
        #expect(issuer.transport.requests.map(\.url) == ["https://idp.example.test/.well-known/openid-configuration"])
        #expect(issuer.transport.requests.first?.timeout == 5)
        #expect(provider.allowedAlgorithms == [.es256, .rs256])
    }

    @Test func discoverReportsHTTPErrors() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/.well-known/openid-configuration") { _ in IdentityHTTPResponse(status: 503) }
        await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 503)) {
            try await issuer.provider()
        }
    }

    @Test func providerWithOnlySymmetricAlgorithmsRejected() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["id_token_signing_alg_values_supported": ["HS256", "none"]])
        do {
            _ = try await issuer.provider()
            Issue.record("a provider signing only with HS256 or none was accepted")
        } catch {
            #expect(error == .invalidConfiguration(""))
            #expect(error.description.contains("HS256"))
        }
    }

    @Test func discoveryWarnsAboutMissingFeatures() async throws {
        let issuer = try TestIssuer(discoveryOverrides: [
            "code_challenge_methods_supported": ["plain"], "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        ])
        let store = InMemoryLogHandler.Store()
        _ = try await OIDCProvider.discover(
            configuration: issuer.configuration(method: .clientSecretPost, kind: .google),
            transport: issuer.transport,
            clock: issuer.clock,
            logger: Logger.inMemory(store: store)
        )
        let warnings = store.all.filter { $0.level == .warning }.map(\.message)
        #expect(warnings.contains { $0.contains("PKCE") })
        #expect(warnings.contains { $0.contains("client authentication method") })
        #expect(warnings.contains { $0.contains("group fetching") })
        #expect(warnings.count == 3)
    }

    @Test func discoveryOfCompleteProviderWarnsNothing() async throws {
        let issuer = try TestIssuer()
        let store = InMemoryLogHandler.Store()
        _ = try await OIDCProvider.discover(
            configuration: issuer.configuration(),
            transport: issuer.transport,
            clock: issuer.clock,
            logger: Logger.inMemory(store: store)
        )
        #expect(store.all.filter { $0.level == .warning }.isEmpty)
        #expect(store.all.contains { $0.message == "discovered identity provider" })
    }
}
