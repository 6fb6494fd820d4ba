import PomeriumCrypto
import PomeriumHTTP
import PomeriumNet

/// Where requests go: scheme, host, port and, for `https`, the TLS settings. Connections are
/// pooled per upstream value, so two upstreams with different TLS settings never share one.
public struct HTTPUpstream: Hashable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        case http
        case https
    }

    /// The fields, immutable and shared. Every request keeps a copy of its upstream and the pool
    /// compares it, so a copy retains this one object, not each string and the TLS settings.
    /// A setter replaces the storage.
    private final class Storage: Sendable {
        let scheme: Scheme
        let host: String
        let port: Int
        let tls: TLSClientConfiguration?
        let authority: String
        let authorityIsValidFieldValue: Bool

        init(scheme: Scheme, host: String, port: Int, tls: TLSClientConfiguration?) {
            self.scheme = scheme
            self.host = host
            self.port = port
            self.tls = tls
            authority = HTTPUpstream.authority(scheme: scheme, host: host, port: port)
            authorityIsValidFieldValue = HTTPFieldName.isValidValue(authority)
        }
    }

    private var storage: Storage

    public var scheme: Scheme {
        get { storage.scheme }
        set { storage = Storage(scheme: newValue, host: storage.host, port: storage.port, tls: storage.tls) }
    }
    public var host: String {
        get { storage.host }
        set { storage = Storage(scheme: storage.scheme, host: newValue, port: storage.port, tls: storage.tls) }
    }
    public var port: Int {
        get { storage.port }
        set { storage = Storage(scheme: storage.scheme, host: storage.host, port: newValue, tls: storage.tls) }
    }
    public var tls: TLSClientConfiguration? {
        get { storage.tls }
        set { storage = Storage(scheme: storage.scheme, host: storage.host, port: storage.port, tls: newValue) }
    }
    /// The `Host` header value for this upstream. Kept with the fields it derives from, because a
    /// proxy writes it into every forwarded request.
    public var authority: String { storage.authority }
    /// Whether `authority` is a valid field value (no control characters). It is checked once here,
    /// so that a proxy adds it to every forwarded request as a validated field.
    public var authorityIsValidFieldValue: Bool { storage.authorityIsValidFieldValue }

    public init(scheme: Scheme, host: String, port: Int? = nil, tls: TLSClientConfiguration? = nil) {
        let port = port ?? (scheme == .https ? 443 : 80)
        storage = Storage(
            scheme: scheme, host: host, port: port, tls: scheme == .https ? (tls ?? TLSClientConfiguration()) : nil)
    }

    /// Returns whether `other` is this value or a copy of it, without comparing fields.
    func isSameStorage(as other: HTTPUpstream) -> Bool { storage === other.storage }

    public static func == (left: HTTPUpstream, right: HTTPUpstream) -> Bool {
        if left.storage === right.storage { return true }
        return left.port == right.port && left.scheme == right.scheme && left.host == right.host
            && left.tls == right.tls
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(scheme)
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(tls)
    }

    /// Parses `http://host:port` or `https://host:port` (a path after the authority is ignored).
    public init(url: String, tls: TLSClientConfiguration? = nil) throws {
        let scheme: Scheme
        let rest: Substring
        if url.hasPrefix("http://") {
            scheme = .http
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            scheme = .https
            rest = url.dropFirst(8)
        } else {
            throw HTTPClientError.invalidUpstream("'\(url)' must start with http:// or https://")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.isEmpty else { throw HTTPClientError.invalidUpstream("'\(url)' has no host") }
        var host = authority
        var port: Int?
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65_535).contains(value) else {
                    throw HTTPClientError.invalidUpstream("'\(url)' has an invalid port")
                }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(value) else {
                throw HTTPClientError.invalidUpstream("'\(url)' has an invalid port")
            }
            port = value
        }
        self.init(scheme: scheme, host: String(host), port: port, tls: tls)
    }

    fileprivate static func authority(scheme: Scheme, host: String, port: Int) -> String {
        let defaultPort = scheme == .https ? 443 : 80
        // Bytes, not `String.contains`, which Foundation's overload would turn into a CFString search.
        let hostPart = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        return port == defaultPort ? hostPart : "\(hostPart):\(port)"
    }

    public var description: String { "\(scheme.rawValue)://\(authority)" }
}

