import PomeriumCore
import PomeriumLogging
import PomeriumSessions
import Synchronization
import Testing

/// A store that counts reads, can fail them, and can hold them until released.
private final class ObservedStore: KeyValueStore {
    let inner: MemoryStore
    private let state = Mutex((reads: 0, failing: false, held: false, waiters: [CheckedContinuation<Void, Never>]()))

    init(clock: ManualWallClock) throws { inner = try MemoryStore(clock: clock) }

    var reads: Int { state.withLock { $0.reads } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    func hold() { state.withLock { $0.held = true } }
    func release() {
        let waiters = state.withLock { state in
            state.held = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        let (failing, held) = state.withLock { state in
            state.reads += 1
            return (state.failing, state.held)
        }
        if held {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if !state.held { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        if failing { throw StoreError(.unavailable, "the test store is down") }
        return try await inner.get(key)
    }
    func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError) {
        try await inner.set(key, value: value, ttl: ttl)
    }
    func delete(_ key: String) async throws(StoreError) { try await inner.delete(key) }
    func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool {
        try await inner.acquireLock(name, owner: owner, ttl: ttl)
    }
    func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool {
        try await inner.releaseLock(name, owner: owner)
    }
}

/// Manual clocks and a log store, with helpers that build a `SessionLiveness` over them and
/// save a live session in its store.
private protocol LivenessTestBed {
    /// The wall clock, which only the store reads, for the expiry of its keys.
    var wallClock: ManualWallClock { get }
    /// The clock that `SessionLiveness` measures its intervals with.
    var clock: ManualIntervalClock { get }
    var logs: InMemoryLogHandler.Store { get }
}

extension LivenessTestBed {
    func make(_ store: ObservedStore, capacity: Int = 1000) -> SessionLiveness {
        SessionLiveness(store: store, clock: clock, logger: .inMemory(store: logs), capacity: capacity)
    }

    func save(_ store: ObservedStore, _ accessTokenID: String) async throws {
        try await store.set(SessionLiveness.storeKey(accessTokenID: accessTokenID), value: [1], ttl: .seconds(86_400))
    }

    /// Lets `seconds` of real time pass: both clocks move.
    func elapse(_ seconds: Double) {
        clock.advance(by: seconds)
        wallClock.advance(by: seconds)
    }

    /// Steps the wall clock by `seconds` (negative sets it back) with no time passing, as an
    /// administrator or an NTP step does.
    func jumpWallClock(by seconds: Double) { wallClock.advance(by: seconds) }
}

@Suite struct SessionLivenessTests: LivenessTestBed {
    let wallClock = ManualWallClock()
    let clock = ManualIntervalClock()
    let logs = InMemoryLogHandler.Store()

    @Test func liveSessionIsReadOnceThenServedFromMemory() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        #expect(liveness.cached("ati-1") == .unknown)
        #expect(await liveness.check("ati-1") == .live)
        for _ in 0..<1000 {
            #expect(liveness.cached("ati-1") == .live)
            elapse(0.004)
        }
        #expect(store.reads == 1)
        // 4 s passed; after the 5-second interval, one more read.
        elapse(1.1)
        #expect(liveness.cached("ati-1") == .unknown)
        #expect(await liveness.check("ati-1") == .live)
        #expect(store.reads == 2)
    }

    @Test func signOutInThisProcessEndsTheSessionAtOnce() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        #expect(await liveness.check("ati-1") == .live)
        liveness.markSignedOut("ati-1")
        #expect(liveness.cached("ati-1") == .signedOut)
        elapse(3600)
        #expect(await liveness.check("ati-1") == .signedOut)
        #expect(store.reads == 1)
    }

    @Test func deletionByAnotherProcessIsSeenAfterTheInterval() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        #expect(await liveness.check("ati-1") == .live)
        try await store.delete(SessionLiveness.storeKey(accessTokenID: "ati-1"))
        elapse(4.9)
        #expect(liveness.cached("ati-1") == .live)
        elapse(0.2)
        #expect(await liveness.check("ati-1") == .signedOut)
        #expect(liveness.cached("ati-1") == .signedOut)
    }

    @Test func unknownSessionIsSignedOut() async throws {
        let store = try ObservedStore(clock: wallClock)
        let liveness = make(store)
        #expect(await liveness.check("never-stored") == .signedOut)
    }

