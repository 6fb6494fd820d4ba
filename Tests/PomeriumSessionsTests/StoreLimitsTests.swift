import PomeriumSessions
import Testing

@Suite struct StoreLimitsTests {
    @Test func ttlRoundsUpToMilliseconds() throws {
        #expect(try StoreLimits.validate(ttl: .milliseconds(1)) == 1)
        #expect(try StoreLimits.validate(ttl: .microseconds(1500)) == 2)
        #expect(try StoreLimits.validate(ttl: .seconds(90)) == 90_000)
    }

    @Test func ttlBelowOneMillisecondIsRejected() {
        for ttl in [Duration.zero, .microseconds(999), .seconds(-5)] {
            let error = #expect(throws: StoreError.self) { try StoreLimits.validate(ttl: ttl) }
            #expect(error?.kind == .invalidTTL)
        }
    }

    @Test func keyErrorsNameTheProblemNotTheKey() throws {
        let key = "secret-\u{7}-key"
        let error = try #require(throws: StoreError.self) { try StoreLimits.validate(key: key) }
        #expect(error.kind == .invalidKey)
        #expect(error.message == "invalid key: control character at byte 7")
        #expect(!error.message.contains("secret"))
    }

    @Test func keyLimitCountsUTF8Bytes() throws {
        // "é" is two bytes, so 250 of them reach the 500-byte maximum and one more passes it.
        try StoreLimits.validate(key: String(repeating: "é", count: 250))
        #expect(throws: StoreError.self) { try StoreLimits.validate(key: String(repeating: "é", count: 251)) }
    }

    @Test func lockOwnersAreRandomHex() {
        let owners = (0..<100).map { _ in LockOwner().token }
        #expect(Set(owners).count == 100)
        for token in owners {
            #expect(token.count == 32)
            #expect(token.allSatisfy { $0.isHexDigit })
        }
    }
}
