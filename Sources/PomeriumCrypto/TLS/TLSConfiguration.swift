/// Where a PEM certificate chain and its private key come from.
public enum TLSCertificateSource: Sendable, Hashable {
    /// Paths of a PEM file with the leaf certificate followed by intermediates, and of a PEM key.
    case files(certificateChain: String, privateKey: String)
    /// The same two PEM documents as bytes, for certificates given inline in the configuration.
    case pem(certificateChain: [UInt8], privateKey: [UInt8])
}

/// The certificates a TLS client or server trusts.
public enum TLSTrustRoots: Sendable, Hashable {
    /// The operating system's CA bundle (OpenSSL's default verify paths).
    case system
    /// Only the CA certificates in this PEM file, replacing the system roots.
    case file(String)
    /// Only the CA certificates in these PEM bytes, replacing the system roots.
    case pem([UInt8])
}

/// The oldest TLS version a context accepts.
public enum TLSMinimumVersion: Sendable, Hashable {
    case tls12
    case tls13
}

/// Settings for a server context. The first certificate is the default; the others are chosen
/// when the client's SNI name matches one of their DNS names (wildcards included).
public struct TLSServerConfiguration: Sendable, Hashable {
    public var certificates: [TLSCertificateSource]
    /// ALPN protocols in server preference order, for example `["h2", "http/1.1"]`.
    public var applicationProtocols: [String]
    public var minimumVersion: TLSMinimumVersion
    /// When set, clients must present a certificate that chains to these roots (mutual TLS).
    public var clientCertificateRoots: TLSTrustRoots?
    /// The number of sessions the server-side session cache keeps per certificate.
    public var sessionCacheSize: Int

    public init(
        certificates: [TLSCertificateSource],
        applicationProtocols: [String] = ["http/1.1"],
        minimumVersion: TLSMinimumVersion = .tls12,
        clientCertificateRoots: TLSTrustRoots? = nil,
        sessionCacheSize: Int = 20_480
    ) {
        self.certificates = certificates
        self.applicationProtocols = applicationProtocols
        self.minimumVersion = minimumVersion
        self.clientCertificateRoots = clientCertificateRoots
        self.sessionCacheSize = sessionCacheSize
    }
}

/// Settings for a client context: whom to trust, how to check names, and an optional client
/// certificate for mutual TLS.
public struct TLSClientConfiguration: Sendable, Hashable {
    public var trustRoots: TLSTrustRoots
    /// Skips certificate and name verification. Only for upstreams the operator marks as insecure.
    public var skipVerification: Bool
    /// The name sent as SNI and checked against the certificate instead of the connection's host.
    public var serverNameOverride: String?
    public var clientCertificate: TLSCertificateSource?
    public var applicationProtocols: [String]
    public var minimumVersion: TLSMinimumVersion

    public init(
        trustRoots: TLSTrustRoots = .system,
        skipVerification: Bool = false,
        serverNameOverride: String? = nil,
        clientCertificate: TLSCertificateSource? = nil,
        applicationProtocols: [String] = ["http/1.1"],
        minimumVersion: TLSMinimumVersion = .tls12
    ) {
        self.trustRoots = trustRoots
        self.skipVerification = skipVerification
        self.serverNameOverride = serverNameOverride
        self.clientCertificate = clientCertificate
        self.applicationProtocols = applicationProtocols
        self.minimumVersion = minimumVersion
    }
}

/// A TLS setup or connection failure with a readable reason.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    init(_ operation: String, _ error: OpenSSLError) {
        reason = "\(operation): \(error.description)"
    }

    public var description: String { reason }
}
