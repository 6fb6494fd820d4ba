import PomeriumCore
import Synchronization

/// The `autocache` store: an in-process LRU cache with a byte budget and per-entry TTLs.
///
/// One `Mutex` guards the whole cache. Every operation is a few dictionary and array updates, so
/// the lock is held for well under a microsecond and event loops can share one instance. Entries
/// are lost on restart, as with v0.7's autocache. When a write would pass the byte budget, expired
/// entries are swept (at most once per second of clock time) and then the least recently used
/// entries are evicted.
public final class MemoryStore: KeyValueStore {
    /// 10 MiB, the budget of v0.7's autocache group.
    public static let defaultByteBudget = 10 * 1024 * 1024

    /// Bytes charged per entry on top of its key and value, an estimate of the dictionary slot,
    /// the list node and the array headers.
    public static let entryOverheadBytes = 96

    /// Counters for monitoring and tests.
    public struct Statistics: Sendable, Equatable {
        public var entryCount: Int
        public var byteCount: Int
        public var evictionCount: Int
    }

    private let clock: any WallClock
    private let state: Mutex<LRUState>

    /// Creates an empty store that keeps at most `byteBudget` bytes of keys, values and overhead.
    public init(byteBudget: Int = MemoryStore.defaultByteBudget, clock: any WallClock = SystemWallClock())
        throws(StoreError)
    {
        guard byteBudget >= 4096 else {
            throw StoreError(
                .invalidConfiguration, "invalid in-memory store budget of \(byteBudget) bytes: use at least 4096")
        }
        self.clock = clock
        self.state = Mutex(LRUState(byteBudget: byteBudget))
    }

    public var statistics: Statistics {
        state.withLock { Statistics(entryCount: $0.index.count, byteCount: $0.byteCount, evictionCount: $0.evictions) }
    }

    public func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.validate(key: key)
        let now = clock.now()
        return state.withLock { $0.value(for: key, now: now) }
    }

    public func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        try StoreLimits.validate(valueCount: value.count)
        let milliseconds = try StoreLimits.validate(ttl: ttl)
        let now = clock.now()
        let expiresAt = now + Double(milliseconds) / 1000
        try state.withLock { (state: inout LRUState) throws(StoreError) in
            try state.store(key: key, value: value, expiresAt: expiresAt, now: now)
        }
    }

    public func delete(_ key: String) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        state.withLock { $0.remove(key: key) }
    }

    public func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let milliseconds = try StoreLimits.validate(ttl: ttl)
        let now = clock.now()
        return state.withLock { state in
            state.acquireLock(name, owner: owner.token, expiresAt: now + Double(milliseconds) / 1000, now: now)
        }
    }

    public func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let now = clock.now()
        return state.withLock { $0.releaseLock(name, owner: owner.token, now: now) }
    }
}

/// The cache's data: a dictionary from key to a slot in `nodes`, and a doubly linked list through
/// the slots in recency order (head = most recently used). Freed slots are reused.
struct LRUState {
    struct Node {
        var key: String
        var value: [UInt8]
        var expiresAt: Double
        var cost: Int
        var previous: Int
        var next: Int
    }

    struct Lease {
        var owner: String
        var expiresAt: Double
    }

    static let none = -1

    let byteBudget: Int
    var index: [String: Int] = [:]
    var nodes: [Node] = []
    var freeSlots: [Int] = []
    var head = LRUState.none
    var tail = LRUState.none
    var byteCount = 0
    var evictions = 0
    var lastSweep = -Double.infinity
    var leases: [String: Lease] = [:]
    var leaseSweepThreshold = 1024

    init(byteBudget: Int) { self.byteBudget = byteBudget }

    mutating func value(for key: String, now: Double) -> [UInt8]? {
        guard let slot = index[key] else { return nil }
        if nodes[slot].expiresAt <= now {
            remove(slot: slot)
            return nil
        }
        moveToFront(slot)
        return nodes[slot].value
    }

    mutating func store(key: String, value: [UInt8], expiresAt: Double, now: Double) throws(StoreError) {
        let cost = key.utf8.count + value.count + MemoryStore.entryOverheadBytes
        guard cost <= byteBudget else {
            throw StoreError(
                .invalidValue,
                "invalid value: \(value.count) bytes do not fit the in-memory store's budget of \(byteBudget) bytes"
            )
        }
        if let slot = index[key] {
            byteCount += cost - nodes[slot].cost
            nodes[slot].value = value
            nodes[slot].expiresAt = expiresAt
            nodes[slot].cost = cost
            moveToFront(slot)
        } else {
            let node = Node(key: key, value: value, expiresAt: expiresAt, cost: cost, previous: Self.none, next: head)
            let slot: Int
            if let reused = freeSlots.popLast() {
                nodes[reused] = node
                slot = reused
            } else {
                nodes.append(node)
                slot = nodes.count - 1
            }
            if head != Self.none { nodes[head].previous = slot }
            head = slot
            if tail == Self.none { tail = slot }
            index[key] = slot
            byteCount += cost
        }
        makeRoom(now: now)
    }

    /// Brings `byteCount` within the budget: expired entries go first, then the least recently used.
    /// The head, the entry just written, is never evicted because it alone fits the budget.
    private mutating func makeRoom(now: Double) {
        guard byteCount > byteBudget else { return }
        if now >= lastSweep + 1 {
            lastSweep = now
            sweepExpired(now: now)
        }
        while byteCount > byteBudget && tail != head {
            remove(slot: tail)
            evictions += 1
        }
    }

    mutating func sweepExpired(now: Double) {
        var slot = tail
        while slot != Self.none {
            let previous = nodes[slot].previous
            if nodes[slot].expiresAt <= now { remove(slot: slot) }
            slot = previous
        }
        leases = leases.filter { $0.value.expiresAt > now }
    }

    mutating func remove(key: String) {
        if let slot = index[key] { remove(slot: slot) }
    }

    private mutating func remove(slot: Int) {
        unlink(slot)
        index[nodes[slot].key] = nil
        byteCount -= nodes[slot].cost
        // Drop the value now rather than when the slot is reused.
        nodes[slot].value = []
        nodes[slot].key = ""
        freeSlots.append(slot)
    }

    private mutating func moveToFront(_ slot: Int) {
        guard slot != head else { return }
        unlink(slot)
        nodes[slot].next = head
        if head != Self.none { nodes[head].previous = slot }
        head = slot
        if tail == Self.none { tail = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let previous = nodes[slot].previous
        let next = nodes[slot].next
        if previous != Self.none { nodes[previous].next = next } else { head = next }
        if next != Self.none { nodes[next].previous = previous } else { tail = previous }
        nodes[slot].previous = Self.none
        nodes[slot].next = Self.none
    }

    mutating func acquireLock(_ name: String, owner: String, expiresAt: Double, now: Double) -> Bool {
        if let lease = leases[name], lease.expiresAt > now { return false }
        // Abandoned leases are dropped in bulk once their number doubles, so the table stays bounded
        // by the number of live leases at a cost of O(1) per acquisition on average.
        if leases.count >= leaseSweepThreshold {
            leases = leases.filter { $0.value.expiresAt > now }
            leaseSweepThreshold = max(1024, leases.count * 2)
        }
        leases[name] = Lease(owner: owner, expiresAt: expiresAt)
        return true
    }

    mutating func releaseLock(_ name: String, owner: String, now: Double) -> Bool {
        guard let lease = leases[name], lease.owner == owner else { return false }
        leases[name] = nil
        return lease.expiresAt > now
    }
}