    @Test func storeFailureServesRecentlyLiveSessionsOnly() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "seen")
        try await save(store, "unseen")
        let liveness = make(store)
        #expect(await liveness.check("seen") == .live)
        store.setFailing(true)
        elapse(10)
        #expect(await liveness.check("seen") == .live)
        #expect(await liveness.check("unseen") == .unavailable)
        // The failure is not cached: the next request reads again.
        #expect(liveness.cached("seen") == .unknown)
        elapse(60)
        #expect(await liveness.check("seen") == .unavailable)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 2)
        store.setFailing(false)
        #expect(await liveness.check("unseen") == .live)
    }

    @Test func concurrentChecksShareOneRead() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        store.hold()
        let verdicts = await withTaskGroup(of: SessionLiveness.Verdict.self) { group in
            for _ in 0..<20 { group.addTask { await liveness.check("ati-1") } }
            while store.reads == 0 { await Task.yield() }
            for _ in 0..<50 { await Task.yield() }
            store.release()
            var verdicts: [SessionLiveness.Verdict] = []
            for await verdict in group { verdicts.append(verdict) }
            return verdicts
        }
        #expect(verdicts == Array(repeating: .live, count: 20))
        #expect(store.reads == 1)
    }

    @Test func signOutDuringAReadWins() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        store.hold()
        async let verdict = liveness.check("ati-1")
        while store.reads == 0 { await Task.yield() }
        liveness.markSignedOut("ati-1")
        store.release()
        #expect(await verdict == .signedOut)
        #expect(liveness.cached("ati-1") == .signedOut)
    }

    @Test func entriesAreBounded() async throws {
        let store = try ObservedStore(clock: wallClock)
        let liveness = make(store, capacity: 100)
        for index in 0..<1000 {
            try await save(store, "ati-\(index)")
            #expect(await liveness.check("ati-\(index)") == .live)
        }
        #expect(liveness.count == 100)
        #expect(liveness.cached("ati-999") == .live)
        #expect(liveness.cached("ati-0") == .unknown)
    }
}

@Suite struct LivenessMemoTests: LivenessTestBed {
    let wallClock = ManualWallClock()
    let clock = ManualIntervalClock()
    let logs = InMemoryLogHandler.Store()

    @Test func memoAgreesWithTableOverTime() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        let memo = LivenessMemo()
        #expect(liveness.cached("ati-1", memo: memo) == .unknown)
        #expect(await liveness.check("ati-1") == .live)
        for _ in 0..<700 {
            #expect(liveness.cached("ati-1", memo: memo) == liveness.cached("ati-1"))
            elapse(0.01)
        }
        #expect(liveness.cached("ati-1", memo: memo) == .unknown)
    }

    @Test func memoEndsAtSignOut() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        let memo = LivenessMemo()
        #expect(await liveness.check("ati-1") == .live)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        liveness.markSignedOut("ati-1")
        #expect(liveness.cached("ati-1", memo: memo) == .signedOut)
    }

    @Test func memoEndsWhenTheStoreSaysSignedOut() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        let memo = LivenessMemo()
        #expect(await liveness.check("ati-1") == .live)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        try await store.delete(SessionLiveness.storeKey(accessTokenID: "ati-1"))
        elapse(5.1)
        #expect(await liveness.check("ati-1") == .signedOut)
        #expect(liveness.cached("ati-1", memo: memo) == .signedOut)
    }

    @Test func memoEndsWhenTheEntryIsEvicted() async throws {
        let store = try ObservedStore(clock: wallClock)
        let liveness = make(store, capacity: 10)
        let memo = LivenessMemo()
        try await save(store, "ati-0")
        #expect(await liveness.check("ati-0") == .live)
        #expect(liveness.cached("ati-0", memo: memo) == .live)
        for index in 1...10 {
            try await save(store, "ati-\(index)")
            #expect(await liveness.check("ati-\(index)") == .live)
        }
        #expect(liveness.cached("ati-0") == .unknown)
        #expect(liveness.cached("ati-0", memo: memo) == .unknown)
    }

    @Test func memoOfAnotherInstanceIsIgnored() async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let first = make(store)
        let second = make(store)
        let memo = LivenessMemo()
        #expect(await first.check("ati-1") == .live)
        #expect(first.cached("ati-1", memo: memo) == .live)
        #expect(second.cached("ati-1", memo: memo) == .unknown)
    }

    /// Readers on several threads share one memo while another thread signs the session out. A
    /// read that starts after `markSignedOut(_:)` returned must not get `.live`, from the memo or
    /// from the table.
    @Test func memoNeverOutlivesSignOutAcrossThreads() async throws {
        let store = try ObservedStore(clock: wallClock)
        let liveness = make(store)
        let counter = ViolationCounter()
        for round in 0..<40 {
            let accessTokenID = "ati-\(round)"
            try await save(store, accessTokenID)
            #expect(await liveness.check(accessTokenID) == .live)
            let memo = LivenessMemo()
            #expect(liveness.cached(accessTokenID, memo: memo) == .live)
            let signal = SignOutSignal()
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        for _ in 0..<2000 {
                            let afterSignOut = signal.done.load(ordering: .acquiring)
                            let verdict = liveness.cached(accessTokenID, memo: memo)
                            if afterSignOut && verdict == .live { counter.count.add(1, ordering: .relaxed) }
                        }
                    }
                }
                group.addTask {
                    liveness.markSignedOut(accessTokenID)
                    signal.done.store(true, ordering: .releasing)
                }
            }
            #expect(liveness.cached(accessTokenID, memo: memo) == .signedOut)
        }
        #expect(counter.count.load(ordering: .relaxed) == 0)
    }
}

