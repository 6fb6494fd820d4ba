import PomeriumCore
import PomeriumLogging
import Synchronization

/// Remembers, per process, whether the global session behind a route session (its `ati`) still
/// exists in the store, so that sign-out ends copied route cookies without a store read on every
/// request.
///
/// - A session seen live within `recheckInterval` (5 s by default) is served from memory: no store
///   round trip.
/// - An older or unknown entry costs one `get` of the global session key. Every request for the
///   same `ati` that arrives while that read runs waits for it and shares its result.
/// - A missing global session means the user signed out (or it expired from the store): the
///   verdict is `.signedOut` and stays so, because an access-token ID is never reused.
/// - Sign-out in this process calls `markSignedOut(_:)`, which ends the session at once.
/// - When the store fails, an entry seen live within `failureGrace` (60 s) keeps being served and a
///   warning is logged at most once per `failureGrace`; any other session gets `.unavailable`.
/// - At most `capacity` entries are kept; the oldest inserted is dropped first.
///
/// The intervals are measured with a `IntervalClock`, so setting the system time back or forward
/// changes no verdict. The times it reads stay in this process: the store holds only the global
/// session's key, whose expiry the store keeps itself.
public final class SessionLiveness: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// The global session exists.
        case live
        /// The global session is gone: the user signed out or it expired from the store.
        case signedOut
        /// The store read failed and the session was not seen live recently.
        case unavailable
        /// The cache has no current entry, so call `check(_:)`, which reads the store.
        case unknown
    }

    /// The store key of the global session with access-token ID `accessTokenID`; sign-out
    /// deletes this key.
    public static func storeKey(accessTokenID: String) -> String { "session/" + accessTokenID }

    public static let defaultRecheckInterval = 5.0
    public static let defaultFailureGrace = 60.0
    public static let defaultCapacity = 50_000

    private struct Entry {
        var live: Bool
        var checkedAt: Double
        var lastLiveAt: Double?
        var read: Task<Verdict, Never>?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Keys in insertion order from `head` on; each key in `entries` appears once.
        var order: [String] = []
        var head = 0
        var lastFailureWarning = -Double.infinity
    }

    private let store: any KeyValueStore
    private let clock: any IntervalClock
    private let logger: Logger
    public let recheckInterval: Double
    public let failureGrace: Double
    public let capacity: Int
    private let state = Mutex(State())
    /// Counts the changes that can end a live verdict early: a sign-out, an entry found signed
    /// out and an evicted entry. A `LivenessMemo` holds only while the count is the one it saw.
    private let generation = Atomic<UInt64>(0)
    /// A number that no other `SessionLiveness` in this process has, so a memo filled by another
    /// instance is never used.
    private let serial = SessionLiveness.serials.add(1, ordering: .relaxed).newValue
    private static let serials = Atomic<UInt64>(0)

    public init(
        store: any KeyValueStore, clock: any IntervalClock, logger: Logger,
        recheckInterval: Double = SessionLiveness.defaultRecheckInterval,
        failureGrace: Double = SessionLiveness.defaultFailureGrace,
        capacity: Int = SessionLiveness.defaultCapacity
    ) {
        self.store = store
        self.clock = clock
        self.logger = logger
        self.recheckInterval = recheckInterval
        self.failureGrace = failureGrace
        self.capacity = max(1, capacity)
    }

    /// The verdict that memory alone gives; `.unknown` when the store must be read.
    public func cached(_ accessTokenID: String) -> Verdict {
        let now = clock.now()
        return state.withLock { state in
            guard let entry = state.entries[accessTokenID] else { return .unknown }
            if !entry.live { return .signedOut }
            return Self.isRecent(entry.checkedAt, now: now, within: recheckInterval) ? .live : .unknown
        }
    }

    /// Returns what `cached(_:)` returns for `accessTokenID`, first asking `memo`, which the caller
    /// keeps with one session (one `accessTokenID`) and never shares between sessions. A memo of
    /// a live verdict skips the lock and the table's hash of the id (about 450 instructions per
    /// request, measured). It is used until `recheckInterval` after the store read it copied, or
    /// until a change that could end the verdict early.
    public func cached(_ accessTokenID: @autoclosure () -> String, memo: LivenessMemo) -> Verdict {
        let now = clock.now()
        // The count is read before the table: a change after this point makes the memo stale.
        let seen = generation.load(ordering: .acquiring)
        if memo.isLive(serial: serial, generation: seen, now: now, recheckInterval: recheckInterval) { return .live }
        let (verdict, checkedAt): (Verdict, Double) = state.withLock { state in
            guard let entry = state.entries[accessTokenID()] else { return (.unknown, 0) }
            if !entry.live { return (.signedOut, 0) }
            return (
                Self.isRecent(entry.checkedAt, now: now, within: recheckInterval) ? .live : .unknown, entry.checkedAt
            )
        }
        if verdict == .live {
            memo.remember(serial: serial, generation: seen, checkedAt: checkedAt)
        }
        return verdict
    }

    /// The verdict for `accessTokenID`, reading the store at most once for all concurrent callers.
    public func check(_ accessTokenID: String) async -> Verdict {
        let verdict = cached(accessTokenID)
        guard verdict == .unknown else { return verdict }
        let read: Task<Verdict, Never> = state.withLock { state in
            if let running = state.entries[accessTokenID]?.read { return running }
            let task = Task { await self.readStore(accessTokenID) }
            if state.entries[accessTokenID] == nil {
                insert(&state, accessTokenID, Entry(live: true, checkedAt: -Double.infinity, lastLiveAt: nil))
            }
            state.entries[accessTokenID]?.read = task
            return task
        }
        return await read.value
    }

    /// Ends the session in this process at once, before the store delete reaches other processes.
    public func markSignedOut(_ accessTokenID: String) {
        let now = clock.now()
        state.withLock { state in
            if state.entries[accessTokenID] == nil {
                insert(&state, accessTokenID, Entry(live: false, checkedAt: now, lastLiveAt: nil))
            } else {
                state.entries[accessTokenID]?.live = false
                state.entries[accessTokenID]?.checkedAt = now
            }
            generation.add(1, ordering: .releasing)
        }
    }

    /// The number of entries held, for tests and metrics.
    public var count: Int { state.withLock { $0.entries.count } }

    private func readStore(_ accessTokenID: String) async -> Verdict {
        let result: Result<Bool, StoreError>
        do {
            result = .success(try await store.get(Self.storeKey(accessTokenID: accessTokenID)) != nil)
        } catch {
            result = .failure(error)
        }
        let now = clock.now()
        let (verdict, warn): (Verdict, Bool) = state.withLock { state in
            var entry =
                state.entries[accessTokenID] ?? Entry(live: true, checkedAt: -Double.infinity, lastLiveAt: nil)
            entry.read = nil
            var verdict: Verdict
            var warn = false
            switch result {
            case .success(let exists):
                // A sign-out in this process while the read ran wins over the store's result.
                if entry.live && exists {
                    entry.checkedAt = now
                    entry.lastLiveAt = now
                    verdict = .live
                } else {
                    entry.live = false
                    entry.checkedAt = now
                    verdict = .signedOut
                    generation.add(1, ordering: .releasing)
                }
            case .failure:
                if !entry.live {
                    verdict = .signedOut
                } else if let lastLive = entry.lastLiveAt, Self.isRecent(lastLive, now: now, within: failureGrace) {
                    verdict = .live
                } else {
                    verdict = .unavailable
                }
                if now - state.lastFailureWarning >= failureGrace {
                    state.lastFailureWarning = now
                    warn = true
                }
            }
            if state.entries[accessTokenID] != nil {
                state.entries[accessTokenID] = entry
            } else {
                insert(&state, accessTokenID, entry)
            }
            return (verdict, warn)
        }
        if warn, case .failure(let error) = result {
            logger.warning(
                "the session store cannot be read to check for sign-out; sessions seen live in the last minute are still served",
                metadata: ["error": .string(error.description)])
        }
        return verdict
    }

    /// Returns whether `time` lies less than `interval` seconds before `now`, both monotonic clock
    /// readings. A time slightly after `now` is recent: another thread stored it after this one
    /// read the clock.
    fileprivate static func isRecent(_ time: Double, now: Double, within interval: Double) -> Bool {
        now - time < interval
    }

    private func insert(_ state: inout State, _ key: String, _ entry: Entry) {
        while state.entries.count >= capacity, state.head < state.order.count {
            let oldest = state.order[state.head]
            state.head += 1
            state.entries[oldest] = nil
            generation.add(1, ordering: .releasing)
        }
        if state.head > capacity {
            state.order.removeFirst(state.head)
            state.head = 0
        }
        state.entries[key] = entry
        state.order.append(key)
    }
}

/// The last live verdict that `SessionLiveness.cached(_:memo:)` gave for one session, kept by the
/// caller with the session (for example in `SessionState.derived(_:)`).
public final class LivenessMemo: Sendable {
    private struct Remembered {
        /// The `SessionLiveness` instance that gave the verdict, by its serial number.
        var serial: UInt64
        /// That instance's change count when the verdict was read.
        var generation: UInt64
        /// The entry's `checkedAt`, compared with the same expression the table uses.
        var checkedAt: Double
    }

    private let remembered = Mutex<Remembered?>(nil)

    public init() {}

    fileprivate func isLive(serial: UInt64, generation: UInt64, now: Double, recheckInterval: Double) -> Bool {
        remembered.withLock { remembered in
            guard let remembered else { return false }
            return remembered.serial == serial && remembered.generation == generation
                && SessionLiveness.isRecent(remembered.checkedAt, now: now, within: recheckInterval)
        }
    }

    fileprivate func remember(serial: UInt64, generation: UInt64, checkedAt: Double) {
        remembered.withLock { $0 = Remembered(serial: serial, generation: generation, checkedAt: checkedAt) }
    }
}
