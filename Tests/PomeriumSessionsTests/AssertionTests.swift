import Foundation
import Glibc
import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumTestSupport
import Testing

@testable import PomeriumSessions

@Suite("Identity assertion")
struct AssertionTests {
    let clock = ManualWallClock(now: SessionFixtures.now)
    let key = try! ECPrivateKey.generate()

    func signer(capacity: Int = 100) throws -> IdentityAssertionSigner {
        try IdentityAssertionSigner(signingKey: key, clock: clock, capacity: capacity)
    }

    @Test("assertion carries the route claims and a kid header")
    func claims() throws {
        let signer = try signer()
        let assertion = try signer.assertion(for: SessionFixtures.sampleSession(), sessionID: "s1", route: "app")
        let token = try JWSVerifier(
            keySet: JWKSet(json: try AssertionKeySet(current: key.publicKey).jsonBytes), allowedAlgorithms: [.es256]
        ).verify(compact: Array(assertion.utf8))
        #expect(token.header.algorithm == .es256)
        #expect(token.header.keyID == signer.keyID)
        #expect(token.header.object.members.map(\.key) == ["alg", "kid"])
        let claims = try SessionState(json: token.payload)
        #expect(claims == SessionFixtures.sampleSession().routeSession)
        #expect(!assertion.contains("access-secret"))
        #expect(!String(decoding: token.payload, as: UTF8.self).contains("refresh-secret-value"))
    }

    @Test("assertions are cached per session and route until shortly before expiry")
    func caching() throws {
        let signer = try signer()
        let session = SessionFixtures.sampleSession()
        let first = try signer.assertion(for: session, sessionID: "s1", route: "app")
        #expect(try signer.assertion(for: session, sessionID: "s1", route: "app") == first)
        #expect(try signer.assertion(for: session, sessionID: "s1", route: "other") != first)
        var changed = session
        changed.groups.append("new")
        #expect(try signer.assertion(for: changed, sessionID: "s1", route: "app") != first)
        let refreshed = try signer.assertion(for: changed, sessionID: "s1", route: "app")
        #expect(try signer.assertion(for: changed, sessionID: "s1", route: "app") == refreshed)
        clock.set(Double(session.expiry! - 60))
        #expect(try signer.assertion(for: changed, sessionID: "s1", route: "app") != refreshed)
    }

    @Test("a route session without an OAuth token hits the cache only with the same claims")
    func cachingRouteSession() throws {
        let signer = try signer()
        let session = SessionFixtures.sampleSession().routeSession
        let first = try signer.assertion(for: session, sessionID: "s1", route: "app")
        #expect(try signer.assertion(for: session, sessionID: "s1", route: "app") == first)
        // The same claims with a token attached are the same route session.
        #expect(try signer.assertion(for: SessionFixtures.sampleSession(), sessionID: "s1", route: "app") == first)
        var changed = session
        changed.email = "other@example.test"
        let other = try signer.assertion(for: changed, sessionID: "s1", route: "app")
        #expect(other != first)
        #expect(try signer.assertion(for: session, sessionID: "s1", route: "app") != other)
    }

    @Test("count limit evicts oldest assertions")
    func bounded() throws {
        let signer = try signer(capacity: 10)
        let session = SessionFixtures.sampleSession()
        var first: [String] = []
        for index in 10..<60 {
            first.append(try signer.assertion(for: session, sessionID: "s\(index)", route: "app"))
        }
        #expect(signer.cachedCount == 10)
        #expect(try signer.assertion(for: session, sessionID: "s59", route: "app") == first[49])
        #expect(try signer.assertion(for: session, sessionID: "s50", route: "app") == first[40])
        #expect(try signer.assertion(for: session, sessionID: "s49", route: "app") != first[39])
    }

    @Test("byte limit evicts oldest assertions")
    func byteLimitEvicts() throws {
        let session = SessionFixtures.sampleSession()
        let probe = try signer()
        _ = try probe.assertion(for: session, sessionID: "s10", route: "app")
        let charge = probe.cachedBytes
        #expect(charge > 1000)
        let signer = try IdentityAssertionSigner(
            signingKey: key, clock: clock, capacity: 1000, maximumBytes: 10 * charge + charge / 2)
        var first: [String] = []
        for index in 10..<40 {
            first.append(try signer.assertion(for: session, sessionID: "s\(index)", route: "app"))
        }
        #expect(signer.cachedCount == 10)
        #expect(signer.cachedBytes == 10 * charge)
        for index in 30..<40 {
            #expect(try signer.assertion(for: session, sessionID: "s\(index)", route: "app") == first[index - 10])
        }
        #expect(try signer.assertion(for: session, sessionID: "s29", route: "app") != first[19])
    }

    @Test("larger claims charged more")
    func largerClaimsChargedMore() throws {
        let small = try signer()
        _ = try small.assertion(for: SessionFixtures.sampleSession(groups: 3), sessionID: "s1", route: "app")
        let large = try signer()
        _ = try large.assertion(for: SessionFixtures.sampleSession(groups: 400), sessionID: "s1", route: "app")
        // Each of 400 groups adds its text to the claims and, base64url encoded, to the assertion.
        #expect(large.cachedBytes > small.cachedBytes + 400 * 16)
    }

