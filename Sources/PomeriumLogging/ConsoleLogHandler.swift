import Glibc

/// Writes human-readable lines for development (`pomerium_debug`): time, a three-letter level,
/// the message, then `key=value` pairs. Metadata is redacted as in `JSONLogHandler`.
public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata
    public let redaction: Redaction
    let output: LogOutput

    public init(logLevel: Logger.Level = .debug, metadata: Logger.Metadata = [:], redaction: Redaction = .standard) {
        self.init(logLevel: logLevel, metadata: metadata, redaction: redaction, output: .standardError)
    }

    init(logLevel: Logger.Level, metadata: Logger.Metadata, redaction: Redaction, output: LogOutput) {
        self.logLevel = logLevel
        self.metadata = metadata
        self.redaction = redaction
        self.output = output
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
        output.write(formatLine(level: level, message: message, metadata: metadata, time: LogClock.now()))
    }

    func formatLine(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, time: timespec)
        -> String
    {
        var merged = self.metadata
        if let extra {
            merged.merge(extra) { _, new in new }
        }
        merged = redaction.apply(merged)
        var text = "\(LogClock.rfc3339(time)) \(level.shortName) \(message.description)"
        for key in merged.keys.sorted() {
            text.append(" \(key)=\(merged[key]!.description)")
        }
        // A message or value with a newline would forge a second log line.
        text = String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        text.append("\n")
        return text
    }
}

extension Logger.Level {
    var shortName: String {
        switch self {
        case .trace: "TRC"
        case .debug: "DBG"
        case .info: "INF"
        case .notice: "NTC"
        case .warning: "WRN"
        case .error: "ERR"
        case .critical: "FTL"
        }
    }
}
