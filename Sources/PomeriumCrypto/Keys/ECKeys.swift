import COpenSSL

/// The NIST curves that JOSE's ES256 and ES384 use.
public enum ECCurve: String, Sendable, CaseIterable {
    case p256 = "P-256"
    case p384 = "P-384"

    /// The byte length of one coordinate, and of R and S in a raw signature.
    public var coordinateSize: Int {
        switch self {
        case .p256: 32
        case .p384: 48
        }
    }

    /// The digest that the matching JWS algorithm uses.
    public var digest: DigestAlgorithm {
        switch self {
        case .p256: .sha256
        case .p384: .sha384
        }
    }

    /// OpenSSL's group name.
    var groupName: StaticString {
        switch self {
        case .p256: "prime256v1"
        case .p384: "secp384r1"
        }
    }

    init?(groupName: String) {
        switch groupName {
        case "prime256v1", "P-256", "secp256r1": self = .p256
        case "secp384r1", "P-384": self = .p384
        default: return nil
        }
    }
}

/// An ECDSA private key on P-256 or P-384.
public final class ECPrivateKey: Sendable {
    let key: EVPKey
    /// The key's curve.
    public let curve: ECCurve
    /// The matching public key.
    public let publicKey: ECPublicKey

    init(key: EVPKey, curve: ECCurve) throws {
        self.key = key
        self.curve = curve
        let point = try key.octetParameter(OSSL_PKEY_PARAM_PUB_KEY)
        publicKey = try ECPublicKey(uncompressedPoint: point, curve: curve)
    }

    /// Generates a new key pair.
    public static func generate(curve: ECCurve = .p256) throws -> ECPrivateKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw OpenSSLError("EVP_PKEY_CTX_new_from_name(EC)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(context) == 1,
            EVP_PKEY_CTX_set_group_name(context, cString(curve.groupName)) == 1,
            EVP_PKEY_generate(context, &key) == 1,
            let key
        else { throw OpenSSLError("EVP_PKEY_generate(EC \(curve.rawValue))") }
        return try ECPrivateKey(key: EVPKey(key), curve: curve)
    }

    /// Parses a PEM private key: SEC 1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY` (unencrypted).
    ///
    /// - Throws: `KeyError` when the text contains no such key, or the key is not on P-256 or P-384.
    public convenience init(pem: String) throws {
        let parsed = BIOBuffer.read(pem) { bio in PEM_read_bio_PrivateKey(bio, nil, noPassword, nil) }
        guard let parsed else {
            ERR_clear_error()
            throw KeyError(
                "invalid private key: no unencrypted PEM \"EC PRIVATE KEY\" or \"PRIVATE KEY\" block could be read")
        }
        let key = EVPKey(parsed)
        guard key.isA("EC") else {
            throw KeyError("invalid private key: expected an EC key on P-256 or P-384, found another key type")
        }
        guard let name = key.stringParameter(OSSL_PKEY_PARAM_GROUP_NAME), let curve = ECCurve(groupName: name) else {
            throw KeyError("invalid private key: the EC curve is not P-256 or P-384")
        }
        try self.init(key: key, curve: curve)
    }

    /// The key as SEC 1 PEM (`EC PRIVATE KEY`), the form of Pomerium's `signing_key` setting.
    public func sec1PEM() throws -> String {
        try BIOBuffer.write { bio in
            PEM_write_bio_PrivateKey_traditional(bio, key.pointer, nil, nil, 0, nil, nil) == 1
        }
    }

    /// The key as PKCS#8 PEM (`PRIVATE KEY`).
    public func pkcs8PEM() throws -> String {
        try BIOBuffer.write { bio in PEM_write_bio_PrivateKey(bio, key.pointer, nil, nil, 0, nil, nil) == 1 }
    }

    /// Signs `data` (hashed with the curve's digest) and returns the raw `R || S` form that JWS uses.
    public func sign(_ data: some Collection<UInt8>) throws -> [UInt8] {
        let der = try key.sign(data, digest: curve.digest)
        guard let raw = ECDSASignature.raw(fromDER: der, coordinateSize: curve.coordinateSize) else {
            throw OpenSSLError("d2i_ECDSA_SIG")
        }
        return raw
    }
}

