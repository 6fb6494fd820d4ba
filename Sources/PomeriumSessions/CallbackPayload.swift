import PomeriumCore
import PomeriumCrypto
import PomeriumLogging

/// The `pomerium_session_encrypted` query parameter that carries a route session token from the
/// authenticate service to the proxy's callback: the token sealed with AES-256-GCM under a key
/// derived from the 32-byte `shared_secret`, base64url with padding as v0.7 wrote it.
public struct CallbackPayloadCodec: Sendable {
    public static let parameter = "pomerium_session_encrypted"
    static let artefact = "callback-payload"
    /// The largest parameter accepted, in bytes.
    public static let maximumSize = 64 * 1024

    private let key: AEADKey
    private let logger: Logger
    private static let associatedData = Array("pomerium_session_encrypted v1".utf8)

    public init(sharedSecret: [UInt8], logger: Logger) throws {
        guard sharedSecret.count == 32 else {
            throw PomeriumError(
                "shared-secret-invalid", "shared_secret must decode to 32 bytes, got \(sharedSecret.count)")
        }
        key = try AEADKey(secret: sharedSecret, purpose: "callback-payload")
        self.logger = logger
    }

    /// Seals a route session token for the query parameter.
    public func seal(routeToken: String) throws -> String {
        Base64.url.encode(try key.seal(Array(routeToken.utf8), associatedData: Self.associatedData))
    }

    /// Opens the parameter and returns the route session token.
    ///
    /// - Throws: `SessionRejection` (`tooLarge`, `malformed` or `decryptionFailed`), logged once.
    public func open(_ parameter: String) throws -> String {
        do {
            guard parameter.utf8.count <= Self.maximumSize else { throw SessionRejection(Self.artefact, .tooLarge) }
            guard let sealed = Base64.url.decode(parameter) else { throw SessionRejection(Self.artefact, .malformed) }
            guard let token = try? key.open(sealed, associatedData: Self.associatedData),
                let text = String(validating: token, as: UTF8.self)
            else { throw SessionRejection(Self.artefact, .decryptionFailed) }
            return text
        } catch let rejection as SessionRejection {
            logger.logRejection(rejection)
            throw rejection
        }
    }
}
