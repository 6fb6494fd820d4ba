import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP

/// Ties a sign-in callback to the browser that started the sign-in, so a callback URL taken from
/// one browser cannot sign another browser in (login CSRF).
///
/// The host-only cookie `<cookie_name>_signin` contains the browser's pending sign-ins, oldest
/// first, joined by `~`. Each entry is `<issued>.<random>`: Unix seconds and 24 random bytes in
/// base64url. When the proxy sends a browser to sign in, it appends a new entry (dropping expired
/// ones, and the oldest beyond `maximumPending`) and adds `pomerium_signin_binding` =
/// base64url(SHA-256(entry)) to the signed sign-in URL. The authenticate service copies the
/// binding into the callback URL it signs. The callback accepts the session only when an entry of
/// the browser's cookie hashes to that binding and is at most `lifetime` seconds old. It then
/// removes that entry alone, so a used callback URL fails in the same browser too, while other
/// tabs' sign-ins still complete. A cookie of the earlier one-entry format is a list of one entry.
///
/// The cookie is `HttpOnly` and `SameSite=Lax`: the callback is a top-level navigation from the
/// authenticate host, which `Lax` still sends it with.
///
/// NOTE: two sign-ins started at the same moment both read the same cookie, and the browser keeps
/// only the `Set-Cookie` of the later response, so the earlier one's callback is rejected. Its
/// error page offers a retry link.
public struct SignInBinding: Sendable {
    /// The sign-in and callback URL parameter that carries the binding.
    public static let parameter = "pomerium_signin_binding"
    /// How long a started sign-in stays valid, in seconds: the sign-in link, the login at the
    /// identity provider and the callback link each have five minutes.
    public static let lifetime: Int64 = 900
    /// The maximum number of pending sign-ins a browser's cookie keeps. Besides tabs, a page's
    /// images and frames start sign-ins when its session runs out, and each takes an entry. Eight
    /// entries make a cookie value of at most 415 bytes.
    public static let maximumPending = 8
    /// The allowed clock skew for the issue time, in seconds.
    static let leeway: Int64 = 60
    /// The character between two entries of the cookie value.
    static let separator: Character = "~"
    /// The length of an entry's random part: 24 bytes in unpadded base64url.
    static let randomLength = 32

    public let cookieName: String
    private let secure: Bool
    private let clock: any WallClock

    public init(settings: CookieSettings, clock: any WallClock) {
        cookieName = "\(settings.name)_signin"
        secure = settings.secure
        self.clock = clock
    }

    /// The result of starting a sign-in: the `Set-Cookie` value with the new entry and the binding
    /// for the sign-in URL.
    public struct Start: Sendable, Equatable {
        public let setCookie: String
        public let binding: String
    }

    /// The result of an accepted callback: the browser's other pending sign-ins, oldest first,
    /// which `setCookieHeader(keeping:)` writes back.
    public struct Acceptance: Sendable, Equatable {
        public let remainingEntries: [String]
    }

    /// The reason a callback is rejected.
    public enum Failure: Error, Equatable, Sendable {
        /// The callback URL carries no binding or a malformed one.
        case missingBinding
        /// The browser has no sign-in cookie: another browser, or the link was already used.
        case missingCookie
        /// No entry of the browser's sign-in cookies hashes to the binding: another browser, or
        /// the link was already used.
        case mismatch
        /// The matching entry is older than `lifetime`, or issued in the future.
        case expired
    }

    /// One well-formed entry of the cookie.
    struct Entry: Equatable {
        let text: String
        let issued: Int64
    }

    /// Starts a sign-in: returns a cookie with the browser's live entries and a new one, and the
    /// binding of the new entry.
    public func start(cookies: [(name: String, value: String)]) throws -> Start {
        let now = clock.unixSeconds()
        let pending = liveEntries(in: cookies, now: now).suffix(Self.maximumPending - 1).map(\.text)
        // Drawn from the thread's buffered generator, because a call into OpenSSL for 24 bytes
        // measured about 7,000 instructions per sign-in.
        let entry = "\(now)." + Base64.urlUnpadded.encode(try BufferedRandom.current.bytes(24))
        return Start(
            setCookie: try setCookieHeader(keeping: pending + [entry]), binding: try Self.binding(for: entry))
    }

