import Foundation
import Glibc
import PomeriumLogging
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Synchronization
import Testing

@testable import PomeriumSessionsRedis

/// Host names in `cache_store_address` resolve off the Redis loop, which every Redis connection of
/// the process shares, so a slow DNS answer for one connection cannot stall the others.
@Suite(.serialized) struct RedisResolutionTests {
    private static func configuration(host: String, port: Int) -> RedisConfiguration {
        var configuration = RedisConfiguration(host: host, port: port, database: 0)
        configuration.commandTimeout = .seconds(5)
        configuration.connectTimeout = .seconds(5)
        configuration.maximumBackoff = .milliseconds(200)
        return configuration
    }

    private static func ping(_ connection: RedisConnection) async -> Result<RESPValue, StoreError> {
        await connection.send([Array("PING".utf8)])
    }

    @Test func slowLookupLeavesLoopFree() async throws {
        try await Fixtures.withRedis { server in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let loop = group.next()
            let lookupStarted = Flag()
            let lookupReleased = Flag()
            let lookupReturned = Flag()
            // The slow lookup blocks its thread, as getaddrinfo does while DNS is slow, until the
            // test releases it (at most 10 s). No time bound decides the test: the other
            // connection's reply must arrive while the lookup still blocks.
            let slow = try RedisConnection(
                configuration: Self.configuration(host: "redis.slow.test", port: server.port),
                logger: Logger(label: "test"), loop: loop,
                resolver: { _, port, _ in
                    lookupStarted.set()
                    var waited = 0
                    while !lookupReleased.isSet && waited < 1000 {
                        usleep(10_000)
                        waited += 1
                    }
                    lookupReturned.set()
                    return RedisSocket.numericAddresses(host: "127.0.0.1", port: port) ?? []
                })
            defer { slow.shutdown() }
            while !lookupStarted.isSet { try await Task.sleep(for: .milliseconds(10)) }
            let fast = try RedisConnection(
                configuration: Self.configuration(host: "127.0.0.1", port: server.port),
                logger: Logger(label: "test"), loop: loop)
            defer { fast.shutdown() }
            let reply = await Self.ping(fast)
            let waitedForLookup = lookupReturned.isSet
            lookupReleased.set()
            #expect(reply == .success(.simpleString("PONG")))
            #expect(!waitedForLookup, "the other connection waited for the slow lookup")
            // The slow connection still works once its lookup returns.
            #expect(await Self.ping(slow) == .success(.simpleString("PONG")))
        }
    }

    @Test func lookupTimeoutNamesTheLookup() async throws {
        try await Fixtures.withRedis { server in
            var configuration = Self.configuration(host: "redis.stuck.test", port: server.port)
            configuration.connectTimeout = .milliseconds(300)
            configuration.minimumBackoff = .seconds(30)
            configuration.maximumBackoff = .seconds(30)
            let connection = try RedisConnection(
                configuration: configuration, logger: Logger(label: "test"),
                resolver: { _, port, _ in
                    usleep(1_000_000)
                    return RedisSocket.numericAddresses(host: "127.0.0.1", port: port) ?? []
                })
            defer { connection.shutdown() }
            guard case .failure(let error) = await Self.ping(connection) else {
                Issue.record("a command succeeded although the lookup outlasted the connect timeout")
                return
            }
            #expect(error.kind == .timeout || error.kind == .unavailable)
            #expect(error.message.contains("resolving the Redis host"), "\(error.message)")
        }
    }

    @Test func localhostNameConnects() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(address: "redis://localhost:\(server.port)/0")
            defer { store.shutdown() }
            try await store.ping()
        }
    }

    @Test func numericAddressesNeedNoLookup() {
        #expect(RedisSocket.numericAddresses(host: "127.0.0.1", port: 6379)?.first?.family == AF_INET)
        #expect(RedisSocket.numericAddresses(host: "::1", port: 6379)?.first?.family == AF_INET6)
        #expect(RedisSocket.numericAddresses(host: "localhost", port: 6379) == nil)
    }
}

/// A flag the blocking resolver sets for the test to poll.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
