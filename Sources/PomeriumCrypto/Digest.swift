import COpenSSL

/// An OpenSSL object pointer that is safe to share between threads because OpenSSL treats it as
/// immutable after creation: fetched algorithms, and keys used only for signing and verifying.
struct SharedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The hash functions that JOSE, HMAC and the signed-URL scheme use.
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case sha256 = "SHA2-256"
    case sha384 = "SHA2-384"
    case sha512 = "SHA2-512"
    /// SHA-512/256 (FIPS 180-4), which Go's `sha512.New512_256` implements.
    case sha512_256 = "SHA2-512/256"

    /// The digest length in bytes.
    public var outputSize: Int {
        switch self {
        case .sha256, .sha512_256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }

    // Each algorithm is fetched from the default provider once per process, so hot paths skip the
    // provider lookup that a by-name call does on every use.
    private static let fetched: [DigestAlgorithm: SharedHandle] = {
        var table: [DigestAlgorithm: SharedHandle] = [:]
        for algorithm in DigestAlgorithm.allCases {
            if let pointer = EVP_MD_fetch(nil, algorithm.rawValue, nil) {
                table[algorithm] = SharedHandle(pointer: pointer)
            }
        }
        return table
    }()

    /// The OpenSSL name as a C string with static storage.
    var cName: UnsafePointer<CChar> {
        switch self {
        case .sha256: cString("SHA2-256")
        case .sha384: cString("SHA2-384")
        case .sha512: cString("SHA2-512")
        case .sha512_256: cString("SHA2-512/256")
        }
    }

    /// The fetched `EVP_MD`.
    var evpMD: OpaquePointer {
        get throws {
            guard let handle = DigestAlgorithm.fetched[self] else { throw OpenSSLError("EVP_MD_fetch(\(rawValue))") }
            return handle.pointer
        }
    }
}

/// One-shot message digests.
public enum Digest {
    /// Returns the digest of `data` under `algorithm`.
    public static func hash(_ algorithm: DigestAlgorithm, _ data: some Collection<UInt8>) throws
        -> [UInt8]
    {
        let md = try algorithm.evpMD
        var output = [UInt8](repeating: 0, count: algorithm.outputSize)
        var length: UInt32 = 0
        let status = withContiguousBytes(data) { input in
            output.withUnsafeMutableBufferPointer { out in
                EVP_Digest(input.baseAddress, input.count, out.baseAddress, &length, md, nil)
            }
        }
        guard status == 1, Int(length) == algorithm.outputSize else { throw OpenSSLError("EVP_Digest") }
        return output
    }

    /// SHA-256 of `data`.
    public static func sha256(_ data: some Collection<UInt8>) throws -> [UInt8] {
        try hash(.sha256, data)
    }
}
