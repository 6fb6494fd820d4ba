import COpenSSL
import Synchronization

/// Authenticated encryption with AES-256-GCM under a fresh key for every message.
///
/// Sealed format: `salt (32 bytes) || ciphertext || tag (16 bytes)`. The message key is
/// HKDF-SHA-256(secret, salt, info = "pomerium-aead-v1 " + purpose) with a random 32-byte salt, and
/// the GCM nonce is fixed at twelve zero bytes, which is safe because no message key is used twice.
/// A random 96-bit nonce under one long-lived key would limit a deployment to about 2^32 sealed
/// messages per secret; a 256-bit random salt removes that limit. The purpose string separates the
/// keys of different artefacts that share one secret.
public final class AEADKey: @unchecked Sendable {
    /// The salt length in bytes.
    public static let saltSize = 32
    /// The GCM tag length in bytes.
    public static let tagSize = 16
    /// Bytes that sealing adds to a plaintext.
    public static let overhead = saltSize + tagSize

    // HKDF contexts with the secret, digest and info set; each derivation borrows one and sets only
    // the salt. OpenSSL 3.0 cannot duplicate an HKDF context, so idle ones wait in a small pool.
    private let secret: [UInt8]
    private let info: [UInt8]
    private let idleContexts = Mutex<[SharedHandle]>([])
    private static let maximumIdleContexts = 16

