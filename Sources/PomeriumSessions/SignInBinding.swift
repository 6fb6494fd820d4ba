import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP

/// Ties a sign-in callback to the browser that started the sign-in, so a callback URL taken from
/// one browser cannot sign another browser in (login CSRF).
///
/// When the proxy sends a browser to sign in, it sets the host-only cookie `<cookie_name>_signin`
/// to `<issued>.<random>` and adds `pomerium_signin_binding` = base64url(SHA-256(cookie value)) to
/// the signed sign-in URL. The authenticate service copies the binding into the callback URL it
/// signs. The callback accepts the session only when the browser's cookie hashes to that binding
/// and is at most `lifetime` seconds old, and then clears the cookie, so a used callback URL fails
/// in the same browser too. The cookie is `HttpOnly` and `SameSite=Lax`: the callback is a
/// top-level navigation from the authenticate host, which `Lax` still sends it with.
public struct SignInBinding: Sendable {
    /// The sign-in and callback URL parameter that carries the binding.
    public static let parameter = "pomerium_signin_binding"
    /// How long a started sign-in stays valid, in seconds: the sign-in link, the login at the
    /// identity provider and the callback link each have five minutes.
    public static let lifetime: Int64 = 900
    /// The allowed clock skew for the issue time, in seconds.
    static let leeway: Int64 = 60

    public let cookieName: String
    private let secure: Bool
    private let clock: any WallClock

    public init(settings: CookieSettings, clock: any WallClock) {
        cookieName = "\(settings.name)_signin"
        secure = settings.secure
        self.clock = clock
    }

    /// The result of starting a sign-in: the `Set-Cookie` value (nil when the browser's cookie is
    /// reused) and the binding for the sign-in URL.
    public struct Start: Sendable, Equatable {
        public let setCookie: String?
        public let binding: String
    }

    /// The reason a callback is rejected.
    public enum Failure: Error, Equatable, Sendable {
        /// The callback URL carries no binding or a malformed one.
        case missingBinding
        /// The browser has no sign-in cookie: another browser, or the link was already used.
        case missingCookie
        /// No sign-in cookie of the browser hashes to the binding.
        case mismatch
        /// The matching cookie is older than `lifetime`.
        case expired
    }

    /// Starts a sign-in. A cookie younger than half the lifetime is reused, so two tabs that start
    /// sign-in at once both complete. Otherwise a new cookie is made.
    public func start(cookies: [(name: String, value: String)]) throws -> Start {
        let now = clock.unixSeconds()
        for cookie in cookies where cookie.name == cookieName {
            if let issued = Self.issued(cookie.value), issued <= now + Self.leeway,
                now - issued < Self.lifetime / 2
            {
                return Start(setCookie: nil, binding: try Self.binding(for: cookie.value))
            }
        }
        // Drawn from the thread's buffered generator, because a call into OpenSSL for 24 bytes
        // measured about 7,000 instructions per sign-in.
        let value = "\(now)." + Base64.urlUnpadded.encode(try BufferedRandom.current.bytes(24))
        let cookie = SetCookie(
            name: cookieName, value: value, path: "/", expires: now + Self.lifetime, maxAge: Int(Self.lifetime),
            secure: secure, httpOnly: true, sameSite: .lax)
        return Start(setCookie: try cookie.serialized(), binding: try Self.binding(for: value))
    }

    /// Checks a callback's `binding` against the browser's sign-in cookies.
    public func check(binding: String?, cookies: [(name: String, value: String)]) throws(Failure) {
        guard let binding, Self.isWellFormed(binding), let expected = Base64.urlUnpadded.decode(binding) else {
            throw .missingBinding
        }
        let now = clock.unixSeconds()
        var sawCookie = false
        for cookie in cookies where cookie.name == cookieName {
            sawCookie = true
            guard let digest = try? Digest.sha256(Array(cookie.value.utf8)), ConstantTime.equals(digest, expected)
            else { continue }
            guard let issued = Self.issued(cookie.value), issued <= now + Self.leeway, now - issued <= Self.lifetime
            else { throw .expired }
            return
        }
        throw sawCookie ? .mismatch : .missingCookie
    }

    /// Returns the `Set-Cookie` value that deletes the sign-in cookie.
    public func clearingHeader() throws -> String {
        try SetCookie(
            name: cookieName, value: "", path: "/", expires: clock.unixSeconds() - 3600, maxAge: 0, secure: secure,
            httpOnly: true, sameSite: .lax
        ).serialized()
    }

    /// Returns whether `text` has the shape of a binding: 43 base64url characters (32 bytes).
    public static func isWellFormed(_ text: String) -> Bool {
        text.utf8.count == 43
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F
            }
    }

    /// Returns the binding of a cookie value.
    public static func binding(for cookieValue: String) throws -> String {
        Base64.urlUnpadded.encode(try Digest.sha256(Array(cookieValue.utf8)))
    }

    /// The issue time of a cookie value `<seconds>.<random>`, or nil when malformed.
    private static func issued(_ value: String) -> Int64? {
        guard let dot = value.firstIndex(of: "."), value.distance(from: value.startIndex, to: dot) <= 18 else {
            return nil
        }
        let digits = value[..<dot]
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(digits)
    }
}
