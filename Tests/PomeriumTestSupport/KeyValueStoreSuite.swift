import PomeriumSessions
import Testing

/// The behaviour every `KeyValueStore` must have, written once and run against each store.
///
/// A store's test file runs every case, for example with
/// `@Test(arguments: KeyValueStoreSuite.Case.allCases)`. Time moves only through `advanceTime`:
/// stores with an injected clock advance a `ManualWallClock`; Redis, whose clock is its own, sleeps
/// for real, so its `ttl` is kept short.
public struct KeyValueStoreSuite: Sendable {
    public enum Case: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case missingKeyIsNil
        case setThenGet
        case overwriteReplacesValueAndTTL
        case entriesExpire
        case deleteRemovesEntry
        case largeValue
        case binaryValues
        case concurrentSetAndGet
        case lockHasOneWinner
        case lockLeaseExpires
        case releaseByNonOwnerIsIgnored
        case locksAreApartFromKeys
        case invalidInputIsRejected

        public var testDescription: String { rawValue }
    }

    /// The TTL used for entries and leases that a case lets expire.
    public let ttl: Duration
    private let advanceTime: @Sendable (Duration) async throws -> Void
    private let makeStore: @Sendable () async throws -> any KeyValueStore

    public init(
        ttl: Duration,
        advanceTime: @escaping @Sendable (Duration) async throws -> Void,
        makeStore: @escaping @Sendable () async throws -> any KeyValueStore
    ) {
        self.ttl = ttl
        self.advanceTime = advanceTime
        self.makeStore = makeStore
    }

    /// A TTL no case waits out.
    private var longTTL: Duration { .seconds(3600) }

    public func run(_ testCase: Case) async throws {
        let store = try await makeStore()
        switch testCase {
        case .missingKeyIsNil: try await missingKeyIsNil(store)
        case .setThenGet: try await setThenGet(store)
        case .overwriteReplacesValueAndTTL: try await overwriteReplacesValueAndTTL(store)
        case .entriesExpire: try await entriesExpire(store)
        case .deleteRemovesEntry: try await deleteRemovesEntry(store)
        case .largeValue: try await largeValue(store)
        case .binaryValues: try await binaryValues(store)
        case .concurrentSetAndGet: try await concurrentSetAndGet(store)
        case .lockHasOneWinner: try await lockHasOneWinner(store)
        case .lockLeaseExpires: try await lockLeaseExpires(store)
        case .releaseByNonOwnerIsIgnored: try await releaseByNonOwnerIsIgnored(store)
        case .locksAreApartFromKeys: try await locksAreApartFromKeys(store)
        case .invalidInputIsRejected: try await invalidInputIsRejected(store)
        }
    }

    private func missingKeyIsNil(_ store: any KeyValueStore) async throws {
        #expect(try await store.get("never-written") == nil)
        try await store.delete("never-written")
        #expect(try await store.releaseLock("never-locked", owner: LockOwner()) == false)
    }

    private func setThenGet(_ store: any KeyValueStore) async throws {
        try await store.set("session", value: Array("payload".utf8), ttl: longTTL)
        #expect(try await store.get("session") == Array("payload".utf8))
        #expect(try await store.get("Session") == nil)
    }

    private func overwriteReplacesValueAndTTL(_ store: any KeyValueStore) async throws {
        try await store.set("key", value: [1, 2, 3], ttl: longTTL)
        try await store.set("key", value: [4, 5], ttl: ttl)
        #expect(try await store.get("key") == [4, 5])
        try await advanceTime(ttl * 1.5)
        #expect(try await store.get("key") == nil, "the second set's shorter TTL applies")
    }

    private func entriesExpire(_ store: any KeyValueStore) async throws {
        try await store.set("short", value: [1], ttl: ttl)
        try await store.set("long", value: [2], ttl: longTTL)
        try await advanceTime(ttl / 2)
        #expect(try await store.get("short") == [1])
        try await advanceTime(ttl)
        #expect(try await store.get("short") == nil)
        #expect(try await store.get("long") == [2])
    }

    private func deleteRemovesEntry(_ store: any KeyValueStore) async throws {
        try await store.set("doomed", value: [9], ttl: longTTL)
        try await store.set("kept", value: [8], ttl: longTTL)
        try await store.delete("doomed")
        #expect(try await store.get("doomed") == nil)
        #expect(try await store.get("kept") == [8])
        try await store.delete("doomed")
    }

    private func largeValue(_ store: any KeyValueStore) async throws {
        var generator = SeededGenerator(seed: 42)
        let value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try await store.set("large", value: value, ttl: longTTL)
        let read = try await store.get("large")
        #expect(read?.count == value.count)
        #expect(read == value)
    }

    private func binaryValues(_ store: any KeyValueStore) async throws {
        let everyByte = (0...255).map { UInt8($0) }
        let protocolLookalikes = Array("\r\n$-1\r\n*2\r\n+OK\r\n\0\0".utf8)
        try await store.set("every-byte", value: everyByte, ttl: longTTL)
        try await store.set("lookalikes", value: protocolLookalikes, ttl: longTTL)
        try await store.set("nuls", value: [0, 0, 0, 0], ttl: longTTL)
        try await store.set("empty", value: [], ttl: longTTL)
        #expect(try await store.get("every-byte") == everyByte)
        #expect(try await store.get("lookalikes") == protocolLookalikes)
        #expect(try await store.get("nuls") == [0, 0, 0, 0])
        #expect(try await store.get("empty") == [], "an empty value is not a missing key")
        try await store.set("unicode-ключ-🔑", value: [7], ttl: longTTL)
        #expect(try await store.get("unicode-ключ-🔑") == [7])
    }

    private func concurrentSetAndGet(_ store: any KeyValueStore) async throws {
        let taskCount = 16
        let operationsPerTask = 50
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<taskCount {
                group.addTask {
                    var mismatches = 0
                    for operation in 0..<operationsPerTask {
                        let key = "task-\(task)-\(operation)"
                        let value = Array("\(task):\(operation)".utf8)
                        try await store.set(key, value: value, ttl: longTTL)
                        try await store.set("shared", value: value, ttl: longTTL)
                        if try await store.get(key) != value { mismatches += 1 }
                    }
                    return mismatches
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        for task in 0..<taskCount {
            let key = "task-\(task)-\(operationsPerTask - 1)"
            #expect(try await store.get(key) == Array("\(task):\(operationsPerTask - 1)".utf8))
        }
        let shared = try #require(try await store.get("shared"))
        let text = String(decoding: shared, as: UTF8.self)
        #expect(text.contains(":"), "the shared key holds one of the values written to it")
    }

    private func lockHasOneWinner(_ store: any KeyValueStore) async throws {
        let contenders = (0..<16).map { _ in LockOwner() }
        let winners = try await withThrowingTaskGroup(of: LockOwner?.self) { group in
            for owner in contenders {
                group.addTask { try await store.acquireLock("refresh", owner: owner, ttl: longTTL) ? owner : nil }
            }
            var winners: [LockOwner] = []
            for try await winner in group { if let winner { winners.append(winner) } }
            return winners
        }
        #expect(winners.count == 1)
        let winner = try #require(winners.first)
        #expect(try await store.acquireLock("refresh", owner: winner, ttl: longTTL) == false, "locks do not nest")
        #expect(try await store.releaseLock("refresh", owner: winner))
        #expect(try await store.acquireLock("refresh", owner: LockOwner(), ttl: longTTL))
    }

    private func lockLeaseExpires(_ store: any KeyValueStore) async throws {
        let crashed = LockOwner()
        let next = LockOwner()
        #expect(try await store.acquireLock("lease", owner: crashed, ttl: ttl))
        #expect(try await store.acquireLock("lease", owner: next, ttl: longTTL) == false)
        try await advanceTime(ttl * 1.5)
        #expect(try await store.acquireLock("lease", owner: next, ttl: longTTL))
        #expect(try await store.releaseLock("lease", owner: crashed) == false, "an expired owner cannot release")
        #expect(try await store.acquireLock("lease", owner: LockOwner(), ttl: longTTL) == false)
    }

    private func releaseByNonOwnerIsIgnored(_ store: any KeyValueStore) async throws {
        let owner = LockOwner()
        let intruder = LockOwner()
        #expect(try await store.acquireLock("guarded", owner: owner, ttl: longTTL))
        #expect(try await store.releaseLock("guarded", owner: intruder) == false)
        #expect(try await store.acquireLock("guarded", owner: intruder, ttl: longTTL) == false)
        #expect(try await store.releaseLock("guarded", owner: owner))
        #expect(try await store.releaseLock("guarded", owner: owner) == false, "a second release finds nothing")
        #expect(try await store.acquireLock("guarded", owner: intruder, ttl: longTTL))
    }

    private func locksAreApartFromKeys(_ store: any KeyValueStore) async throws {
        let owner = LockOwner()
        try await store.set("shared-name", value: [1], ttl: longTTL)
        #expect(try await store.acquireLock("shared-name", owner: owner, ttl: longTTL))
        #expect(try await store.get("shared-name") == [1])
        try await store.delete("shared-name")
        #expect(try await store.acquireLock("shared-name", owner: LockOwner(), ttl: longTTL) == false)
        #expect(try await store.releaseLock("shared-name", owner: owner))
    }

    private func invalidInputIsRejected(_ store: any KeyValueStore) async throws {
        let tooLong = String(repeating: "k", count: StoreLimits.maximumKeyBytes + 1)
        for key in ["", tooLong, "nul\u{0}inside", "line\nbreak", "\u{1}lock:x"] {
            let error = await #expect(throws: StoreError.self) { try await store.get(key) }
            #expect(error?.kind == .invalidKey)
        }
        let longest = String(repeating: "k", count: StoreLimits.maximumKeyBytes)
        try await store.set(longest, value: [1], ttl: longTTL)
        #expect(try await store.get(longest) == [1])

        let oversized = [UInt8](repeating: 0, count: StoreLimits.maximumValueBytes + 1)
        let valueError = await #expect(throws: StoreError.self) {
            try await store.set("big", value: oversized, ttl: longTTL)
        }
        #expect(valueError?.kind == .invalidValue)
        #expect(valueError?.message.contains("\(oversized.count) bytes") == true)

        let ttlError = await #expect(throws: StoreError.self) { try await store.set("k", value: [1], ttl: .zero) }
        #expect(ttlError?.kind == .invalidTTL)
        let lockError = await #expect(throws: StoreError.self) {
            try await store.acquireLock("k", owner: LockOwner(), ttl: .seconds(-1))
        }
        #expect(lockError?.kind == .invalidTTL)
    }
}

/// A small deterministic generator (SplitMix64), so random test data is the same on every run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
