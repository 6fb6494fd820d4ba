import PomeriumCrypto
import Testing

/// Tests of the OpenSSL-backed PEM checks that configuration loading relies on.
@Suite struct ConfigKeyCheckTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test(arguments: [TestMaterial.p256SEC1, TestMaterial.p256PKCS8, TestMaterial.serverKey])
    func p256KeysPass(_ pem: String) throws {
        try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(pem))
    }

    @Test func p384KeyIsRejectedWithCurveName() {
        #expect(throws: ConfigKeyCheckError("the EC key is on curve secp384r1, not P-256 (prime256v1)")) {
            try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(TestMaterial.p384Key))
        }
    }

    @Test func nonECKeyIsRejected() {
        #expect(throws: ConfigKeyCheckError("the key is not an EC key; ES256 needs a P-256 EC key")) {
            try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(TestMaterial.ed25519Key))
        }
    }

    @Test func certificateIsNotAKey() {
        #expect(throws: ConfigKeyCheckError.self) {
            try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(TestMaterial.serverCertificate))
        }
    }

    @Test func encryptedKeyIsRejected() {
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        #expect(throws: ConfigKeyCheckError.self) {
            try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(encrypted))
        }
    }

    @Test func matchingChainPasses() throws {
        let info = try ConfigKeyCheck.validateCertificateChain(
            certificatePEM: Self.bytes(TestMaterial.serverCertificate), keyPEM: Self.bytes(TestMaterial.serverKey))
        #expect(info.certificateCount == 1)
        #expect(!info.isExpired)
    }

    @Test func chainWithTwoCertificatesCountsBoth() throws {
        let chain = TestMaterial.serverCertificate + "\n" + TestMaterial.otherCertificate + "\n"
        let info = try ConfigKeyCheck.validateCertificateChain(
            certificatePEM: Self.bytes(chain), keyPEM: Self.bytes(TestMaterial.serverKey))
        #expect(info.certificateCount == 2)
    }

    @Test func mismatchedKeyIsRejected() {
        #expect(throws: ConfigKeyCheckError("the private key does not match the certificate")) {
            try ConfigKeyCheck.validateCertificateChain(
                certificatePEM: Self.bytes(TestMaterial.serverCertificate), keyPEM: Self.bytes(TestMaterial.otherKey))
        }
    }

    @Test func expiredCertificateIsFlagged() throws {
        let info = try ConfigKeyCheck.validateCertificateChain(
            certificatePEM: Self.bytes(TestMaterial.expiredCertificate), keyPEM: Self.bytes(TestMaterial.expiredKey))
        #expect(info.isExpired)
    }

    @Test func certificateAuthoritiesAreCounted() throws {
        let bundle = TestMaterial.serverCertificate + "\n" + TestMaterial.otherCertificate + "\n"
        #expect(try ConfigKeyCheck.validateCertificateAuthorities(pem: Self.bytes(bundle)) == 2)
        #expect(throws: ConfigKeyCheckError.self) {
            try ConfigKeyCheck.validateCertificateAuthorities(pem: Self.bytes(TestMaterial.serverKey))
        }
        #expect(throws: ConfigKeyCheckError("the PEM text is empty")) {
            try ConfigKeyCheck.validateCertificateAuthorities(pem: [])
        }
    }

    @Test func generatedKeyIsP256AndFresh() throws {
        let first = try ConfigKeyCheck.generateP256PrivateKeyPEM()
        let second = try ConfigKeyCheck.generateP256PrivateKeyPEM()
        #expect(first.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(first != second)
        try ConfigKeyCheck.validateP256PrivateKey(pem: Self.bytes(first))
    }

    @Test func randomBytesHaveRequestedLength() throws {
        let first = try ConfigKeyCheck.randomBytes(count: 32)
        let second = try ConfigKeyCheck.randomBytes(count: 32)
        #expect(first.count == 32)
        #expect(first != second)
    }
}
