/// The form of a request target (RFC 9112 §3.2). The payload is boxed (`indirect`), so copying a
/// request head, which the server, the proxy and the client each do, retains one reference for it.
public indirect enum HTTPRequestTarget: Hashable, Sendable {
    /// `/path?query`, the form of ordinary requests to an origin server. The path and query stay
    /// percent-encoded; `query` is nil when the target has no `?`.
    case origin(path: String, query: String?)
    /// `http://host/path?query`, the form of requests sent to a forward proxy.
    case absolute(HTTPURL)
    /// `host:port`, the form of `CONNECT` requests only.
    case authority(host: String, port: Int)
    /// `*`, the form of server-wide `OPTIONS` requests only.
    case asterisk

    /// Parses `target` for `method`, with the rules the request parser applies: origin-form with only
    /// RFC 3986 path and query characters, absolute-form with an `http` or `https` scheme and no
    /// fragment, authority-form only (and always) for `CONNECT`, asterisk-form only for `OPTIONS`.
    public init(parsing target: String, method: HTTPMethod) throws(HTTPParseError) {
        self = try Self.parse(Array(target.utf8)[...], method: method)
    }

    static func parse(_ bytes: ArraySlice<UInt8>, method: HTTPMethod) throws(HTTPParseError) -> HTTPRequestTarget {
        guard let first = bytes.first else { throw HTTPParseError(.invalidTarget) }
        if method == .connect {
            return try parseAuthorityForm(bytes)
        }
        if first == ASCII.slash {
            return try parseOriginForm(bytes)
        }
        if bytes.count == 1 && first == UInt8(ascii: "*") {
            guard method == .options else { throw HTTPParseError(.invalidTarget) }
            return .asterisk
        }
        let url: HTTPURL
        do {
            url = try HTTPURL.parse(bytes)
        } catch {
            throw HTTPParseError(.invalidTarget)
        }
        guard url.scheme == "http" || url.scheme == "https", url.fragment == nil, url.userInfo == nil else {
            throw HTTPParseError(.invalidTarget)
        }
        return .absolute(url)
    }

    /// Returns whether `bytes` is an origin-form path that the request parser accepts: `/`, then
    /// path characters, slashes and `%HH` escapes.
    public static func isValidOriginPath(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.first == ASCII.slash && allTargetBytes(bytes, allowingQuestionMark: false)
    }

    /// Returns whether `bytes`, a query without its `?`, contains only what the request parser
    /// accepts there: path characters, `/`, `?` and `%HH` escapes.
    public static func isValidQuery(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        allTargetBytes(bytes, allowingQuestionMark: true)
    }

    private static func allTargetBytes(_ bytes: UnsafeBufferPointer<UInt8>, allowingQuestionMark: Bool) -> Bool {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.percent {
                guard index + 2 < bytes.count, ASCII.hexValue(bytes[index + 1]) != nil,
                    ASCII.hexValue(bytes[index + 2]) != nil
                else { return false }
                index += 3
                continue
            }
            guard ASCII.isPathCharacter(byte) || byte == ASCII.slash || (allowingQuestionMark && byte == ASCII.question)
            else { return false }
            index += 1
        }
        return true
    }

    private static func parseOriginForm(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPRequestTarget {
        let question = bytes.firstIndex(of: ASCII.question)
        let pathBytes = bytes[bytes.startIndex..<(question ?? bytes.endIndex)]
        do {
            try URLComponentCheck.validate(pathBytes, error: .invalidPath) {
                ASCII.isPathCharacter($0) || $0 == ASCII.slash
            }
            guard let question else {
                return .origin(path: String(decoding: pathBytes, as: UTF8.self), query: nil)
            }
            let queryBytes = bytes[(question + 1)...]
            try URLComponentCheck.validate(queryBytes, error: .invalidQuery) {
                ASCII.isPathCharacter($0) || $0 == ASCII.slash || $0 == ASCII.question
            }
            return .origin(
                path: String(decoding: pathBytes, as: UTF8.self),
                query: String(decoding: queryBytes, as: UTF8.self)
            )
        } catch {
            throw HTTPParseError(.invalidTarget)
        }
    }

    private static func parseAuthorityForm(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPRequestTarget {
        guard let authority = HostSyntax.parse(bytes), let port = authority.port else {
            throw HTTPParseError(.invalidTarget)
        }
        return .authority(host: authority.host, port: port)
    }
}

/// Parsing of `uri-host [":" port]`, the syntax of the `Host` header and of authority-form targets.
enum HostSyntax {
    /// Parses the lowercased host (IPv6 without brackets) and port, or returns nil when the syntax
    /// is invalid. An empty input yields an empty host, which `Host` allows for targets without an authority.
    static func parse(_ bytes: ArraySlice<UInt8>) -> (host: String, port: Int?)? {
        guard let parts = split(bytes) else { return nil }
        let host = String(decoding: bytes[parts.host].map(ASCII.lowercased), as: UTF8.self)
        return (host, parts.port)
    }

    /// Whether `bytes` is a valid `Host` value, checked without building strings.
    static func isValid(_ bytes: ArraySlice<UInt8>) -> Bool {
        split(bytes) != nil
    }

    /// Finds the host (without brackets) and parses the port, or returns nil when the syntax is invalid.
    private static func split(_ bytes: ArraySlice<UInt8>) -> (host: Range<Int>, port: Int?)? {
        if bytes.isEmpty { return (bytes.startIndex..<bytes.startIndex, nil) }
        let hostEnd: Int
        let host: Range<Int>
        if bytes.first == ASCII.openBracket {
            guard let close = bytes.firstIndex(of: ASCII.closeBracket),
                IPAddressSyntax.isIPv6(bytes[(bytes.startIndex + 1)..<close])
            else { return nil }
            host = (bytes.startIndex + 1)..<close
            hostEnd = close + 1
            guard hostEnd == bytes.endIndex || bytes[hostEnd] == ASCII.colon else { return nil }
        } else {
            hostEnd = bytes.firstIndex(of: ASCII.colon) ?? bytes.endIndex
            let name = bytes[bytes.startIndex..<hostEnd]
            guard !name.isEmpty else { return nil }
            do {
                try URLComponentCheck.validate(name, error: .invalidHost) {
                    ASCII.isUnreserved($0) || ASCII.isSubDelimiter($0)
                }
            } catch {
                return nil
            }
            host = bytes.startIndex..<hostEnd
        }
        guard hostEnd < bytes.endIndex else { return (host, nil) }
        let digits = bytes[(hostEnd + 1)...]
        guard !digits.isEmpty, let port = try? HTTPURL.parsePort(digits) else { return nil }
        return (host, port)
    }
}

/// The start line and header section of a request.
public struct HTTPRequestHead: Hashable, Sendable {
    public let method: HTTPMethod
    /// The request target exactly as received or as it will be sent.
    public let target: String
    /// The parsed form of `target`.
    public let targetForm: HTTPRequestTarget
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    /// Creates a request head, throwing when `target` is not valid for `method` by the rules of
    /// `HTTPRequestTarget.init(parsing:method:)`.
    public init(
        method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()
    ) throws(HTTPParseError) {
        self.method = method
        self.target = target
        self.targetForm = try HTTPRequestTarget(parsing: target, method: method)
        self.version = version
        self.headers = headers
    }

    /// Creates an origin-form request head (`path?query`) from a path and query that the caller
    /// already validated, without parsing the target again as `init(method:target:version:headers:)`
    /// does. For a proxy that forwards the path and query of a parsed head, or one rebuilt from
    /// them with `PercentEncoding`.
    ///
    /// The caller guarantees that `validatedPath` starts with `/` and holds only RFC 3986 path
    /// characters (percent-encoded), and that `query` (without its `?`) holds only query
    /// characters, as `HTTPRequestTarget.init(parsing:method:)` requires. Debug builds check this;
    /// release builds do not. The encoder still rejects a target with a space or control byte, so
    /// a wrong value cannot split the request line.
    public init(
        method: HTTPMethod,
        validatedPath: String,
        query: String?,
        version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders()
    ) {
        self.method = method
        if let query {
            target = validatedPath + "?" + query
        } else {
            target = validatedPath
        }
        targetForm = .origin(path: validatedPath, query: query)
        self.version = version
        self.headers = headers
        assert(
            (try? HTTPRequestTarget(parsing: target, method: method)) == targetForm,
            "the path or query of a request head is not a valid origin-form target")
    }

    init(method: HTTPMethod, target: String, targetForm: HTTPRequestTarget, version: HTTPVersion, headers: HTTPHeaders)
    {
        self.method = method
        self.target = target
        self.targetForm = targetForm
        self.version = version
        self.headers = headers
    }

    /// A head with this head's method and target and the given version and fields, for a proxy
    /// that forwards the target unchanged. Unlike a copy whose fields are then replaced, it
    /// neither retains nor releases this head's field storage.
    public func forwarding(version: HTTPVersion, headers: consuming HTTPHeaders) -> HTTPRequestHead {
        HTTPRequestHead(method: method, target: target, targetForm: targetForm, version: version, headers: headers)
    }

    /// The percent-encoded path: of an origin-form or absolute-form target, `*` for asterisk-form,
    /// and empty for authority-form.
    public var path: String {
        switch targetForm {
        case .origin(let path, _): return path
        case .absolute(let url): return url.path.isEmpty ? "/" : url.path
        case .authority: return ""
        case .asterisk: return "*"
        }
    }

    /// The percent-encoded query of an origin-form or absolute-form target, nil when it has no `?`.
    public var query: String? {
        switch targetForm {
        case .origin(_, let query): return query
        case .absolute(let url): return url.query
        case .authority, .asterisk: return nil
        }
    }

    /// The host and port the request is for: from an absolute-form or authority-form target, which
    /// RFC 9112 §3.2.2 ranks over `Host`, else from the `Host` field. The host is lowercase, and an
    /// IPv6 literal has no brackets. Nil when `Host` is absent, empty or invalid.
    public var authority: (host: String, port: Int?)? {
        switch targetForm {
        case .absolute(let url):
            return (url.host, url.port)
        case .authority(let host, let port):
            return (host, port)
        case .origin, .asterisk:
            guard let value = headers.first(name: "Host"), let parsed = HostSyntax.parse(Array(value.utf8)[...]),
                !parsed.host.isEmpty
            else { return nil }
            return parsed
        }
    }

    /// Whether the client asks for a persistent connection: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive` (RFC 9112 §9.3).
    public var keepAlive: Bool {
        headers.allowsPersistence(isHTTP11OrLater: version.isAtLeastHTTP11)
    }

    /// Whether the request is a request to switch protocols: an `Upgrade` field named in `Connection`
    /// (RFC 9110 §7.8), or a `CONNECT` request.
    public var isUpgradeRequest: Bool {
        if method == .connect { return true }
        return headers.contains(name: "Upgrade") && headers.containsToken("upgrade", name: "Connection")
    }
}

/// The status line and header section of a response.
public struct HTTPResponseHead: Hashable, Sendable {
    public var version: HTTPVersion
    /// The three-digit status code.
    public var status: Int
    /// The reason phrase, which clients ignore; may be empty.
    public var reason: String
    public var headers: HTTPHeaders

    public init(
        status: Int, reason: String? = nil, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders()
    ) {
        self.version = version
        self.status = status
        self.reason = reason ?? HTTPStatusReason.phrase(for: status)
        self.headers = headers
    }

    /// Whether the status is informational (1xx).
    public var isInformational: Bool { (100..<200).contains(status) }
}

/// The reason phrases of RFC 9110 §15 for the status codes the proxy sends.
public enum HTTPStatusReason {
    public static func phrase(for status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 103: return "Early Hints"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }
}

extension HTTPHeaders {
    /// Returns which of `Connection`, `Upgrade` and `Expect` the list has, in one pass over the
    /// names. Starting an exchange reads all three, and most requests have none of them.
    func connectionFieldsPresent() -> (connection: Bool, upgrade: Bool, expect: Bool) {
        var found = (connection: false, upgrade: false, expect: false)
        forEachName { name in
            switch name.count {
            case 10: if ASCII.equalsLowercase(name, "connection") { found.connection = true }
            case 7: if ASCII.equalsLowercase(name, "upgrade") { found.upgrade = true }
            case 6: if ASCII.equalsLowercase(name, "expect") { found.expect = true }
            default: break
            }
        }
        return found
    }
}
