import Synchronization

/// A minimum log level shared by many handlers and changeable while they run, so a configuration
/// reload can turn debug logging on or off in every logger at once.
public final class AdjustableLogLevel: Sendable {
    private let rank: Atomic<Int>

    public init(_ level: Logger.Level) { rank = Atomic(level.rank) }

    /// The level in effect now.
    public var level: Logger.Level {
        switch rank.load(ordering: .relaxed) {
        case 0: return .trace
        case 1: return .debug
        case 2: return .info
        case 3: return .notice
        case 4: return .warning
        case 5: return .error
        default: return .critical
        }
    }

    /// Sets the level that every handler reading this one uses from its next event on.
    public func set(_ level: Logger.Level) { rank.store(level.rank, ordering: .relaxed) }
}

/// Wraps a handler so that its minimum level comes from an `AdjustableLogLevel`. Setting
/// `logLevel` on one logger pins that logger's level and no longer follows the shared one.
public struct AdjustableLevelLogHandler: LogHandler {
    public var base: any LogHandler
    public let sharedLevel: AdjustableLogLevel
    private(set) var pinnedLevel: Logger.Level?

    public init(base: any LogHandler, level: AdjustableLogLevel) {
        self.base = base
        self.sharedLevel = level
    }

    public var logLevel: Logger.Level {
        get { pinnedLevel ?? sharedLevel.level }
        set { pinnedLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    public func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        base.log(
            level: level, message: message, metadata: metadata, source: source, file: file, function: function,
            line: line)
    }
}
