import Glibc

/// Writes one JSON object per line, with the field names of Pomerium's zerolog output: `level`,
/// `time` (RFC 3339, UTC), `message`, then the metadata as top-level fields. Metadata keys are
/// redacted by `Redaction` first.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata
    public let redaction: Redaction
    let output: LogOutput

    /// Creates a handler that writes to standard error.
    public init(logLevel: Logger.Level = .info, metadata: Logger.Metadata = [:], redaction: Redaction = .standard) {
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

    /// The line for one event, newline included. Fixed fields come first, metadata keys sorted.
    func formatLine(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, time: timespec)
        -> String
    {
        var merged = self.metadata
        if let extra {
            merged.merge(extra) { _, new in new }
        }
        merged = redaction.apply(merged)
        var text = "{\"level\":\"\(level.zerologName)\",\"time\":\"\(LogClock.rfc3339(time))\",\"message\":"
        JSONText.appendString(message.description, to: &text)
        for key in merged.keys.sorted() where !JSONLogHandler.reservedKeys.contains(key) {
            text.append(",")
            JSONText.appendString(key, to: &text)
            text.append(":")
            JSONText.appendValue(merged[key]!, to: &text)
        }
        text.append("}\n")
        return text
    }

    static let reservedKeys: Set<String> = ["level", "time", "message"]
}

extension Logger.Level {
    /// The level name that zerolog writes.
    public var zerologName: String {
        switch self {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warn"
        case .error: "error"
        case .critical: "fatal"
        }
    }
}

/// JSON string and value encoding for log lines, without Foundation.
enum JSONText {
    static func appendString(_ value: String, to text: inout String) {
        text.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text.append("\\\"")
            case "\\": text.append("\\\\")
            case "\n": text.append("\\n")
            case "\r": text.append("\\r")
            case "\t": text.append("\\t")
            case _
            where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028
                || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                text.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text.append("\"")
    }

    static func appendValue(_ value: Logger.MetadataValue, to text: inout String) {
        switch value {
        case .string(let string):
            appendString(string, to: &text)
        case .stringConvertible(let convertible):
            switch convertible {
            case let bool as Bool: text.append(bool ? "true" : "false")
            case let int as any BinaryInteger: text.append(String(describing: int))
            case let double as Double where double.isFinite: text.append(String(double))
            default: appendString(convertible.description, to: &text)
            }
        case .array(let items):
            text.append("[")
            for (index, item) in items.enumerated() {
                if index > 0 { text.append(",") }
                appendValue(item, to: &text)
            }
            text.append("]")
        case .dictionary(let dictionary):
            text.append("{")
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { text.append(",") }
                appendString(key, to: &text)
                text.append(":")
                appendValue(dictionary[key]!, to: &text)
            }
            text.append("}")
        }
    }
}
