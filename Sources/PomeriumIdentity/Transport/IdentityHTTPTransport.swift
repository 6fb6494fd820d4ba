/// The outbound HTTP seam of the identity layer. Every call to a provider (discovery, JWKS, token,
/// userinfo, revocation) goes through one `send`, so the product's own HTTP client can be plugged in
/// and tests can count or fake requests.
///
/// A conforming transport must:
/// - give up after `request.timeout` seconds in total (connect, write and read) and throw
///   `IdentityTransportError.timedOut`;
/// - throw `IdentityTransportError.connectionFailed` when the connection is refused or cannot be made;
/// - stop reading and throw `IdentityTransportError.responseTooLarge` when the body passes
///   `request.maximumResponseBytes`;
/// - trust `request.certificateAuthorityPEM`, when set, in addition to the system roots for `https` URLs;
/// - not follow redirects (a 3xx is returned as is);
/// - never put header values or bodies in the errors it throws, because they carry secrets.
public protocol IdentityHTTPTransport: Sendable {
    func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse
}

/// One outbound request to an identity provider.
public struct IdentityHTTPRequest: Sendable {
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
    }

    public var method: Method
    /// The absolute `http` or `https` URL, query included.
    public var url: String
    /// Header fields in send order. The transport adds `Host`, `Content-Length` and `Connection`.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The limit for the whole exchange, in seconds.
    public var timeout: Double
    /// The largest response body the caller accepts, in bytes.
    public var maximumResponseBytes: Int
    /// PEM certificates of a private CA that signs the provider's certificate, or nil for the system roots.
    public var certificateAuthorityPEM: String?

    public init(
        method: Method,
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        timeout: Double,
        maximumResponseBytes: Int,
        certificateAuthorityPEM: String? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maximumResponseBytes = maximumResponseBytes
        self.certificateAuthorityPEM = certificateAuthorityPEM
    }

    /// Returns the value of the first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A provider's response, with the body already de-chunked.
public struct IdentityHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Returns the value of the first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Failures a transport reports. The provider turns them into `IdentityError` values that name the
/// endpoint.
public enum IdentityTransportError: Error, Sendable, Equatable {
    /// The connection was refused, reset or could not be made; `reason` is the system's message.
    case connectionFailed(reason: String)
    /// The exchange did not finish within the request's timeout.
    case timedOut
    /// The TLS handshake or certificate check failed.
    case tlsFailed(reason: String)
    /// The response was not valid HTTP/1.1.
    case malformedResponse(reason: String)
    /// The response body passed the request's `maximumResponseBytes`.
    case responseTooLarge
    /// The URL cannot be sent by this transport (for example an unsupported scheme).
    case unsupportedURL(reason: String)
}
