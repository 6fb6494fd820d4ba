import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import PomeriumTestSupport
import Testing

@testable import PomeriumSessions

@Suite("Signed URLs")
struct SignedURLTests {
    let clock = ManualWallClock(now: SessionFixtures.now)

    func signer(store: InMemoryLogHandler.Store = .init(), secret: [UInt8] = SessionFixtures.sharedSecret) throws
        -> URLSigner
    {
        try URLSigner(sharedSecret: secret, clock: clock, logger: .inMemory(store: store))
    }

    func signed() throws -> HTTPURL {
        try signer().sign(
            HTTPURL(
                parsing:
                    "https://authn.example.test/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fapp.example.test%2Fx%3Fy%3D1&b=2"
            ))
    }

    @Test("signing adds sorted parameters and validates")
    func roundTrip() throws {
        let url = try signed()
        let query = try URLQuery(parsing: url.query ?? "")
        #expect(
            query.map(\.name) == [
                "b", "pomerium_expiry", "pomerium_issued", "pomerium_redirect_uri", "pomerium_signature",
            ])
        #expect(query.value(for: "pomerium_issued") == "1700000000")
        #expect(query.value(for: "pomerium_expiry") == "1700000300")
        #expect(query.value(for: "pomerium_signature")?.hasSuffix("=") == true)
        try signer().validate(url)
    }

    @Test("the MAC matches Python's HMAC-SHA-512/256 over Go's sorted encoding", .enabled(if: PythonRunner.isAvailable))
    func pythonCrossCheck() throws {
        let url = try signed()
        let output = try PythonRunner.run(
            """
            import base64, hashlib, hmac, sys, urllib.parse
            url = sys.stdin.read().strip()
            parts = urllib.parse.urlsplit(url)
            pairs = [p for p in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if p[0] != "pomerium_signature"]
            sig = dict(urllib.parse.parse_qsl(parts.query))["pomerium_signature"]
            query = urllib.parse.urlencode(sorted(pairs, key=lambda p: p[0]))
            issued = dict(pairs)["pomerium_issued"]; expiry = dict(pairs)["pomerium_expiry"]
            message = f"{parts.scheme}://{parts.netloc}{parts.path}?{query}{issued} {expiry}".encode()
            mac = hmac.new(bytes([0x22] * 32), message, "sha512_256").digest()
            print(base64.urlsafe_b64encode(mac).decode() == sig)
            """, input: url.description)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "True")
    }

    func expectRejected(
        _ url: HTTPURL, scheme: String? = nil, reason: RejectionReason,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let store = InMemoryLogHandler.Store()
        let signer = try signer(store: store)
        #expect(throws: SessionRejection("signed-url", reason), sourceLocation: sourceLocation) {
            try signer.validate(
                scheme: scheme ?? url.scheme, hostAndPort: url.hostAndPort, path: url.path, rawQuery: url.query ?? "")
        }
        let signature = try URLQuery(parsing: try self.signed().query ?? "").value(for: "pomerium_signature") ?? ""
        expectLoggedOnce(
            store, artefact: "signed-url", reason: reason, without: [signature], sourceLocation: sourceLocation)
    }

    func modified(_ url: HTTPURL, _ change: (inout URLQuery) -> Void) throws -> HTTPURL {
        var query = try URLQuery(parsing: url.query ?? "")
        change(&query)
        var copy = url
        copy.query = query.encoded
        return copy
    }

    @Test("every parameter altered, removed or duplicated is rejected")
    func parameterMutations() throws {
        let url = try signed()
        for name in ["pomerium_issued", "pomerium_expiry", "pomerium_signature"] {
            try expectRejected(try modified(url) { $0.remove(name: name) }, reason: .missingParameter)
            try expectRejected(
                try modified(url) { $0.append(name: name, value: $0.value(for: name) ?? "") },
                reason: .duplicateParameter)
        }
        try expectRejected(
            try modified(url) { $0.set(name: "pomerium_issued", value: "1699999999") }, reason: .badSignature)
        try expectRejected(
            try modified(url) { $0.set(name: "pomerium_expiry", value: "1700000301") }, reason: .badSignature)
        try expectRejected(
            try modified(url) { $0.set(name: "pomerium_issued", value: "+1700000000") }, reason: .malformed)
        try expectRejected(try modified(url) { $0.set(name: "pomerium_expiry", value: "soon") }, reason: .malformed)
        try expectRejected(try modified(url) { $0.set(name: "pomerium_signature", value: "AAAA") }, reason: .malformed)
        try expectRejected(
            try modified(url) { query in
                var mac = Base64.url.decode(query.value(for: "pomerium_signature")!)!
                mac[0] ^= 1
                query.set(name: "pomerium_signature", value: Base64.url.encode(mac))
            }, reason: .badSignature)
        try expectRejected(
            try modified(url) { $0.set(name: "pomerium_redirect_uri", value: "https://evil.example.test/") },
            reason: .badSignature)
        try expectRejected(try modified(url) { $0.append(name: "extra", value: "1") }, reason: .badSignature)
        try expectRejected(try modified(url) { $0.remove(name: "b") }, reason: .badSignature)
        var otherHost = url
        otherHost.host = "other.example.test"
        try expectRejected(otherHost, reason: .badSignature)
        var otherPort = url
        otherPort.port = 8443
        try expectRejected(otherPort, reason: .badSignature)
        var otherPath = url
        otherPath.path = "/.pomerium/sign_out"
        try expectRejected(otherPath, reason: .badSignature)
        var broken = url
        broken.query = (url.query ?? "") + "&%zz=1"
        try expectRejected(broken, reason: .malformed)
    }

    @Test("time windows honour 60 seconds of leeway")
    func timeWindows() throws {
        let url = try signed()
        clock.advance(by: 300 + 60)
        try signer().validate(url)
        clock.advance(by: 1)
        try expectRejected(url, reason: .expired)
        clock.set(SessionFixtures.now - 60)
        try signer().validate(url)
        clock.set(SessionFixtures.now - 61)
        try expectRejected(url, reason: .issuedInFuture)
    }

    @Test("validation uses the arrival scheme and still accepts https")
    func schemes() throws {
        let plain = try signer().sign(HTTPURL(parsing: "http://app.example.test:8080/.pomerium/callback/?x=1"))
        try signer().validate(plain)
        // v0.7 rebuilt every URL with https and so rejected this one.
        let secure = try signed()
        try signer().validate(
            scheme: "http", hostAndPort: secure.hostAndPort, path: secure.path, rawQuery: secure.query!)
        try expectRejected(plain, scheme: "https", reason: .badSignature)
    }

    @Test("another shared secret does not validate")
    func otherSecret() throws {
        let url = try signer(secret: [UInt8](repeating: 3, count: 32)).sign(HTTPURL(parsing: "https://a.example.test/"))
        try expectRejected(url, reason: .badSignature)
        #expect(throws: PomeriumError.self) { try signer(secret: [1]) }
    }
}