    private static let cipher: SharedHandle? = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil).map {
        SharedHandle(pointer: $0)
    }
    private static let zeroNonce = [UInt8](repeating: 0, count: 12)

    /// Creates a key from a secret of at least 32 bytes and a purpose label.
    ///
    /// - Throws: `AEADError.secretTooShort` for a shorter secret; `OpenSSLError` when OpenSSL fails.
    public init(secret: some Collection<UInt8>, purpose: String) throws {
        guard secret.count >= 32 else { throw AEADError.secretTooShort(secret.count) }
        self.secret = Array(secret)
        self.info = Array("pomerium-aead-v1 \(purpose)".utf8)
        // Fail at construction, not on first use, when OpenSSL lacks HKDF.
        let first = try HKDF.makeContext(key: self.secret, info: info, digest: .sha256)
        idleContexts.withLock { $0.append(SharedHandle(pointer: first)) }
    }

    deinit {
        idleContexts.withLock { contexts in
            for context in contexts { EVP_KDF_CTX_free(context.pointer) }
        }
    }

    private func messageKey(salt: some Collection<UInt8>) throws -> [UInt8] {
        let borrowed = idleContexts.withLock { $0.popLast() }
        let context = try borrowed?.pointer ?? HKDF.makeContext(key: secret, info: info, digest: .sha256)
        let key: [UInt8]
        do {
            key = try HKDF.derive(context: context, salt: salt, length: 32)
        } catch {
            EVP_KDF_CTX_free(context)
            throw error
        }
        let kept = idleContexts.withLock { contexts in
            guard contexts.count < AEADKey.maximumIdleContexts else { return false }
            contexts.append(SharedHandle(pointer: context))
            return true
        }
        if !kept { EVP_KDF_CTX_free(context) }
        return key
    }

    /// Encrypts `plaintext` and authenticates it together with `associatedData`.
    public func seal(_ plaintext: some Collection<UInt8>, associatedData: some Collection<UInt8> = [UInt8]())
        throws -> [UInt8]
    {
        let salt = try SecureRandom.bytes(AEADKey.saltSize)
        let key = try messageKey(salt: salt)
        guard let cipher = AEADKey.cipher?.pointer, let context = EVP_CIPHER_CTX_new() else {
            throw OpenSSLError("EVP_CIPHER_CTX_new")
        }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex2(context, cipher, key, AEADKey.zeroNonce, nil) == 1 else {
            throw OpenSSLError("EVP_EncryptInit_ex2")
        }
        var output = [UInt8](repeating: 0, count: AEADKey.saltSize + plaintext.count + AEADKey.tagSize)
        output.replaceSubrange(0..<AEADKey.saltSize, with: salt)
        var length: Int32 = 0
        try withContiguousBytes(associatedData) { ad in
            guard ad.count == 0 || EVP_EncryptUpdate(context, nil, &length, ad.baseAddress, Int32(ad.count)) == 1
            else { throw OpenSSLError("EVP_EncryptUpdate(associated data)") }
        }
        try output.withUnsafeMutableBufferPointer { out in
            let body = out.baseAddress! + AEADKey.saltSize
            var written: Int32 = 0
            try withContiguousBytes(plaintext) { input in
                guard
                    input.count == 0
                        || EVP_EncryptUpdate(context, body, &written, input.baseAddress, Int32(input.count)) == 1
                else { throw OpenSSLError("EVP_EncryptUpdate") }
            }
            var finalLength: Int32 = 0
            guard EVP_EncryptFinal_ex(context, body + Int(written), &finalLength) == 1 else {
                throw OpenSSLError("EVP_EncryptFinal_ex")
            }
            let tag = body + plaintext.count
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AEADKey.tagSize), tag) == 1 else {
                throw OpenSSLError("EVP_CTRL_AEAD_GET_TAG")
            }
        }
        return output
    }

    /// Decrypts a sealed message and checks its tag over the ciphertext and `associatedData`.
    ///
    /// - Throws: `AEADError.tooShort` or `AEADError.authenticationFailed`; `OpenSSLError` when OpenSSL
    ///   itself fails.
    public func open(_ sealed: some Collection<UInt8>, associatedData: some Collection<UInt8> = [UInt8]()) throws
        -> [UInt8]
    {
        guard sealed.count >= AEADKey.overhead else { throw AEADError.tooShort(sealed.count) }
        return try withContiguousBytes(sealed) { input in
            let salt = UnsafeRawBufferPointer(rebasing: input[0..<AEADKey.saltSize])
            let ciphertextCount = input.count - AEADKey.overhead
            let key = try messageKey(salt: salt)
            guard let cipher = AEADKey.cipher?.pointer, let context = EVP_CIPHER_CTX_new() else {
                throw OpenSSLError("EVP_CIPHER_CTX_new")
            }
            defer { EVP_CIPHER_CTX_free(context) }
            guard EVP_DecryptInit_ex2(context, cipher, key, AEADKey.zeroNonce, nil) == 1 else {
                throw OpenSSLError("EVP_DecryptInit_ex2")
            }
            var length: Int32 = 0
            try withContiguousBytes(associatedData) { ad in
                guard ad.count == 0 || EVP_DecryptUpdate(context, nil, &length, ad.baseAddress, Int32(ad.count)) == 1
                else { throw OpenSSLError("EVP_DecryptUpdate(associated data)") }
            }
            let base = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var output = [UInt8](repeating: 0, count: ciphertextCount)
            var written: Int32 = 0
            let updated = output.withUnsafeMutableBufferPointer { out in
                ciphertextCount == 0
                    || EVP_DecryptUpdate(
                        context, out.baseAddress, &written, base + AEADKey.saltSize, Int32(ciphertextCount)) == 1
            }
            guard updated else { throw OpenSSLError("EVP_DecryptUpdate") }
            let tag = UnsafeMutableRawPointer(mutating: base + AEADKey.saltSize + ciphertextCount)
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(AEADKey.tagSize), tag) == 1 else {
                throw OpenSSLError("EVP_CTRL_AEAD_SET_TAG")
            }
            var finalLength: Int32 = 0
            let verified = output.withUnsafeMutableBufferPointer { out in
                EVP_DecryptFinal_ex(context, out.baseAddress.map { $0 + Int(written) }, &finalLength) == 1
            }
            guard verified else {
                ERR_clear_error()
                throw AEADError.authenticationFailed
            }
            return output
        }
    }
}

/// A failure to open a sealed message or to create a key.
public enum AEADError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The secret has fewer than 32 bytes (the count is given).
    case secretTooShort(Int)
    /// The sealed message is shorter than the salt and tag (the count is given).
    case tooShort(Int)
    /// The tag does not match: wrong key, wrong associated data, or altered bytes.
    case authenticationFailed

    public var description: String {
        switch self {
        case .secretTooShort(let count):
            "invalid AEAD secret: \(count) bytes, expected at least 32 (generate one with `head -c32 /dev/urandom | base64`)"
        case .tooShort(let count):
            "invalid sealed message: \(count) bytes is shorter than the \(AEADKey.overhead)-byte salt and tag"
        case .authenticationFailed: "sealed message authentication failed"
        }
    }
}
