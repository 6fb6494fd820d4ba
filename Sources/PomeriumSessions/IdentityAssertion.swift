import Glibc
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import Synchronization

/// Signs the `X-Pomerium-Jwt-Assertion` header: an ES256 JWT of the route session claims with
/// header `{"alg":"ES256","kid":<RFC 7638 thumbprint>}` (v0.7 sent no `kid`). Signing costs tens
/// of microseconds, so each assertion is cached per (session id, route) until `refreshMargin`
/// seconds before the session expires, and a request with a cached assertion only pays a
/// dictionary lookup under a lock.
///
/// The cache is bounded by `capacity` entries and by `maximumBytes` of estimated memory, because
/// one entry of a session with hundreds of groups keeps tens of KiB alive. When either limit is
/// exceeded, the oldest stored entries are evicted first, at a cost that does not grow with the
/// number of entries.
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
    private let maximumBytes: Int
    private let cache = Mutex(Cache())
    /// A number that no other signer in this process has, so a memo (`IdentityHeadersMemo`) never
    /// mistakes a new signer for a released one that had the same address.
    fileprivate let serial = IdentityAssertionSigner.serials.add(1, ordering: .relaxed).newValue
    private static let serials = Atomic<UInt64>(0)

    private struct CacheKey: Hashable {
        let sessionID: String
        let route: String
    }

    private struct Entry {
        let assertion: String
        /// The session the assertion was signed for; a changed session is signed again.
        let session: SessionState
        let validUntil: Int64
        /// The claim headers of `session` under one `jwt_claims_headers` plan, once rendered.
        var claimHeaders: RenderedClaimHeaders?
        /// The estimated memory this entry keeps alive, in bytes (see `charge(of:key:)`).
        var charge = 0
    }

    /// Claim header values rendered for one plan, so a request with a cached assertion copies the
    /// finished list instead of joining and checking the values again.
    private struct RenderedClaimHeaders {
        let plan: ClaimHeaderPlan
        let headers: [ClaimHeader]
    }

    private struct Cache {
        var entries: [CacheKey: Entry] = [:]
        /// The keys of `entries` from `head` on, oldest first. An evicted slot is replaced by an
        /// empty key at once, and the evicted prefix is dropped once it is longer than the rest.
        var insertionOrder: [CacheKey] = []
        var head = 0
        var chargedBytes = 0
    }

    /// The default for `maximumBytes`: 32 MiB. An entry of a session with a few groups (a 700-byte
    /// assertion and its claims) is charged about 2 KiB, so about 16,000 such entries fit. An
    /// entry of a session with 400 groups is charged about 54 KiB, so about 600 fit, where 50,000
    /// of them would take an estimated 1 GiB or more.
    public static let defaultMaximumBytes = 32 << 20

    /// Creates a signer for a P-256 key.
    ///
    /// - Parameters:
    ///   - capacity: the maximum number of cached assertions. The oldest are evicted first.
    ///   - maximumBytes: the maximum estimated memory of the cached assertions, in bytes. The
    ///     oldest are evicted first.
    ///   - refreshMargin: seconds before the session's `exp` at which a cached assertion is signed again.
    public init(
        signingKey: ECPrivateKey, clock: any WallClock, capacity: Int = 50_000,
        maximumBytes: Int = IdentityAssertionSigner.defaultMaximumBytes, refreshMargin: Int64 = 60
    ) throws {
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
        self.maximumBytes = max(0, maximumBytes)
    }

    /// Returns the assertion for `session` on `route`, from the cache when the same claims were
    /// signed before and the entry is still fresh. `sessionID` identifies the session, for example
    /// its `jti` or `ati`. The session's OAuth token is never included.
    public func assertion(for session: SessionState, sessionID: String, route: String) throws -> String {
        try identityHeaders(for: session, sessionID: sessionID, route: route, claimHeaders: nil).assertion
    }

    /// Returns the assertion for `session` on `route` and the claim headers that `plan` gives for
    /// `session`, both from the cache when the same claims were signed before and the entry is
    /// still fresh. The claim headers are exactly those of `plan.forEachHeader(for: session)`.
    public func identityHeaders(
        for session: SessionState, sessionID: String, route: String, claimHeaders plan: ClaimHeaderPlan?
    ) throws -> IdentityHeaders {
        try identityHeaders(
            for: session, sessionID: sessionID, route: route, claimHeaders: plan, now: clock.unixSeconds()
        ).headers
    }

    /// Returns what `identityHeaders(for:sessionID:route:claimHeaders:)` returns, first asking
    /// `memo`, which contains the last result for this session. The caller keeps one memo per
    /// session, for example in `SessionState.derived(_:)`, and never shares it between sessions
    /// with different claims. A memo returns headers only for the same signer, route and plan, and only
    /// until the time the cache entry it copied stops being fresh. `sessionID` is evaluated only
    /// when the memo has no headers, so a memo hit copies no string for it.
    public func identityHeaders(
        for session: SessionState, sessionID: @autoclosure () -> String, route: String,
        claimHeaders plan: ClaimHeaderPlan?, memo: IdentityHeadersMemo
    ) throws -> IdentityHeaders {
        let now = clock.unixSeconds()
        if let remembered = memo.headers(signer: self, route: route, plan: plan, now: now) { return remembered }
        let result = try identityHeaders(
            for: session, sessionID: sessionID(), route: route, claimHeaders: plan, now: now)
        if let reusableUntil = result.reusableUntil {
            memo.remember(result.headers, signer: self, route: route, plan: plan, validUntil: reusableUntil)
        }
        return result.headers
    }

    /// Returns the headers and the time until which the cache would give the same headers again
    /// (nil when it would not keep them).
    private func identityHeaders(
        for session: SessionState, sessionID: String, route: String, claimHeaders plan: ClaimHeaderPlan?, now: Int64
    ) throws -> (headers: IdentityHeaders, reusableUntil: Int64?) {
        let key = CacheKey(sessionID: sessionID, route: route)
        // A route session has no OAuth token, so it compares as it is, without a copy.
        let hasToken = session.oauthToken != nil
        // Entries hold the route session, so claims read from the OAuth token (`act`) are rendered
        // for each request and never cached.
        let cachesClaims = plan.map { !(hasToken && $0.readsOAuthToken) } ?? false
        // Without a plan there are no claim headers, which any entry gives alike.
        let reusable = plan == nil || cachesClaims
        let cached = cache.withLock { cache -> (assertion: String, claims: [ClaimHeader]?, validUntil: Int64)? in
            guard let entry = cache.entries[key], entry.validUntil > now,
                hasToken ? entry.session == session.routeSession : entry.session == session
            else {
                return nil
            }
            guard let plan else { return (entry.assertion, [], entry.validUntil) }
            guard cachesClaims, let rendered = entry.claimHeaders, rendered.plan.isSamePlan(as: plan) else {
                return (entry.assertion, nil, entry.validUntil)
            }
            return (entry.assertion, rendered.headers, entry.validUntil)
        }
        if let cached, let claims = cached.claims {
            return (IdentityHeaders(assertion: cached.assertion, claimHeaders: claims), cached.validUntil)
        }
        let claims = plan.map { $0.headers(for: session) } ?? []
        if let cached {
            if let plan, cachesClaims {
                let rendered = RenderedClaimHeaders(plan: plan, headers: claims)
                cache.withLock { cache in
                    guard var entry = cache.entries[key], entry.assertion == cached.assertion else { return }
                    entry.claimHeaders = rendered
                    entry.charge = Self.charge(of: entry, key: key)
                    cache.chargedBytes += entry.charge - (cache.entries[key]?.charge ?? 0)
                    cache.entries[key] = entry
                    evictIfFull(&cache)
                }
            }
            return (
                IdentityHeaders(assertion: cached.assertion, claimHeaders: claims),
                reusable ? cached.validUntil : nil
            )
        }
        let routeSession = session.routeSession

        let assertion = try JWS.sign(payload: routeSession.jsonBytes(), with: signingKey, encodedHeader: encodedHeader)
        let result = IdentityHeaders(assertion: assertion, claimHeaders: claims)
        guard let expiry = session.expiry, expiry - refreshMargin > now else { return (result, nil) }
        let rendered = cachesClaims ? plan.map { RenderedClaimHeaders(plan: $0, headers: claims) } : nil
        var entry = Entry(
            assertion: assertion, session: routeSession, validUntil: expiry - refreshMargin, claimHeaders: rendered)
        entry.charge = Self.charge(of: entry, key: key)
        cache.withLock { cache in
            if let replaced = cache.entries.updateValue(entry, forKey: key) {
                cache.chargedBytes -= replaced.charge
            } else {
                cache.insertionOrder.append(key)
            }
            cache.chargedBytes += entry.charge
            evictIfFull(&cache)
        }
        return (result, reusable ? expiry - refreshMargin : nil)
    }

    /// The number of cached assertions.
    public var cachedCount: Int { cache.withLock { $0.entries.count } }

    /// The sum of the cached assertions' charges, in bytes.
    var cachedBytes: Int { cache.withLock { $0.chargedBytes } }

    /// The number of evicted slots at the front of the order list, for tests of its bound.
    var evictedSlotCount: Int { cache.withLock { $0.head } }

    /// Evicts the oldest entries until both limits hold. Each eviction costs one dictionary
    /// removal, and an entry that was stored once is evicted once, so the work per stored entry
    /// does not depend on how many entries there are. An expired entry is evicted in its turn or
    /// replaced when its key is signed again.
    private func evictIfFull(_ cache: inout Cache) {
        while cache.entries.count > capacity || cache.chargedBytes > maximumBytes,
            cache.head < cache.insertionOrder.count
        {
            let oldest = cache.insertionOrder[cache.head]
            cache.insertionOrder[cache.head] = CacheKey(sessionID: "", route: "")
            cache.head += 1
            if let evicted = cache.entries.removeValue(forKey: oldest) {
                cache.chargedBytes -= evicted.charge
            }
        }
        // Moving the live keys to the front costs one step per key, and it happens only after at
        // least as many evictions, so it adds a constant to each eviction.
        if cache.head > 64, cache.head > cache.insertionOrder.count - cache.head {
            cache.insertionOrder.removeFirst(cache.head)
            cache.head = 0
        }
    }

    /// Returns the estimated memory an entry keeps alive, in bytes: the assertion, the claims of
    /// its session, the rendered claim headers, the key and about 128 bytes for the entry itself
    /// and its dictionary slot. Entries of one session on several routes share the claims, but
    /// each is charged for them in full, because any one of them can be the last to hold them.
    private static func charge(of entry: Entry, key: CacheKey) -> Int {
        var size = 128 + SessionState.heapSize(of: entry.assertion) + entry.session.estimatedMemorySize
        size += SessionState.heapSize(of: key.sessionID) + SessionState.heapSize(of: key.route)
        for header in entry.claimHeaders?.headers ?? [] {
            size += 16 + SessionState.heapSize(of: header.name) + SessionState.heapSize(of: header.value)
        }
        return size
    }
}

