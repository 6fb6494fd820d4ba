import PomeriumCore
import PomeriumSessions
import PomeriumTestSupport
import Testing

@Suite struct MemoryStoreTests {
    @Test(arguments: KeyValueStoreSuite.Case.allCases)
    func sharedSuite(_ testCase: KeyValueStoreSuite.Case) async throws {
        let clock = ManualWallClock()
        let suite = KeyValueStoreSuite(
            ttl: .seconds(10),
            advanceTime: { clock.advance(by: StoreLimits.seconds($0)) },
            makeStore: { try MemoryStore(clock: clock) }
        )
        try await suite.run(testCase)
    }

    /// A budget that holds exactly `count` entries with one-byte keys and `valueBytes`-byte values.
    private func budget(entries count: Int, valueBytes: Int) -> Int {
        count * (1 + valueBytes + MemoryStore.entryOverheadBytes)
    }

    @Test func evictsLeastRecentlyUsedFirst() async throws {
        let store = try MemoryStore(byteBudget: budget(entries: 3, valueBytes: 2000), clock: ManualWallClock())
        let value = [UInt8](repeating: 1, count: 2000)
        for key in ["a", "b", "c"] { try await store.set(key, value: value, ttl: .seconds(60)) }
        _ = try await store.get("a")  // "b" is now the least recently used
        try await store.set("d", value: value, ttl: .seconds(60))
        #expect(try await store.get("b") == nil)
        #expect(try await store.get("a") == value)
        #expect(try await store.get("c") == value)
        #expect(try await store.get("d") == value)
        #expect(store.statistics.evictionCount == 1)
        #expect(store.statistics.entryCount == 3)
    }

    @Test func overwriteCountsOnlyTheNewSize() async throws {
        let store = try MemoryStore(byteBudget: budget(entries: 2, valueBytes: 3000), clock: ManualWallClock())
        try await store.set("a", value: [UInt8](repeating: 1, count: 3000), ttl: .seconds(60))
        try await store.set("b", value: [UInt8](repeating: 2, count: 3000), ttl: .seconds(60))
        for _ in 0..<10 { try await store.set("a", value: [UInt8](repeating: 3, count: 3000), ttl: .seconds(60)) }
        #expect(store.statistics.evictionCount == 0)
        #expect(store.statistics.byteCount == budget(entries: 2, valueBytes: 3000))
        try await store.delete("a")
        #expect(store.statistics.byteCount == budget(entries: 1, valueBytes: 3000))
    }

    @Test func expiredEntriesGoBeforeLiveOnes() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(byteBudget: budget(entries: 3, valueBytes: 2000), clock: clock)
        let value = [UInt8](repeating: 1, count: 2000)
        // One-byte keys, so the three entries fill the budget exactly.
        try await store.set("o", value: value, ttl: .seconds(600))
        try await store.set("e", value: value, ttl: .seconds(5))
        try await store.set("n", value: value, ttl: .seconds(600))
        clock.advance(by: 10)
        try await store.set("x", value: value, ttl: .seconds(600))
        #expect(try await store.get("o") == value, "the expired entry made room, not the least recently used one")
        #expect(store.statistics.evictionCount == 0)
    }

    @Test func valueLargerThanBudgetIsRejected() async throws {
        let store = try MemoryStore(byteBudget: 8192, clock: ManualWallClock())
        let error = await #expect(throws: StoreError.self) {
            try await store.set("big", value: [UInt8](repeating: 0, count: 8192), ttl: .seconds(1))
        }
        #expect(error?.kind == .invalidValue)
        #expect(error?.message.contains("8192 bytes") == true)
    }

    @Test func budgetBelowMinimumIsRejected() {
        let error = #expect(throws: StoreError.self) { try MemoryStore(byteBudget: 100) }
        #expect(error?.kind == .invalidConfiguration)
    }

    @Test func manyWritesStayWithinBudget() async throws {
        let store = try MemoryStore(byteBudget: 64 * 1024, clock: ManualWallClock())
        for index in 0..<2000 {
            try await store.set("key-\(index)", value: [UInt8](repeating: 7, count: 500), ttl: .seconds(60))
        }
        #expect(store.statistics.byteCount <= 64 * 1024)
        #expect(store.statistics.entryCount > 50)
        #expect(try await store.get("key-1999") != nil)
        #expect(try await store.get("key-0") == nil)
    }

    @Test func abandonedLeasesAreDropped() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        for index in 0..<3000 {
            #expect(try await store.acquireLock("lock-\(index)", owner: LockOwner(), ttl: .seconds(1)))
            clock.advance(by: 2)
        }
        // Every earlier lease expired, so a fresh owner gets any of them.
        #expect(try await store.acquireLock("lock-0", owner: LockOwner(), ttl: .seconds(1)))
    }
}
