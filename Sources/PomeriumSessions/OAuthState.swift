import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import Synchronization

/// Records which OAuth `state` nonces have been used, so each state is accepted once. A shared
/// store can back it when several authenticate instances run.
public protocol StateReplayGuard: Sendable {
    /// Marks `nonce` as used until `expiresAt` (Unix seconds). Returns false when it was already used.
    func markUsed(_ nonce: String, expiresAt: Int64) -> Bool
}

/// An in-process replay guard with a bounded number of entries. When full it drops expired entries
/// first and then the oldest ones; a dropped nonce could be replayed, so the bound should exceed the
/// number of sign-ins expected within the state's 10-minute window.
public final class InMemoryStateReplayGuard: StateReplayGuard {
    private struct Entries {
        var expiryByNonce: [String: Int64] = [:]
        var order: [String] = []
        var head = 0
    }

    private let entries = Mutex(Entries())
    private let capacity: Int
    private let clock: any WallClock

    public init(capacity: Int = 100_000, clock: any WallClock) {
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    public func markUsed(_ nonce: String, expiresAt: Int64) -> Bool {
        let now = clock.unixSeconds()
        return entries.withLock { state in
            if let expiry = state.expiryByNonce[nonce], expiry >= now { return false }
            if state.expiryByNonce.count >= capacity {
                state.expiryByNonce = state.expiryByNonce.filter { $0.value >= now }
                state.order = state.order[state.head...].filter { state.expiryByNonce[$0] != nil }
                state.head = 0
                while state.expiryByNonce.count >= capacity, state.head < state.order.count {
                    state.expiryByNonce[state.order[state.head]] = nil
                    state.head += 1
                }
            }
            state.expiryByNonce[nonce] = expiresAt
            state.order.append(nonce)
            return true
        }
    }
}

/// The OAuth `state` parameter and the `<cookie_name>_csrf` cookie that binds it to the browser.
///
/// The CSRF cookie contains 32 random bytes sealed under a key derived from `cookie_secret`. The state
/// is base64url with padding of `<nonce>|<unix seconds>|<sealed return URL>`, where the return URL is
/// sealed with associated data `<nonce>|<seconds>|<cookie bytes>`. A state therefore opens only with
/// the cookie of the browser that started the flow, only within 5 minutes either side of its
/// timestamp, and, through the replay guard, only once.
public struct OAuthStateCodec: Sendable {
    /// The window around the state's timestamp, in seconds.
    public static let window: Int64 = 300
    /// The CSRF cookie's lifetime, in seconds (12 hours, as v0.7).
    public static let csrfCookieLifetime = 12 * 3600
    static let artefact = "oauth-state"
    static let csrfArtefact = "csrf-cookie"

    private let stateKey: AEADKey
    private let cookieKey: AEADKey
    private let settings: CookieSettings
    private let clock: any WallClock
    private let replayGuard: any StateReplayGuard
    private let logger: Logger

    public init(
        cookieSecret: [UInt8],
        settings: CookieSettings,
        clock: any WallClock,
        replayGuard: any StateReplayGuard,
        logger: Logger
    ) throws {
        guard cookieSecret.count == 32 else {
            throw PomeriumError(
                "cookie-secret-invalid", "cookie_secret must decode to 32 bytes, got \(cookieSecret.count)")
        }
        stateKey = try AEADKey(secret: cookieSecret, purpose: "oauth-state")
        cookieKey = try AEADKey(secret: cookieSecret, purpose: "csrf-cookie")
        self.settings = settings
        self.clock = clock
        self.replayGuard = replayGuard
        self.logger = logger
    }

    /// The secret of one browser's CSRF cookie.
    public struct CSRFSecret: Sendable, Equatable {
        let bytes: [UInt8]
    }

