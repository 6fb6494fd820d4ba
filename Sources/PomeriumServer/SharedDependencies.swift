import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumSessions

/// The long-lived parts that every configuration generation shares: built once at start and
/// handed to each rebuild of the proxy and authenticate services, so a reload never reopens the
/// store, never makes a new signing key and never repeats provider discovery.
public struct SharedDependencies: Sendable {
    public let store: any KeyValueStore
    /// The P-256 key of `X-Pomerium-Jwt-Assertion`; nil in an authenticate-only process without one.
    public let signingKey: ECPrivateKey?
    public let signer: IdentityAssertionSigner?
    /// The JWKS document with the signing key's public half.
    public let keySet: AssertionKeySet?
    public let clock: any WallClock

    public init(store: any KeyValueStore, signingKey: ECPrivateKey?, clock: any WallClock) throws {
        self.store = store
        self.signingKey = signingKey
        self.clock = clock
        signer = try signingKey.map { try IdentityAssertionSigner(signingKey: $0, clock: clock) }
        keySet = try signingKey.map { try AssertionKeySet(current: $0.publicKey) }
    }
}

/// The assertion signing key from the settings: `signing_key`, an existing `signing_key_file`, or a
/// generated key, which is stored at `signing_key_file` so the next start uses it again.
public enum SigningKeySetup {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The key, or nil when the process runs no proxy and none is configured. A proxy without
    /// the authorize service (`services: proxy`) gets no generated key from the settings: it loads
    /// `signing_key_file`, creating it when missing, so every proxy that shares the file signs alike.
    public static func load(options: Options, logger: Logger) throws(Problem) -> ECPrivateKey? {
        guard let pem = options.signingKeyPEM else {
            guard options.services.runsProxy else { return nil }
            guard let path = options.signingKeyFile else {
                throw Problem(
                    description:
                        "services \(options.services.rawValue) signs the X-Pomerium-Jwt-Assertion header and needs "
                        + "signing_key, or signing_key_file (a key is generated there when the file is missing); "
                        + "give every proxy the same key")
            }
            do {
                return try PomeriumSessions.SigningKeyFile.loadOrCreate(path: path, logger: logger)
            } catch {
                throw Problem(description: "signing_key_file \"\(path)\": \(error)")
            }
        }
        let key: ECPrivateKey
        do {
            key = try ECPrivateKey(pem: pem)
        } catch {
            throw Problem(description: "signing_key is not a usable EC private key: \(error); use a P-256 key in PEM")
        }
        if options.signingKeyIsGenerated {
            do {
                if try PomeriumConfig.SigningKeyFile.persistGeneratedKey(options) {
                    logger.info(
                        "generated a signing key and stored it; upstreams can keep verifying assertions after a restart",
                        metadata: ["signing_key_file": .string(options.signingKeyFile ?? "")])
                }
            } catch {
                throw Problem(description: "\(error.reason); fix signing_key_file or set signing_key")
            }
            if options.signingKeyFile == nil {
                logger.warning(
                    """
                    no signing_key or signing_key_file: the generated signing key lasts until the process stops, \
                    so upstreams must fetch the JWKS again after a restart
                    """)
            }
        }
        return key
    }
}
