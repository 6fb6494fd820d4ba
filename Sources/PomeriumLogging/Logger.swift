import Foundation
import Synchronization

/// A structured logger with the call-site API of swift-log, so that swift-log can replace this
/// module later without changing call sites.
public struct Logger: Sendable {
    /// The name of the component that logs, for example `pomerium.proxy`.
    public let label: String

    /// The handler that formats and writes each event.
    public var handler: any LogHandler

    /// Creates a logger that sends events to the handler that `LoggingSystem.bootstrap` installed.
    public init(label: String) {
        self.label = label
        self.handler = LoggingSystem.makeHandler(label: label)
    }

    /// Creates a logger that sends events to `handler`.
    public init(label: String, handler: any LogHandler) {
        self.label = label
        self.handler = handler
    }

    /// The lowest level that this logger emits.
    public var logLevel: Level {
        get { handler.logLevel }
        set { handler.logLevel = newValue }
    }

    /// One metadata value attached to every event of this logger.
    public subscript(metadataKey key: String) -> MetadataValue? {
        get { handler[metadataKey: key] }
        set { handler[metadataKey: key] = newValue }
    }

    /// Logs `message` at `level` when the level is enabled; the message and metadata closures run
    /// only then.
    @inlinable
    public func log(
        level: Level,
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        guard level >= handler.logLevel else { return }
        handler.log(
            level: level,
            message: message(),
            metadata: metadata(),
            source: source() ?? Logger.module(fileID: file),
            file: file,
            function: function,
            line: line
        )
    }

    @usableFromInline
    static func module(fileID: String) -> String {
        guard let slash = fileID.firstIndex(of: "/") else { return fileID }
        return String(fileID[..<slash])
    }
}

extension Logger {
    @inlinable
    public func trace(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .trace, message(), metadata: metadata(), source: source(), file: file, function: function, line: line
        )
    }

    @inlinable
    public func debug(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .debug, message(), metadata: metadata(), source: source(), file: file, function: function, line: line
        )
    }

    @inlinable
    public func info(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(level: .info, message(), metadata: metadata(), source: source(), file: file, function: function, line: line)
    }

    @inlinable
    public func notice(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .notice, message(), metadata: metadata(), source: source(), file: file, function: function,
            line: line)
    }

    @inlinable
    public func warning(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .warning, message(), metadata: metadata(), source: source(), file: file, function: function,
            line: line)
    }

    @inlinable
    public func error(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .error, message(), metadata: metadata(), source: source(), file: file, function: function, line: line
        )
    }

    @inlinable
    public func critical(
        _ message: @autoclosure () -> Message,
        metadata: @autoclosure () -> Metadata? = nil,
        source: @autoclosure () -> String? = nil,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        log(
            level: .critical, message(), metadata: metadata(), source: source(), file: file, function: function,
            line: line)
    }
}

extension Logger {
    /// The severity of an event, in swift-log's order.
    public enum Level: String, Sendable, CaseIterable, Codable, Comparable {
        case trace
        case debug
        case info
        case notice
        case warning
        case error
        case critical

        var rank: Int {
            switch self {
            case .trace: 0
            case .debug: 1
            case .info: 2
            case .notice: 3
            case .warning: 4
            case .error: 5
            case .critical: 6
            }
        }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rank < rhs.rank }

        /// Parses a `log_level` setting: Pomerium's `debug`, `info`, `warn`, `error` and swift-log's
        /// names. Returns nil for anything else.
        public init?(setting: String) {
            switch setting.lowercased() {
            case "trace": self = .trace
            case "debug": self = .debug
            case "info": self = .info
            case "notice": self = .notice
            case "warn", "warning": self = .warning
            case "error": self = .error
            case "fatal", "panic", "critical": self = .critical
            default: return nil
            }
        }
    }

    /// A log message; string interpolation builds it only when the level is enabled.
    public struct Message: Sendable, ExpressibleByStringLiteral, ExpressibleByStringInterpolation,
        CustomStringConvertible, Equatable
    {
        public var description: String

        public init(stringLiteral value: String) { description = value }
        public init(stringInterpolation: DefaultStringInterpolation) {
            description = String(stringInterpolation: stringInterpolation)
        }
    }

    public typealias Metadata = [String: MetadataValue]

    /// One metadata value: a string, a value printed through its description, a dictionary or a list.
    public enum MetadataValue: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringLiteral,
        ExpressibleByStringInterpolation, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
    {
        case string(String)
        case stringConvertible(any CustomStringConvertible & Sendable)
        case dictionary(Metadata)
        case array([MetadataValue])

        public init(stringLiteral value: String) { self = .string(value) }
        public init(stringInterpolation: DefaultStringInterpolation) {
            self = .string(String(stringInterpolation: stringInterpolation))
        }
        public init(arrayLiteral elements: MetadataValue...) { self = .array(elements) }
        public init(dictionaryLiteral elements: (String, MetadataValue)...) {
            self = .dictionary(Dictionary(elements, uniquingKeysWith: { _, last in last }))
        }

        public var description: String {
            switch self {
            case .string(let value): value
            case .stringConvertible(let value): value.description
            case .dictionary(let value): value.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
            case .array(let value): value.map(\.description).joined(separator: ",")
            }
        }

        public static func == (lhs: MetadataValue, rhs: MetadataValue) -> Bool {
            switch (lhs, rhs) {
            case (.string(let left), .string(let right)): left == right
            case (.stringConvertible(let left), .stringConvertible(let right)): left.description == right.description
            case (.dictionary(let left), .dictionary(let right)): left == right
            case (.array(let left), .array(let right)): left == right
            default: false
            }
        }
    }
}
