import PomeriumCore
import PomeriumLogging
import PomeriumSessions
import PomeriumSessionsRedis
import PomeriumTestSupport
import Testing

/// Sign-out across replicas that share one Redis server, each through its own connection and its
/// own `SessionLiveness`, with the per-session memo the proxy keeps.
@Suite("Liveness memo across replicas on Redis")
struct LivenessRedisTests {
    @Test("sign-out on one replica ends the memo on another")
    func signOutOnAnotherReplica() async throws {
        try await Fixtures.withRedis { redis in
            let clockA = ManualIntervalClock()
            let clockB = ManualIntervalClock()
            let logs = InMemoryLogHandler.Store()
            let storeA = try RedisStore(address: "redis://127.0.0.1:\(redis.port)/0")
            let storeB = try RedisStore(address: "redis://127.0.0.1:\(redis.port)/0")
            let replicaA = SessionLiveness(store: storeA, clock: clockA, logger: .inMemory(store: logs))
            let replicaB = SessionLiveness(store: storeB, clock: clockB, logger: .inMemory(store: logs))
            let key = SessionLiveness.storeKey(accessTokenID: "ati-redis")
            try await storeA.set(key, value: [1], ttl: .seconds(3600))
            let memo = LivenessMemo()
            #expect(await replicaB.check("ati-redis") == .live)
            #expect(replicaB.cached("ati-redis", memo: memo) == .live)
            #expect(await replicaA.check("ati-redis") == .live)

            // Replica A signs the user out: the mark, then the delete that other replicas read.
            replicaA.markSignedOut("ati-redis")
            try await storeA.delete(key)
            #expect(replicaA.cached("ati-redis") == .signedOut)

            // B serves the session from memory until its recheck interval ends, as documented.
            clockB.advance(by: 4.9)
            #expect(replicaB.cached("ati-redis", memo: memo) == .live)
            clockB.advance(by: 0.2)
            #expect(replicaB.cached("ati-redis", memo: memo) == .unknown)
            #expect(await replicaB.check("ati-redis") == .signedOut)
            #expect(replicaB.cached("ati-redis", memo: memo) == .signedOut)
        }
    }
}
