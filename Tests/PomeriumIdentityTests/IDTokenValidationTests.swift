import Foundation
import PomeriumCrypto
import Testing

@testable import PomeriumIdentity

@Suite struct IDTokenValidationTests {
    private func rejection(
        _ issuer: TestIssuer,
        _ token: String,
        nonce: String? = "nonce-1"
    ) async throws -> IDTokenRejection? {
        let provider = try await issuer.provider()
        do {
            _ = try await provider.validateIDToken(token, nonce: nonce)
            return nil
        } catch {
            guard case .invalidIDToken(let rejection) = error else {
                Issue.record("unexpected error \(error)")
                return nil
            }
            return rejection
        }
    }

    @Test func validTokenYieldsClaims() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        let claims = try await provider.validateIDToken(
            try issuer.sign(issuer.claims(["jti": "id-7"])), nonce: "nonce-1")
        #expect(claims.subject == "user-123")
        #expect(claims.issuer == TestIssuer.issuer)
        #expect(claims.audience == [TestIssuer.clientID])
        #expect(claims.email == "alice@example.test")
        #expect(claims.emailVerified == true)
        #expect(claims.name == "Alice Example")
        #expect(claims.givenName == "Alice")
        #expect(claims.familyName == "Example")
        #expect(claims.picture == "https://example.test/alice.png")
        #expect(claims.groups == ["admins", "devs"])
        #expect(claims.user == nil)
        #expect(claims.tokenID == "id-7")
        #expect(claims.expiry == issuer.clock.unixSeconds() + 3600)
    }

    @Test func claimShapesProvidersSend() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        let token = try issuer.sign(
            issuer.claims(["email_verified": "false", "groups": [12, "ops"], "user": "alice"]))
        let claims = try await provider.validateIDToken(token, nonce: "nonce-1")
        #expect(claims.emailVerified == false)
        #expect(claims.groups == ["12", "ops"])
        #expect(claims.user == "alice")
        let single = try await provider.validateIDToken(
            try issuer.sign(issuer.claims(["groups": "solo"])), nonce: "nonce-1")
        #expect(single.groups == ["solo"])
    }

    @Test func wrongNonceRejected() async throws {
        let issuer = try TestIssuer()
        let token = try issuer.sign(issuer.claims(nonce: "nonce-1"))
        #expect(try await rejection(issuer, token, nonce: "nonce-2") == .nonceMismatch)
        let withoutNonce = try issuer.sign(issuer.claims(nonce: nil))
        #expect(try await rejection(issuer, withoutNonce, nonce: "nonce-1") == .nonceMismatch)
        #expect(try await rejection(issuer, withoutNonce, nonce: nil) == nil)
    }

    @Test func wrongIssuerRejected() async throws {
        let issuer = try TestIssuer()
        let token = try issuer.sign(issuer.claims(["iss": "https://other.example.test"]))
        #expect(try await rejection(issuer, token) == .issuerMismatch(expected: "", actual: ""))
    }

    @Test func audienceChecks() async throws {
        let issuer = try TestIssuer()
        let other = try issuer.sign(issuer.claims(["aud": "someone-else"]))
        #expect(try await rejection(issuer, other) == .audienceMismatch)
        let several = try issuer.sign(issuer.claims(["aud": [TestIssuer.clientID, "api"]]))
        #expect(try await rejection(issuer, several) == .authorizedPartyMismatch)
        let severalWithAZP = try issuer.sign(
            issuer.claims(["aud": [TestIssuer.clientID, "api"], "azp": TestIssuer.clientID]))
        #expect(try await rejection(issuer, severalWithAZP) == nil)
        let wrongAZP = try issuer.sign(issuer.claims(["azp": "api"]))
        #expect(try await rejection(issuer, wrongAZP) == .authorizedPartyMismatch)
        let missing = try issuer.sign(issuer.claims(["aud": NSNull()]))
        #expect(try await rejection(issuer, missing) == .missingClaim(""))
    }

    @Test func expiryUsesTheLeeway() async throws {
        let issuer = try TestIssuer()
        let now = issuer.clock.unixSeconds()
        let justExpired = try issuer.sign(issuer.claims(["exp": now - 59]))
        #expect(try await rejection(issuer, justExpired) == nil)
        let expired = try issuer.sign(issuer.claims(["exp": now - 60]))
        #expect(try await rejection(issuer, expired) == .expired(expiry: 0, now: 0))
        let missing = try issuer.sign(issuer.claims(["exp": NSNull()]))
        #expect(try await rejection(issuer, missing) == .missingClaim(""))
    }

    @Test func futureIssueAndNotBeforeRejected() async throws {
        let issuer = try TestIssuer()
        let now = issuer.clock.unixSeconds()
        #expect(try await rejection(issuer, try issuer.sign(issuer.claims(["iat": now + 60]))) == nil)
        #expect(
            try await rejection(issuer, try issuer.sign(issuer.claims(["iat": now + 61])))
                == .issuedInFuture(issuedAt: 0, now: 0))
        #expect(try await rejection(issuer, try issuer.sign(issuer.claims(["nbf": now + 60]))) == nil)
        #expect(
            try await rejection(issuer, try issuer.sign(issuer.claims(["nbf": now + 61])))
                == .notYetValid(notBefore: 0, now: 0))
        #expect(try await rejection(issuer, try issuer.sign(issuer.claims(["iat": NSNull()]))) == .missingClaim(""))
    }

    @Test func tokenExpiresAsTheClockMoves() async throws {
        let issuer = try TestIssuer()
        let provider = try await issuer.provider()
        let token = try issuer.sign(issuer.claims())
        _ = try await provider.validateIDToken(token, nonce: "nonce-1")
        issuer.clock.advance(by: 3600 + 60)
        await #expect(throws: IdentityError.invalidIDToken(.expired(expiry: 0, now: 0))) {
            try await provider.validateIDToken(token, nonce: "nonce-1")
        }
    }

    @Test func wrongKeyWithKnownKidRejected() async throws {
        let issuer = try TestIssuer()
        let attackerKey = try ECPrivateKey.generate(curve: .p256)
        let forged = try issuer.sign(issuer.claims(), key: attackerKey, keyID: issuer.keyID)
        #expect(try await rejection(issuer, forged) == .badSignature)
    }

    @Test func tamperedPayloadRejected() async throws {
        let issuer = try TestIssuer()
        let token = try issuer.sign(issuer.claims())
        let parts = token.split(separator: ".")
        let otherPayload = try issuer.sign(issuer.claims(["sub": "admin"])).split(separator: ".")[1]
        let tampered = "\(parts[0]).\(otherPayload).\(parts[2])"
        #expect(try await rejection(issuer, tampered) == .badSignature)
    }

    @Test func algorithmNoneRejected() async throws {
        let issuer = try TestIssuer()
        let token = try TestIssuer.unsignedToken(header: #"{"alg":"none","kid":"key-1"}"#, claims: issuer.claims())
        #expect(try await rejection(issuer, token) == .algorithmNotAllowed(""))
        #expect(issuer.transport.requests(to: "/jwks").isEmpty)
    }

    @Test func hmacWithPublicKeyRejected() async throws {
        let issuer = try TestIssuer()
        // The classic confusion: HS256 keyed with the provider's public key bytes.
        let key = try HMACKey(key: issuer.keySetDocument(), digest: .sha256)
        let payload = try JSONSerialization.data(withJSONObject: issuer.claims())
        let token = try JWS.sign(payload: Array(payload), with: .hs256(key), keyID: issuer.keyID)
        #expect(try await rejection(issuer, token) == .algorithmNotAllowed(""))
    }

    @Test func algorithmOutsideAdvertisedListRejected() async throws {
        let issuer = try TestIssuer(discoveryOverrides: ["id_token_signing_alg_values_supported": ["RS256"]])
        let token = try issuer.sign(issuer.claims())
        #expect(try await rejection(issuer, token) == .algorithmNotAllowed(""))
    }

    @Test func malformedTokensRejected() async throws {
        let issuer = try TestIssuer()
        for token in ["", "a.b", "a.b.c.d", "!!.??.xx", "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.AAAA"] {
            let result = try await rejection(issuer, token)
            #expect(result != nil, "token \(token) was accepted")
        }
    }

    @Test func rejectionMessagesOmitTheToken() async throws {
        let issuer = try TestIssuer()
        let token = try issuer.sign(issuer.claims(nonce: "nonce-1"))
        let provider = try await issuer.provider()
        do {
            _ = try await provider.validateIDToken(token, nonce: "nonce-2")
        } catch {
            #expect(!error.description.contains(token))
            #expect(!error.description.contains("nonce-1"))
            #expect(error.description.contains("nonce"))
        }
    }
}
