import PomeriumConfig
import PomeriumLogging

/// The process-wide log handler from `log_level` and `pomerium_debug`: JSON lines by default,
/// human-readable console lines with `pomerium_debug`. Every line carries the `service` mode.
public enum LoggingBootstrap {
    /// The minimum level of every logger the factory makes; a reload of `log_level` sets it.
    public static let processLevel = AdjustableLogLevel(.debug)

    public static func level(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .warn: return .warning
        case .error: return .error
        }
    }

    /// The handler factory for `LoggingSystem.bootstrap`. Its loggers follow `level`, which
    /// starts at `log_level`.
    public static func factory(
        options: Options, level shared: AdjustableLogLevel = processLevel
    ) -> @Sendable (String) -> any LogHandler {
        shared.set(level(options.logLevel))
        let metadata: Logger.Metadata = ["service": .string(options.services.rawValue)]
        if options.pomeriumDebug {
            return { _ in
                AdjustableLevelLogHandler(base: ConsoleLogHandler(logLevel: .trace, metadata: metadata), level: shared)
            }
        }
        return { _ in
            AdjustableLevelLogHandler(base: JSONLogHandler(logLevel: .trace, metadata: metadata), level: shared)
        }
    }

    /// Applies a reloaded `log_level` to every logger the factory made.
    public static func apply(options: Options, to shared: AdjustableLogLevel = processLevel) {
        shared.set(level(options.logLevel))
    }
}
