import PomeriumCore

/// Runs a piece of work (a session refresh) at most once at a time per key across every request
/// and instance that shares a store, using the store's lock.
///
/// The caller that takes the lock runs `perform`, which writes its result to the store, and then
/// releases the lock. Every other caller waits: it polls `reread` until that returns a value (the
/// winner's result is in the store), or until the lock is free again, in which case it takes the
/// lock and runs the work itself. The wait is bounded by `waitTimeout`. The lease's TTL bounds how
/// long a crashed winner can block the others.
public struct SingleFlight: Sendable {
    public let store: any KeyValueStore
    public let lockTTL: Duration
    public let waitTimeout: Duration
    public let pollInterval: Duration
    private let clock: any WallClock
    private let sleep: @Sendable (Duration) async throws -> Void

    /// - Parameters:
    ///   - lockTTL: how long a lease lasts; longer than the work normally takes.
    ///   - waitTimeout: how long a caller that lost the race waits for the winner's result.
    ///   - pollInterval: how often a waiting caller rereads the store.
    ///   - sleep: waits between polls; tests pass one that advances a `ManualWallClock`.
    public init(
        store: any KeyValueStore,
        lockTTL: Duration = .seconds(30),
        waitTimeout: Duration = .seconds(10),
        pollInterval: Duration = .milliseconds(50),
        clock: any WallClock = SystemWallClock(),
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.store = store
        self.lockTTL = lockTTL
        self.waitTimeout = waitTimeout
        self.pollInterval = pollInterval
        self.clock = clock
        self.sleep = sleep
    }

    /// Returns the result of `perform`, run by this caller or by the one that holds the lock `key`.
    ///
    /// - Parameters:
    ///   - reread: reads the result from the store; returns `nil` while it is not there yet (for
    ///     a refresh: while the stored session is still expired).
    ///   - perform: does the work and stores its result; runs only while this caller holds the lock.
    /// - Throws: what `perform`, `reread` or the store throws, or a `StoreError` of kind `timeout`
    ///   when the winner neither stored a result nor released the lock within `waitTimeout`.
    public func run<Value: Sendable>(
        _ key: String,
        reread: () async throws -> Value?,
        perform: () async throws -> Value
    ) async throws -> Value {
        let owner = LockOwner()
        let deadline = clock.now() + StoreLimits.seconds(waitTimeout)
        var waited = false
        while true {
            if try await store.acquireLock(key, owner: owner, ttl: lockTTL) {
                return try await performHoldingLock(key, owner: owner, rereadFirst: waited, reread, perform)
            }
            waited = true
            guard clock.now() < deadline else {
                throw StoreError(
                    .timeout,
                    "timed out after \(waitTimeout) waiting for another request to finish the work locked by this key"
                )
            }
            try await sleep(pollInterval)
            if let value = try await reread() { return value }
        }
    }

    private func performHoldingLock<Value: Sendable>(
        _ key: String,
        owner: LockOwner,
        rereadFirst: Bool,
        _ reread: () async throws -> Value?,
        _ perform: () async throws -> Value
    ) async throws -> Value {
        let result: Result<Value, any Error>
        do {
            // A winner may have stored its result between this caller's last read and the
            // acquisition; doing the work again would waste an IdP round trip.
            if rereadFirst, let value = try await reread() {
                result = .success(value)
            } else {
                result = .success(try await perform())
            }
        } catch {
            result = .failure(error)
        }
        // A failed release only delays the others until the lease expires, so it is not reported
        // over the work's own outcome.
        _ = try? await store.releaseLock(key, owner: owner)
        return try result.get()
    }
}
