import PomeriumLogging
import Testing

@Suite struct AdjustableLogLevelTests {
    @Test func loggersFollowTheSharedLevel() {
        let store = InMemoryLogHandler.Store()
        let shared = AdjustableLogLevel(.info)
        let logger = Logger(
            label: "test", handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(store: store), level: shared))
        logger.debug("dropped at info")
        shared.set(.debug)
        logger.debug("kept at debug")
        shared.set(.error)
        logger.warning("dropped at error")
        logger.error("kept at error")
        #expect(store.all.map(\.message) == ["kept at debug", "kept at error"])
    }

    @Test func everyLevelRoundTrips() {
        let shared = AdjustableLogLevel(.trace)
        for level in Logger.Level.allCases {
            shared.set(level)
            #expect(shared.level == level)
        }
    }

    @Test func pinnedLevelStopsFollowing() {
        let store = InMemoryLogHandler.Store()
        let shared = AdjustableLogLevel(.debug)
        var logger = Logger(
            label: "test", handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(store: store), level: shared))
        logger.logLevel = .error
        shared.set(.trace)
        logger.info("dropped")
        #expect(store.all.isEmpty)
        #expect(logger.logLevel == .error)
    }

    @Test func metadataReachesTheBaseHandler() {
        let store = InMemoryLogHandler.Store()
        var logger = Logger(
            label: "test",
            handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(store: store), level: AdjustableLogLevel(.info))
        )
        logger[metadataKey: "service"] = "proxy"
        logger.info("event")
        #expect(store.all.first?.metadata["service"] == "proxy")
    }
}
