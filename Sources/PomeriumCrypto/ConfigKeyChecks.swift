import COpenSSL
import PomeriumCore

/// A key, certificate or CA setting that OpenSSL could not load, with a reason fit for an operator.
public struct ConfigKeyCheckError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// Facts about a certificate chain that loaded, for warnings.
public struct ConfigKeyCheckCertificateInfo: Sendable, Equatable {
    /// The number of certificates in the PEM text.
    public let certificateCount: Int
    /// Whether the first certificate's notAfter lies in the past.
    public let isExpired: Bool
}

/// The OpenSSL-backed checks that configuration loading runs on PEM settings. Each check parses
/// the PEM text the way the TLS and signing code later will, so a setting that passes here loads
/// there too. No check ever includes key material in its error.
public enum ConfigKeyCheck {
    /// Checks that `pem` holds a NIST P-256 EC private key, as an `EC PRIVATE KEY` (SEC 1) or a
    /// PKCS#8 `PRIVATE KEY` block. Encrypted keys are rejected because no passphrase is configured.
    public static func validateP256PrivateKey(pem: [UInt8]) throws(ConfigKeyCheckError) {
        let text = String(decoding: pem, as: UTF8.self)
        guard text.contains("-----BEGIN EC PRIVATE KEY-----") || text.contains("-----BEGIN PRIVATE KEY-----") else {
            if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
                throw ConfigKeyCheckError("the key is encrypted; store it unencrypted (openssl pkcs8 -nocrypt)")
            }
            throw ConfigKeyCheckError("no \"EC PRIVATE KEY\" or \"PRIVATE KEY\" PEM block found")
        }
        let key = try readPrivateKey(pem)
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_EC else {
            throw ConfigKeyCheckError("the key is not an EC key; ES256 needs a P-256 EC key")
        }
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(key, "group", &name, name.count, &length) == 1 else {
            ERR_clear_error()
            throw ConfigKeyCheckError("the EC key names no curve")
        }
        let curve = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard curve == "prime256v1" || curve == "P-256" else {
            throw ConfigKeyCheckError("the EC key is on curve \(curve), not P-256 (prime256v1)")
        }
    }

    /// Checks that `pem` contains a private key of any algorithm OpenSSL supports.
    public static func validatePrivateKey(pem: [UInt8]) throws(ConfigKeyCheckError) {
        let key = try readPrivateKey(pem)
        EVP_PKEY_free(key)
    }

    /// Checks that `certificatePEM` contains one or more X.509 certificates and that `keyPEM` is the
    /// private key of the first one.
    @discardableResult
    public static func validateCertificateChain(
        certificatePEM: [UInt8], keyPEM: [UInt8]
    ) throws(ConfigKeyCheckError) -> ConfigKeyCheckCertificateInfo {
        let certificates = try readCertificates(certificatePEM, what: "certificate")
        defer {
            for certificate in certificates { X509_free(certificate) }
        }
        let key = try readPrivateKey(keyPEM)
        defer { EVP_PKEY_free(key) }
        guard X509_check_private_key(certificates[0], key) == 1 else {
            ERR_clear_error()
            throw ConfigKeyCheckError("the private key does not match the certificate")
        }
        let expired = X509_cmp_current_time(X509_get0_notAfter(certificates[0])) < 0
        return ConfigKeyCheckCertificateInfo(certificateCount: certificates.count, isExpired: expired)
    }

    /// Checks that `pem` contains one or more X.509 CA certificates and returns their count.
    @discardableResult
    public static func validateCertificateAuthorities(pem: [UInt8]) throws(ConfigKeyCheckError) -> Int {
        let certificates = try readCertificates(pem, what: "CA certificate")
        for certificate in certificates { X509_free(certificate) }
        return certificates.count
    }

    /// Returns `count` bytes from OpenSSL's CSPRNG.
    public static func randomBytes(count: Int) throws(ConfigKeyCheckError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else {
            throw ConfigKeyCheckError(OpenSSLError("RAND_bytes").description)
        }
        return bytes
    }

    /// Generates a new P-256 private key and returns it as a PKCS#8 `PRIVATE KEY` PEM block.
    public static func generateP256PrivateKeyPEM() throws(ConfigKeyCheckError) -> String {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw ConfigKeyCheckError(OpenSSLError("EVP_PKEY_CTX_new_from_name").description)
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
            EVP_PKEY_generate(context, &key) == 1, let key
        else {
            throw ConfigKeyCheckError(OpenSSLError("EVP_PKEY_generate").description)
        }
        defer { EVP_PKEY_free(key) }
        guard let bio = BIO_new(BIO_s_mem()) else { throw ConfigKeyCheckError(OpenSSLError("BIO_new").description) }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else {
            throw ConfigKeyCheckError(OpenSSLError("PEM_write_bio_PrivateKey").description)
        }
        let pending = Int(BIO_ctrl_pending(bio))
        var output = [UInt8](repeating: 0, count: pending)
        let read = BIO_read(bio, &output, Int32(pending))
        guard read == Int32(pending) else { throw ConfigKeyCheckError(OpenSSLError("BIO_read").description) }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: PEM reading

    private static func withBIO<T>(
        _ pem: [UInt8], _ body: (OpaquePointer) throws(ConfigKeyCheckError) -> T
    ) throws(ConfigKeyCheckError) -> T {
        guard !pem.isEmpty else { throw ConfigKeyCheckError("the PEM text is empty") }
        let result: Result<T, ConfigKeyCheckError> = pem.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else {
                return .failure(ConfigKeyCheckError(OpenSSLError("BIO_new_mem_buf").description))
            }
            defer { BIO_free(bio) }
            do throws(ConfigKeyCheckError) {
                return .success(try body(bio))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    // The passphrase callbacks below supply no passphrase, so OpenSSL never prompts on the terminal.
    private static func readPrivateKey(_ pem: [UInt8]) throws(ConfigKeyCheckError) -> OpaquePointer {
        try withBIO(pem) { bio throws(ConfigKeyCheckError) -> OpaquePointer in
            guard let key = PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil) else {
                let detail = OpenSSLError("PEM_read_bio_PrivateKey").reasons.last.map { " (\($0))" } ?? ""
                throw ConfigKeyCheckError("no private key could be read from the PEM text\(detail)")
            }
            return key
        }
    }

    private static func readCertificates(_ pem: [UInt8], what: String) throws(ConfigKeyCheckError) -> [OpaquePointer] {
        try withBIO(pem) { bio throws(ConfigKeyCheckError) -> [OpaquePointer] in
            var certificates: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, { _, _, _, _ in 0 }, nil) {
                certificates.append(certificate)
            }
            // Reaching the end of the text queues a "no start line" error: drop it.
            ERR_clear_error()
            guard !certificates.isEmpty else {
                throw ConfigKeyCheckError("no \(what) could be read from the PEM text (expected a CERTIFICATE block)")
            }
            return certificates
        }
    }
}
