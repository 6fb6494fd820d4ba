import PomeriumCrypto
import Testing

@testable import PomeriumIdentity

@Suite struct KeySetCacheTests {
    @Test func keySetFetchedOnceForManyTokens() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        for _ in 0..<5 {
            _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        }
        #expect(issuer.transport.requests(to: "/jwks").count == 1)
    }

    @Test func concurrentValidationsShareOneFetch() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        let token = try issuer.sign(issuer.claims())
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<10 {
                group.addTask { try await provider.validateIDToken(token, nonce: "nonce-1").subject }
            }
            for try await subject in group {
                #expect(subject == "user-123")
            }
        }
        #expect(issuer.transport.requests(to: "/jwks").count == 1)
    }

    @Test func unknownKidRefetchIsThrottled() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        #expect(issuer.transport.requests(to: "/jwks").count == 1)

        let attackerKey = try ECPrivateKey.generate(curve: .p256)
        for index in 0..<20 {
            let forged = try issuer.sign(issuer.claims(), key: attackerKey, keyID: "made-up-\(index)")
            await #expect(throws: IdentityError.invalidIDToken(.unknownKeyID(""))) {
                try await provider.validateIDToken(forged, nonce: "nonce-1")
            }
        }
        #expect(issuer.transport.requests(to: "/jwks").count == 2)

        issuer.clock.advance(by: 59)
        let forged = try issuer.sign(issuer.claims(), key: attackerKey, keyID: "made-up-late")
        await #expect(throws: IdentityError.self) { try await provider.validateIDToken(forged, nonce: "nonce-1") }
        #expect(issuer.transport.requests(to: "/jwks").count == 2)

        issuer.clock.advance(by: 1)
        await #expect(throws: IdentityError.self) { try await provider.validateIDToken(forged, nonce: "nonce-1") }
        #expect(issuer.transport.requests(to: "/jwks").count == 3)
    }

    @Test func rotatedKeyFoundByRefetch() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        let newKey = try ECPrivateKey.generate(curve: .p256)
        issuer.publish([(issuer.signingKey, issuer.keyID), (newKey, "key-2")])
        let claims = try await provider.validateIDToken(
            try issuer.sign(issuer.claims(), key: newKey, keyID: "key-2"),
            nonce: "nonce-1"
        )
        #expect(claims.subject == "user-123")
        #expect(issuer.transport.requests(to: "/jwks").count == 2)
    }

    @Test func rotatedKeyWithoutKidFoundByRefetch() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims(), omitKeyID: true), nonce: "nonce-1")
        let newKey = try ECPrivateKey.generate(curve: .p256)
        issuer.publish([(newKey, "key-2")])
        let claims = try await provider.validateIDToken(
            try issuer.sign(issuer.claims(), key: newKey, omitKeyID: true), nonce: "nonce-1")
        #expect(claims.subject == "user-123")
        #expect(issuer.transport.requests(to: "/jwks").count == 2)

        // Tokens signed by a key the provider never published refetch at most once per interval.
        let attackerKey = try ECPrivateKey.generate(curve: .p256)
        for _ in 0..<20 {
            let forged = try issuer.sign(issuer.claims(), key: attackerKey, omitKeyID: true)
            await #expect(throws: IdentityError.invalidIDToken(.badSignature)) {
                try await provider.validateIDToken(forged, nonce: "nonce-1")
            }
        }
        #expect(issuer.transport.requests(to: "/jwks").count == 2)
        issuer.clock.advance(by: 60)
        let late = try issuer.sign(issuer.claims(), key: attackerKey, omitKeyID: true)
        await #expect(throws: IdentityError.self) { try await provider.validateIDToken(late, nonce: "nonce-1") }
        #expect(issuer.transport.requests(to: "/jwks").count == 3)
    }

    @Test func staleKeySetRefetchedAfterMaximumAge() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        issuer.clock.advance(by: 86_400)
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        #expect(issuer.transport.requests(to: "/jwks").count == 2)
    }

    @Test func cachedKeysSurviveAFailedRefetch() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        _ = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        issuer.transport.route("/jwks") { _ in
            throw IdentityTransportError.connectionFailed(reason: "connection refused")
        }
        issuer.clock.advance(by: 86_400)
        let claims = try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        #expect(claims.subject == "user-123")
        #expect(issuer.transport.requests(to: "/jwks").count == 2)
    }

    @Test func failedFirstFetchRetriedOnlyAfterInterval() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/jwks") { _ in IdentityHTTPResponse(status: 500) }
        let provider = try await issuer.provider()
        let token = try issuer.sign(issuer.claims())
        for _ in 0..<5 {
            await #expect(throws: IdentityError.unexpectedStatus(endpoint: "", status: 500)) {
                try await provider.validateIDToken(token, nonce: "nonce-1")
            }
        }
        #expect(issuer.transport.requests(to: "/jwks").count == 1)
        issuer.clock.advance(by: 60)
        await #expect(throws: IdentityError.self) { try await provider.validateIDToken(token, nonce: "nonce-1") }
        #expect(issuer.transport.requests(to: "/jwks").count == 2)
    }

    @Test func invalidKeySetDocumentRejected() async throws {
        let issuer = try TestIssuer()
        issuer.transport.route("/jwks") { _ in .json(["keys": "none"]) }
        let provider = try await issuer.provider()
        await #expect(throws: IdentityError.invalidResponse(endpoint: "", reason: "")) {
            try await provider.validateIDToken(try issuer.sign(issuer.claims()), nonce: "nonce-1")
        }
    }
}
