import COpenSSL
import Synchronization

/// A server-side TLS setup: one `SSL_CTX` per certificate, with SNI choosing among them. Shared by
/// every loop; OpenSSL contexts are safe to use from several threads once set up.
///
/// `replaceCertificates(_:)` swaps the whole certificate set at once. A connection whose
/// ClientHello arrives after the swap gets a new certificate. A connection that finished its
/// handshake keeps its `SSL_CTX`, whose reference OpenSSL counts, and is not disturbed.
public final class TLSServerContext: @unchecked Sendable {
    /// The settings given at init. Replacing certificates keeps the protocols, version and client roots.
    public let configuration: TLSServerConfiguration
    let alpnWire: [UInt8]
    private let current: Mutex<CertificateContexts>
    private let replacements = Atomic<Int>(0)

    public init(configuration: TLSServerConfiguration) throws {
        self.configuration = configuration
        alpnWire = try TLSContextSupport.alpnWire(configuration.applicationProtocols)
        let contexts = try CertificateContexts(configuration: configuration)
        current = Mutex(contexts)
        installCallbacks(on: contexts)
    }

    /// Builds contexts for `certificates` and makes them the ones new handshakes use. On an error
    /// nothing changes, so a broken renewal leaves the running certificates in place.
    public func replaceCertificates(_ certificates: [TLSCertificateSource]) throws {
        var next = configuration
        next.certificates = certificates
        let contexts = try CertificateContexts(configuration: next)
        installCallbacks(on: contexts)
        current.withLock { $0 = contexts }
        replacements.add(1, ordering: .relaxed)
    }

    /// How many times `replaceCertificates(_:)` has swapped the certificates in.
    public var replacementCount: Int { replacements.load(ordering: .relaxed) }

    /// The certificate set new handshakes use.
    var certificateContexts: CertificateContexts { current.withLock { $0 } }

    /// Creates an `SSL` object on the current default context; the caller frees it.
    func makeSSL() -> OpaquePointer? {
        current.withLock { SSL_new($0.contexts[0]) }
    }

    private func installCallbacks(on contexts: CertificateContexts) {
        // The argument is unretained: every TLSSession keeps this object alive while its handshake runs.
        let argument = Unmanaged.passUnretained(self).toOpaque()
        for context in contexts.contexts {
            SSL_CTX_set_alpn_select_cb(context, serverSelectALPN, argument)
        }
        _ = CShim_SSL_CTX_set_tlsext_servername_callback(contexts.contexts[0], serverSelectCertificate)
        _ = CShim_SSL_CTX_set_tlsext_servername_arg(contexts.contexts[0], argument)
    }
}

/// One certificate set: an `SSL_CTX` per certificate, the first being the default, and the SNI
/// choices made so far. Immutable once built, apart from the locked SNI cache.
final class CertificateContexts: @unchecked Sendable {
    let contexts: [OpaquePointer]
    private let leaves: [OpaquePointer]
    /// SNI name to context index, filled on first use of each name.
    private let sniCache = Mutex<[String: Int]>([:])

    init(configuration: TLSServerConfiguration) throws {
        guard !configuration.certificates.isEmpty else {
            throw TLSError("a TLS server needs at least one certificate and key")
        }
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
    }

    deinit {
        // Connections that still use one of these contexts hold their own reference to it.
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

/// Moves the connection to the context of the current certificate set that matches its SNI name,
/// or to the current default. OpenSSL runs this callback for every ClientHello, with or without
/// SNI, so a connection accepted just before `replaceCertificates` still gets the new certificate.
private func serverSelectCertificate(
    _ ssl: OpaquePointer, _ alert: UnsafeMutablePointer<Int32>, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument else { return SSL_TLSEXT_ERR_OK }
    let server = Unmanaged<TLSServerContext>.fromOpaque(argument).takeUnretainedValue()
    let certificates = server.certificateContexts
    var index = 0
    if let rawName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) {
        index = certificates.contextIndex(forServerName: String(cString: rawName))
    }
    let chosen = certificates.contexts[index]
    if SSL_get_SSL_CTX(ssl) != chosen {
        // SSL_set_SSL_CTX takes its own reference, so the set may be replaced again at any time.
        SSL_set_SSL_CTX(ssl, chosen)
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