/// Timeouts of one request, in seconds; zero disables one.
public struct HTTPClientTimeouts: Sendable, Hashable {
    /// Time to look up the host name and establish TCP and TLS.
    public var connect: Double
    /// Time without a byte from the upstream while its response is awaited or read.
    public var read: Double
    /// Time without progress while the request is being written.
    public var write: Double

    public init(connect: Double = 10, read: Double = 30, write: Double = 30) {
        self.connect = connect
        self.read = read
        self.write = write
    }
}

/// Why a client request failed.
public enum HTTPClientError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidUpstream(String)
    case resolveFailed(String)
    case connectFailed(String)
    case connectTimeout
    case readTimeout
    case writeTimeout
    case tlsFailed(String)
    /// The upstream closed the connection before the response was complete.
    case upstreamClosed
    case invalidResponse(String)
    case responseTooLarge(Int)
    /// The caller's body did not match the head's `Content-Length`. Nothing past the announced
    /// length was sent, and the connection was closed.
    case invalidRequestBody(String)
    case cancelled

    public var description: String {
        switch self {
        case .invalidUpstream(let reason): return "invalid upstream: \(reason)"
        case .resolveFailed(let reason): return "resolving the upstream failed: \(reason)"
        case .connectFailed(let reason): return "connecting to the upstream failed: \(reason)"
        case .connectTimeout: return "connecting to the upstream timed out"
        case .readTimeout: return "the upstream response timed out"
        case .writeTimeout: return "writing the request to the upstream timed out"
        case .tlsFailed(let reason): return "TLS with the upstream failed: \(reason)"
        case .upstreamClosed: return "the upstream closed the connection before the response was complete"
        case .invalidResponse(let reason): return "the upstream sent an invalid response: \(reason)"
        case .responseTooLarge(let limit): return "the upstream response exceeds the \(limit)-byte limit"
        case .invalidRequestBody(let reason): return "the request body was not sent: \(reason)"
        case .cancelled: return "the request was cancelled"
        }
    }

    /// Whether the failure is a timeout, which a proxy reports as 504 rather than 502.
    public var isTimeout: Bool {
        switch self {
        case .connectTimeout, .readTimeout, .writeTimeout: return true
        default: return false
        }
    }
}

/// Callbacks for one client request, made on the loop that started it.
public protocol HTTPClientDelegate: AnyObject {
    /// Receives the response head. A delegate that declares it `consuming` edits the fields in
    /// place, without the copy that editing a borrowed head makes. Without the modifier it still conforms.
    func responseHead(_ head: consuming HTTPResponseHead, request: HTTPClientRequest)
    func responseBody(_ bytes: [UInt8], request: HTTPClientRequest)
    /// Receives body bytes in place, valid only during the call. The default copies them into an
    /// array for `responseBody(_:request:)`, so a delegate that writes them on directly saves it.
    func responseBodyBytes(_ bytes: UnsafeRawBufferPointer, request: HTTPClientRequest)
    func responseEnded(trailers: HTTPHeaders, request: HTTPClientRequest)
    func requestFailed(_ error: HTTPClientError, request: HTTPClientRequest)
    /// The request body may be written again after `request.isWritable` was false.
    func requestBodyWritable(_ request: HTTPClientRequest)
    /// The upstream responded with 101: from now on `request` is a byte tunnel. `initialBytes` followed
    /// the response head.
    func upgraded(_ head: HTTPResponseHead, initialBytes: [UInt8], request: HTTPClientRequest)
    func tunnelReceived(_ bytes: [UInt8], request: HTTPClientRequest)
    func tunnelUpstreamFinished(_ request: HTTPClientRequest)
    /// Reports that the tunnel's upstream connection closed in both directions, after
    /// `tunnelUpstreamFinished`, so nothing more reaches the upstream. The default does nothing.
    func tunnelUpstreamClosed(_ request: HTTPClientRequest)
}

extension HTTPClientDelegate {
    public func responseBodyBytes(_ bytes: UnsafeRawBufferPointer, request: HTTPClientRequest) {
        responseBody(Array(bytes), request: request)
    }
    public func requestBodyWritable(_ request: HTTPClientRequest) {}
    public func upgraded(_ head: HTTPResponseHead, initialBytes: [UInt8], request: HTTPClientRequest) {}
    public func tunnelReceived(_ bytes: [UInt8], request: HTTPClientRequest) {}
    public func tunnelUpstreamFinished(_ request: HTTPClientRequest) {}
    public func tunnelUpstreamClosed(_ request: HTTPClientRequest) {}
}
