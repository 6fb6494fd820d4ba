import COpenSSL

/// Owns one `EVP_PKEY`. Keys are not changed after creation, and OpenSSL 3 allows concurrent signing
/// and verifying with one key, so the owner can be shared between threads.
final class EVPKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }

    func isA(_ name: String) -> Bool { EVP_PKEY_is_a(pointer, name) == 1 }

    var bits: Int { Int(EVP_PKEY_get_bits(pointer)) }

    /// A UTF-8 string parameter such as the EC group name, or nil when the key has none.
    func stringParameter(_ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 80)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(pointer, name, &buffer, buffer.count, &length) == 1 else {
            ERR_clear_error()
            return nil
        }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An octet-string parameter such as the encoded EC public point.
    func octetParameter(_ name: String) throws -> [UInt8] {
        var length = 0
        guard EVP_PKEY_get_octet_string_param(pointer, name, nil, 0, &length) == 1 else {
            throw OpenSSLError("EVP_PKEY_get_octet_string_param(\(name))")
        }
        var buffer = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_get_octet_string_param(pointer, name, &buffer, buffer.count, &length) == 1 else {
            throw OpenSSLError("EVP_PKEY_get_octet_string_param(\(name))")
        }
        return Array(buffer.prefix(length))
    }

    /// A big-number parameter such as an RSA modulus, as unsigned big-endian bytes.
    func bigNumberParameter(_ name: String) throws -> [UInt8] {
        var number: OpaquePointer? = nil
        guard EVP_PKEY_get_bn_param(pointer, name, &number) == 1, let number else {
            throw OpenSSLError("EVP_PKEY_get_bn_param(\(name))")
        }
        defer { BN_free(number) }
        let count = Int((BN_num_bits(number) + 7) / 8)
        var bytes = [UInt8](repeating: 0, count: count)
        _ = BN_bn2bin(number, &bytes)
        return bytes
    }

    /// One parameter for `fromData`. Names are static strings because `OSSL_PARAM_BLD` keeps the
    /// name pointer rather than a copy.
    enum Parameter {
        case utf8(StaticString, StaticString)
        case octets(StaticString, [UInt8])
        case bigNumber(StaticString, OpaquePointer)
    }

    /// Creates a key from `parameters`, as `EVP_PKEY_fromdata` does.
    static func fromData(type: String, selection: Int32, operation: String, parameters: [Parameter]) throws -> EVPKey {
        guard let builder = OSSL_PARAM_BLD_new() else { throw OpenSSLError("OSSL_PARAM_BLD_new") }
        defer { OSSL_PARAM_BLD_free(builder) }
        // The builder also keeps value pointers until OSSL_PARAM_BLD_to_param, so octet strings are
        // copied into buffers that outlive that call.
        var buffers: [UnsafeMutableRawBufferPointer] = []
        defer {
            for buffer in buffers { buffer.deallocate() }
        }
        for parameter in parameters {
            let pushed: Int32
            switch parameter {
            case .utf8(let name, let value):
                pushed = OSSL_PARAM_BLD_push_utf8_string(builder, cString(name), cString(value), 0)
            case .octets(let name, let bytes):
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
                buffers.append(buffer)
                buffer.copyBytes(from: bytes)
                pushed = OSSL_PARAM_BLD_push_octet_string(builder, cString(name), buffer.baseAddress, bytes.count)
            case .bigNumber(let name, let number):
                pushed = OSSL_PARAM_BLD_push_BN(builder, cString(name), number)
            }
            guard pushed == 1 else { throw OpenSSLError("\(operation): OSSL_PARAM_BLD_push") }
        }
        guard let built = OSSL_PARAM_BLD_to_param(builder) else {
            throw OpenSSLError("\(operation): OSSL_PARAM_BLD_to_param")
        }
        defer { OSSL_PARAM_free(built) }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, type, nil) else {
            throw OpenSSLError("EVP_PKEY_CTX_new_from_name(\(type))")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_fromdata_init(context) == 1,
            EVP_PKEY_fromdata(context, &key, selection, built) == 1,
            let key
        else { throw OpenSSLError("\(operation): EVP_PKEY_fromdata") }
        return EVPKey(key)
    }

    /// Signs `data` with `digest` (nil for Ed25519) and returns OpenSSL's signature encoding.
    func sign(_ data: some Collection<UInt8>, digest: DigestAlgorithm?) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        let md = try digest?.evpMD
        guard EVP_DigestSignInit(context, nil, md, nil, pointer) == 1 else {
            throw OpenSSLError("EVP_DigestSignInit")
        }
        return try withContiguousBytes(data) { input in
            let base = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
            var length = 0
            guard EVP_DigestSign(context, nil, &length, base, input.count) == 1 else {
                throw OpenSSLError("EVP_DigestSign")
            }
            var signature = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(context, &signature, &length, base, input.count) == 1 else {
                throw OpenSSLError("EVP_DigestSign")
            }
            return Array(signature.prefix(length))
        }
    }

    /// Whether `signature` verifies over `data`. `configure` may set padding on the key context.
    func verify(
        _ signature: some Collection<UInt8>,
        over data: some Collection<UInt8>,
        digest: DigestAlgorithm?,
        configure: (OpaquePointer) -> Bool = { _ in true }
    ) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        let md = digest.flatMap { try? $0.evpMD }
        if digest != nil && md == nil { return false }
        var keyContext: OpaquePointer? = nil
        guard EVP_DigestVerifyInit(context, &keyContext, md, nil, pointer) == 1, let keyContext,
            configure(keyContext)
        else { return false }
        return withContiguousBytes(signature) { sig in
            withContiguousBytes(data) { input in
                EVP_DigestVerify(
                    context, sig.baseAddress?.assumingMemoryBound(to: UInt8.self), sig.count,
                    input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count) == 1
            }
        }
    }

    /// The SubjectPublicKeyInfo PEM of the key.
    func publicKeyPEM() throws -> String {
        try BIOBuffer.write { bio in PEM_write_bio_PUBKEY(bio, pointer) == 1 }
    }
}

/// Memory BIO helpers for PEM input and output.
enum BIOBuffer {
    static func write(_ body: (OpaquePointer) -> Bool) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError("BIO_new") }
        defer { BIO_free(bio) }
        guard body(bio) else { throw OpenSSLError("PEM_write_bio") }
        let pending = Int(BIO_ctrl_pending(bio))
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = BIO_read(bio, &bytes, Int32(pending))
        guard read == pending else { throw OpenSSLError("BIO_read") }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func read<Result>(_ text: String, _ body: (OpaquePointer) -> Result?) -> Result? {
        var text = text
        return text.withUTF8 { utf8 in
            guard let bio = BIO_new_mem_buf(utf8.baseAddress, Int32(utf8.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }
}

/// A PEM password callback that supplies no password, so an encrypted key fails to load instead of
/// OpenSSL prompting on the terminal.
let noPassword: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
    _, _, _, _ in 0
}

/// A C string pointer to a static string's storage, which lives for the whole process. OpenSSL
/// parameter arrays and builders keep name pointers, so temporary bridged strings would dangle.
func cString(_ string: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(string.utf8Start).assumingMemoryBound(to: CChar.self)
}