/// One claim header: a canonical `X-Pomerium-Claim-*` name and a value without control characters.
public struct ClaimHeader: Sendable {
    public let name: String
    public let value: String
}

/// The fields an identified request adds for the upstream: the signed assertion and the claim headers.
/// A class, so the memo and each request share one instance: copying the struct's string and three
/// lists measured four retains and four releases per request.
public final class IdentityHeaders: Sendable {
    /// The `X-Pomerium-Jwt-Assertion` value, a signed JWT.
    public let assertion: String
    /// The `jwt_claims_headers` fields, in the order of the list.
    public let claimHeaders: [ClaimHeader]
    /// The assertion field followed by the claim fields, encoded and checked once, so a request
    /// that reuses these headers appends them with one copy.
    public let fields: HTTPHeaders.FieldBlock

    init(assertion: String, claimHeaders: [ClaimHeader]) {
        self.assertion = assertion
        self.claimHeaders = claimHeaders
        fields = HTTPHeaders.FieldBlock(
            [(IdentityAssertionSigner.headerName, assertion)] + claimHeaders.map { ($0.name, $0.value) })
    }
}

extension HTTPHeaders {
    /// Appends the assertion field and the claim fields of `identity` (`IdentityHeaders.fields`).
    /// Reading the fields here, from a parameter, passes them on without the retain and release
    /// of each array that a caller holding `identity` in an optional paid.
    public mutating func append(_ identity: IdentityHeaders) {
        append(identity.fields)
    }
}

