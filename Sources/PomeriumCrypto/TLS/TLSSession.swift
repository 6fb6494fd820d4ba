import COpenSSL
import Glibc

/// The outcome of one non-blocking TLS operation.
public enum TLSIOResult: Equatable {
    /// The handshake finished, or this many bytes were read or written.
    case done(Int)
    /// OpenSSL needs the socket readable before the call can make progress.
    case wantRead
    /// OpenSSL needs the socket writable before the call can make progress.
    case wantWrite
    /// The peer closed the TLS stream.
    case closed
}

/// One TLS connection over a non-blocking socket (`SSL_set_fd`). Owned by a single event loop.
public final class TLSSession {
    private let ssl: OpaquePointer
    // Keeps the context (and the callbacks' argument) alive as long as the connection.
    private let owner: AnyObject
    private let isClient: Bool

    /// Wraps `descriptor` for the server side of a handshake.
    public init(server: TLSServerContext, descriptor: Int32) throws {
        guard let ssl = server.makeSSL() else { throw TLSError("SSL_new", OpenSSLError("SSL_new")) }
        self.ssl = ssl
        owner = server
        isClient = false
        SSL_set_accept_state(ssl)
        guard SSL_set_fd(ssl, descriptor) == 1 else { throw TLSError("SSL_set_fd", OpenSSLError("SSL_set_fd")) }
    }

    /// Wraps `descriptor` for the client side. `host` is the upstream's host; the configuration's
    /// `serverNameOverride` replaces it for SNI and certificate verification.
    public init(client: TLSClientContext, descriptor: Int32, host: String) throws {
        guard let ssl = SSL_new(client.context) else { throw TLSError("SSL_new", OpenSSLError("SSL_new")) }
        self.ssl = ssl
        owner = client
        isClient = true
        SSL_set_connect_state(ssl)
        guard SSL_set_fd(ssl, descriptor) == 1 else { throw TLSError("SSL_set_fd", OpenSSLError("SSL_set_fd")) }
        let name = client.configuration.serverNameOverride ?? host
        let isAddress = name.contains(":") || name.allSatisfy { $0.isNumber || $0 == "." }
        if !isAddress {
            _ = CShim_SSL_set_tlsext_host_name(ssl, name)
        }
        if !client.configuration.skipVerification {
            let accepted: Int32
            if isAddress {
                accepted = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
            } else {
                accepted = SSL_set1_host(ssl, name)
            }
            guard accepted == 1 else { throw TLSError("cannot verify against the name '\(name)'") }
        }
    }

    deinit { SSL_free(ssl) }

    /// Advances the handshake.
    public func handshake() throws -> TLSIOResult {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done(0) }
        return try classify(result, operation: "TLS handshake")
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TLSIOResult {
        ERR_clear_error()
        let result = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 { return .done(Int(result)) }
        return try classify(result, operation: "TLS read")
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws -> TLSIOResult {
        ERR_clear_error()
        let result = SSL_write(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 { return .done(Int(result)) }
        return try classify(result, operation: "TLS write")
    }

    /// Whether OpenSSL holds decrypted bytes that a read returns without touching the socket.
    public var hasBufferedPlaintext: Bool { SSL_pending(ssl) > 0 }

    /// Sends a close_notify alert without waiting for the peer's.
    public func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// The protocol chosen by ALPN, if any.
    public var applicationProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The SNI name the client sent, on the server side.
    public var serverName: String? {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: name)
    }

    /// The negotiated protocol version, for example `TLSv1.3`.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The subject of the peer's certificate in OpenSSL's one-line form, when it sent one.
    public var peerCertificateSubject: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        guard let name = X509_get_subject_name(certificate), let line = X509_NAME_oneline(name, nil, 0) else {
            return nil
        }
        defer { CShim_OPENSSL_free(line) }
        return String(cString: line)
    }

    /// The peer certificate in DER form, when the peer sent one.
    public var peerCertificateDER: [UInt8]? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var output: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(certificate, &output)
        guard length > 0, let output else { return nil }
        defer { CShim_OPENSSL_free(output) }
        return Array(UnsafeBufferPointer(start: output, count: Int(length)))
    }

    private func classify(_ result: Int32, operation: String) throws -> TLSIOResult {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ:
            return .wantRead
        case SSL_ERROR_WANT_WRITE:
            return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let number = errno
            ERR_clear_error()
            if number == 0 { return .closed }
            throw TLSError("\(operation) failed: \(String(cString: strerror(number))) (errno \(number))")
        default:
            let verify = SSL_get_verify_result(ssl)
            if isClient && verify != X509_V_OK {
                ERR_clear_error()
                let text = String(cString: X509_verify_cert_error_string(Int(verify)))
                throw TLSError("\(operation) failed: certificate verification failed: \(text)")
            }
            throw TLSError(operation, OpenSSLError("SSL_get_error \(code)"))
        }
    }
}
