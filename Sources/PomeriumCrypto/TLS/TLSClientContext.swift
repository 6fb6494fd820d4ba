import COpenSSL

/// A client-side TLS setup for one kind of upstream: trust roots, verification, an optional client
/// certificate. Shared by every loop.
/// NOTE: client sessions are not cached, so each new upstream connection makes a full handshake.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    public let configuration: TLSClientConfiguration

    public init(configuration: TLSClientConfiguration) throws {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw TLSError("SSL_CTX_new", OpenSSLError("SSL_CTX_new"))
        }
        // The properties are set only after setup succeeds: once every stored property of a class
        // is set, a throwing init runs deinit, which would free the context a second time.
        do {
            try TLSContextSupport.applyCommon(to: context, minimumVersion: configuration.minimumVersion)
            if configuration.skipVerification {
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            } else {
                try TLSContextSupport.installTrust(configuration.trustRoots, on: context)
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            }
            if let certificate = configuration.clientCertificate {
                let leaf = try TLSContextSupport.useCertificate(certificate, on: context)
                X509_free(leaf)
            }
            if !configuration.applicationProtocols.isEmpty {
                let wire = try TLSContextSupport.alpnWire(configuration.applicationProtocols)
                // SSL_CTX_set_alpn_protos returns 0 on success.
                guard SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0 else {
                    throw TLSError("setting the client ALPN list", OpenSSLError("SSL_CTX_set_alpn_protos"))
                }
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.context = context
        self.configuration = configuration
    }

    deinit { SSL_CTX_free(context) }
}
