import PomeriumAuthenticate
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTPClient
import PomeriumIdentity
import PomeriumLogging
import PomeriumNet
import PomeriumProxy
import PomeriumServer
import PomeriumSessions
import PomeriumSessionsRedis

/// Builds the proxy and authenticate services: the shared dependencies once at start (store,
/// signing key, HTTP client, discovered identity provider), and a new `ServiceSet` for every
/// configuration snapshot.
struct ServiceWiring: Sendable {
    let shared: SharedDependencies
    let build: ServiceSetBuilder
    let stop: @Sendable () -> Void

    static func start(options: Options, group: EventLoopGroup, logger: Logger) async throws -> ServiceWiring {
        let store: any KeyValueStore
        let signingKey: ECPrivateKey?
        do {
            store = try await SessionStoreFactory.open(options: options, logger: logger)
            signingKey = try SigningKeySetup.load(options: options, logger: logger)
        } catch let problem as SessionStoreFactory.Problem {
            throw StartupError(problem.description)
        } catch let problem as SigningKeySetup.Problem {
            throw StartupError(problem.description)
        }
        let clock = SystemWallClock()
        let shared: SharedDependencies
        do {
            shared = try SharedDependencies(store: store, signingKey: signingKey, clock: clock)
        } catch {
            throw StartupError("cannot use the signing key: \(error); set signing_key to a P-256 key in PEM")
        }
        let client = HTTPClient(group: group)
        let mode = options.services
        if mode != .all {
            // NOTE: without the gRPC services, a split process evaluates policy itself and keeps
            // sessions in cache_store; processes share sessions only through a shared Redis store.
            logger.warning(
                """
                services \(mode.rawValue): authorize_service_url and cache_service_url are not used by this build; \
                policy is evaluated in this process and sessions live in cache_store, so split processes share \
                sessions only through cache_store redis
                """)
        }
        let provider: (any IdentityProvider)? =
            mode.runsAuthenticate ? try await discoverProvider(options: options, client: client, logger: logger) : nil
        // One replay guard for the life of the process, so a reload does not forget which OAuth
        // states were already used.
        let replayGuard = InMemoryStateReplayGuard(clock: clock)
        let proxyLogger = Logger(label: "pomerium.proxy")
        let authenticateLogger = Logger(label: "pomerium.authenticate")

        // Only a process that runs the authenticate service knows its sessions are in `store`; a
        // proxy-only process skips the sign-out check (its route sessions last until their `exp`).
        // Its recheck intervals use the monotonic clock, which setting the system time does not move.
        let liveness: SessionLiveness? =
            mode.runsAuthenticate && mode.runsProxy
            ? SessionLiveness(store: store, clock: SystemIntervalClock(), logger: proxyLogger) : nil
        let locksLogins = SessionStoreFactory.locksLogins(options: options)
        let signingKeys = shared.signingKeys
        let currentProxy = CurrentProxyService()
        let build: ServiceSetBuilder = { (snapshot: ConfigSnapshot) throws -> ServiceSet in
            let options = snapshot.options
            // The start already loaded the first snapshot's key; a reload reads signing_key again.
            let keys =
                snapshot.generation == 1
                ? signingKeys.current
                : try signingKeys.prepare(SigningKeySetup.load(options: options, isReload: true, logger: logger))
            var authenticate: AuthenticateService?
            if let provider {
                authenticate = try AuthenticateService(
                    options: options, provider: provider, store: store, keySet: keys?.keySet, clock: clock,
                    logger: authenticateLogger, replayGuard: replayGuard, liveness: liveness,
                    locksLogins: locksLogins)
            }
            var proxy: ProxyService?
            if mode.runsProxy, let signer = keys?.signer, let keySet = keys?.keySet {
                let refresher: any RouteSessionRefresher = authenticate ?? SignInAgainRefresher()
                proxy = try ProxyService(
                    options: options,
                    shared: ProxySharedState(
                        signer: signer, keySet: keySet, refresher: refresher, client: client,
                        logger: proxyLogger, clock: clock, liveness: liveness, currentService: currentProxy))
            }
            let authenticateHost = options.authenticateServiceURL.map {
                AuthenticateHost(scheme: $0.scheme, host: $0.host, port: $0.port)
            }
            var authenticateFactory: RequestHandlerFactory?
            if let authenticate {
                authenticateFactory = { loop in authenticate.makeHandler(loop: loop) }
            }
            var proxyFactory: ProxyHandlerFactory?
            var forwardAuthFactory: RequestHandlerFactory?
            if let proxy {
                proxyFactory = .identified { loop, requestID in proxy.makeHandler(loop: loop, requestID: requestID) }
                if options.forwardAuthURL != nil {
                    forwardAuthFactory = { loop in proxy.makeForwardAuthHandler(loop: loop) }
                }
            }
            let forwardAuthHost = options.forwardAuthURL.map {
                AuthenticateHost(scheme: $0.scheme, host: $0.host, port: $0.port)
            }
            if signingKeys.commit(keys), let keys {
                logger.info(
                    "assertion signing key changed; the JWKS lists the new key and, until the next change, the old one",
                    metadata: ["kid": .string(keys.signer.keyID), "generation": .string("\(snapshot.generation)")])
            }
            // Nothing below throws, so the listener serves this set from now on.
            if let proxy { currentProxy.install(proxy) }
            return ServiceSet(
                authenticateHost: authenticateHost,
                authenticate: authenticateFactory,
                proxyHandler: proxyFactory,
                forwardAuthHost: forwardAuthHost,
                forwardAuth: forwardAuthFactory,
                trustsForwardedHeaders: { [proxy] address in proxy?.trustsForwardedHeaders(from: address) ?? false },
                responseHeaders: ServiceSet.responseHeaders(from: options.headers),
                generation: snapshot.generation)
        }
        let stop: @Sendable () -> Void = {
            (store as? RedisStore)?.shutdown()
        }
        return ServiceWiring(shared: shared, build: build, stop: stop)
    }

    /// Fetches the provider's discovery document once at start.
    private static func discoverProvider(
        options: Options, client: HTTPClient, logger: Logger
    ) async throws -> any IdentityProvider {
        let configuration: ProviderConfiguration
        do {
            configuration = try AuthenticateService.providerConfiguration(from: options)
        } catch {
            throw StartupError("\(error)")
        }
        do {
            return try await OIDCProvider.discover(
                configuration: configuration, transport: ClientIdentityTransport(client: client),
                logger: Logger(label: "pomerium.identity"))
        } catch {
            // Some identity errors end with their own hint naming idp_provider_url; add it once.
            let detail = "\(error)"
            let hint =
                detail.contains("idp_provider_url")
                ? "" : "; check idp_provider_url and that the provider is reachable from this host"
            throw StartupError(
                "identity provider discovery at idp_provider_url \(configuration.issuer) failed: \(detail)\(hint)")
        }
    }
}

/// The backend refresh of a proxy that runs without the authenticate service in its process.
/// Failing the refresh sends the user through sign-in at the authenticate service, which still
/// has the global session and mints a new route session without asking the provider again.
// NOTE: split deployments should call the authenticate service's signed /.pomerium/refresh
// endpoint here; no client for it exists yet, so an expired route session costs a redirect.
struct SignInAgainRefresher: RouteSessionRefresher {
    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "backend refresh needs the authenticate service in this process" }
    }

    func refreshRouteSession(accessTokenID: String, audience: [String], issuerHost: String) async throws -> String {
        throw Unavailable()
    }
}
