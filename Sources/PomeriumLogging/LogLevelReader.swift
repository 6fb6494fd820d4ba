/// Reads the level of one logger without copying the logger. The proxy checks the level twice
/// per request before building a debug line, and reading `logLevel` of a `Logger` stored in a
/// class copied the logger each time, which measured about 170 instructions and four atomic
/// reference counts.
///
/// `level` always equals the logger's `logLevel`. For the handlers of this module the level is
/// fixed when the reader is made, except that an `AdjustableLogLevel` shared with the handler is
/// read at each call. Any other handler is asked through a kept copy of the logger.
public final class LogLevelReader: Sendable {
    private let fixed: Logger.Level
    private let shared: AdjustableLogLevel?
    private let logger: Logger?

    public init(_ logger: Logger) {
        let handler = logger.handler
        fixed = handler.logLevel
        if let adjustable = handler as? AdjustableLevelLogHandler {
            shared = adjustable.pinnedLevel == nil ? adjustable.sharedLevel : nil
            self.logger = nil
        } else if handler is JSONLogHandler || handler is ConsoleLogHandler || handler is InMemoryLogHandler
            || handler is SwiftLogNoOpLogHandler
        {
            // These handlers store the level in the handler value, which the logger cannot
            // change without a new copy.
            shared = nil
            self.logger = nil
        } else {
            shared = nil
            self.logger = logger
        }
    }

    /// The logger's current `logLevel`.
    public var level: Logger.Level {
        if let shared { return shared.level }
        if let logger { return logger.logLevel }
        return fixed
    }
}
