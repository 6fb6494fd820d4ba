import COpenSSL
import Synchronization

/// A server-side TLS setup: one `SSL_CTX` per certificate, with SNI choosing among them. Built
/// once and shared by every loop; OpenSSL contexts are safe to use from several threads once set up.
public final class TLSServerContext: @unchecked Sendable {
    /// One `SSL_CTX` per configured certificate; the first is the default.
    let contexts: [OpaquePointer]
    private let leaves: [OpaquePointer]
    let alpnWire: [UInt8]
    /// SNI name to context index, filled on first use of each name.
    private let sniCache = Mutex<[String: Int]>([:])

    public init(configuration: TLSServerConfiguration) throws {
        guard !configuration.certificates.isEmpty else {
            throw TLSError("a TLS server needs at least one certificate and key")
        }
        alpnWire = try TLSContextSupport.alpnWire(configuration.applicationProtocols)
        var contexts: [OpaquePointer] = []
        var leaves: [OpaquePointer] = []
        do {
            for source in configuration.certificates {
                guard let context = SSL_CTX_new(TLS_server_method()) else {
                    throw TLSError("SSL_CTX_new", OpenSSLError("SSL_CTX_new"))
                }
                contexts.append(context)
                try TLSContextSupport.applyCommon(to: context, minimumVersion: configuration.minimumVersion)
                SSL_CTX_set_options(context, CShim_SSL_OP_CIPHER_SERVER_PREFERENCE())
                leaves.append(try TLSContextSupport.useCertificate(source, on: context))
                _ = CShim_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_SERVER))
                // SSL_CTX_sess_set_cache_size is a macro over SSL_CTX_ctrl.
                _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_SESS_CACHE_SIZE, configuration.sessionCacheSize, nil)
                let sessionContext = Array("pomerium".utf8)
                _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
                if let roots = configuration.clientCertificateRoots {
                    try TLSContextSupport.installTrust(roots, on: context)
                    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
                }
            }
        } catch {
            for context in contexts { SSL_CTX_free(context) }
            for leaf in leaves { X509_free(leaf) }
            throw error
        }
        self.contexts = contexts
        self.leaves = leaves
        let argument = Unmanaged.passUnretained(self).toOpaque()
        for context in contexts {
            SSL_CTX_set_alpn_select_cb(context, serverSelectALPN, argument)
        }
        _ = CShim_SSL_CTX_set_tlsext_servername_callback(contexts[0], serverSelectCertificate)
        _ = CShim_SSL_CTX_set_tlsext_servername_arg(contexts[0], argument)
    }

    deinit {
        for context in contexts { SSL_CTX_free(context) }
        for leaf in leaves { X509_free(leaf) }
    }

    /// Returns the index of the first certificate whose names match `serverName`, or 0 when none does.
    func contextIndex(forServerName serverName: String) -> Int {
        let name = serverName.lowercased()
        if let cached = sniCache.withLock({ $0[name] }) { return cached }
        var chosen = 0
        for (index, leaf) in leaves.enumerated() {
            let matched = name.withCString { X509_check_host(leaf, $0, name.utf8.count, 0, nil) }
            if matched == 1 {
                chosen = index
                break
            }
        }
        sniCache.withLock { cache in
            // Bounded so that a client cycling random names cannot grow it without limit.
            if cache.count >= 4096 { cache.removeAll() }
            cache[name] = chosen
        }
        return chosen
    }
}

private func serverSelectCertificate(
    _ ssl: OpaquePointer, _ alert: UnsafeMutablePointer<Int32>, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument, let rawName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else {
        return SSL_TLSEXT_ERR_OK
    }
    let context = Unmanaged<TLSServerContext>.fromOpaque(argument).takeUnretainedValue()
    let index = context.contextIndex(forServerName: String(cString: rawName))
    if index != 0 {
        SSL_set_SSL_CTX(ssl, context.contexts[index])
    }
    return SSL_TLSEXT_ERR_OK
}

private func serverSelectALPN(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument, let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<TLSServerContext>.fromOpaque(argument).takeUnretainedValue()
    return context.alpnWire.withUnsafeBufferPointer { wire in
        var selected: UnsafeMutablePointer<UInt8>?
        let result = SSL_select_next_proto(
            &selected, outLength, wire.baseAddress, UInt32(wire.count), offered, offeredLength)
        guard result == OPENSSL_NPN_NEGOTIATED, let selected else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        // SSL_select_next_proto points into the server list, which lives as long as the context.
        out.pointee = UnsafePointer(selected)
        return SSL_TLSEXT_ERR_OK
    }
}
