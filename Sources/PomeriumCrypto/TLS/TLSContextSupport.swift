import COpenSSL
import Glibc

/// Shared steps for building `SSL_CTX` objects: loading PEM, trust stores and the protocol floor.
enum TLSContextSupport {
    /// The TLS 1.2 suites offered: ECDHE key exchange with an AEAD cipher only. TLS 1.3 uses
    /// OpenSSL's default suites, which are all AEAD.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let groups = "X25519:P-256:P-384"

    static func readFile(_ path: String, what: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw TLSError("cannot open the \(what) file '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw TLSError("cannot read the \(what) file '\(path)': \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }

    static func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        try bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                throw TLSError("BIO_new_mem_buf", OpenSSLError("BIO_new_mem_buf"))
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }

    /// Reads every certificate in a PEM document, in order. The caller frees them.
    static func certificates(fromPEM bytes: [UInt8], what: String) throws -> [OpaquePointer] {
        try withMemoryBIO(bytes) { bio in
            var result: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                result.append(certificate)
            }
            ERR_clear_error()  // the loop ends on a "no start line" error
            if result.isEmpty {
                throw TLSError("the \(what) contains no PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
            }
            return result
        }
    }

    static func privateKey(fromPEM bytes: [UInt8], what: String) throws -> OpaquePointer {
        try withMemoryBIO(bytes) { bio in
            guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
                ERR_clear_error()
                throw TLSError("the \(what) contains no unencrypted PEM private key")
            }
            return key
        }
    }

    static func load(_ source: TLSCertificateSource) throws -> (chain: [UInt8], key: [UInt8], label: String) {
        switch source {
        case .files(let chainPath, let keyPath):
            return (
                try readFile(chainPath, what: "certificate"), try readFile(keyPath, what: "private key"),
                chainPath
            )
        case .pem(let chain, let key):
            return (chain, key, "inline certificate")
        }
    }

    /// Installs a certificate chain and key on `context` and returns a new reference to the leaf.
    @discardableResult
    static func useCertificate(_ source: TLSCertificateSource, on context: OpaquePointer) throws -> OpaquePointer {
        let (chainBytes, keyBytes, label) = try load(source)
        let chain = try certificates(fromPEM: chainBytes, what: "certificate chain \(label)")
        let key = try privateKey(fromPEM: keyBytes, what: "private key for \(label)")
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_certificate(context, chain[0]) == 1 else {
            for certificate in chain { X509_free(certificate) }
            throw TLSError("SSL_CTX_use_certificate for \(label)", OpenSSLError("SSL_CTX_use_certificate"))
        }
        for intermediate in chain.dropFirst() {
            // The context takes ownership of intermediates added this way.
            if CShim_SSL_CTX_add_extra_chain_cert(context, intermediate) != 1 {
                X509_free(intermediate)
                throw TLSError("adding an intermediate of \(label)", OpenSSLError("SSL_CTX_add_extra_chain_cert"))
            }
        }
        guard SSL_CTX_use_PrivateKey(context, key) == 1 else {
            X509_free(chain[0])
            throw TLSError("SSL_CTX_use_PrivateKey for \(label)", OpenSSLError("SSL_CTX_use_PrivateKey"))
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            X509_free(chain[0])
            throw TLSError("the private key does not match the certificate in \(label)")
        }
        return chain[0]
    }

    static func installTrust(_ roots: TLSTrustRoots, on context: OpaquePointer) throws {
        switch roots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw TLSError("loading the system CA roots", OpenSSLError("SSL_CTX_set_default_verify_paths"))
            }
        case .file(let path):
            try addCertificates(try readFile(path, what: "CA"), label: path, to: context)
        case .pem(let bytes):
            try addCertificates(bytes, label: "inline CA", to: context)
        }
    }

    private static func addCertificates(_ bytes: [UInt8], label: String, to context: OpaquePointer) throws {
        let roots = try certificates(fromPEM: bytes, what: "CA bundle \(label)")
        defer {
            for root in roots { X509_free(root) }
        }
        guard let store = SSL_CTX_get_cert_store(context) else {
            throw TLSError("SSL_CTX_get_cert_store returned no store")
        }
        for root in roots where X509_STORE_add_cert(store, root) != 1 {
            throw TLSError("adding a CA from \(label)", OpenSSLError("X509_STORE_add_cert"))
        }
    }

    static func applyCommon(to context: OpaquePointer, minimumVersion: TLSMinimumVersion) throws {
        let version = minimumVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard CShim_SSL_CTX_set_min_proto_version(context, Int32(version)) == 1 else {
            throw TLSError("setting the minimum TLS version", OpenSSLError("SSL_CTX_set_min_proto_version"))
        }
        guard SSL_CTX_set_cipher_list(context, tls12Ciphers) == 1 else {
            throw TLSError("setting the TLS 1.2 ciphers", OpenSSLError("SSL_CTX_set_cipher_list"))
        }
        guard CShim_SSL_CTX_set1_groups_list(context, groups) == 1 else {
            throw TLSError("setting the key exchange groups", OpenSSLError("SSL_CTX_set1_groups_list"))
        }
        SSL_CTX_set_options(
            context,
            CShim_SSL_OP_NO_COMPRESSION() | CShim_SSL_OP_NO_RENEGOTIATION() | CShim_SSL_OP_IGNORE_UNEXPECTED_EOF()
        )
        // Partial writes and moving buffers let a connection retry from its own output buffer;
        // released buffers keep an idle connection's memory small.
        _ = CShim_SSL_CTX_set_mode(
            context,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS)
        )
    }

    /// ALPN protocol names in the length-prefixed wire format.
    static func alpnWire(_ protocols: [String]) throws -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError("invalid ALPN protocol name '\(name)': it must be 1 to 255 bytes")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }
}
