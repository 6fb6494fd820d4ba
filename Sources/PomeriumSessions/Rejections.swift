import PomeriumLogging

/// The reason a session artefact (cookie, signed URL, token, state) was rejected. The raw value is a stable
/// kebab-case reason code for logs; no case carries the artefact's text.
public enum RejectionReason: String, Error, Sendable, CustomStringConvertible {
    case malformed = "malformed"
    case unsupportedVersion = "unsupported-version"
    case decryptionFailed = "decryption-failed"
    case invalidClaims = "invalid-claims"
    case chunkMissing = "chunk-missing"
    case chunkDuplicated = "chunk-duplicated"
    case chunkUnexpected = "chunk-unexpected"
    case tooManyChunks = "too-many-chunks"
    case badSignature = "bad-signature"
    case algorithmNotAllowed = "alg-not-allowed"
    case expired = "expired"
    case notYetValid = "not-yet-valid"
    case issuedInFuture = "issued-in-future"
    case wrongAudience = "wrong-audience"
    case missingParameter = "missing-parameter"
    case duplicateParameter = "duplicate-parameter"
    case replayed = "replayed"
    case csrfMismatch = "csrf-mismatch"
    case tooLarge = "too-large"

    public var description: String { rawValue }
}

/// The error a session component throws for a rejected artefact: which artefact and why.
public struct SessionRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// The artefact, for example `session-cookie` or `signed-url`.
    public let artefact: String
    public let reason: RejectionReason

    public init(_ artefact: String, _ reason: RejectionReason) {
        self.artefact = artefact
        self.reason = reason
    }

    public var description: String { "rejected \(artefact): \(reason.rawValue)" }
}

extension Logger {
    /// Logs one rejected artefact at debug level with its reason code. Only the artefact kind and
    /// the code are written, never the artefact's value.
    func logRejection(_ rejection: SessionRejection) {
        debug(
            "session artefact rejected",
            metadata: ["artefact": .string(rejection.artefact), "reason": .string(rejection.reason.rawValue)])
    }
}
