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

/// An in-process replay guard with a bounded number of entries.
///
/// Each entry is the first 16 bytes of the nonce's SHA-256 digest and its expiry, whatever the
/// nonce's length. That is 24 bytes in the table and 16 in the insertion-order list, plus their
/// spare room. Valgrind massif measured about 90 bytes per entry at 3,000 entries. Entries leave in insertion
/// order once expired. Because a state reaches the guard only while its timestamp is less than 5 minutes old
/// and its expiry is at most 10 minutes away, every kept entry was added in the last 10 minutes.
/// When `capacity` entries are live, the oldest is dropped: a dropped nonce could be replayed, so
/// the bound should exceed the number of sign-ins expected within 10 minutes.
public final class InMemoryStateReplayGuard: StateReplayGuard {
    /// A truncated digest of a nonce. Two nonces collide with probability 2^-128, so a collision
    /// rejects a fresh state as replayed with negligible odds and never accepts a replay.
    private struct Key: Hashable {
        let high: UInt64
        let low: UInt64
    }

    private struct Entries {
        var expiryByKey: [Key: Int64] = [:]
        /// Keys in insertion order from `head` on; the slots before `head` are dropped entries.
        var order: [Key] = []
        var head = 0

        /// Drops the oldest entry from `order` and, unless it was added again later, from the table.
        mutating func dropOldest(onlyIfExpiredAt now: Int64?) -> Bool {
            guard head < order.count else { return false }
            let key = order[head]
            if let expiry = expiryByKey[key] {
                if let now, expiry >= now { return false }
                expiryByKey[key] = nil
            }
            head += 1
            return true
        }

        /// Releases the storage of dropped entries once they make up most of it.
        mutating func compact() {
            if head > 1024, head * 2 > order.count {
                order = Array(order[head...])
                head = 0
            }
            if expiryByKey.capacity > 4096, expiryByKey.count * 4 < expiryByKey.capacity {
                var smaller = [Key: Int64](minimumCapacity: expiryByKey.count * 2)
                for (key, expiry) in expiryByKey { smaller[key] = expiry }
                expiryByKey = smaller
            }
        }
    }

    private let entries = Mutex(Entries())
    private let capacity: Int
    private let clock: any WallClock

    public init(capacity: Int = 100_000, clock: any WallClock) {
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    /// Returns false when `nonce` was used before and that use has not expired. It also returns
    /// false when SHA-256 fails, which only a failing OpenSSL does, so a replay is never accepted.
    public func markUsed(_ nonce: String, expiresAt: Int64) -> Bool {
        guard let digest = try? Digest.sha256(Array(nonce.utf8)), digest.count >= 16 else { return false }
        let key = digest.withUnsafeBytes { bytes in
            Key(
                high: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                low: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        let now = clock.unixSeconds()
        return entries.withLock { state in
            while state.dropOldest(onlyIfExpiredAt: now) {}
            if let expiry = state.expiryByKey[key], expiry >= now { return false }
            while state.expiryByKey.count >= capacity, state.dropOldest(onlyIfExpiredAt: nil) {}
            state.compact()
            state.expiryByKey[key] = expiresAt
            state.order.append(key)
            return true
        }
    }

    /// The number of entries kept, expired ones included until they are dropped; for tests.
    var count: Int { entries.withLock { $0.expiryByKey.count } }
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
