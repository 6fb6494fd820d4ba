import COpenSSL

/// Cryptographically secure random bytes from OpenSSL's default DRBG (`RAND_bytes`).
public enum SecureRandom {
    /// Returns `count` random bytes.
    ///
    /// - Throws: `OpenSSLError` when the DRBG cannot produce output (it failed to seed).
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return output }
        let status = output.withUnsafeMutableBytes { buffer in
            RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        guard status == 1 else { throw OpenSSLError("RAND_bytes") }
        return output
    }
}

/// Comparison of secret byte strings in time that depends only on the length (`CRYPTO_memcmp`).
public enum ConstantTime {
    /// Whether `lhs` and `rhs` are equal. Lengths are public, so unequal lengths return false at once.
    public static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.isEmpty { return true }
        return withContiguousBytes(lhs) { left in
            withContiguousBytes(rhs) { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }
}

extension ConstantTime {
    /// Returns whether the bytes at `lhs` and `rhs` are equal, in time that depends only on the length.
    /// Unequal lengths return false at once.
    public static func equals(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        guard let left = lhs.baseAddress, let right = rhs.baseAddress else { return true }
        return CRYPTO_memcmp(left, right, lhs.count) == 0
    }
}

/// Runs `body` over the bytes of `bytes` without a copy when the collection is contiguous.
@inlinable
func withContiguousBytes<Bytes: Collection<UInt8>, Result>(
    _ bytes: Bytes,
    _ body: (UnsafeRawBufferPointer) throws -> Result
) rethrows -> Result {
    if let result = try bytes.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    return try Array(bytes).withUnsafeBytes(body)
}
