import Foundation
import Glibc
import PomeriumLogging
import PomeriumNet
import PomeriumSessions
import PomeriumSessionsRedis
import PomeriumTestSupport
import Testing

/// The Redis store against a real `redis-server` on a loopback port. Redis keeps its own time, so
/// TTL cases wait for real. The TTL is 2 s, so a check half way through keeps a second of margin
/// when parallel tests slow the machine down. The suite runs serialized because those real waits
/// and the fixtures' blocking start-up waits would otherwise starve each other of threads.
@Suite(.serialized) struct RedisStoreTests {
    private static func configuration(port: Int, commandTimeout: Duration = .seconds(2)) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(address: "127.0.0.1:\(port)")
        configuration.commandTimeout = commandTimeout
        configuration.connectTimeout = .seconds(1)
        configuration.maximumBackoff = .milliseconds(200)
        return configuration
    }

    @Test(arguments: KeyValueStoreSuite.Case.allCases)
    func sharedSuite(_ testCase: KeyValueStoreSuite.Case) async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            defer { store.shutdown() }
            let suite = KeyValueStoreSuite(
                ttl: .seconds(2),
                advanceTime: { try await Task.sleep(for: $0) },
                makeStore: { store }
            )
            try await suite.run(testCase)
        }
    }

    @Test func pingAnswers() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(address: "redis://127.0.0.1:\(server.port)/0")
            try await store.ping()
        }
    }

    @Test func entriesCarryATTLInRedis() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            try await store.set("session", value: [1], ttl: .seconds(100))
            let ttl = try RedisCLI.run(port: server.port, ["PTTL", "session"])
            let milliseconds = try #require(Int(ttl.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(milliseconds > 90_000)
            #expect(milliseconds <= 100_000)
        }
    }

    @Test func selectsTheConfiguredDatabase() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(address: "redis://127.0.0.1:\(server.port)/3")
            try await store.set("in-three", value: Array("x".utf8), ttl: .seconds(60))
            #expect(try RedisCLI.run(port: server.port, ["-n", "3", "GET", "in-three"]).hasPrefix("x"))
            #expect(try RedisCLI.run(port: server.port, ["-n", "0", "EXISTS", "in-three"]).hasPrefix("0"))
        }
    }

    @Test func databaseOutOfRangeIsAConfigurationError() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(address: "redis://127.0.0.1:\(server.port)/99")
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.kind == .invalidConfiguration)
            #expect(error?.message.contains("database 99") == true)
        }
    }

    @Test func passwordAuthenticates() async throws {
        try await Fixtures.withRedis(extraArguments: ["--requirepass", "s3cret-pass"]) { server in
            let store = try RedisStore(address: "127.0.0.1:\(server.port)", password: "s3cret-pass")
            try await store.set("k", value: [1], ttl: .seconds(60))
            #expect(try await store.get("k") == [1])
        }
    }

    @Test func userAndPasswordAuthenticate() async throws {
        let acl = ["--user", "pomerium", "on", ">user-pass", "~*", "+@all"]
        try await Fixtures.withRedis(extraArguments: acl) { server in
            let store = try RedisStore(address: "redis://pomerium:user-pass@127.0.0.1:\(server.port)")
            try await store.set("k", value: [2], ttl: .seconds(60))
            #expect(try await store.get("k") == [2])
        }
    }

    @Test func wrongPasswordNamesTheSettingNotThePassword() async throws {
        try await Fixtures.withRedis(extraArguments: ["--requirepass", "right-pass"]) { server in
            let store = try RedisStore(
                configuration: Self.configuration(port: server.port).withPassword("wrong-pass-123"))
            let error = await #expect(throws: StoreError.self) { try await store.get("k") }
            #expect(error?.kind == .authenticationFailed)
            #expect(error?.message.contains("cache_store_password") == true)
            #expect(error?.message.contains("wrong-pass-123") == false)
            #expect(error?.message.contains("right-pass") == false)
        }
    }

    @Test func missingPasswordNamesTheSetting() async throws {
        try await Fixtures.withRedis(extraArguments: ["--requirepass", "right-pass"]) { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            let error = await #expect(throws: StoreError.self) { try await store.get("k") }
            #expect(error?.kind == .authenticationFailed)
            #expect(error?.message.contains("set cache_store_password") == true)
        }
    }

    @Test func fullRedisReportsFull() async throws {
        let arguments = ["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]
        try await Fixtures.withRedis(extraArguments: arguments) { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            let value = [UInt8](repeating: 7, count: 64 * 1024)
            var fullError: StoreError?
            for index in 0..<200 {
                do throws(StoreError) {
                    try await store.set("entry-\(index)", value: value, ttl: .seconds(60))
                } catch {
                    fullError = error
                    break
                }
            }
            let error = try #require(fullError)
            #expect(error.kind == .full)
            #expect(error.message.contains("maxmemory"))
            // Redis's own overhead may fill 1 MB before the first write, so entry-0 may be missing.
            await #expect(throws: Never.self, "reads still work") { _ = try await store.get("entry-0") }
        }
    }

    @Test func nothingListeningFailsQuickly() async throws {
        let port = try LoopbackPort.allocate()
        let store = try RedisStore(configuration: Self.configuration(port: port))
        defer { store.shutdown() }
        let start = ContinuousClock.now
        let error = await #expect(throws: StoreError.self) { try await store.get("k") }
        #expect(error?.kind == .unavailable)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true)
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func killAndRestartRecovers() async throws {
        var server = try Fixtures.startRedis()
        defer { server.process.stop() }
        let store = try RedisStore(configuration: Self.configuration(port: server.port, commandTimeout: .seconds(1)))
        defer { store.shutdown() }
        try await store.set("before", value: [1], ttl: .seconds(60))

        // Each phase has its own bound in count and time, so a slow machine cannot spend the
        // recovery phase's budget on the earlier ones.
        var successes = 0
        var failures: [StoreError.Kind: Int] = [:]
        func runOperation(_ index: Int) async -> Bool {
            do throws(StoreError) {
                try await store.set("load-\(index % 50)", value: Array("\(index)".utf8), ttl: .seconds(60))
                _ = try await store.get("load-\(index % 50)")
                successes += 1
                return true
            } catch {
                failures[error.kind, default: 0] += 1
                return false
            }
        }

        let loadStart = ContinuousClock.now
        for index in 0..<300 where ContinuousClock.now - loadStart < .seconds(10) {
            _ = await runOperation(index)
        }

        server.process.send(signal: SIGKILL)
        while server.process.isRunning { try await Task.sleep(for: .milliseconds(1)) }
        let downStart = ContinuousClock.now
        for index in 300..<700 where ContinuousClock.now - downStart < .seconds(5) {
            _ = await runOperation(index)
            try await Task.sleep(for: .milliseconds(2))
        }

        server = try Fixtures.startRedis(port: server.port)
        var successAfterRestart = false
        var recoveredKey = ""
        let recoveryStart = ContinuousClock.now
        for index in 700..<2000 where ContinuousClock.now - recoveryStart < .seconds(20) {
            if await runOperation(index) {
                successAfterRestart = true
                recoveredKey = "load-\(index % 50)"
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }

        #expect(successes >= 300)
        #expect((failures[.unavailable] ?? 0) > 0, "errors while Redis was down: \(failures)")
        #expect(successAfterRestart, "the store reconnected after the restart")
        if successAfterRestart {
            #expect(try await store.get(recoveredKey) != nil, "the write after the restart is readable")
        }
    }

    @Test func stalledServerTimesOut() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(
                configuration: Self.configuration(port: server.port, commandTimeout: .milliseconds(500)))
            defer { store.shutdown() }
            try await store.set("k", value: [1], ttl: .seconds(60))
            server.process.send(signal: SIGSTOP)
            let start = ContinuousClock.now
            let error = await #expect(throws: StoreError.self) { try await store.get("k") }
            let elapsed = ContinuousClock.now - start
            server.process.send(signal: SIGCONT)
            #expect(error?.kind == .timeout)
            #expect(elapsed >= .milliseconds(400))
            // Well under the time a hang would take, with slack for a loaded two-core test machine.
            #expect(elapsed < .seconds(4))
            // After SIGCONT the client reconnects by itself.
            var recovered = false
            for _ in 0..<100 where !recovered {
                if (try? await store.get("k")) == [1] {
                    recovered = true
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(recovered)
        }
    }

    /// Redis with `appendfsync always` keeps every write it acknowledged across SIGKILL, so any
    /// acknowledged write missing after the restart was lost or misattributed by the client.
    @Test func killMidPipelineKeepsAcknowledgedWrites() async throws {
        let dataDirectory = try RepositoryPaths.makeTemporaryDirectory(prefix: "redis-aof")
        let durable = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dataDirectory.path]
        var server = try Fixtures.startRedis(extraArguments: durable)
        defer { server.process.stop() }
        let store = try RedisStore(configuration: Self.configuration(port: server.port, commandTimeout: .seconds(1)))
        defer { store.shutdown() }
        try await store.ping()

        let writers = Task {
            await withTaskGroup(of: [(String, [UInt8])].self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        var acknowledged: [(String, [UInt8])] = []
                        let start = ContinuousClock.now
                        for index in 0..<500 where ContinuousClock.now - start < .seconds(5) {
                            let key = "durable-\(writer)-\(index)"
                            let value = Array("\(writer):\(index)".utf8)
                            do throws(StoreError) {
                                try await store.set(key, value: value, ttl: .seconds(600))
                                acknowledged.append((key, value))
                            } catch {
                                // Refused or lost in flight: neither counts as committed.
                            }
                        }
                        return acknowledged
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        server.process.send(signal: SIGKILL)
        let acknowledged = await writers.value
        #expect(!acknowledged.isEmpty, "some writes were acknowledged before the kill")

        server = try Fixtures.startRedis(port: server.port, extraArguments: durable)
        var reconnected = false
        let reconnectStart = ContinuousClock.now
        while !reconnected && ContinuousClock.now - reconnectStart < .seconds(10) {
            if (try? await store.ping()) != nil {
                reconnected = true
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try #require(reconnected, "the store reconnected after the restart")
        var missing: [String] = []
        for (key, value) in acknowledged where try await store.get(key) != value {
            missing.append(key)
        }
        #expect(missing.isEmpty, "acknowledged writes missing after the restart: \(missing.prefix(10))")
    }

    /// A server busy in `DEBUG SLEEP` accepts connections but answers nothing: commands time out
    /// within the command timeout, and the client works again once the server does.
    @Test func busyServerTimesOutThenRecovers() async throws {
        try await Fixtures.withRedis(extraArguments: ["--enable-debug-command", "yes"]) { server in
            let store = try RedisStore(
                configuration: Self.configuration(port: server.port, commandTimeout: .milliseconds(300)))
            defer { store.shutdown() }
            try await store.set("k", value: [1], ttl: .seconds(60))

            let executable = try Fixtures.findExecutable("redis-cli").path
            async let sleeper = CommandRunner.runAsync(
                executable, ["-h", "127.0.0.1", "-p", String(server.port), "DEBUG", "SLEEP", "2"])
            var timeout: StoreError?
            var elapsed = Duration.zero
            let probeStart = ContinuousClock.now
            while timeout == nil && ContinuousClock.now - probeStart < .seconds(2) {
                let start = ContinuousClock.now
                do throws(StoreError) {
                    _ = try await store.get("k")
                    try? await Task.sleep(for: .milliseconds(10))
                } catch {
                    timeout = error
                    elapsed = ContinuousClock.now - start
                }
            }
            _ = try await sleeper
            #expect(timeout?.kind == .timeout, "\(timeout?.message ?? "no error while the server slept")")
            // Bounded by the 300 ms command timeout, with slack for a loaded machine.
            #expect(elapsed < .seconds(1))

            var recovered = false
            for _ in 0..<100 where !recovered {
                if (try? await store.get("k")) == [1] {
                    recovered = true
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(recovered)
        }
    }

    /// Redis's `timeout` setting closes idle clients; the client reconnects at once, so the next
    /// command does not fail.
    @Test func serverIdleTimeoutIsInvisible() async throws {
        try await Fixtures.withRedis(extraArguments: ["--timeout", "1"]) { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            defer { store.shutdown() }
            try await store.set("idle", value: [3], ttl: .seconds(60))
            // Redis checks idle clients about ten times a second, so by 1.5 s it has closed the
            // connection, and the next close is not due before about 2.5 s.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await store.get("idle") == [3])
        }
    }

    /// Every store without an event loop of its own shares one loop thread, so 32 stores add
    /// no thread per connection.
    @Test func storesShareOneLoopThread() async throws {
        try await Fixtures.withRedis { server in
            let warmUp = try RedisStore(configuration: Self.configuration(port: server.port))
            try await warmUp.ping()
            let threadsBefore = Self.threadCount()
            var stores: [RedisStore] = []
            for _ in 0..<32 {
                let store = try RedisStore(configuration: Self.configuration(port: server.port))
                try await store.ping()
                stores.append(store)
            }
            let added = Self.threadCount() - threadsBefore
            #expect(added < 8, "threads added by 32 connected stores: \(added)")
            let clients = try RedisCLI.run(port: server.port, ["CLIENT", "LIST"])
            #expect(clients.split(separator: "\n").count >= 33, "each store has its own connection")
            for store in stores { store.shutdown() }
            warmUp.shutdown()
        }
    }

    @Test func runsOnACallerSuppliedLoop() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        try await Fixtures.withRedis { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port), eventLoop: group.next())
            defer { store.shutdown() }
            try await store.set("on-loop", value: [5], ttl: .seconds(60))
            #expect(try await store.get("on-loop") == [5])
        }
    }

    private static func threadCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    @Test func concurrentCommandsArePipelined() async throws {
        try await Fixtures.withRedis { server in
            let store = try RedisStore(configuration: Self.configuration(port: server.port))
            defer { store.shutdown() }
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<32 {
                    group.addTask {
                        var mismatches = 0
                        for index in 0..<100 {
                            let value = Array("\(task)-\(index)".utf8)
                            try await store.set("p-\(task)-\(index)", value: value, ttl: .seconds(60))
                            if try await store.get("p-\(task)-\(index)") != value { mismatches += 1 }
                        }
                        return mismatches
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
        }
    }
}

extension RedisConfiguration {
    fileprivate func withPassword(_ password: String) -> RedisConfiguration {
        var copy = self
        copy.password = password
        return copy
    }
}

/// Runs `redis-cli` against a test server, to check what the store wrote.
enum RedisCLI {
    static func run(port: Int, _ arguments: [String]) throws -> String {
        let executable = try Fixtures.findExecutable("redis-cli").path
        return try CommandRunner.run(executable, ["-h", "127.0.0.1", "-p", String(port)] + arguments).standardOutput
    }
}
