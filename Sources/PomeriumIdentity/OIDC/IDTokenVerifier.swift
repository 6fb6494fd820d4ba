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

    /// Verifies the signature of a compact JWS and returns its payload as a JSON object.
    func verifiedPayload(_ compact: String) async throws(IdentityError) -> [String: ClaimValue] {
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
        } catch {
            throw .invalidIDToken(Self.rejection(for: error, keyID: token.header.keyID))
        }
        do {
            return try ClaimValue.parseObject(token.payload)
        } catch {
            throw .invalidIDToken(.malformed("the payload is not a JSON object"))
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