    @Test("later claim headers charged")
    func renderedClaimsCharged() throws {
        let signer = try signer()
        let session = SessionFixtures.sampleSession(groups: 50).routeSession
        _ = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: nil)
        let unrendered = signer.cachedBytes
        let plan = ClaimHeaderPlan(names: ["email", "groups"])
        _ = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        #expect(signer.cachedCount == 1)
        #expect(signer.cachedBytes > unrendered + 50 * 7)
    }

    @Test("re-signed assertion replaces charge")
    func resignedReplacesCharge() throws {
        let signer = try signer()
        let session = SessionFixtures.sampleSession()
        _ = try signer.assertion(for: session, sessionID: "s1", route: "app")
        let charge = signer.cachedBytes
        var changed = session
        changed.email = "other@example.test"
        _ = try signer.assertion(for: changed, sessionID: "s1", route: "app")
        _ = try signer.assertion(for: session, sessionID: "s1", route: "app")
        #expect(signer.cachedCount == 1)
        #expect(signer.cachedBytes == charge)
    }

    @Test("evicted slots stay bounded")
    func evictedKeysReleased() throws {
        let session = SessionFixtures.sampleSession()
        let probe = try signer()
        _ = try probe.assertion(for: session, sessionID: "s100", route: "app")
        let signer = try IdentityAssertionSigner(
            signingKey: key, clock: clock, capacity: 50_000, maximumBytes: 5 * probe.cachedBytes)
        for index in 100..<400 {
            _ = try signer.assertion(for: session, sessionID: "s\(index)", route: "app")
        }
        #expect(signer.cachedCount == 5)
        #expect(signer.evictedSlotCount <= 64)
    }

    @Test("concurrent use returns valid assertions")
    func concurrent() async throws {
        let signer = try signer(capacity: 20)
        let verifier = JWSVerifier(publicKey: .ec(key.publicKey), allowedAlgorithms: [.es256])
        try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try signer.assertion(
                        for: SessionFixtures.sampleSession(), sessionID: "s\(index % 30)", route: "app")
                }
            }
            for try await assertion in group {
                _ = try verifier.verify(compact: Array(assertion.utf8))
            }
        }
    }

    @Test("a P-384 signing key is rejected")
    func p384() throws {
        #expect(throws: KeyError.self) {
            try IdentityAssertionSigner(signingKey: ECPrivateKey.generate(curve: .p384), clock: clock)
        }
    }

    @Test("Python verifies the assertion from the JWKS document alone", .enabled(if: PythonRunner.isAvailable))
    func pythonVerifies() throws {
        let previous = try ECPrivateKey.generate()
        let signer = try signer()
        let assertion = try signer.assertion(for: SessionFixtures.sampleSession(), sessionID: "s1", route: "app")
        let jwks = try AssertionKeySet(current: key.publicKey, previous: previous.publicKey).jsonBytes
        let input = String(decoding: jwks, as: UTF8.self) + "\n" + assertion
        let output = try PythonRunner.run(
            """
            import json, sys, jwt
            document, token = sys.stdin.read().split("\\n")
            keys = jwt.PyJWKSet.from_dict(json.loads(document))
            kid = jwt.get_unverified_header(token)["kid"]
            key = next(k for k in keys.keys if k.key_id == kid)
            claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="app.example.test:8443",
                issuer="authn.example.test", options={"verify_exp": False})
            print(len(keys.keys), claims["email"])
            """, input: input)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "2 user@example.test")
    }
}

@Suite("JWKS document")
struct JWKSTests {
    @Test("current and previous keys with kid, alg and use")
    func document() throws {
        let current = try ECPrivateKey.generate()
        let previous = try ECPrivateKey.generate()
        let set = try AssertionKeySet(current: current.publicKey, previous: previous.publicKey)
        let parsed = try JWKSet(json: set.jsonBytes)
        #expect(parsed.keys.count == 2)
        #expect(parsed.keys[0].key == .ec(current.publicKey))
        #expect(parsed.keys[1].key == .ec(previous.publicKey))
        #expect(parsed.keys.allSatisfy { $0.algorithm == "ES256" && $0.use == "sig" })
        let signer = try IdentityAssertionSigner(signingKey: current, clock: ManualWallClock())
        #expect(parsed.keys[0].keyID == signer.keyID)
        #expect(!String(decoding: set.jsonBytes, as: UTF8.self).contains("\"d\""))
        #expect(
            try JWKSet(json: AssertionKeySet(current: current.publicKey, previous: current.publicKey).jsonBytes).keys
                .count == 1)
    }
}

@Suite("Assertion signing key file")
struct AssertionKeyFileTests {
    @Test("a key is generated once with mode 0600 and loaded afterwards")
    func persist() throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("signing.pem").path
        let store = InMemoryLogHandler.Store()
        let first = try SigningKeyFile.loadOrCreate(path: path, logger: .inMemory(store: store))
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        let second = try SigningKeyFile.loadOrCreate(path: path, logger: .inMemory(store: store))
        #expect(second.publicKey == first.publicKey)
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        #expect(contents.hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        #expect(store.all.count == 1)
        #expect(!store.all[0].jsonLine.contains("PRIVATE"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(leftovers == ["signing.pem"])
    }

    @Test("a corrupt key file is an error, not a new key")
    func corrupt() throws {
        let folder = try RepositoryPaths.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("signing.pem").path
        try "garbage".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: KeyError.self) {
            try SigningKeyFile.loadOrCreate(path: path, logger: .inMemory(store: .init()))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "garbage")
        #expect(throws: KeyError.self) {
            try SigningKeyFile.loadOrCreate(path: folder.path + "/missing/key.pem", logger: .inMemory(store: .init()))
        }
    }
}
