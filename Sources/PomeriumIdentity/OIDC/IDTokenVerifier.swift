import PomeriumCrypto

/// Signature verification of ID tokens (and signed userinfo responses) against the provider's JWKS,
/// with an algorithm allow-list. The key always comes from the provider's key set, never from the
/// token.
struct IDTokenVerifier: Sendable {
    /// The provider's advertised `id_token_signing_alg_values_supported` intersected with the
    /// asymmetric algorithms PomeriumCrypto implements; `none` and HS* are never in it.
    let allowedAlgorithms: Set<JWSAlgorithm>
    let keys: KeySetCache

    /// Returns the allow-list for a provider's advertised algorithms, which is empty when none is supported.
    static func allowedAlgorithms(advertised: [String]) -> Set<JWSAlgorithm> {
        Set(advertised.compactMap(JWSAlgorithm.init(rawValue:))).intersection(JWSAlgorithm.identityProvider)
    }

    /// A token whose signature verified: its payload and the algorithm it was signed with.
    struct VerifiedToken: Sendable {
        let payload: [String: ClaimValue]
        let algorithm: JWSAlgorithm
    }

    /// Verifies the signature of a compact JWS and returns its payload as a JSON object.
    func verify(_ compact: String) async throws(IdentityError) -> VerifiedToken {
        let token: CompactJWS
        do {
            token = try CompactJWS(parsing: compact)
        } catch {
            throw .invalidIDToken(Self.rejection(for: error, keyID: nil))
        }
        let algorithm = token.header.algorithm
        guard allowedAlgorithms.contains(algorithm) else {
            throw .invalidIDToken(.algorithmNotAllowed(algorithm.rawValue))
        }
        let keySet = try await keys.keySet(keyID: token.header.keyID, algorithm: algorithm)
        do {
            try JWSVerifier(keySet: keySet, allowedAlgorithms: allowedAlgorithms).verify(token)
        } catch .invalidSignature {
            // The cached key may be one the provider has since replaced; retry once with a new set.
            guard let refreshed = try await keys.refetchAfterFailedSignature() else {
                throw .invalidIDToken(.badSignature)
            }
            do {
                try JWSVerifier(keySet: refreshed, allowedAlgorithms: allowedAlgorithms).verify(token)
            } catch {
                throw .invalidIDToken(Self.rejection(for: error, keyID: token.header.keyID))
            }
        } catch {
            throw .invalidIDToken(Self.rejection(for: error, keyID: token.header.keyID))
        }
        do {
            return VerifiedToken(payload: try ClaimValue.parseObject(token.payload), algorithm: algorithm)
        } catch {
            throw .invalidIDToken(.malformed("the payload is not a JSON object"))
        }
    }

    /// Checks the `at_hash` claim against the access token issued with the ID token (OpenID Connect
    /// Core section 3.1.3.8): base64url of the left half of the token's hash under the signing
    /// algorithm's hash function. The claim is optional in the code flow, so its absence passes.
    static func checkAccessTokenHash(_ token: VerifiedToken, accessToken: String) throws(IdentityError) {
        guard let claim = token.payload["at_hash"] else { return }
        guard case .string(let expected) = claim else { throw .invalidIDToken(.accessTokenHashMismatch) }
        let digest: DigestAlgorithm
        switch token.algorithm {
        case .es384: digest = .sha384
        // Ed25519 signs with SHA-512 inside, which is the hash providers use for EdDSA here.
        case .edDSA: digest = .sha512
        default: digest = .sha256
        }
        let hash: [UInt8]
        do {
            hash = try Digest.hash(digest, Array(accessToken.utf8))
        } catch {
            throw .cryptographyFailed("hashing the access token failed: \(error)")
        }
        let computed = Base64.urlUnpadded.encode(hash.prefix(hash.count / 2))
        guard ConstantTime.equals(Array(computed.utf8), Array(expected.utf8)) else {
            throw .invalidIDToken(.accessTokenHashMismatch)
        }
    }

    static func rejection(for error: JWSError, keyID: String?) -> IDTokenRejection {
        switch error {
        case .malformed(let part): return .malformed(part)
        case .unsupportedAlgorithm(let name): return .algorithmNotAllowed(String(name.prefix(16)))
        case .algorithmNotAllowed(let algorithm): return .algorithmNotAllowed(algorithm.rawValue)
        case .unsupportedCriticalHeader: return .malformed("the header lists critical extensions (crit)")
        case .noMatchingKey: return .unknownKeyID(keyID.map { String($0.prefix(64)) } ?? "(none)")
        case .invalidSignature: return .badSignature
        }
    }
}
