/// Formats and writes log events. Handlers are values: `Logger` copies its handler, so metadata
/// set on one logger does not leak into another.
public protocol LogHandler: Sendable {
    /// The lowest level that this handler emits.
    var logLevel: Logger.Level { get set }

    /// Metadata attached to every event of this handler.
    var metadata: Logger.Metadata { get set }

    /// One metadata value.
    subscript(metadataKey key: String) -> Logger.MetadataValue? { get set }

    /// Writes one event. `Logger` has already checked the level.
    func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    )
}

extension LogHandler {
    public subscript(metadataKey key: String) -> Logger.MetadataValue? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

/// A handler that drops every event: the default for library code that is given no logger.
public struct SwiftLogNoOpLogHandler: LogHandler {
    public var logLevel: Logger.Level = .critical
    public var metadata: Logger.Metadata = [:]

    public init() {}

    public func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {}
}
