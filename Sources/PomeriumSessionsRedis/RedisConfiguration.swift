import PomeriumCrypto
import PomeriumSessions

/// Where and how to reach Redis: the `cache_store_address` and `cache_store_password` settings,
/// plus timeouts and the reconnect backoff.
///
/// `cache_store_address` is either `host:port`, as in v0.7, or a URL
/// `redis://[user:password@]host[:port][/db][?parameters]`, with `rediss://` for TLS. The port
/// defaults to 6379 and the database index to 0. v0.7 has no TLS settings for Redis, so the TLS
/// options are URL query parameters (see `init(address:password:)`).
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: Int
    public var username: String?
    public var password: String?
    /// The TLS client settings for a `rediss://` address; `nil` means plain TCP.
    public var tls: TLSClientConfiguration?
    /// How long opening the connection may take, TLS handshake included.
    public var connectTimeout: Duration = .seconds(5)
    /// How long a command may wait for its reply, from the moment it is submitted.
    public var commandTimeout: Duration = .seconds(5)
    /// The first delay before reconnecting after a failure; it doubles per failure.
    public var minimumBackoff: Duration = .milliseconds(50)
    /// The maximum delay between reconnect attempts.
    public var maximumBackoff: Duration = .seconds(2)

    public init(
        host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil,
        tls: TLSClientConfiguration? = nil
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Whether the connection uses TLS (`rediss://`).
    public var useTLS: Bool { tls != nil }

    /// The query parameters `cache_store_address` accepts.
    public static let queryParameters = [
        "db", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_skip_verify",
    ]

    /// Parses `cache_store_address`. `password` is `cache_store_password`; when it is set, it wins
    /// over a password in the URL.
    ///
    /// Query parameters of a URL:
    /// - `db`: the database index, instead of the path.
    /// - `tls_ca_file`: a PEM file with the CA certificates that sign the server's certificate.
    ///   They replace the system roots, which are used when the parameter is absent.
    /// - `tls_cert_file` and `tls_key_file`: a client certificate and its key, for a server that
    ///   requires them (`tls-auth-clients yes`, Redis's default).
    /// - `tls_server_name`: the name sent as SNI and checked in the server's certificate instead of
    ///   the host.
    /// - `tls_skip_verify`: `true` accepts any server certificate; only for tests.
    public init(address: String, password: String? = nil) throws(StoreError) {
        let trimmed = address.trimmingSpaces()
        guard !trimmed.isEmpty else {
            throw StoreError(
                .invalidConfiguration, "cache_store_address is empty: set it to host:port or a redis:// URL")
        }
        var rest = Substring(trimmed)
        var isURL = false
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
            isURL = true
            rest = rest[schemeEnd.upperBound...]
        }
        if rest.contains("#") {
            throw StoreError(
                .invalidConfiguration, "invalid cache_store_address: fragments (#) are not supported; remove it")
        }
        var query: [String: String] = [:]
        if let questionMark = rest.firstIndex(of: "?") {
            guard isURL else {
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: parameters need a URL; write redis://host:port/0?name=value")
            }
            query = try Self.parseQuery(rest[rest.index(after: questionMark)...])
            rest = rest[..<questionMark]
        }

        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                database = try Self.parseDatabase(path)
            }
        }
        // As in the configuration check: `?db=` wins over the path.
        if let text = query["db"] {
            database = try Self.parseDatabase(Substring(text))
        }

        var username: String?
        var urlPassword: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecode(userInfo[..<colon], what: "the user")
                username = user.isEmpty ? nil : user
                urlPassword = try Self.percentDecode(userInfo[userInfo.index(after: colon)...], what: "the password")
            } else {
                username = try Self.percentDecode(userInfo, what: "the user")
            }
        }

        let (host, port) = try Self.parseHostAndPort(rest)
        let effectivePassword = (password?.isEmpty ?? true) ? urlPassword : password
        if username != nil && effectivePassword == nil {
            throw StoreError(
                .invalidConfiguration,
                "cache_store_address names a Redis user but no password; add it to the URL or set "
                    + "cache_store_password")
        }
        let tls = try Self.tlsConfiguration(query: query, useTLS: useTLS)
        self.init(
            host: host, port: port, database: database, username: username, password: effectivePassword, tls: tls)
    }

    /// `host:port`, for messages. It never contains the credentials.
    public var endpointDescription: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func parseDatabase(_ text: Substring) throws(StoreError) -> Int {
        guard let number = Int(text), number >= 0, number <= Int(Int32.max) else {
            throw StoreError(
                .invalidConfiguration,
                "invalid cache_store_address: database \"\(text.prefix(40))\" is not a number from 0 up; "
                    + "write it as /0, /1 and so on")
        }
        return number
    }

    /// Splits `name=value&name=value`, percent-decoding the values. Unknown, repeated and empty
    /// parameters are errors, so a misspelt TLS option cannot silently turn verification back on
    /// or off.
    private static func parseQuery(_ text: Substring) throws(StoreError) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else {
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: parameter \"\(pair.prefix(40))\" has no value; write name=value")
            }
            let name = String(pair[..<equals])
            guard queryParameters.contains(name) else {
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: unknown parameter \"\(name.prefix(40))\"; the supported ones are "
                        + queryParameters.joined(separator: ", "))
            }
            guard parameters[name] == nil else {
                throw StoreError(
                    .invalidConfiguration, "invalid cache_store_address: parameter \(name) is given twice; keep one")
            }
            let value = try percentDecode(pair[pair.index(after: equals)...], what: "parameter \(name)")
            guard !value.isEmpty else {
                throw StoreError(
                    .invalidConfiguration, "invalid cache_store_address: parameter \(name) is empty; set a value")
            }
            parameters[name] = value
        }
        return parameters
    }

    private static func tlsConfiguration(query: [String: String], useTLS: Bool) throws(StoreError)
        -> TLSClientConfiguration?
    {
        let tlsParameters = queryParameters.filter { $0.hasPrefix("tls_") && query[$0] != nil }
        guard useTLS else {
            if let first = tlsParameters.first {
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: \(first) applies only to TLS; change the scheme to rediss://")
            }
            return nil
        }
        var skipVerification = false
        if let text = query["tls_skip_verify"] {
            switch text.lowercased() {
            case "true", "1": skipVerification = true
            case "false", "0": skipVerification = false
            default:
                throw StoreError(
                    .invalidConfiguration,
                    "invalid cache_store_address: tls_skip_verify \"\(text.prefix(40))\" is not true or false")
            }
        }
        var clientCertificate: TLSCertificateSource?
        switch (query["tls_cert_file"], query["tls_key_file"]) {
        case (let certificate?, let key?):
            clientCertificate = .files(certificateChain: certificate, privateKey: key)
        case (nil, nil):
            clientCertificate = nil
        case (_?, nil), (nil, _?):
            throw StoreError(
                .invalidConfiguration,
                "invalid cache_store_address: tls_cert_file and tls_key_file go together; set both or neither")
        }
        return TLSClientConfiguration(
            trustRoots: query["tls_ca_file"].map { .file($0) } ?? .system,
            skipVerification: skipVerification,
            serverNameOverride: query["tls_server_name"],
            clientCertificate: clientCertificate,
            // Redis does not negotiate ALPN.
            applicationProtocols: []
        )
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

    private static func percentDecode(_ text: Substring, what: String) throws(StoreError) -> String {
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
                        "invalid cache_store_address: a % in \(what) is not followed by two hex digits")
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
