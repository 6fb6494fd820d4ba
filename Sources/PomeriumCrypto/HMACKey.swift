import COpenSSL

/// An HMAC key bound to one hash function. The key is loaded into an OpenSSL MAC context once, and
/// each computation works on a copy of that context, so one `HMACKey` serves many threads.
public final class HMACKey: @unchecked Sendable {
    // Initialised with the key and the digest and never updated itself: only duplicates are.
    private let template: OpaquePointer
    /// The hash function under the MAC.
    public let digest: DigestAlgorithm

    private static let hmac: SharedHandle? = EVP_MAC_fetch(nil, "HMAC", nil).map { SharedHandle(pointer: $0) }

    /// Creates a key from raw bytes.
    ///
    /// - Throws: `OpenSSLError` when the key is empty or OpenSSL rejects it.
    public init(key: some Collection<UInt8>, digest: DigestAlgorithm) throws {
        guard !key.isEmpty else {
            throw OpenSSLError("HMAC key check: the key is empty")
        }
        guard let mac = HMACKey.hmac?.pointer else { throw OpenSSLError("EVP_MAC_fetch(HMAC)") }
        guard let context = EVP_MAC_CTX_new(mac) else { throw OpenSSLError("EVP_MAC_CTX_new") }
        let status = withContiguousBytes(key) { keyBytes in
            var parameters = [
                OSSL_PARAM_construct_utf8_string(cString("digest"), UnsafeMutablePointer(mutating: digest.cName), 0),
                OSSL_PARAM_construct_end(),
            ]
            return EVP_MAC_init(
                context, keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), keyBytes.count, &parameters)
        }
        guard status == 1 else {
            EVP_MAC_CTX_free(context)
            throw OpenSSLError("EVP_MAC_init")
        }
        self.template = context
        self.digest = digest
    }

    deinit { EVP_MAC_CTX_free(template) }

    /// Returns the MAC of `data`.
    public func authenticate(_ data: some Collection<UInt8>) throws -> [UInt8] {
        try withContiguousBytes(data) { input in try authenticate(parts: [input]) }
    }

    /// Returns the MAC of the concatenation of `parts`, without joining them first.
    public func authenticate(parts: [UnsafeRawBufferPointer]) throws -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(template) else { throw OpenSSLError("EVP_MAC_CTX_dup") }
        defer { EVP_MAC_CTX_free(context) }
        for part in parts where part.count > 0 {
            guard EVP_MAC_update(context, part.baseAddress?.assumingMemoryBound(to: UInt8.self), part.count) == 1
            else { throw OpenSSLError("EVP_MAC_update") }
        }
        var output = [UInt8](repeating: 0, count: digest.outputSize)
        var length = 0
        let status = output.withUnsafeMutableBufferPointer { out in
            EVP_MAC_final(context, out.baseAddress, &length, out.count)
        }
        guard status == 1, length == digest.outputSize else { throw OpenSSLError("EVP_MAC_final") }
        return output
    }

    /// Whether `mac` is the MAC of `data`, compared in constant time.
    public func isValid(mac: some Collection<UInt8>, for data: some Collection<UInt8>) -> Bool {
        guard let expected = try? authenticate(data) else { return false }
        return ConstantTime.equals(expected, mac)
    }
}
