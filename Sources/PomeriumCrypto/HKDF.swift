import COpenSSL

/// HKDF (RFC 5869) through OpenSSL's `EVP_KDF` "HKDF", extract-then-expand.
public enum HKDF {
    private static let kdf: SharedHandle? = EVP_KDF_fetch(nil, "HKDF", nil).map { SharedHandle(pointer: $0) }

    /// Returns `length` bytes derived from the input keying material `key`, `salt` and `info`.
    public static func deriveKey(
        key: some Collection<UInt8>,
        salt: some Collection<UInt8>,
        info: some Collection<UInt8>,
        length: Int,
        digest: DigestAlgorithm = .sha256
    ) throws -> [UInt8] {
        let context = try makeContext(key: key, info: info, digest: digest)
        defer { EVP_KDF_CTX_free(context) }
        return try derive(context: context, salt: salt, length: length)
    }

    /// Creates a context with the key, info and digest set, for `derive(context:salt:length:)`.
    static func makeContext(
        key: some Collection<UInt8>,
        info: some Collection<UInt8>,
        digest: DigestAlgorithm
    ) throws -> OpaquePointer {
        guard let kdf = kdf?.pointer, let context = EVP_KDF_CTX_new(kdf) else { throw OpenSSLError("EVP_KDF_CTX_new") }
        let status = withContiguousBytes(key) { keyBytes in
            withContiguousBytes(info) { infoBytes in
                var parameters = [
                    OSSL_PARAM_construct_utf8_string(
                        cString("digest"), UnsafeMutablePointer(mutating: digest.cName), 0),
                    OSSL_PARAM_construct_octet_string(
                        cString("key"), UnsafeMutableRawPointer(mutating: keyBytes.baseAddress), keyBytes.count),
                    OSSL_PARAM_construct_octet_string(
                        cString("info"), UnsafeMutableRawPointer(mutating: infoBytes.baseAddress), infoBytes.count),
                    OSSL_PARAM_construct_end(),
                ]
                return EVP_KDF_CTX_set_params(context, &parameters)
            }
        }
        guard status == 1 else {
            EVP_KDF_CTX_free(context)
            throw OpenSSLError("EVP_KDF_CTX_set_params(HKDF)")
        }
        return context
    }

    /// Derives `length` bytes from a context made by `makeContext` with `salt` set on it.
    static func derive(context: OpaquePointer, salt: some Collection<UInt8>, length: Int) throws
        -> [UInt8]
    {
        var output = [UInt8](repeating: 0, count: length)
        let status = withContiguousBytes(salt) { saltBytes in
            output.withUnsafeMutableBufferPointer { out in
                var parameters = [
                    OSSL_PARAM_construct_octet_string(
                        cString("salt"), UnsafeMutableRawPointer(mutating: saltBytes.baseAddress), saltBytes.count),
                    OSSL_PARAM_construct_end(),
                ]
                return EVP_KDF_derive(context, out.baseAddress, length, &parameters)
            }
        }
        guard status == 1 else { throw OpenSSLError("EVP_KDF_derive(HKDF)") }
        return output
    }
}