/// An ECDSA public key on P-256 or P-384.
public final class ECPublicKey: Sendable, Equatable {
    let key: EVPKey
    /// The key's curve.
    public let curve: ECCurve
    /// The affine X coordinate, big-endian, padded to the curve's coordinate size.
    public let x: [UInt8]
    /// The affine Y coordinate, big-endian, padded to the curve's coordinate size.
    public let y: [UInt8]

    /// Creates a key from its coordinates. OpenSSL checks that the point lies on the curve.
    ///
    /// - Throws: `KeyError` for coordinates of the wrong length or a point not on the curve.
    public convenience init(x: [UInt8], y: [UInt8], curve: ECCurve) throws {
        guard x.count == curve.coordinateSize, y.count == curve.coordinateSize else {
            throw KeyError(
                "invalid EC public key: coordinates of \(x.count) and \(y.count) bytes, expected \(curve.coordinateSize) each for \(curve.rawValue)"
            )
        }
        try self.init(uncompressedPoint: [0x04] + x + y, curve: curve)
    }

    init(uncompressedPoint point: [UInt8], curve: ECCurve) throws {
        let size = curve.coordinateSize
        guard point.count == 1 + 2 * size, point[0] == 0x04 else {
            throw KeyError("invalid EC public key: expected an uncompressed \(curve.rawValue) point")
        }
        let built = try? EVPKey.fromData(
            type: "EC", selection: CShim_EVP_PKEY_PUBLIC_KEY(), operation: "EC public key",
            parameters: [.utf8("group", curve.groupName), .octets("pub", point)])
        guard let built else {
            ERR_clear_error()
            throw KeyError("invalid EC public key: the point is not on \(curve.rawValue)")
        }
        key = built
        self.curve = curve
        x = Array(point[1...size])
        y = Array(point[(1 + size)...])
    }

    /// Whether the raw `R || S` signature verifies over `data`.
    public func verify(signature: some Collection<UInt8>, for data: some Collection<UInt8>) -> Bool {
        guard let der = ECDSASignature.der(fromRaw: Array(signature), coordinateSize: curve.coordinateSize) else {
            return false
        }
        return key.verify(der, over: data, digest: curve.digest)
    }

    /// The SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    public func pem() throws -> String { try key.publicKeyPEM() }

    public static func == (lhs: ECPublicKey, rhs: ECPublicKey) -> Bool {
        lhs.curve == rhs.curve && lhs.x == rhs.x && lhs.y == rhs.y
    }
}

/// Conversion between the DER `ECDSA-Sig-Value` that OpenSSL produces and the fixed-length
/// `R || S` that JWS (RFC 7518 section 3.4) requires.
public enum ECDSASignature {
    /// Converts DER to `R || S`, each padded to `coordinateSize`; nil for invalid DER.
    public static func raw(fromDER der: [UInt8], coordinateSize: Int) -> [UInt8]? {
        der.withUnsafeBufferPointer { buffer -> [UInt8]? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let signature = d2i_ECDSA_SIG(nil, &cursor, buffer.count) else {
                ERR_clear_error()
                return nil
            }
            defer { ECDSA_SIG_free(signature) }
            // Trailing bytes after the DER value make the encoding ambiguous.
            guard cursor == buffer.baseAddress.map({ $0 + buffer.count }) else { return nil }
            var r: OpaquePointer? = nil
            var s: OpaquePointer? = nil
            ECDSA_SIG_get0(signature, &r, &s)
            guard let r, let s else { return nil }
            var output = [UInt8](repeating: 0, count: 2 * coordinateSize)
            let written = output.withUnsafeMutableBufferPointer { out in
                (
                    BN_bn2binpad(r, out.baseAddress, Int32(coordinateSize)),
                    BN_bn2binpad(s, out.baseAddress! + coordinateSize, Int32(coordinateSize))
                )
            }
            guard written.0 == Int32(coordinateSize), written.1 == Int32(coordinateSize) else { return nil }
            return output
        }
    }

    /// Converts `R || S` to DER; nil when the length is not twice `coordinateSize`.
    public static func der(fromRaw raw: [UInt8], coordinateSize: Int) -> [UInt8]? {
        guard raw.count == 2 * coordinateSize else { return nil }
        guard let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32(coordinateSize), nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + coordinateSize, Int32(coordinateSize), nil) }
        guard let r, let s, ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            return nil
        }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { return nil }
        var output = [UInt8](repeating: 0, count: Int(length))
        let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &cursor)
        }
        return written == length ? output : nil
    }
}
