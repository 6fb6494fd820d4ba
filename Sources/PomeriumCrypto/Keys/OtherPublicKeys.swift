import COpenSSL

/// An RSA public key for verifying identity-provider tokens (RS256 and PS256).
public final class RSAPublicKey: Sendable, Equatable {
    let key: EVPKey
    /// The modulus, big-endian without leading zeros.
    public let modulus: [UInt8]
    /// The public exponent, big-endian without leading zeros.
    public let exponent: [UInt8]

    /// The smallest modulus accepted, in bits; RFC 7518 section 3.3 requires 2048 or more.
    public static let minimumBits = 2048

    /// Creates a key from its modulus and exponent, big-endian.
    ///
    /// - Throws: `KeyError` for a modulus under 2048 bits or an invalid exponent.
    public init(modulus: [UInt8], exponent: [UInt8]) throws {
        let modulus = Array(modulus.drop { $0 == 0 })
        let exponent = Array(exponent.drop { $0 == 0 })
        let bits = modulus.isEmpty ? 0 : modulus.count * 8 - modulus[0].leadingZeroBitCount
        guard bits >= RSAPublicKey.minimumBits else {
            throw KeyError("invalid RSA public key: the modulus has \(bits) bits, at least 2048 are required")
        }
        guard !exponent.isEmpty, exponent.count <= 8, exponent.last! & 1 == 1 else {
            throw KeyError("invalid RSA public key: the exponent must be odd and at most 64 bits")
        }
        guard let n = BN_bin2bn(modulus, Int32(modulus.count), nil) else { throw OpenSSLError("BN_bin2bn") }
        defer { BN_free(n) }
        guard let e = BN_bin2bn(exponent, Int32(exponent.count), nil) else { throw OpenSSLError("BN_bin2bn") }
        defer { BN_free(e) }
        key = try EVPKey.fromData(
            type: "RSA", selection: CShim_EVP_PKEY_PUBLIC_KEY(), operation: "RSA public key",
            parameters: [.bigNumber("n", n), .bigNumber("e", e)])
        self.modulus = modulus
        self.exponent = exponent
    }

    init(key: EVPKey) throws {
        guard key.bits >= RSAPublicKey.minimumBits else {
            throw KeyError("invalid RSA public key: the modulus has \(key.bits) bits, at least 2048 are required")
        }
        self.key = key
        modulus = try key.bigNumberParameter(OSSL_PKEY_PARAM_RSA_N)
        exponent = try key.bigNumberParameter(OSSL_PKEY_PARAM_RSA_E)
    }

    /// Whether an RSASSA-PKCS1-v1_5 signature verifies over `data`.
    public func verifyPKCS1(
        signature: some Collection<UInt8>, for data: some Collection<UInt8>, digest: DigestAlgorithm
    )
        -> Bool
    {
        key.verify(signature, over: data, digest: digest) { context in
            EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1
        }
    }

    /// Whether an RSASSA-PSS signature (MGF1 with the same digest, salt as long as the digest, as
    /// RFC 7518 section 3.5 specifies) verifies over `data`.
    public func verifyPSS(signature: some Collection<UInt8>, for data: some Collection<UInt8>, digest: DigestAlgorithm)
        -> Bool
    {
        guard let md = try? digest.evpMD else { return false }
        return key.verify(signature, over: data, digest: digest) { context in
            EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) == 1
                && EVP_PKEY_CTX_set_rsa_mgf1_md(context, md) == 1
                && EVP_PKEY_CTX_set_rsa_pss_saltlen(context, Int32(digest.outputSize)) == 1
        }
    }

    /// The SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    public func pem() throws -> String { try key.publicKeyPEM() }

    public static func == (lhs: RSAPublicKey, rhs: RSAPublicKey) -> Bool {
        lhs.modulus == rhs.modulus && lhs.exponent == rhs.exponent
    }
}

/// An Ed25519 public key for verifying EdDSA identity-provider tokens.
public final class Ed25519PublicKey: Sendable, Equatable {
    let key: EVPKey
    /// The 32-byte encoded public key.
    public let rawRepresentation: [UInt8]

    /// Creates a key from its 32-byte encoding (RFC 8032).
    public init(rawRepresentation: [UInt8]) throws {
        guard rawRepresentation.count == 32 else {
            throw KeyError("invalid Ed25519 public key: \(rawRepresentation.count) bytes, expected 32")
        }
        guard let pointer = EVP_PKEY_new_raw_public_key_ex(nil, "ED25519", nil, rawRepresentation, 32) else {
            ERR_clear_error()
            throw KeyError("invalid Ed25519 public key: OpenSSL rejected the encoding")
        }
        key = EVPKey(pointer)
        self.rawRepresentation = rawRepresentation
    }

    init(key: EVPKey) throws {
        var length = 32
        var bytes = [UInt8](repeating: 0, count: 32)
        guard EVP_PKEY_get_raw_public_key(key.pointer, &bytes, &length) == 1, length == 32 else {
            throw OpenSSLError("EVP_PKEY_get_raw_public_key")
        }
        self.key = key
        rawRepresentation = bytes
    }

    /// Whether the 64-byte signature verifies over `data`.
    public func verify(signature: some Collection<UInt8>, for data: some Collection<UInt8>) -> Bool {
        guard signature.count == 64 else { return false }
        return key.verify(signature, over: data, digest: nil)
    }

    /// The SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    public func pem() throws -> String { try key.publicKeyPEM() }

    public static func == (lhs: Ed25519PublicKey, rhs: Ed25519PublicKey) -> Bool {
        lhs.rawRepresentation == rhs.rawRepresentation
    }
}

/// A public key of any type that JOSE verification supports.
public enum PublicKey: Sendable, Equatable {
    case ec(ECPublicKey)
    case rsa(RSAPublicKey)
    case ed25519(Ed25519PublicKey)

    /// Parses a SubjectPublicKeyInfo PEM (`PUBLIC KEY`) containing an EC, RSA or Ed25519 key.
    ///
    /// - Throws: `KeyError` when the text contains no such key.
    public init(pem: String) throws {
        let parsed = BIOBuffer.read(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, noPassword, nil) }
        guard let parsed else {
            ERR_clear_error()
            throw KeyError("invalid public key: no PEM \"PUBLIC KEY\" block could be read")
        }
        let key = EVPKey(parsed)
        if key.isA("EC") {
            guard let name = key.stringParameter(OSSL_PKEY_PARAM_GROUP_NAME), let curve = ECCurve(groupName: name)
            else {
                throw KeyError("invalid public key: the EC curve is not P-256 or P-384")
            }
            self = .ec(
                try ECPublicKey(uncompressedPoint: try key.octetParameter(OSSL_PKEY_PARAM_PUB_KEY), curve: curve))
        } else if key.isA("RSA") {
            self = .rsa(try RSAPublicKey(key: key))
        } else if key.isA("ED25519") {
            self = .ed25519(try Ed25519PublicKey(key: key))
        } else {
            throw KeyError("invalid public key: only EC P-256/P-384, RSA and Ed25519 keys are supported")
        }
    }
}
