import Synchronization

/// Captures events in memory for tests, after redaction, so a test can assert both what was logged
/// and that no secret was.
public struct InMemoryLogHandler: LogHandler {
    /// One captured event.
    public struct Entry: Sendable, Equatable {
        public let level: Logger.Level
        public let message: String
        public let metadata: Logger.Metadata
        /// The event as `JSONLogHandler` would write it, without the time field.
        public let jsonLine: String
    }

    /// The shared buffer of captured events; copies of the handler append to the same one.
    public final class Store: Sendable {
        private let entries = Mutex<[Entry]>([])

        public init() {}

        public var all: [Entry] { entries.withLock { $0 } }

        func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata
    public let store: Store
    public let redaction: Redaction

    public init(logLevel: Logger.Level = .trace, store: Store = Store(), redaction: Redaction = .standard) {
        self.logLevel = logLevel
        self.metadata = [:]
        self.store = store
        self.redaction = redaction
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
        var merged = self.metadata
        if let metadata {
            merged.merge(metadata) { _, new in new }
        }
        merged = redaction.apply(merged)
        let json = JSONLogHandler(logLevel: logLevel, metadata: [:], redaction: redaction, output: .standardError)
            .formatLine(level: level, message: message, metadata: merged, time: .init())
        store.append(Entry(level: level, message: message.description, metadata: merged, jsonLine: json))
    }
}

extension Logger {
    /// A logger that captures into `store`, for tests.
    public static func inMemory(label: String = "test", store: InMemoryLogHandler.Store) -> Logger {
        Logger(label: label, handler: InMemoryLogHandler(store: store))
    }
}
