import PomeriumCore
import PomeriumSessions
import Synchronization
import Testing

@Suite struct StoreSingleFlightTests {
    /// A sleep that moves the manual clock instead of waiting, and lets other tasks run.
    private func fakeSleep(_ clock: ManualWallClock) -> @Sendable (Duration) async throws -> Void {
        { duration in
            clock.advance(by: StoreLimits.seconds(duration))
            await Task.yield()
        }
    }

    @Test func concurrentCallersPerformOnce() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        let flight = SingleFlight(store: store, clock: clock, sleep: fakeSleep(clock))
        let performed = Counter()
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await flight.run(
                        "session-1",
                        reread: { try await store.get("session-1") },
                        perform: {
                            performed.increment()
                            // Hold the lock across a few scheduling points so others must wait.
                            for _ in 0..<5 { await Task.yield() }
                            try await store.set("session-1", value: [42], ttl: .seconds(60))
                            return [42]
                        })
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(performed.value == 1)
        #expect(results.count == 12)
        #expect(results.allSatisfy { $0 == [42] })
    }

    @Test func waiterTakesOverWhenWinnerFails() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        let flight = SingleFlight(store: store, clock: clock, sleep: fakeSleep(clock))
        let winner = LockOwner()
        #expect(try await store.acquireLock("refresh", owner: winner, ttl: .seconds(30)))
        let waiter = Task {
            try await flight.run("refresh", reread: { nil as [UInt8]? }, perform: { [7] })
        }
        // The winner gives up without storing a result.
        for _ in 0..<20 { await Task.yield() }
        #expect(try await store.releaseLock("refresh", owner: winner))
        #expect(try await waiter.value == [7])
    }

    @Test func crashedWinnerBlocksOnlyForItsLease() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        let flight = SingleFlight(
            store: store, lockTTL: .seconds(5), waitTimeout: .seconds(10), clock: clock, sleep: fakeSleep(clock))
        #expect(try await store.acquireLock("refresh", owner: LockOwner(), ttl: .seconds(5)))
        let start = clock.now()
        let value = try await flight.run("refresh", reread: { nil as [UInt8]? }, perform: { [1] })
        #expect(value == [1])
        #expect(clock.now() - start >= 5)
        #expect(clock.now() - start < 6)
    }

    @Test func waitIsBounded() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        let flight = SingleFlight(
            store: store, lockTTL: .seconds(60), waitTimeout: .seconds(2), clock: clock, sleep: fakeSleep(clock))
        #expect(try await store.acquireLock("refresh", owner: LockOwner(), ttl: .seconds(60)))
        let error = await #expect(throws: StoreError.self) {
            try await flight.run("refresh", reread: { nil as [UInt8]? }, perform: { [1] })
        }
        #expect(error?.kind == .timeout)
        #expect(clock.now() - 1_700_000_000 <= 2.1)
    }

    @Test func errorOfPerformReachesCallerAndFreesLock() async throws {
        struct RefreshFailed: Error {}
        let store = try MemoryStore(clock: ManualWallClock())
        let flight = SingleFlight(store: store)
        await #expect(throws: RefreshFailed.self) {
            try await flight.run("refresh", reread: { nil as [UInt8]? }, perform: { throw RefreshFailed() })
        }
        #expect(try await store.acquireLock("refresh", owner: LockOwner(), ttl: .seconds(1)))
    }

    @Test func resultStoredBeforeAcquireIsNotRecomputed() async throws {
        let clock = ManualWallClock()
        let store = try MemoryStore(clock: clock)
        let flight = SingleFlight(store: store, clock: clock, sleep: fakeSleep(clock))
        let owner = LockOwner()
        #expect(try await store.acquireLock("refresh", owner: owner, ttl: .seconds(30)))
        let performed = Counter()
        let waiter = Task {
            try await flight.run(
                "refresh", reread: { try await store.get("result") },
                perform: {
                    performed.increment()
                    return [0]
                })
        }
        for _ in 0..<10 { await Task.yield() }
        try await store.set("result", value: [9], ttl: .seconds(60))
        _ = try await store.releaseLock("refresh", owner: owner)
        #expect(try await waiter.value == [9])
        #expect(performed.value == 0)
    }
}

/// A count shared by concurrent tasks.
private final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .relaxed) }

    func increment() { count.add(1, ordering: .relaxed) }
}
