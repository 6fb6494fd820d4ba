/// The JWS algorithms (RFC 7518, RFC 8037) this project signs or verifies. `none` is deliberately
/// absent, so no code path can accept an unsigned token.
public enum JWSAlgorithm: String, Sendable, CaseIterable, Hashable {
    /// HMAC with SHA-256: route session tokens, keyed only from configuration.
    case hs256 = "HS256"
    /// ECDSA P-256 with SHA-256: the identity assertion, and identity-provider tokens.
    case es256 = "ES256"
    /// ECDSA P-384 with SHA-384, for identity-provider tokens.
    case es384 = "ES384"
    /// RSASSA-PKCS1-v1_5 with SHA-256, for identity-provider tokens.
    case rs256 = "RS256"
    /// RSASSA-PSS with SHA-256, for identity-provider tokens.
    case ps256 = "PS256"
    /// Ed25519, for identity-provider tokens.
    case edDSA = "EdDSA"

    /// The algorithms that identity providers sign ID tokens with; never HMAC, whose key would have
    /// to be the client secret.
    public static let identityProvider: Set<JWSAlgorithm> = [.es256, .es384, .rs256, .ps256, .edDSA]
}

/// A JWS rejection. Each case is a stable reason code for logs; none carries token text.
public enum JWSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The compact serialisation or a JSON part is malformed (the detail names which part).
    case malformed(String)
    /// The header names an algorithm this project does not implement, including `none`.
    case unsupportedAlgorithm(String)
    /// The algorithm is implemented but not allowed for this use.
    case algorithmNotAllowed(JWSAlgorithm)
    /// The header carries `crit` extensions, which this project does not implement.
    case unsupportedCriticalHeader
    /// No configured key has the header's `kid` and suits the algorithm.
    case noMatchingKey
    /// The signature does not verify.
    case invalidSignature

    /// A short kebab-case code for logs and metrics.
    public var reasonCode: String {
        switch self {
        case .malformed: "jws-malformed"
        case .unsupportedAlgorithm: "jws-unsupported-alg"
        case .algorithmNotAllowed: "jws-alg-not-allowed"
        case .unsupportedCriticalHeader: "jws-crit-unsupported"
        case .noMatchingKey: "jws-no-matching-key"
        case .invalidSignature: "jws-bad-signature"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let part): "malformed JWS: \(part)"
        case .unsupportedAlgorithm(let name):
            "JWS algorithm \"\(name.prefix(16))\" is not supported; expected one of HS256, ES256, ES384, RS256, PS256, EdDSA"
        case .algorithmNotAllowed(let algorithm): "JWS algorithm \(algorithm.rawValue) is not allowed here"
        case .unsupportedCriticalHeader: "JWS header lists critical extensions (crit), which are not supported"
        case .noMatchingKey: "no configured key matches the JWS key id and algorithm"
        case .invalidSignature: "JWS signature verification failed"
        }
    }
}
