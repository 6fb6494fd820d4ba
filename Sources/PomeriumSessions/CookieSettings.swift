import PomeriumHTTP

/// The cookie options of the configuration (`cookie_name`, `cookie_domain`, `cookie_secure`,
/// `cookie_http_only`, `cookie_expire`) plus the `SameSite` attribute and the chunk bound.
public struct CookieSettings: Sendable, Equatable {
    /// The base cookie name; chunks add `_1`, `_2`, ... and the CSRF cookie adds `_csrf`.
    public var name: String
    /// The `Domain` attribute; nil for a host-only cookie.
    public var domain: String?
    public var secure: Bool
    public var httpOnly: Bool
    /// Seconds from now to the `Expires` attribute (v0.7 default 14 hours).
    public var expireSeconds: Int64
    /// The `SameSite` attribute; nil leaves it out, as v0.7 did.
    public var sameSite: SetCookie.SameSite?
    /// The most cookies one session may use, the base cookie included.
    public var maximumChunks: Int

    /// The largest serialised `Set-Cookie` value per cookie, as v0.7 used, below the 4096 bytes
    /// that browsers keep per cookie.
    public static let maximumSetCookieSize = 3800

    public init(
        name: String = "_pomerium",
        domain: String? = nil,
        secure: Bool = true,
        httpOnly: Bool = true,
        expireSeconds: Int64 = 14 * 3600,
        sameSite: SetCookie.SameSite? = .lax,
        maximumChunks: Int = 6
    ) {
        self.name = name
        self.domain = domain.flatMap { $0.isEmpty ? nil : $0 }
        self.secure = secure
        self.httpOnly = httpOnly
        self.expireSeconds = expireSeconds
        self.sameSite = sameSite
        self.maximumChunks = max(1, maximumChunks)
    }

    /// The name of chunk `index` (0 is the base cookie).
    public func chunkName(_ index: Int) -> String { index == 0 ? name : "\(name)_\(index)" }

    /// The CSRF cookie's name.
    public var csrfName: String { "\(name)_csrf" }

    func setCookie(name: String, value: String, now: Int64) -> SetCookie {
        SetCookie(
            name: name, value: value, path: "/", domain: domain, expires: now + expireSeconds, secure: secure,
            httpOnly: httpOnly, sameSite: sameSite)
    }

    func clearingCookie(name: String, now: Int64) -> SetCookie {
        SetCookie(
            name: name, value: "", path: "/", domain: domain, expires: now - 3600, maxAge: 0, secure: secure,
            httpOnly: httpOnly, sameSite: sameSite)
    }
}

/// A session that cannot be written as cookies.
public enum CookieWriteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The sealed session needs more cookies than `CookieSettings.maximumChunks` allows.
    case tooManyChunks(needed: Int, maximum: Int)
    /// A cookie attribute is invalid (the name, domain or path); the detail names which.
    case invalidAttribute(String)

    public var description: String {
        switch self {
        case .tooManyChunks(let needed, let maximum):
            "session too large for cookies: it needs \(needed) cookies of 3800 bytes, at most \(maximum) are allowed; reduce the claims (for example the number of groups) or raise the chunk limit"
        case .invalidAttribute(let detail):
            "invalid cookie setting: \(detail); check cookie_name and cookie_domain"
        }
    }
}
