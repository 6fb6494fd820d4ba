import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumNet
import PomeriumServer
import PomeriumSessions

/// Builds the proxy and authenticate services: the shared dependencies once at start, and a new
/// `ServiceSet` for every configuration snapshot.
struct ServiceWiring: Sendable {
    let shared: SharedDependencies
    let services: ServiceMode
    let build: ServiceSetBuilder
    let stop: @Sendable () -> Void

    static func start(options: Options, group: EventLoopGroup, logger: Logger) async throws -> ServiceWiring {
        let store: any KeyValueStore
        let signingKey: ECPrivateKey
        do {
            store = try await SessionStoreFactory.open(options: options, logger: logger)
            signingKey = try SigningKeySetup.load(options: options, logger: logger)
        } catch let problem as SessionStoreFactory.Problem {
            throw StartupError(problem.description)
        } catch let problem as SigningKeySetup.Problem {
            throw StartupError(problem.description)
        }
        let shared: SharedDependencies
        do {
            shared = try SharedDependencies(store: store, signingKey: signingKey, clock: SystemWallClock())
        } catch {
            throw StartupError("cannot use the signing key: \(error); set signing_key to a P-256 key in PEM")
        }
        let mode = options.services
        let build: ServiceSetBuilder = { snapshot in
            let options = snapshot.options
            let authenticateHost = options.authenticateServiceURL.map {
                AuthenticateHost(scheme: $0.scheme, host: $0.host, port: $0.port)
            }
            // NOTE: the proxy and authenticate handlers are wired in when their targets land.
            return ServiceSet(
                authenticateHost: mode.runsAuthenticate ? authenticateHost : nil,
                authenticate: nil, proxy: nil,
                responseHeaders: ServiceSet.responseHeaders(from: options.headers),
                generation: snapshot.generation)
        }
        return ServiceWiring(shared: shared, services: mode, build: build, stop: {})
    }
}
