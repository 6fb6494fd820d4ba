import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import Synchronization

/// Signs the `X-Pomerium-Jwt-Assertion` header: an ES256 JWT of the route session claims with
/// header `{"alg":"ES256","kid":<RFC 7638 thumbprint>}` (v0.7 sent no `kid`). Signing costs tens
/// of microseconds, so each assertion is cached per (session id, route) until `refreshMargin`
/// seconds before the session expires, and a request with a cached assertion only pays a
/// dictionary lookup under a lock.
public final class IdentityAssertionSigner: Sendable {
    public static let headerName = "X-Pomerium-Jwt-Assertion"

    /// The key's RFC 7638 thumbprint, used as `kid`.
    public let keyID: String
    public let publicKey: ECPublicKey
    private let signingKey: JWSSigningKey
    private let encodedHeader: [UInt8]
    private let clock: any WallClock
    private let refreshMargin: Int64
    private let capacity: Int
    private let cache = Mutex(Cache())

    private struct CacheKey: Hashable {
        let sessionID: String
        let route: String
    }

    private struct Entry {
        let assertion: String
        /// The session the assertion was signed for; a changed session is signed again.
        let session: SessionState
        let validUntil: Int64
    }

    private struct Cache {
        var entries: [CacheKey: Entry] = [:]
        var insertionOrder: [CacheKey] = []
        var head = 0
    }

    /// Creates a signer for a P-256 key.
    ///
    /// - Parameters:
    ///   - capacity: the most cached assertions; the oldest are dropped first.
    ///   - refreshMargin: seconds before the session's `exp` at which a cached assertion is signed again.
    public init(signingKey: ECPrivateKey, clock: any WallClock, capacity: Int = 50_000, refreshMargin: Int64 = 60)
        throws
    {
        guard signingKey.curve == .p256 else {
            throw KeyError("signing_key must be an EC key on P-256 for ES256; found \(signingKey.curve.rawValue)")
        }
        publicKey = signingKey.publicKey
        keyID = try JWK(key: .ec(signingKey.publicKey)).thumbprint()
        self.signingKey = .ecdsa(signingKey)
        encodedHeader = JWS.encodeHeader(JSONObject([("alg", .string("ES256")), ("kid", .string(keyID))]))
        self.clock = clock
        self.refreshMargin = refreshMargin
        self.capacity = max(1, capacity)
    }

    /// Returns the assertion for `session` on `route`, from the cache when the same claims were
    /// signed before and the entry is still fresh. `sessionID` identifies the session, for example
    /// its `jti` or `ati`. The session's OAuth token is never included.
    public func assertion(for session: SessionState, sessionID: String, route: String) throws -> String {
        let key = CacheKey(sessionID: sessionID, route: route)
        let now = clock.unixSeconds()
        // A route session has no OAuth token, so it compares as it is, without a copy.
        let hasToken = session.oauthToken != nil
        let cached = cache.withLock { cache -> String? in
            guard let entry = cache.entries[key], entry.validUntil > now,
                hasToken ? entry.session == session.routeSession : entry.session == session
            else {
                return nil
            }
            return entry.assertion
        }
        if let cached { return cached }
        let routeSession = session.routeSession

        let assertion = try JWS.sign(payload: routeSession.jsonBytes(), with: signingKey, encodedHeader: encodedHeader)
        guard let expiry = session.expiry, expiry - refreshMargin > now else { return assertion }
        let entry = Entry(assertion: assertion, session: routeSession, validUntil: expiry - refreshMargin)
        cache.withLock { cache in
            if cache.entries.updateValue(entry, forKey: key) == nil {
                cache.insertionOrder.append(key)
            }
            evictIfFull(&cache, now: now)
        }
        return assertion
    }

    /// The number of cached assertions.
    public var cachedCount: Int { cache.withLock { $0.entries.count } }

    private func evictIfFull(_ cache: inout Cache, now: Int64) {
        guard cache.entries.count > capacity else { return }
        cache.entries = cache.entries.filter { $0.value.validUntil > now }
        while cache.entries.count > capacity, cache.head < cache.insertionOrder.count {
            cache.entries[cache.insertionOrder[cache.head]] = nil
            cache.head += 1
        }
        // Compact the order list once its consumed prefix dominates.
        if cache.head > capacity {
            cache.insertionOrder = cache.insertionOrder[cache.head...].filter { cache.entries[$0] != nil }
            cache.head = 0
        }
    }
}

/// The JWKS document served at `/.well-known/pomerium/jwks.json`: the current assertion key and,
/// during a rotation, the previous one, each with `kid` (its thumbprint), `alg` ES256 and `use` sig.
public struct AssertionKeySet: Sendable {
    public let current: ECPublicKey
    public let previous: ECPublicKey?
    /// The document, ready to serve as `application/json`.
    public let jsonBytes: [UInt8]

    public init(current: ECPublicKey, previous: ECPublicKey? = nil) throws {
        self.current = current
        self.previous = previous
        var keys = [try Self.jwk(current)]
        if let previous, previous != current { keys.append(try Self.jwk(previous)) }
        jsonBytes = JWKSet(keys: keys).jsonBytes()
    }

    private static func jwk(_ key: ECPublicKey) throws -> JWK {
        var jwk = JWK(key: .ec(key), algorithm: "ES256", use: "sig")
        jwk.keyID = try jwk.thumbprint()
        return jwk
    }
}