    /// Checks a callback's `binding` against the browser's sign-in cookies. On success the caller
    /// sends `setCookieHeader(keeping: acceptance.remainingEntries)`, so the link works only once.
    public func check(binding: String?, cookies: [(name: String, value: String)]) throws(Failure) -> Acceptance {
        guard let binding, Self.isWellFormed(binding), let expected = Base64.urlUnpadded.decode(binding) else {
            throw .missingBinding
        }
        let now = clock.unixSeconds()
        var sawCookie = false
        var matched: Entry?
        for cookie in cookies where cookie.name == cookieName {
            sawCookie = true
            for entry in Self.entries(of: cookie.value) {
                guard let digest = try? Digest.sha256(Array(entry.text.utf8)), ConstantTime.equals(digest, expected)
                else { continue }
                matched = entry
            }
        }
        guard let matched else { throw sawCookie ? .mismatch : .missingCookie }
        guard Self.isLive(matched, now: now) else { throw .expired }
        let remaining = liveEntries(in: cookies, now: now).filter { $0.text != matched.text }
        return Acceptance(remainingEntries: remaining.suffix(Self.maximumPending).map(\.text))
    }

    /// Returns the `Set-Cookie` value that stores `entries`, oldest first, or deletes the cookie
    /// when there are none. The cookie expires with its newest entry.
    public func setCookieHeader(keeping entries: [String]) throws -> String {
        guard !entries.isEmpty else { return try clearingHeader() }
        let now = clock.unixSeconds()
        let newest = entries.compactMap { Self.entry(parsing: Substring($0))?.issued }.max() ?? now
        let expires = max(now + 1, min(newest, now) + Self.lifetime)
        return try SetCookie(
            name: cookieName, value: entries.joined(separator: String(Self.separator)), path: "/", expires: expires,
            maxAge: Int(expires - now), secure: secure, httpOnly: true, sameSite: .lax
        ).serialized()
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
        text.utf8.count == 43 && text.utf8.allSatisfy(isBase64URL)
    }

    /// Returns the binding of one cookie entry.
    public static func binding(for entry: String) throws -> String {
        Base64.urlUnpadded.encode(try Digest.sha256(Array(entry.utf8)))
    }

    /// Returns the live entries of every cookie named `cookieName`, oldest first and without
    /// duplicates. A browser sends two cookies of the name when another path or a parent domain
    /// set one too, and their entries count together.
    func liveEntries(in cookies: [(name: String, value: String)], now: Int64) -> [Entry] {
        var entries: [Entry] = []
        for cookie in cookies where cookie.name == cookieName {
            for entry in Self.entries(of: cookie.value) where Self.isLive(entry, now: now) {
                if !entries.contains(entry) { entries.append(entry) }
            }
        }
        // A stable sort, so entries issued in the same second keep the order the browser sent.
        return entries.enumerated().sorted { ($0.element.issued, $0.offset) < ($1.element.issued, $1.offset) }
            .map(\.element)
    }

    /// Returns the well-formed entries of a cookie value and skips the malformed ones.
    static func entries(of value: String) -> [Entry] {
        value.split(separator: separator).compactMap(entry(parsing:))
    }

    /// Parses `<seconds>.<random>`, with 1 to 18 digits and `randomLength` base64url characters.
    static func entry(parsing text: Substring) -> Entry? {
        let bytes = text.utf8
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let digits = bytes[..<dot]
        let random = bytes[bytes.index(after: dot)...]
        guard (1...18).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            random.count == randomLength, random.allSatisfy(isBase64URL),
            let issued = Int64(String(decoding: digits, as: UTF8.self))
        else { return nil }
        return Entry(text: String(text), issued: issued)
    }

    /// Returns whether `entry` was issued at most `lifetime` seconds ago and not in the future.
    static func isLive(_ entry: Entry, now: Int64) -> Bool {
        entry.issued <= now + leeway && now - entry.issued <= lifetime
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F
    }
}