    /// Returns the browser's CSRF secret from its cookies, or a new secret with the `Set-Cookie`
    /// value that stores it when the browser has none (or an invalid one).
    public func csrfSecret(fromCookies cookies: [(name: String, value: String)]) throws -> (
        secret: CSRFSecret, setCookie: String?
    ) {
        if let existing = existingCSRFSecret(fromCookies: cookies) { return (existing, nil) }
        let secret = CSRFSecret(bytes: try SecureRandom.bytes(32))
        let sealed = try cookieKey.seal(secret.bytes, associatedData: Array(settings.csrfName.utf8))
        // Strict would withhold the cookie on the identity provider's cross-site redirect back.
        let sameSite: SetCookie.SameSite? = settings.sameSite == .strict ? .lax : settings.sameSite
        let cookie = SetCookie(
            name: settings.csrfName, value: "v1." + Base64.urlUnpadded.encode(sealed), path: "/",
            domain: settings.domain,
            maxAge: Self.csrfCookieLifetime, secure: settings.secure, httpOnly: true, sameSite: sameSite)
        do {
            return (secret, try cookie.serialized())
        } catch {
            throw CookieWriteError.invalidAttribute(error.description)
        }
    }

    /// The CSRF secret in the request's cookies, or nil when absent or invalid (logged once).
    public func existingCSRFSecret(fromCookies cookies: [(name: String, value: String)]) -> CSRFSecret? {
        for cookie in cookies where cookie.name == settings.csrfName {
            guard cookie.value.hasPrefix("v1."), let sealed = Base64.urlUnpadded.decode(cookie.value.dropFirst(3)),
                let bytes = try? cookieKey.open(sealed, associatedData: Array(settings.csrfName.utf8)),
                bytes.count == 32
            else {
                logger.logRejection(SessionRejection(Self.csrfArtefact, .decryptionFailed))
                continue
            }
            return CSRFSecret(bytes: bytes)
        }
        return nil
    }

    /// Builds the `state` for a sign-in that returns to `returnURL`.
    public func makeState(returnURL: String, secret: CSRFSecret) throws -> String {
        let nonce = Base64.urlUnpadded.encode(try SecureRandom.bytes(16))
        let timestamp = clock.unixSeconds()
        let prefix = Array("\(nonce)|\(timestamp)|".utf8)
        let sealed = try stateKey.seal(Array(returnURL.utf8), associatedData: prefix + secret.bytes)
        return Base64.url.encode(prefix + sealed)
    }

    /// Checks a `state` returned by the identity provider against the request's CSRF cookie and
    /// returns the return URL it carries.
    ///
    /// - Throws: `SessionRejection`: `malformed`, `expired`, `issuedInFuture`, `csrfMismatch` (no
    ///   valid CSRF cookie), `decryptionFailed` (tampered, or another browser's cookie), `replayed`.
    public func openState(_ state: String, cookies: [(name: String, value: String)]) throws -> String {
        do {
            return try check(state, cookies: cookies)
        } catch let rejection as SessionRejection {
            logger.logRejection(rejection)
            throw rejection
        }
    }

    private func check(_ state: String, cookies: [(name: String, value: String)]) throws -> String {
        guard state.utf8.count <= 16 * 1024, let decoded = Base64.url.decode(state) else {
            throw SessionRejection(Self.artefact, .malformed)
        }
        let bar = UInt8(ascii: "|")
        guard let first = decoded.firstIndex(of: bar),
            let second = decoded[(first + 1)...].firstIndex(of: bar)
        else { throw SessionRejection(Self.artefact, .malformed) }
        let nonce = String(decoding: decoded[..<first], as: UTF8.self)
        guard Base64.urlUnpadded.decode(nonce)?.count == 16,
            let timestamp = Int64(String(decoding: decoded[(first + 1)..<second], as: UTF8.self))
        else { throw SessionRejection(Self.artefact, .malformed) }
        let now = clock.unixSeconds()
        guard timestamp >= now - Self.window else { throw SessionRejection(Self.artefact, .expired) }
        guard timestamp <= now + Self.window else { throw SessionRejection(Self.artefact, .issuedInFuture) }
        guard let secret = existingCSRFSecret(fromCookies: cookies) else {
            throw SessionRejection(Self.artefact, .csrfMismatch)
        }
        let prefix = Array(decoded[...second])
        guard let plaintext = try? stateKey.open(decoded[(second + 1)...], associatedData: prefix + secret.bytes),
            let returnURL = String(validating: plaintext, as: UTF8.self)
        else { throw SessionRejection(Self.artefact, .decryptionFailed) }
        guard (try? HTTPURL(parsing: returnURL)) != nil else { throw SessionRejection(Self.artefact, .malformed) }
        guard replayGuard.markUsed(nonce, expiresAt: timestamp + Self.window) else {
            throw SessionRejection(Self.artefact, .replayed)
        }
        return returnURL
    }
}
