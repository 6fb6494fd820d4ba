import PomeriumConfig
import PomeriumLogging

/// The process-wide log handler from `log_level` and `pomerium_debug`: JSON lines by default,
/// human-readable console lines with `pomerium_debug`. Every line carries the `service` mode.
public enum LoggingBootstrap {
    public static func level(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .warn: return .warning
        case .error: return .error
        }
    }

    /// The handler factory for `LoggingSystem.bootstrap`.
    public static func factory(options: Options) -> @Sendable (String) -> any LogHandler {
        let level = level(options.logLevel)
        let metadata: Logger.Metadata = ["service": .string(options.services.rawValue)]
        if options.pomeriumDebug {
            return { _ in ConsoleLogHandler(logLevel: level, metadata: metadata) }
        }
        return { _ in JSONLogHandler(logLevel: level, metadata: metadata) }
    }
}
