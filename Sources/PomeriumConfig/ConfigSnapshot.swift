import PomeriumLogging
import Synchronization

/// One immutable, validated configuration. Request handlers read `ConfigSnapshotHolder.current`
/// once per request and use that snapshot to the end of the request.
public final class ConfigSnapshot: Sendable {
    public let options: Options
    /// The warnings found when this snapshot was loaded.
    public let warnings: [ConfigProblem]
    /// The file bytes and environment the snapshot was built from.
    public let inputs: ConfigInputs
    /// 1 for the snapshot loaded at start, then one more per applied reload.
    public let generation: Int

    public init(options: Options, warnings: [ConfigProblem], inputs: ConfigInputs, generation: Int) {
        self.options = options
        self.warnings = warnings
        self.inputs = inputs
        self.generation = generation
    }
}

/// The current snapshot behind a lock; a reload swaps in a whole new snapshot at once.
public final class ConfigSnapshotHolder: Sendable {
    private let snapshot: Mutex<ConfigSnapshot>

    public init(_ initial: ConfigSnapshot) { snapshot = Mutex(initial) }

    /// The snapshot in effect now.
    public var current: ConfigSnapshot { snapshot.withLock { $0 } }

    func replace(_ new: ConfigSnapshot) { snapshot.withLock { $0 = new } }
}

/// What one reload did.
public enum ReloadOutcome: Sendable {
    /// The file and the environment are byte for byte what the current snapshot was built from.
    case unchanged
    /// The new configuration was invalid, so the current snapshot stays; every problem is listed.
    case rejected([ConfigProblem])
    /// A new snapshot is in effect.
    case applied(ConfigReloadReport)
}

/// The settings a reload changed, split by how they take effect.
public struct ConfigReloadReport: Sendable, Equatable {
    public let generation: Int
    /// Every changed key, in catalog order.
    public let changedKeys: [String]
    /// Changed keys that apply to the next request or connection.
    public let hotKeys: [String]
    /// Changed keys that apply only after a restart. The new snapshot contains their new values, but
    /// the listeners, stores and clients built at start keep the old ones.
    public let restartKeys: [String]
}

/// Re-reads the file and the environment and swaps the snapshot when the result is valid.
public final class ConfigReloader: Sendable {
    public let loader: ConfigLoader
    public let holder: ConfigSnapshotHolder
    private let logger: Logger
    private let serialize = Mutex(())

    public init(loader: ConfigLoader, holder: ConfigSnapshotHolder, logger: Logger) {
        self.loader = loader
        self.holder = holder
        self.logger = logger
    }

    /// Reloads once. Concurrent calls run one after the other.
    @discardableResult
    public func reload() -> ReloadOutcome {
        serialize.withLock { _ in reloadLocked() }
    }

    private func reloadLocked() -> ReloadOutcome {
        let current = holder.current
        let inputs = loader.readInputs(referencedFiles: current.inputs.referencedFiles.keys)
        if inputs == current.inputs {
            logger.debug("config unchanged; nothing to reload", metadata: ["checksum": "\(inputs.checksum)"])
            return .unchanged
        }

        let result = loader.load(inputs: inputs)
        guard result.isValid else {
            for problem in result.problems {
                let metadata: Logger.Metadata = [
                    "key": .string(problem.key), "source": .string(problem.location.description),
                ]
                if problem.severity == .error {
                    logger.error("config reload: \(problem.message)", metadata: metadata)
                } else {
                    logger.warning("config reload: \(problem.message)", metadata: metadata)
                }
            }
            logger.error(
                "config reload rejected: the new configuration is invalid, so the previous one stays in effect",
                metadata: ["errors": "\(result.errors.count)", "generation": "\(current.generation)"])
            return .rejected(result.problems)
        }

        let changed = EffectiveSettings.changedKeys(from: current.options, to: result.options)
        let restartKeys = changed.filter { SettingsCatalog.byKey[$0]?.reload == .restart }
        let hotKeys = changed.filter { SettingsCatalog.byKey[$0]?.reload != .restart }
        let generation = current.generation + 1
        holder.replace(
            ConfigSnapshot(
                options: result.options, warnings: result.warnings, inputs: result.inputs, generation: generation))

        for problem in result.warnings {
            logger.warning(
                "config reload: \(problem.message)",
                metadata: ["key": .string(problem.key), "source": .string(problem.location.description)])
        }
        logger.info(
            "config reloaded",
            metadata: [
                "generation": "\(generation)", "checksum": "\(result.inputs.checksum)",
                "changed": .array(hotKeys.map { .string($0) }),
            ])
        for key in restartKeys {
            logger.warning(
                "setting \(key) changed but needs a restart to take effect; the running process keeps the old value",
                metadata: ["key": .string(key)])
        }
        return .applied(
            ConfigReloadReport(generation: generation, changedKeys: changed, hotKeys: hotKeys, restartKeys: restartKeys)
        )
    }
}
