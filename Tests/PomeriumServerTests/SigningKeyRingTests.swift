import Foundation
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumServer
import PomeriumSessions
import PomeriumTestSupport
import Testing

@Suite("Signing key reload")
struct SigningKeyRingTests {
    static let clock = ManualWallClock(now: 1_700_000_000)

    @Test("the same key keeps the signer and the JWKS")
    func sameKeyKeepsSigner() throws {
        let key = try ECPrivateKey.generate(curve: .p256)
        let ring = try SigningKeyRing(initial: key, clock: Self.clock)
        let current = try #require(ring.current)
        let again = try #require(try ring.prepare(try ECPrivateKey(pem: try key.sec1PEM())))
        #expect(again.signer === current.signer)
        #expect(!ring.commit(again))
        #expect(try JWKSet(json: current.keySet.jsonBytes).keys.count == 1)
    }

    @Test("a new key signs at once and the JWKS keeps the previous key second")
    func newKeyRotates() throws {
        let old = try ECPrivateKey.generate(curve: .p256)
        let new = try ECPrivateKey.generate(curve: .p256)
        let ring = try SigningKeyRing(initial: old, clock: Self.clock)
        let oldKeyID = try #require(ring.current).signer.keyID

        let prepared = try #require(try ring.prepare(new))
        // Preparing alone changes nothing, so a reload that fails later keeps the old key.
        #expect(ring.current?.signer.keyID == oldKeyID)
        #expect(ring.commit(prepared))
        let current = try #require(ring.current)
        #expect(current.signer.keyID != oldKeyID)
        let published = try JWKSet(json: current.keySet.jsonBytes).keys.map(\.keyID)
        #expect(published == [current.signer.keyID, oldKeyID])

        // An assertion from the new signer names the new kid.
        var session = SessionState()
        session.subject = "user"
        session.email = "user@example.test"
        session.expiry = 1_700_003_600
        let assertion = try current.signer.assertion(for: session, sessionID: "session", route: "route")
        let header = try #require(assertion.split(separator: ".").first)
        let decoded = try #require(Base64.urlUnpadded.decode(String(header)))
        #expect(String(decoding: decoded, as: UTF8.self).contains(current.signer.keyID))

        // A second rotation drops the oldest key.
        let third = try ECPrivateKey.generate(curve: .p256)
        #expect(ring.commit(try ring.prepare(third)))
        let latest = try JWKSet(json: try #require(ring.current).keySet.jsonBytes).keys.map(\.keyID)
        #expect(latest.count == 2)
        #expect(latest[1] == current.signer.keyID)
        #expect(!latest.contains(oldKeyID))
    }

    @Test("no key means nothing to sign")
    func noKey() throws {
        let ring = try SigningKeyRing(initial: nil, clock: Self.clock)
        #expect(ring.current == nil)
        #expect(try ring.prepare(nil) == nil)
        #expect(!ring.commit(nil))
    }
}

@Suite("Signing key setup")
struct SigningKeySetupTests {
    static let base = """
        insecure_server: true
        authenticate_service_url: https://authenticate.example.test
        idp_provider: oidc
        idp_provider_url: http://127.0.0.1:5556
        idp_client_id: client
        idp_client_secret: secret
        cookie_secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
        shared_secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=

        """

    static func options(_ extra: String) throws -> Options {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "signing-setup")
        let file = directory.appendingPathComponent("config.yaml")
        try (base + extra).write(to: file, atomically: true, encoding: .utf8)
        let loader = ConfigLoader(configFile: file.path, environment: { [:] })
        let result = loader.load(inputs: loader.readInputs())
        try #require(result.isValid, "\(result.problems)")
        return result.options
    }

    @Test("a generated key is stored once with mode 0600 and read again")
    func generatedKeyStored() throws {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "signing-key")
        let path = directory.appendingPathComponent("signing.pem").path
        let options = try Self.options("signing_key_file: \(path)\n")
        #expect(options.signingKeyIsGenerated)
        let logs = InMemoryLogHandler.Store()
        let key = try #require(try SigningKeySetup.load(options: options, logger: .inMemory(store: logs)))
        let generated = try ECPrivateKey(pem: try #require(options.signingKeyPEM))
        #expect(key.publicKey == generated.publicKey)
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)

        // The next start reads the stored key instead of generating one.
        let restarted = try Self.options("signing_key_file: \(path)\n")
        #expect(!restarted.signingKeyIsGenerated)
        let loaded = try #require(try SigningKeySetup.load(options: restarted, logger: .inMemory(store: logs)))
        #expect(loaded.publicKey == key.publicKey)
    }

    @Test("a configured key is never written to a file")
    func configuredKeyNotWritten() throws {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "signing-key")
        let configured = try ECPrivateKey.generate(curve: .p256)
        let encoded = Data(try configured.sec1PEM().utf8).base64EncodedString()
        let options = try Self.options("signing_key: \(encoded)\n")
        let key = try #require(try SigningKeySetup.load(options: options, logger: .inMemory(store: .init())))
        #expect(key.publicKey == configured.publicKey)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("the warning about a per-process key is logged at start only")
    func warningAtStartOnly() throws {
        let options = try Self.options("")
        let logs = InMemoryLogHandler.Store()
        _ = try SigningKeySetup.load(options: options, logger: .inMemory(store: logs))
        #expect(logs.all.filter { $0.level == .warning }.count == 1)
        _ = try SigningKeySetup.load(options: options, isReload: true, logger: .inMemory(store: logs))
        #expect(logs.all.filter { $0.level == .warning }.count == 1)
    }
}
