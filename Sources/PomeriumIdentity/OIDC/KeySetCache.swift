import PomeriumCore
import PomeriumCrypto
import PomeriumLogging

/// The provider's signing keys (its JWKS document), fetched on first use, kept for
/// `maximumAge` seconds, and refetched early when a token names a key the cached set lacks. Those
/// early refetches happen at most once per `refetchInterval`, so tokens with made-up `kid` values
/// cannot make the proxy hammer the provider. Failed fetches are also retried at most once per
/// interval, and concurrent callers share one fetch.
actor KeySetCache {
    private let url: String
    private let http: ProviderHTTPClient
    private let clock: any WallClock
    private let refetchInterval: Double
    private let maximumAge: Double
    private let logger: Logger

    private var keySet: JWKSet?
    private var fetchedAt: Double = 0
    private var lastFetchStartedAt: Double?
    private var lastUnknownKeyRefetchAt: Double?
    private var inFlight: Task<JWKSet, any Error>?
    private var lastFetchError: IdentityError?
    /// Unknown-key lookups turned away by the throttle since the last fetch, for the next log line.
    private var throttledLookups = 0

    init(
        url: String,
        http: ProviderHTTPClient,
        clock: any WallClock,
        refetchInterval: Double,
        maximumAge: Double,
        logger: Logger
    ) {
        self.url = url
        self.http = http
        self.clock = clock
        self.refetchInterval = refetchInterval
        self.maximumAge = maximumAge
        self.logger = logger
    }

    /// Returns a key set with a key for `keyID` and `algorithm` when the throttle allows the fetch
    /// that finds one. Otherwise it returns the current set, and the caller's verification rejects the token.
    func keySet(keyID: String?, algorithm: JWSAlgorithm) async throws(IdentityError) -> JWKSet {
        let now = clock.now()
        let fetchedRecently = lastFetchStartedAt.map { now - $0 < refetchInterval } ?? false
        guard let keySet else {
            if let inFlight { return try await Self.value(of: inFlight) }
            // Without any keys, a failed fetch is retried only after the refetch interval.
            if fetchedRecently, let lastFetchError { throw lastFetchError }
            return try await fetch(startedAt: now)
        }
        let hasKey = !keySet.candidates(keyID: keyID, algorithm: algorithm).isEmpty
        if hasKey && now - fetchedAt < maximumAge { return keySet }
        if let inFlight { return try await Self.value(of: inFlight) }
        if hasKey {
            // The set is past its maximum age: refetch, but keep using it while fetches fail.
            return fetchedRecently ? keySet : try await fetch(startedAt: now)
        }
        if let lastUnknownKeyRefetchAt, now - lastUnknownKeyRefetchAt < refetchInterval {
            throttledLookups += 1
            return keySet
        }
        lastUnknownKeyRefetchAt = now
        logger.info(
            "refetching the identity provider's JWKS for an unknown key",
            metadata: ["jwks_uri": .string(url), "kid": .string(keyID.map { String($0.prefix(64)) } ?? "")]
        )
        return try await fetch(startedAt: now)
    }

    /// Returns a freshly fetched key set after a signature failed against the cached one, or nil
    /// when the unknown-key throttle turns the fetch away. A provider that rotates its key and
    /// signs without `kid` still matches the old key by algorithm, so only a refetch finds the new one.
    func refetchAfterFailedSignature() async throws(IdentityError) -> JWKSet? {
        if let inFlight { return try await Self.value(of: inFlight) }
        let now = clock.now()
        if let lastUnknownKeyRefetchAt, now - lastUnknownKeyRefetchAt < refetchInterval {
            throttledLookups += 1
            return nil
        }
        lastUnknownKeyRefetchAt = now
        logger.info(
            "refetching the identity provider's JWKS after a signature failed", metadata: ["jwks_uri": .string(url)])
        return try await fetch(startedAt: now)
    }

    private func fetch(startedAt now: Double) async throws(IdentityError) -> JWKSet {
        lastFetchStartedAt = now
        let url = self.url
        let http = self.http
        let task = Task<JWKSet, any Error> {
            let response = try await http.get(url)
            guard response.status == 200 else {
                throw IdentityError.unexpectedStatus(endpoint: ProviderURL.redactQuery(url), status: response.status)
            }
            do {
                return try JWKSet(json: response.body)
            } catch {
                throw IdentityError.invalidResponse(
                    endpoint: ProviderURL.redactQuery(url),
                    reason: "the JWKS document is invalid: \(error)"
                )
            }
        }
        inFlight = task
        defer { inFlight = nil }
        do {
            let fetched = try await Self.value(of: task)
            keySet = fetched
            fetchedAt = clock.now()
            logger.debug(
                "fetched the identity provider's JWKS",
                metadata: [
                    "jwks_uri": .string(url), "keys": .string(String(fetched.keys.count)),
                    "throttled_lookups": .string(String(throttledLookups)),
                ]
            )
            throttledLookups = 0
            lastFetchError = nil
            return fetched
        } catch {
            lastFetchError = error
            // A stale set is better than none while the provider is briefly unavailable; the refetch
            // throttle keeps the retries bounded.
            if let keySet {
                logger.warning(
                    "fetching the identity provider's JWKS failed; using the cached keys",
                    metadata: ["jwks_uri": .string(url), "error": .string(error.description)]
                )
                return keySet
            }
            throw error
        }
    }

    private static func value(of task: Task<JWKSet, any Error>) async throws(IdentityError) -> JWKSet {
        do {
            return try await task.value
        } catch let error as IdentityError {
            throw error
        } catch {
            throw .transportFailed(endpoint: "JWKS", reason: String(describing: type(of: error)))
        }
    }
}
