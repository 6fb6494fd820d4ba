import PomeriumCore
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Synchronization
import Testing

@testable import PomeriumProxy

/// Attacks on the liveness verdict each session keeps (`LivenessMemo`), through the proxy. Every
/// request after the first is served from the cookie header cache and the memo, and these tests
/// check that sign-out, the store, the clock and expiry still end a session.
@Suite("Liveness memo under attack")
struct LivenessMemoAttackTests {
    static func config(echo: String) -> String {
        """
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test, bob@corp.test]
        """
    }

    static func save(_ store: MemoryStore, _ session: SessionState) async throws {
        try await store.set(
            SessionLiveness.storeKey(accessTokenID: session.accessTokenID), value: [1], ttl: .seconds(3600))
    }

    static func status(_ proxy: ProxyHarness, _ cookie: String) async throws -> Int {
        try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", cookie)]).status
    }

    @Test("signing one user out ends that user's memo only")
    func twoUsers() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), livenessStore: store) { proxy in
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let bob = proxy.session("bob@corp.test", audience: ["app.example.test"])
                try await Self.save(store, alice)
                try await Self.save(store, bob)
                let aliceCookie = try proxy.cookieHeader(alice)
                let bobCookie = try proxy.cookieHeader(bob)
                for _ in 0..<3 {
                    #expect(try await Self.status(proxy, aliceCookie) == 200)
                    #expect(try await Self.status(proxy, bobCookie) == 200)
                }
                proxy.service.shared.liveness?.markSignedOut(bob.accessTokenID)
                #expect(try await Self.status(proxy, bobCookie) == 302)
                #expect(try await Self.status(proxy, aliceCookie) == 200)
                #expect(try await Self.status(proxy, bobCookie) == 302)
            }
        }
    }

    /// Replica A signs the user out: it marks the session and deletes the store key. Replica B,
    /// whose memo contains a live verdict, rejects the session once its recheck interval ends, and
    /// steps of B's wall clock by an hour either way neither shorten nor stretch that interval.
    @Test("sign-out on another replica, with B's wall clock stepped")
    func otherReplica() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            let config = Self.config(echo: echo.baseURL)
            try await ProxyHarness.run(config: config, livenessStore: store) { replicaA in
                try await ProxyHarness.run(config: config, livenessStore: store) { replicaB in
                    // Issued two hours ago and valid for a day, so the steps keep the cookie valid.
                    var alice = replicaB.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 86_400)
                    let issued = replicaB.clock.unixSeconds() - 7200
                    alice.issuedAt = issued
                    alice.notBefore = issued
                    try await Self.save(store, alice)
                    let cookie = try replicaB.cookieHeader(alice)
                    for _ in 0..<3 { #expect(try await Self.status(replicaB, cookie) == 200) }
                    #expect(try await Self.status(replicaA, cookie) == 200)

                    replicaA.service.shared.liveness?.markSignedOut(alice.accessTokenID)
                    try await store.delete(SessionLiveness.storeKey(accessTokenID: alice.accessTokenID))
                    #expect(try await Self.status(replicaA, cookie) == 302)

                    replicaB.clock.advance(by: -3600)
                    #expect(try await Self.status(replicaB, cookie) == 200)
                    replicaB.elapse(2)
                    replicaB.clock.advance(by: 7200)
                    #expect(try await Self.status(replicaB, cookie) == 200)
                    replicaB.elapse(2.9)
                    #expect(try await Self.status(replicaB, cookie) == 200)
                    replicaB.elapse(0.2)
                    #expect(try await Self.status(replicaB, cookie) == 302)
                }
            }
        }
    }

    /// While the memo reports the global session live, the route session's own `exp` still ends
    /// it, with no leeway.
    @Test("expiry crossed while the memo holds")
    func expiryWhileMemoised() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), livenessStore: store) { proxy in
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 3)
                try await Self.save(store, alice)
                let cookie = try proxy.cookieHeader(alice)
                #expect(try await Self.status(proxy, cookie) == 200)
                proxy.elapse(2)
                #expect(try await Self.status(proxy, cookie) == 200)
                // One second later `now == exp`: expired, 1 s after the memo was filled.
                proxy.elapse(1)
                #expect(try await Self.status(proxy, cookie) != 200)
                proxy.clock.advance(by: -0.5)
                #expect(try await Self.status(proxy, cookie) == 200)
            }
        }
    }

    /// A store that fails after the memo was filled: the session is served through the memo and
    /// the failure grace, and rejected once both are over. A sign-out in this process still ends
    /// it at once while the store is down.
    @Test("a failing store")
    func failingStore() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let store = try MemoryStore(clock: SystemWallClock())
            let failing = FailingStore(inner: store)
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL), livenessStore: failing) { proxy in
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let bob = proxy.session("bob@corp.test", audience: ["app.example.test"])
                try await Self.save(store, alice)
                try await Self.save(store, bob)
                let aliceCookie = try proxy.cookieHeader(alice)
                let bobCookie = try proxy.cookieHeader(bob)
                #expect(try await Self.status(proxy, aliceCookie) == 200)
                #expect(try await Self.status(proxy, bobCookie) == 200)
                failing.failing.withLock { $0 = true }
                proxy.elapse(30)
                #expect(try await Self.status(proxy, aliceCookie) == 200)
                proxy.service.shared.liveness?.markSignedOut(bob.accessTokenID)
                #expect(try await Self.status(proxy, bobCookie) == 302)
                proxy.elapse(31)
                #expect(try await Self.status(proxy, aliceCookie) != 200)
            }
        }
    }
}

/// A store whose reads fail while `failing` is set.
private final class FailingStore: KeyValueStore {
    let inner: MemoryStore
    let failing = Mutex(false)

    init(inner: MemoryStore) { self.inner = inner }

    func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        if failing.withLock({ $0 }) { throw StoreError(.unavailable, "the test store is down") }
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
