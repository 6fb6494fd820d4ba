import PomeriumLogging
import Testing

@Suite struct LoggerTests {
    @Test func levelFilterDropsLowerEvents() {
        let store = InMemoryLogHandler.Store()
        var logger = Logger.inMemory(store: store)
        logger.logLevel = .info
        logger.debug("dropped")
        logger.info("kept")
        logger.warning("also kept")
        #expect(store.all.map(\.message) == ["kept", "also kept"])
    }

    @Test func messageIsNotBuiltWhenDisabled() {
        let store = InMemoryLogHandler.Store()
        var logger = Logger.inMemory(store: store)
        logger.logLevel = .error
        var evaluated = false
        logger.debug("\(sideEffect(&evaluated))")
        #expect(!evaluated)
    }

    @Test func loggerMetadataJoinsEventMetadata() {
        let store = InMemoryLogHandler.Store()
        var logger = Logger.inMemory(store: store)
        logger[metadataKey: "service"] = "proxy"
        logger.info("request", metadata: ["status": "200"])
        let entry = try! #require(store.all.first)
        #expect(entry.metadata["service"] == "proxy")
        #expect(entry.metadata["status"] == "200")
    }

    @Test func levelParsesPomeriumSettingNames() {
        #expect(Logger.Level(setting: "warn") == .warning)
        #expect(Logger.Level(setting: "DEBUG") == .debug)
        #expect(Logger.Level(setting: "error") == .error)
        #expect(Logger.Level(setting: "verbose") == nil)
    }

    @Test func levelsOrderLikeSwiftLog() {
        #expect(Logger.Level.allCases == [.trace, .debug, .info, .notice, .warning, .error, .critical])
        #expect(Logger.Level.trace < Logger.Level.critical)
    }

    private func sideEffect(_ flag: inout Bool) -> String {
        flag = true
        return "built"
    }
}

@Suite struct JSONLineTests {
    @Test func fieldsUseZerologNames() {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.warning("upstream slow", metadata: ["host": "app.example.test", "status": .stringConvertible(502)])
        let line = try! #require(store.all.first?.jsonLine)
        #expect(line.hasPrefix("{\"level\":\"warn\",\"time\":"))
        #expect(line.contains("\"message\":\"upstream slow\""))
        #expect(line.contains("\"host\":\"app.example.test\""))
        #expect(line.contains("\"status\":502"))
        #expect(line.hasSuffix("}\n"))
    }

    @Test func controlCharactersAreEscaped() {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.info("line\nbreak \"quoted\" \u{1}")
        let line = try! #require(store.all.first?.jsonLine)
        #expect(line.contains("line\\nbreak \\\"quoted\\\" \\u0001"))
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func nestedValuesBecomeJSON() {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.info("decision", metadata: ["reasons": ["user-ok", "domain-ok"], "route": ["id": "r1"]])
        let line = try! #require(store.all.first?.jsonLine)
        #expect(line.contains("\"reasons\":[\"user-ok\",\"domain-ok\"]"))
        #expect(line.contains("\"route\":{\"id\":\"r1\"}"))
    }

    @Test func reservedFieldsAreNotOverwritten() {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.info("real", metadata: ["message": "forged", "level": "debug"])
        let line = try! #require(store.all.first?.jsonLine)
        #expect(line.contains("\"message\":\"real\""))
        #expect(!line.contains("forged"))
    }
}

@Suite struct RedactionTests {
    static let secrets: [String] = [
        "cookie_secret", "shared_secret", "COOKIE_SECRET", "idp_client_secret", "cache_store_password",
        "Authorization", "cookie", "Set-Cookie", "access_token", "refresh_token", "id_token", "code",
        "state", "pomerium_session", "pomerium_session_encrypted", "pomerium_jwt", "pomerium_signature",
        "x-pomerium-jwt-assertion", "signing_key", "certificate_key", "http.request.cookie",
    ]

    @Test(arguments: secrets) func secretKeyIsRedacted(key: String) {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.info("event", metadata: [key: "hunter2-value"])
        let entry = try! #require(store.all.first)
        #expect(entry.metadata[key] == .string(Redaction.placeholder))
        #expect(!entry.jsonLine.contains("hunter2-value"))
    }

    @Test func nestedSecretIsRedacted() {
        let store = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: store)
        logger.info("event", metadata: ["request": ["headers": ["cookie": "_pomerium=abc"]], "list": [["token": "t"]]])
        let line = try! #require(store.all.first?.jsonLine)
        #expect(!line.contains("_pomerium=abc"))
        #expect(!line.contains("\"t\""))
    }

    @Test func ordinaryKeysStay() {
        let redaction = Redaction.standard
        for key in ["host", "path", "status", "method", "email", "req_id", "duration", "status_code"] {
            #expect(!redaction.isSensitive(key), "\(key) should not be redacted")
        }
    }
}

@Suite struct ConsoleLineTests {
    @Test func consoleHandlerRedactsToo() {
        // The console handler writes to stderr, so check the redaction rule it applies.
        let redaction = ConsoleLogHandler().redaction
        #expect(redaction.isSensitive("cookie_secret"))
        #expect(redaction.apply(["authorization": "Pomerium abc"])["authorization"] == .string(Redaction.placeholder))
    }
}