/// Steps of the wall clock, back and forward by half a second and by three hours, while the
/// liveness checks run. Each test expects the verdicts, store reads and warnings that the same
/// steps give with no jump.
@Suite struct LivenessWallClockTests: LivenessTestBed {
    let wallClock = ManualWallClock()
    let clock = ManualIntervalClock()
    let logs = InMemoryLogHandler.Store()
    static let jumps = [-3 * 3600.0, -0.5, 0.5, 3 * 3600.0]

    @Test(arguments: jumps)
    func memoryVerdictOutlastsJump(jump: Double) async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        let memo = LivenessMemo()
        #expect(await liveness.check("ati-1") == .live)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        jumpWallClock(by: jump)
        elapse(4.9)
        #expect(liveness.cached("ati-1") == .live)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        #expect(await liveness.check("ati-1") == .live)
        #expect(store.reads == 1)
        elapse(0.2)
        #expect(liveness.cached("ati-1") == .unknown)
        #expect(liveness.cached("ati-1", memo: memo) == .unknown)
    }

    @Test(arguments: jumps)
    func signOutElsewhereSeenAfterInterval(jump: Double) async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        let memo = LivenessMemo()
        #expect(await liveness.check("ati-1") == .live)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        try await store.delete(SessionLiveness.storeKey(accessTokenID: "ati-1"))
        elapse(2)
        jumpWallClock(by: jump)
        elapse(2.9)
        #expect(liveness.cached("ati-1", memo: memo) == .live)
        elapse(0.2)
        #expect(liveness.cached("ati-1", memo: memo) == .unknown)
        #expect(await liveness.check("ati-1") == .signedOut)
        #expect(liveness.cached("ati-1", memo: memo) == .signedOut)
        #expect(store.reads == 2)
    }

    @Test(arguments: jumps)
    func failureGraceOutlastsJump(jump: Double) async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        #expect(await liveness.check("ati-1") == .live)
        store.setFailing(true)
        elapse(10)
        jumpWallClock(by: jump)
        #expect(await liveness.check("ati-1") == .live)
        elapse(49.9)
        #expect(await liveness.check("ati-1") == .live)
        elapse(0.2)
        #expect(await liveness.check("ati-1") == .unavailable)
    }

    @Test(arguments: jumps)
    func failureWarningsKeepTheirRate(jump: Double) async throws {
        let store = try ObservedStore(clock: wallClock)
        try await save(store, "ati-1")
        let liveness = make(store)
        store.setFailing(true)
        #expect(await liveness.check("ati-1") == .unavailable)
        jumpWallClock(by: jump)
        elapse(59.9)
        #expect(await liveness.check("ati-1") == .unavailable)
        #expect(logs.all.filter { $0.level == .warning }.count == 1)
        elapse(0.2)
        #expect(await liveness.check("ati-1") == .unavailable)
        #expect(logs.all.filter { $0.level == .warning }.count == 2)
    }
}

/// A flag set once `markSignedOut(_:)` has returned.
private final class SignOutSignal: Sendable {
    let done = Atomic<Bool>(false)
}

/// The number of reads that got `.live` after the sign-out returned.
private final class ViolationCounter: Sendable {
    let count = Atomic<Int>(0)
}
