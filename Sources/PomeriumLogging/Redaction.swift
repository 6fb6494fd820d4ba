/// The rule that keeps secrets out of logs: metadata values under a sensitive key are replaced by
/// `[redacted]` before any handler formats them, at every nesting depth.
public struct Redaction: Sendable {
    /// The text written in place of a redacted value.
    public static let placeholder = "[redacted]"

    /// Keys redacted when equal to one of these, compared after lower-casing and mapping `-` and `.`
    /// to `_`.
    public let exactKeys: Set<String>

    /// Keys redacted when they contain one of these words after the same normalisation.
    public let keyFragments: [String]

    /// The product's list: credentials, tokens, cookies, signatures and OAuth codes, under their
    /// Pomerium query-parameter and header names too.
    public static let standard = Redaction(
        exactKeys: [
            "code", "state", "jwt", "assertion", "nonce", "code_verifier",
            "x_pomerium_jwt_assertion", "pomerium_session", "pomerium_session_encrypted",
            "pomerium_jwt", "pomerium_refresh_token", "pomerium_programmatic_token", "pomerium_signature",
        ],
        keyFragments: [
            "secret", "password", "passwd", "token", "cookie", "authorization", "signature", "private_key",
            "signing_key", "certificate_key", "api_key",
        ]
    )

    public init(exactKeys: Set<String>, keyFragments: [String]) {
        self.exactKeys = Set(exactKeys.map(Redaction.normalize))
        self.keyFragments = keyFragments.map(Redaction.normalize)
    }

    /// Whether values under `key` are secret.
    public func isSensitive(_ key: String) -> Bool {
        let normalized = Redaction.normalize(key)
        if exactKeys.contains(normalized) { return true }
        return keyFragments.contains { normalized.contains($0) }
    }

    /// Returns `metadata` with every sensitive value replaced, recursively.
    public func apply(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result = Logger.Metadata(minimumCapacity: metadata.count)
        for (key, value) in metadata {
            result[key] = isSensitive(key) ? .string(Redaction.placeholder) : apply(value)
        }
        return result
    }

    private func apply(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .dictionary(let nested): .dictionary(apply(nested))
        case .array(let items): .array(items.map(apply))
        case .string, .stringConvertible: value
        }
    }

    static func normalize(_ key: String) -> String {
        String(
            key.lowercased().map { character -> Character in
                character == "-" || character == "." ? "_" : character
            }
        )
    }
}
