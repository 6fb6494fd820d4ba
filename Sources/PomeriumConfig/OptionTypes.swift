import Foundation

/// The Pomerium services that one process runs (`services`).
public enum ServiceMode: String, Sendable, CaseIterable {
    case all, authenticate, authorize, cache, proxy

    /// Whether the process runs the authenticate service.
    public var runsAuthenticate: Bool { self == .all || self == .authenticate }
    /// Whether the process runs the authorize service.
    public var runsAuthorize: Bool { self == .all || self == .authorize }
    /// Whether the process runs the cache service.
    public var runsCache: Bool { self == .all || self == .cache }
    /// Whether the process runs the proxy.
    public var runsProxy: Bool { self == .all || self == .proxy }
}

/// The session store behind the cache service (`cache_store`).
public enum CacheStoreKind: String, Sendable, CaseIterable {
    /// In-memory LRU in the process.
    case autocache
    /// An embedded file store at `cache_store_path`.
    case bolt
    /// A Redis server at `cache_store_address`.
    case redis
}

/// The lowest log level written (`log_level`).
public enum LogLevel: String, Sendable, CaseIterable {
    case debug, info, warn, error
}

/// The `SameSite` attribute of the session and CSRF cookies (`cookie_samesite`).
public enum CookieSameSite: String, Sendable, CaseIterable {
    case strict = "Strict"
    case lax = "Lax"
    case none = "None"
}

/// The identity provider kinds of Pomerium v0.7 (`idp_provider`).
public enum IdentityProviderKind: String, Sendable, CaseIterable {
    case azure, gitlab, google, oidc, okta, onelogin

    /// The issuer URL used when `idp_provider_url` is empty, or nil when the provider needs one.
    public var defaultProviderURL: String? {
        switch self {
        case .google: "https://accounts.google.com"
        case .azure: "https://login.microsoftonline.com/common"
        case .gitlab: "https://gitlab.com"
        case .onelogin: "https://openid-connect.onelogin.com/oidc"
        case .oidc, .okta: nil
        }
    }

    /// The scopes requested when `idp_scopes` is empty.
    public var defaultScopes: [String] {
        switch self {
        case .google: ["openid", "profile", "email"]
        case .azure: ["openid", "profile", "email", "offline_access", "Group.Read.All"]
        case .okta, .onelogin: ["openid", "profile", "email", "groups", "offline_access"]
        case .gitlab: ["openid", "api", "read_user", "profile", "email"]
        case .oidc: ["openid", "profile", "email", "offline_access"]
        }
    }
}

/// The tracing exporters (`tracing_provider`); v0.7 has Jaeger only.
public enum TracingProvider: String, Sendable, CaseIterable {
    case jaeger
}

/// An absolute URL from the configuration, split into the parts the services use. It always has
/// a scheme and a host.
public struct ConfigURL: Sendable, Hashable, CustomStringConvertible {
    /// The URL as written.
    public let text: String
    /// Lower-cased scheme, for example `https`.
    public let scheme: String
    /// Lower-cased host name or IP literal, without brackets.
    public let host: String
    /// The explicit port, or nil when the URL has none.
    public let port: Int?
    /// The path as written; empty when the URL has none.
    public let path: String
    /// The query without `?`, or nil.
    public let query: String?
    /// The fragment without `#`, or nil.
    public let fragment: String?
    /// Whether the URL has a user part (`user@` or `user:password@`).
    public let hasUserInfo: Bool

    /// Parses `text`; returns nil unless it has both a scheme and a host.
    public init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme, !scheme.isEmpty,
            let host = components.host, !host.isEmpty
        else { return nil }
        self.text = text
        self.scheme = scheme.lowercased()
        var plainHost = host.lowercased()
        if plainHost.hasPrefix("["), plainHost.hasSuffix("]") { plainHost = String(plainHost.dropFirst().dropLast()) }
        self.host = plainHost
        self.port = components.port
        self.path = components.percentEncodedPath
        self.query = components.percentEncodedQuery
        self.fragment = components.percentEncodedFragment
        self.hasUserInfo = components.percentEncodedUser != nil || components.percentEncodedPassword != nil
    }

    /// The URL as written, with a password in the user part or in the query replaced by
    /// `[redacted]`; the form to print.
    public var redactedText: String { ValueParsing.redactedURL(text) }

    /// The port used to connect: the explicit one, else 443 for https and wss, else 80.
    public var effectivePort: Int {
        if let port { return port }
        return scheme == "https" || scheme == "wss" ? 443 : 80
    }

    /// `host` or `host:port` when the port is not the scheme's default, as a browser sends it in
    /// `Host` and as route matching compares it.
    public var authority: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        let isDefaultPort = port == nil || (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
        return isDefaultPort ? hostText : "\(hostText):\(port ?? 0)"
    }

    public var description: String { redactedText }
}

