import PomeriumConfig
import PomeriumLogging

/// Builds the services of one configuration snapshot, for example the proxy's route table and the
/// authenticate service's settings. It throws when the snapshot cannot be served.
public typealias ServiceSetBuilder = @Sendable (ConfigSnapshot) throws -> ServiceSet

/// Applies a reload to the dispatcher: builds the services of the new snapshot and swaps them in,
/// and hands the listener settings to `listener`. A build failure keeps the running services, so a
/// reload never leaves the listener without them.
public struct ServiceReloader: Sendable {
    public let dispatcher: HostDispatcher
    public let holder: ConfigSnapshotHolder
    public let build: ServiceSetBuilder
    /// Applies certificates, timeouts and `log_level`; nil when no listener runs.
    public let listener: ListenerReloader?
    private let logger: Logger

    public init(
        dispatcher: HostDispatcher, holder: ConfigSnapshotHolder, listener: ListenerReloader? = nil, logger: Logger,
        build: @escaping ServiceSetBuilder
    ) {
        self.dispatcher = dispatcher
        self.holder = holder
        self.listener = listener
        self.logger = logger
        self.build = build
    }

    /// Handles what one reload did; `ConfigWatcher` calls it on its thread. Returns whether both
    /// the services and the listener settings took effect.
    @discardableResult
    public func apply(_ outcome: ReloadOutcome) -> Bool {
        guard case .applied(let report) = outcome else { return false }
        let snapshot = holder.current
        // The listener settings do not depend on the services, so they apply even when the build fails.
        let listenerApplied = listener?.apply(snapshot.options) ?? true
        do {
            let services = try build(snapshot)
            dispatcher.replaceServices(services)
            logger.info(
                "services rebuilt from the reloaded config",
                metadata: [
                    "generation": .string("\(snapshot.generation)"),
                    "routes": .string("\(snapshot.options.policy.count)"),
                    "restart_needed": .array(report.restartKeys.map { .string($0) }),
                ])
            return listenerApplied
        } catch {
            logger.error(
                "the reloaded config could not be served, so the previous services stay in effect: \(error)",
                metadata: ["generation": .string("\(snapshot.generation)")])
            return false
        }
    }
}
