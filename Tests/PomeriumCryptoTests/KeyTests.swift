import PomeriumTestSupport
import Testing

@testable import PomeriumCrypto

@Suite("EC, RSA and Ed25519 keys")
struct KeyTests {
    @Test("P-256 and P-384 sign and verify", arguments: ECCurve.allCases)
    func signVerify(curve: ECCurve) throws {
        let key = try ECPrivateKey.generate(curve: curve)
        let message = Array("message".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 2 * curve.coordinateSize)
        #expect(key.publicKey.verify(signature: signature, for: message))
        #expect(!key.publicKey.verify(signature: signature, for: Array("massage".utf8)))
        var altered = signature
        altered[5] ^= 1
        #expect(!key.publicKey.verify(signature: altered, for: message))
        #expect(!key.publicKey.verify(signature: signature.dropLast(), for: message))
        let other = try ECPrivateKey.generate(curve: curve)
        #expect(!other.publicKey.verify(signature: signature, for: message))
    }

    @Test("raw and DER signatures convert both ways")
    func derConversion() throws {
        let raw = [UInt8](repeating: 0, count: 31) + [1] + [0x80] + [UInt8](repeating: 2, count: 31)
        let der = try #require(ECDSASignature.der(fromRaw: raw, coordinateSize: 32))
        #expect(der[0] == 0x30)
        #expect(ECDSASignature.raw(fromDER: der, coordinateSize: 32) == raw)
        #expect(ECDSASignature.raw(fromDER: der + [0], coordinateSize: 32) == nil)
        #expect(ECDSASignature.raw(fromDER: [0x30, 0x01], coordinateSize: 32) == nil)
        #expect(ECDSASignature.der(fromRaw: Array(raw.dropLast()), coordinateSize: 32) == nil)
    }

    @Test("PEM round trip in SEC 1 and PKCS#8")
    func pemRoundTrip() throws {
        let key = try ECPrivateKey.generate()
        let sec1 = try key.sec1PEM()
        #expect(sec1.hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        let pkcs8 = try key.pkcs8PEM()
        #expect(pkcs8.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try ECPrivateKey(pem: sec1).publicKey == key.publicKey)
        #expect(try ECPrivateKey(pem: pkcs8).publicKey == key.publicKey)
        let publicPEM = try key.publicKey.pem()
        #expect(try PublicKey(pem: publicPEM) == .ec(key.publicKey))
    }

    @Test("PEM parsing rejects garbage and encrypted keys")
    func pemRejects() throws {
        #expect(throws: KeyError.self) { try ECPrivateKey(pem: "not a key") }
        #expect(throws: KeyError.self) {
            try PublicKey(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        }
        let encrypted = try PythonRunner.run(
            """
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives import serialization
            k = ec.generate_private_key(ec.SECP256R1())
            print(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw")).decode())
            """)
        #expect(throws: KeyError.self) { try ECPrivateKey(pem: encrypted) }
    }

    @Test("a point off the curve is rejected")
    func offCurve() throws {
        let key = try ECPrivateKey.generate()
        var y = key.publicKey.y
        y[31] ^= 1
        #expect(throws: KeyError.self) { try ECPublicKey(x: key.publicKey.x, y: y, curve: .p256) }
        #expect(throws: KeyError.self) { try ECPublicKey(x: [1], y: [2], curve: .p256) }
    }

    @Test("RSA keys under 2048 bits are rejected")
    func smallRSA() {
        #expect(throws: KeyError.self) {
            try RSAPublicKey(modulus: [UInt8](repeating: 0xFF, count: 128), exponent: [1, 0, 1])
        }
    }

    @Test("Ed25519 keys must be 32 bytes")
    func edLength() {
        #expect(throws: KeyError.self) { try Ed25519PublicKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) }
    }
}
