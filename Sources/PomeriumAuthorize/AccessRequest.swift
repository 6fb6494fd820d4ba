/// The parts of an HTTP request that the access decision reads.
public struct AccessRequest: Sendable, Hashable {
    /// The request method, case-sensitive as HTTP methods are (`OPTIONS`, not `options`).
    public let method: String
    /// The `Host` header value (or the authority of the forward-auth `uri`), with or without a port.
    public let host: String
    /// The path, already normalised by the HTTP layer, without the query.
    public let path: String
    /// Whether this is a genuine CORS preflight: method `OPTIONS` with non-empty `Origin` and
    /// `Access-Control-Request-Method` headers.
    public let isCORSPreflight: Bool

    /// Creates a request from its method, host, path and the two headers that mark a CORS preflight.
    /// - Parameters:
    ///   - origin: the `Origin` header value, or nil when absent.
    ///   - accessControlRequestMethod: the `Access-Control-Request-Method` header value, or nil when absent.
    public init(
        method: String,
        host: String,
        path: String,
        origin: String? = nil,
        accessControlRequestMethod: String? = nil
    ) {
        self.method = method
        self.host = host
        self.path = path
        self.isCORSPreflight = Self.isCORSPreflight(
            method: method,
            origin: origin,
            accessControlRequestMethod: accessControlRequestMethod
        )
    }

    /// Whether a request with this method and these header values is a CORS preflight (Fetch standard, "CORS-preflight
    /// request"): `OPTIONS` with both headers present and non-empty. An `OPTIONS` request missing either header is an
    /// ordinary request and needs a session.
    public static func isCORSPreflight(method: String, origin: String?, accessControlRequestMethod: String?) -> Bool {
        guard method == "OPTIONS" else { return false }
        guard let origin, !origin.isEmpty else { return false }
        guard let accessControlRequestMethod, !accessControlRequestMethod.isEmpty else { return false }
        return true
    }

    /// Whether the path is under `/.pomerium/admin`, the administrator endpoints such as impersonation.
    public var isAdminPath: Bool { Self.isAdminPath(path) }

    /// Returns whether `path` is `/.pomerium/admin` or below it (see `isAdminPath`).
    public static func isAdminPath(_ path: String) -> Bool {
        // The bytes are compared in place: iterating the UTF-8 views measured over 200
        // instructions per request.
        let prefix = PolicyEvaluator.adminPathPrefix
        guard path.hasBytePrefix(prefix) else { return false }
        let prefixCount = prefix.utf8.count
        return path.withUTF8Bytes { bytes in bytes.count == prefixCount || bytes[prefixCount] == UInt8(ascii: "/") }
    }
}
