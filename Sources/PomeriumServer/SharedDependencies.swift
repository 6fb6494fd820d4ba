import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumSessions
import Synchronization

/// The long-lived parts that every configuration generation shares: built once at start and
/// handed to each rebuild of the proxy and authenticate services, so a reload never reopens the
/// store and never repeats provider discovery. The signing key lives in `signingKeys`, which a
/// reload may rotate.
public struct SharedDependencies: Sendable {
    public let store: any KeyValueStore
    /// The assertion signing key in effect and the JWKS that publishes it.
    public let signingKeys: SigningKeyRing
    public let clock: any WallClock

    public init(store: any KeyValueStore, signingKey: ECPrivateKey?, clock: any WallClock) throws {
        self.store = store
        self.clock = clock
        signingKeys = try SigningKeyRing(initial: signingKey, clock: clock)
    }
}

/// The signer of `X-Pomerium-Jwt-Assertion` and the JWKS document that publishes its key.
public struct SigningKeys: Sendable {
    public let key: ECPrivateKey
    public let signer: IdentityAssertionSigner
    /// The current key first, then the key it replaced, if any.
    public let keySet: AssertionKeySet
}

/// The assertion signing key across reloads. A reload with a different `signing_key` (or
/// `signing_key_file` contents) makes the new key sign at once. The JWKS keeps publishing the
/// previous key, after the new one, until the key changes again. So assertions that the old key
/// signed still verify for upstreams that fetch the JWKS: requests in flight, and those of the
/// proxies of a split deployment that reload later. An upstream whose cached JWKS lacks the new key's `kid`
/// must fetch it again, as JWKS clients do on an unknown `kid`.
public final class SigningKeyRing: Sendable {
    private let clock: any WallClock
    private let state: Mutex<SigningKeys?>

    public init(initial: ECPrivateKey?, clock: any WallClock) throws {
        self.clock = clock
        state = Mutex(try initial.map { try Self.make(key: $0, previous: nil, clock: clock) })
    }

    /// The keys in effect, or nil in a process that signs nothing.
    public var current: SigningKeys? { state.withLock { $0 } }

    /// Returns the keys to use with `key`: the current ones when `key` is the current key, otherwise a new
    /// signer whose JWKS also lists the current key. Changes nothing until `commit(_:)`, so
    /// a reload that fails later keeps the running key.
    public func prepare(_ key: ECPrivateKey?) throws -> SigningKeys? {
        guard let key else { return nil }
        let current = self.current
        if let current, current.key.publicKey == key.publicKey { return current }
        return try Self.make(key: key, previous: current?.key.publicKey, clock: clock)
    }

    /// Makes `keys` the ones in effect; returns whether the key changed.
    @discardableResult
    public func commit(_ keys: SigningKeys?) -> Bool {
        guard let keys else { return false }
        return state.withLock { current in
            let changed = current?.key.publicKey != keys.key.publicKey
            current = keys
            return changed
        }
    }

    private static func make(key: ECPrivateKey, previous: ECPublicKey?, clock: any WallClock) throws -> SigningKeys {
        SigningKeys(
            key: key, signer: try IdentityAssertionSigner(signingKey: key, clock: clock),
            keySet: try AssertionKeySet(current: key.publicKey, previous: previous))
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
    /// Runs at start and at every reload (with `isReload`, which leaves out the start-only warning);
    /// an existing file is read, never overwritten.
    public static func load(options: Options, isReload: Bool = false, logger: Logger) throws(Problem) -> ECPrivateKey? {
        guard let pem = options.signingKeyPEM else {
            guard options.services.runsProxy else { return nil }
            guard let path = options.signingKeyFile else {
                throw Problem(
                    description:
                        "services \(options.services.rawValue) signs the X-Pomerium-Jwt-Assertion header and needs "
                        + "signing_key, or signing_key_file (a key is generated there when the file is missing); "
                        + "give every proxy the same key")
            }
            return try loadOrCreate(path: path, newKey: nil, logger: logger)
        }
        let key: ECPrivateKey
        do {
            key = try ECPrivateKey(pem: pem)
        } catch {
            throw Problem(description: "signing_key is not a usable EC private key: \(error); use a P-256 key in PEM")
        }
        guard options.signingKeyIsGenerated else { return key }
        if let path = options.signingKeyFile {
            // Another process may have created the file since the settings were read; its key wins.
            return try loadOrCreate(path: path, newKey: key, logger: logger)
        }
        guard !isReload else { return key }
        logger.warning(
            """
            no signing_key or signing_key_file: the generated signing key lasts until the process stops, \
            so upstreams must fetch the JWKS again after a restart
            """)
        return key
    }

    private static func loadOrCreate(
        path: String, newKey: ECPrivateKey?, logger: Logger
    ) throws(Problem) -> ECPrivateKey {
        do {
            return try SigningKeyFile.loadOrCreate(path: path, newKey: newKey, logger: logger)
        } catch {
            throw Problem(description: "signing_key_file \"\(path)\": \(error); fix the file or set signing_key")
        }
    }
}
