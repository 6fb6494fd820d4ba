import PomeriumCore
import PomeriumLogging

/// Decides where a route's token comes from: the cache while it stays valid for
/// `minimumValidity` seconds, else a refresh, else a new browser login. Every new token goes
/// back into the cache.
public struct CredentialManager: Sendable {
    let backend: any CredentialBackend
    let cache: TokenCache?
    let clock: any WallClock
    let minimumValidity: Int64
    let logger: Logger

    public init(
        backend: any CredentialBackend, cache: TokenCache?, clock: any WallClock, minimumValidity: Int64,
        logger: Logger
    ) {
        self.backend = backend
        self.cache = cache
        self.clock = clock
        self.minimumValidity = minimumValidity
        self.logger = logger
    }

    /// Returns credentials for `route` that are valid now.
    public func credentials(for route: RouteOrigin) async throws(CLIError) -> RouteCredentials {
        let warn: (String) -> Void = { logger.warning("\($0)") }
        if let cached = cache?.load(route, warning: warn) {
            if cached.isValid(now: clock.unixSeconds(), margin: minimumValidity) {
                logger.info("using the cached token", metadata: ["route": .string(route.description)])
                return cached
            }
            logger.info("the cached token has expired or expires soon", metadata: ["route": .string(route.description)])
            if let refreshed = await refreshAndStore(cached) { return refreshed }
        }
        return try await loginAndStore(route)
    }

    /// Replaces credentials that the route rejected: a refresh, else a new login.
    public func renew(_ rejected: RouteCredentials) async throws(CLIError) -> RouteCredentials {
        if let refreshed = await refreshAndStore(rejected) { return refreshed }
        return try await loginAndStore(rejected.route)
    }

    private func refreshAndStore(_ credentials: RouteCredentials) async -> RouteCredentials? {
        let refreshed: RouteCredentials
        do {
            refreshed = try await backend.refresh(credentials)
        } catch {
            logger.warning(
                "refreshing the token failed; signing in again",
                metadata: ["route": .string(credentials.route.description), "error": .string(error.message)])
            return nil
        }
        store(refreshed)
        return refreshed
    }

    private func loginAndStore(_ route: RouteOrigin) async throws(CLIError) -> RouteCredentials {
        let fresh = try await backend.login(route: route)
        store(fresh)
        return fresh
    }

    /// Writes to the cache; a failure is reported but does not fail the command, which still
    /// has a usable token.
    private func store(_ credentials: RouteCredentials) {
        guard let cache else { return }
        do {
            try cache.save(credentials)
        } catch {
            logger.warning("\(error.message)")
        }
    }
}