/// A server certificate chain and its private key, both PEM text.
public struct TLSCertificatePair: Sendable, Hashable {
    public let certificatePEM: String
    public let keyPEM: String

    public init(certificatePEM: String, keyPEM: String) {
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
    }
}

/// The Redis server address and login of the cache store, from `cache_store_address` in one of
/// the forms `host:port`, `redis://[[user]:password@]host[:port][/db]` or `rediss://...` (TLS).
public struct RedisAddress: Sendable, Hashable {
    public let host: String
    public let port: Int
    public let useTLS: Bool
    /// The database index selected with `SELECT`, 0 by default.
    public let database: Int
    public let username: String?
    /// The `AUTH` password: `cache_store_password` when set, else the one in the URL.
    public let password: String?

    public init(host: String, port: Int, useTLS: Bool, database: Int, username: String?, password: String?) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.database = database
        self.username = username
        self.password = password
    }

    /// The query parameters of a URL address. The Redis store reads their values; validation
    /// here makes a misspelt TLS option fail `-validate` rather than the first connection.
    public static let queryParameters = [
        "db", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_skip_verify",
    ]

    /// Parses `text`. The error states what is wrong without repeating the address, because the
    /// address may contain a password.
    static func parse(_ text: String, password explicitPassword: String?) -> Result<RedisAddress, AddressError> {
        if text.hasPrefix("redis://") || text.hasPrefix("rediss://") {
            guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
                return .failure(AddressError("the URL has no host; write redis://host:6379/0"))
            }
            var database = 0
            let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if !path.isEmpty {
                guard let index = Int(path), index >= 0 else {
                    return .failure(AddressError("the database \"\(path)\" is not a number; write redis://host:6379/0"))
                }
                database = index
            }
            let useTLS = text.hasPrefix("rediss://")
            var seen: Set<String> = []
            for item in components.queryItems ?? [] {
                guard queryParameters.contains(item.name) else {
                    return .failure(
                        AddressError(
                            "unknown parameter \"\(ValueParsing.excerpt(item.name))\"; the supported ones are "
                                + queryParameters.joined(separator: ", ")))
                }
                if item.name.hasPrefix("tls_") && !useTLS {
                    return .failure(AddressError("\(item.name) applies only to TLS; change the scheme to rediss://"))
                }
                // The store refuses these too; here `-validate` and a reload find them.
                guard seen.insert(item.name).inserted else {
                    return .failure(AddressError("parameter \(item.name) is given twice; keep one"))
                }
                guard let value = item.value, !value.isEmpty else {
                    return .failure(AddressError("parameter \(item.name) is empty; set a value"))
                }
                if item.name == "tls_skip_verify", !["true", "1", "false", "0"].contains(value.lowercased()) {
                    return .failure(
                        AddressError("tls_skip_verify \"\(ValueParsing.excerpt(value))\" is not true or false"))
                }
            }
            if seen.contains("tls_cert_file") != seen.contains("tls_key_file") {
                return .failure(AddressError("tls_cert_file and tls_key_file go together; set both or neither"))
            }
            if let item = components.queryItems?.first(where: { $0.name == "db" }), let value = item.value {
                guard let index = Int(value), index >= 0 else {
                    return .failure(AddressError("the db parameter \"\(ValueParsing.excerpt(value))\" is not a number"))
                }
                database = index
            }
            let user = components.user.flatMap { $0.isEmpty ? nil : $0 }
            let password = explicitPassword ?? components.password
            let port = components.port ?? 6379
            guard (1...65535).contains(port) else { return .failure(AddressError("port \(port) is out of range")) }
            var plainHost = host
            if plainHost.hasPrefix("[") { plainHost = String(plainHost.dropFirst().dropLast()) }
            return .success(
                RedisAddress(
                    host: plainHost, port: port, useTLS: useTLS, database: database,
                    username: user, password: password))
        }
        if text.contains("://") {
            return .failure(AddressError("the scheme is not redis:// or rediss://"))
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            return .failure(
                AddressError("the address is not host:port; write localhost:6379 or redis://localhost:6379/0"))
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return .failure(AddressError("the address has no host")) }
        return .success(
            RedisAddress(host: host, port: port, useTLS: false, database: 0, username: nil, password: explicitPassword))
    }

    struct AddressError: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
