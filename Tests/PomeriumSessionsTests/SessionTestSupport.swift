import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import Testing

@testable import PomeriumSessions

/// Shared fixtures of the session tests: fixed secrets, a sample session and log assertions.
enum SessionFixtures {
    static let cookieSecret = [UInt8](repeating: 0x11, count: 32)
    static let sharedSecret = [UInt8](repeating: 0x22, count: 32)
    static let now: Double = 1_700_000_000

    static func sampleSession(groups: Int = 3) -> SessionState {
        var session = SessionState()
        session.issuer = "authn.example.test"
        session.subject = "user-123"
        session.audience = ["authn.example.test", "app.example.test:8443"]
        session.expiry = Int64(now) + 3600
        session.notBefore = Int64(now) - 10
        session.issuedAt = Int64(now) - 10
        session.id = "session-jti"
        session.email = "user@example.test"
        session.groups = (0..<groups).map { "group-\($0)" }
        session.name = "A User"
        session.emailVerified = true
        session.accessTokenID = "ati-1"
        session.oauthToken = OAuthToken(
            accessToken: "access-secret-value", refreshToken: "refresh-secret-value", expiry: Int64(now) + 3600)
        return session
    }
}

/// Checks that exactly one rejection was logged with `reason`, and that no log line contains any of
/// `secrets`.
func expectLoggedOnce(
    _ store: InMemoryLogHandler.Store,
    artefact: String,
    reason: RejectionReason,
    without secrets: [String],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let entries = store.all
    #expect(entries.count == 1, "expected one log entry, got \(entries.count)", sourceLocation: sourceLocation)
    #expect(entries.first?.metadata["reason"] == .string(reason.rawValue), sourceLocation: sourceLocation)
    #expect(entries.first?.metadata["artefact"] == .string(artefact), sourceLocation: sourceLocation)
    for entry in entries {
        for secret in secrets where !secret.isEmpty {
            let probe = String(secret.prefix(24))
            #expect(
                !entry.jsonLine.contains(probe), "log line contains secret material", sourceLocation: sourceLocation)
        }
    }
}