/// The last identity headers of one session, kept by the caller with the session so a request
/// with the same signer, route and claim plan skips the signer's shared cache (see
/// `IdentityAssertionSigner.identityHeaders(for:sessionID:route:claimHeaders:memo:)`).
public final class IdentityHeadersMemo: Sendable {
    /// A class, so reading it under the lock copies one reference instead of its five fields.
    private final class Remembered: Sendable {
        /// The signer's `serial`: an object identifier would match a new signer at a released one's address.
        let signer: UInt64
        let route: String
        let plan: ClaimHeaderPlan?
        let headers: IdentityHeaders
        let validUntil: Int64

        init(signer: UInt64, route: String, plan: ClaimHeaderPlan?, headers: IdentityHeaders, validUntil: Int64) {
            self.signer = signer
            self.route = route
            self.plan = plan
            self.headers = headers
            self.validUntil = validUntil
        }
    }

    private let last = Mutex<Remembered?>(nil)

    public init() {}

    fileprivate func headers(
        signer: IdentityAssertionSigner, route: String, plan: ClaimHeaderPlan?, now: Int64
    ) -> IdentityHeaders? {
        // The entry is immutable, so it is checked after the lock is released.
        guard let remembered = last.withLock({ $0 }), remembered.validUntil > now, remembered.signer == signer.serial,
            Self.sameBytes(remembered.route, route)
        else { return nil }
        switch (remembered.plan, plan) {
        case (nil, nil): return remembered.headers
        case (let kept?, let asked?): return kept.isSamePlan(as: asked) ? remembered.headers : nil
        default: return nil
        }
    }

    /// Returns whether the two strings have the same UTF-8 bytes, compared in place. The bytes are
    /// read without the copies that `withUTF8` needs, which cost two retains and two releases.
    private static func sameBytes(_ left: String, _ right: String) -> Bool {
        guard left.utf8.count == right.utf8.count else { return false }
        let same = left.utf8.withContiguousStorageIfAvailable { leftBytes in
            right.utf8.withContiguousStorageIfAvailable { rightBytes in
                guard let leftBase = leftBytes.baseAddress, let rightBase = rightBytes.baseAddress else { return true }
                return memcmp(leftBase, rightBase, leftBytes.count) == 0
            }
        }
        return (same ?? nil) ?? left.utf8.elementsEqual(right.utf8)
    }

    fileprivate func remember(
        _ headers: IdentityHeaders, signer: IdentityAssertionSigner, route: String, plan: ClaimHeaderPlan?,
        validUntil: Int64
    ) {
        let remembered = Remembered(
            signer: signer.serial, route: route, plan: plan, headers: headers, validUntil: validUntil)
        last.withLock { $0 = remembered }
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
