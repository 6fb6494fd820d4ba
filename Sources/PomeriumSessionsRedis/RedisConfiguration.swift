import PomeriumSessions

/// Where and how to reach Redis: the `cache_store_address` and `cache_store_password` settings,
/// plus timeouts and the reconnect backoff.
///
/// `cache_store_address` is either `host:port`, as in v0.7, or a URL
/// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS). The port defaults to 6379
/// and the database index to 0.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: Int
    public var username: String?
    public var password: String?
    public var useTLS: Bool
    /// How long opening the TCP connection may take.
    public var connectTimeout: Duration = .seconds(5)
    /// How long a command may wait for its reply, from the moment it is submitted.
    public var commandTimeout: Duration = .seconds(5)
    /// The first delay before reconnecting after a failure; it doubles per failure.
    public var minimumBackoff: Duration = .milliseconds(50)
    /// The maximum delay between reconnect attempts.
    public var maximumBackoff: Duration = .seconds(2)

    public init(host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.useTLS = false
    }

    /// Parses `cache_store_address`. `password` is `cache_store_password`; it may be given here or
    /// in the URL, not both.
    public init(address: String, password: String? = nil) throws(StoreError) {
        let trimmed = address.trimmingSpaces()
        guard !trimmed.isEmpty else {
            throw StoreError(
                .invalidConfiguration, "cache_store_address is empty: set it to host:port or a redis:// URL")
        }
        var rest = Substring(trimmed)
        var useTLS = false
        if let schemeEnd = rest.firstRange(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            switch scheme {
            case "redis": useTLS = false
            case "rediss": useTLS = true
            default:
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: scheme \"\(scheme)\" is not supported; use redis:// or rediss://")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if rest.contains("?") || rest.contains("#") {
            throw StoreError(
                .invalidConfiguration,
                "invalid cache_store_address: query strings and fragments are not supported; "
                    + "use redis://[user:password@]host:port/db")
        }

        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0, number <= Int(Int32.max) else {
                    throw StoreError(
                        .invalidConfiguration,
                        "invalid cache_store_address: database \"\(path)\" is not a number from 0 up; "
                            + "write it as /0, /1 and so on")
                }
                database = number
            }
        }

        var username: String?
        var urlPassword: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecode(userInfo[..<colon])
                username = user.isEmpty ? nil : user
                urlPassword = try Self.percentDecode(userInfo[userInfo.index(after: colon)...])
            } else {
                username = try Self.percentDecode(userInfo)
            }
        }

        let (host, port) = try Self.parseHostAndPort(rest)
        if let password, !password.isEmpty, urlPassword != nil {
            throw StoreError(
                .invalidConfiguration,
                "cache_store_address contains a password and cache_store_password is set too; keep only one")
        }
        let effectivePassword = (password?.isEmpty ?? true) ? urlPassword : password
        if username != nil && effectivePassword == nil {
            throw StoreError(
                .invalidConfiguration,
                "cache_store_address names a Redis user but no password; add it to the URL or set "
                    + "cache_store_password")
        }
        self.init(host: host, port: port, database: database, username: username, password: effectivePassword)
        self.useTLS = useTLS
    }

    /// `host:port`, for messages. It never contains the credentials.
    public var endpointDescription: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func parseHostAndPort(_ text: Substring) throws(StoreError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw StoreError(.invalidConfiguration, "invalid cache_store_address: IPv6 address without closing ]")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw StoreError(.invalidConfiguration, "invalid cache_store_address: expected :port after ]")
                }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else {
            throw StoreError(.invalidConfiguration, "invalid cache_store_address: the host is missing")
        }
        var port = 6379
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = number
        }
        return (String(host), port)
    }

    private static func percentDecode(_ text: Substring) throws(StoreError) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex, utf8.index(after: first) < utf8.endIndex,
                    let high = hexValue(utf8[first]), let low = hexValue(utf8[utf8.index(after: first)])
                else {
                    // The text may be a password, so the message does not quote it.
                    throw StoreError(
                        .invalidConfiguration,
                        "invalid cache_store_address: a % in the user or password is not followed by two hex digits")
                }
                bytes.append(high << 4 | low)
                index = utf8.index(first, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
