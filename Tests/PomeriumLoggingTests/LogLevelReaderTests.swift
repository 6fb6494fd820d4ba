import PomeriumLogging
import Synchronization
import Testing

/// A handler whose level lives in a shared object, so it changes without a new logger.
private struct SharedLevelHandler: LogHandler {
    final class Level: Sendable {
        let value = Mutex(Logger.Level.info)
    }

    let box: Level
    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { box.value.withLock { $0 } }
        set { box.value.withLock { $0 = newValue } }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {}
}

@Suite struct LogLevelReaderTests {
    @Test func followsTheSharedLevel() {
        let shared = AdjustableLogLevel(.info)
        let logger = Logger(
            label: "test", handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(), level: shared))
        let reader = LogLevelReader(logger)
        for level in Logger.Level.allCases {
            shared.set(level)
            #expect(reader.level == level)
            #expect(reader.level == logger.logLevel)
        }
    }

    @Test func pinnedLevelStaysFixed() {
        let shared = AdjustableLogLevel(.info)
        var logger = Logger(
            label: "test", handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(), level: shared))
        logger.logLevel = .error
        let reader = LogLevelReader(logger)
        shared.set(.trace)
        #expect(reader.level == .error)
        #expect(reader.level == logger.logLevel)
    }

    @Test func moduleHandlersGiveTheirLevel() {
        for level in Logger.Level.allCases {
            let handlers: [any LogHandler] = [
                JSONLogHandler(logLevel: level), ConsoleLogHandler(logLevel: level),
                InMemoryLogHandler(logLevel: level),
            ]
            for handler in handlers {
                #expect(LogLevelReader(Logger(label: "test", handler: handler)).level == level)
            }
        }
        #expect(LogLevelReader(Logger(label: "test", handler: SwiftLogNoOpLogHandler())).level == .critical)
    }

    @Test func otherHandlersAreAskedEachTime() {
        let box = SharedLevelHandler.Level()
        let logger = Logger(label: "test", handler: SharedLevelHandler(box: box))
        let reader = LogLevelReader(logger)
        #expect(reader.level == .info)
        box.value.withLock { $0 = .trace }
        #expect(reader.level == .trace)
    }
}
