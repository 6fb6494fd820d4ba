import Foundation
import Glibc
import PomeriumLogging
import PomeriumSessions
import PomeriumSessionsRedis
import PomeriumTestSupport
import Testing

/// The Redis store over TLS (`rediss://`) against a real `redis-server` that serves only TLS on
/// a loopback port, with a throwaway CA. Serialized for the same reason as `RedisStoreTests`:
/// real TTL waits and blocking fixture start-ups.
@Suite(.serialized) struct RedisTLSTests {
    /// One set of certificates for the whole suite; making them costs a few `openssl` runs.
    static let certificates = Result { try TLSTestCertificates.make() }

    private static func makeCertificates() throws -> TLSTestCertificates { try certificates.get() }

    /// Makes a store for `address` with short timeouts, so failure cases finish quickly.
    private static func store(
        _ address: String, password: String? = nil, logger: Logger = Logger(label: "test.redis")
    ) throws -> RedisStore {
        var configuration = try RedisConfiguration(address: address, password: password)
        configuration.commandTimeout = .seconds(2)
        configuration.connectTimeout = .seconds(2)
        configuration.maximumBackoff = .milliseconds(200)
        return try RedisStore(configuration: configuration, logger: logger)
    }

    private static func address(port: Int, _ query: String) -> String {
        "rediss://127.0.0.1:\(port)/0?\(query)"
    }

    @Test(arguments: KeyValueStoreSuite.Case.allCases)
    func sharedSuite(_ testCase: KeyValueStoreSuite.Case) async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let store = try Self.store(Self.address(port: server.port, "tls_ca_file=\(certificates.caFile)"))
            defer { store.shutdown() }
            let suite = KeyValueStoreSuite(
                ttl: .seconds(2),
                advanceTime: { try await Task.sleep(for: $0) },
                makeStore: { store }
            )
            try await suite.run(testCase)
        }
    }

    @Test func passwordAndDatabaseOverTLS() async throws {
        let certificates = try Self.makeCertificates()
        let options = RedisTLSOptions(certificates: certificates)
        try await Fixtures.withRedis(tls: options, extraArguments: ["--requirepass", "tls-pass"]) { server in
            let address = "rediss://:tls-pass@127.0.0.1:\(server.port)/4?tls_ca_file=\(certificates.caFile)"
            let store = try Self.store(address)
            defer { store.shutdown() }
            try await store.set("over-tls", value: [9, 0, 9], ttl: .seconds(60))
            #expect(try await store.get("over-tls") == [9, 0, 9])
            let cli = try RedisTLSCLI.run(
                port: server.port, certificates: certificates, ["-a", "tls-pass", "-n", "4", "EXISTS", "over-tls"])
            #expect(cli.hasPrefix("1"), "redis-cli output: \(cli)")
        }
    }

    @Test func serverNameOverrideIsVerified() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let matching = try Self.store(
                Self.address(
                    port: server.port,
                    "tls_ca_file=\(certificates.caFile)&tls_server_name=\(TLSTestCertificates.serverName)"))
            defer { matching.shutdown() }
            try await matching.ping()

            let mismatched = try Self.store(
                Self.address(
                    port: server.port, "tls_ca_file=\(certificates.caFile)&tls_server_name=other.example.test"))
            defer { mismatched.shutdown() }
            let error = await #expect(throws: StoreError.self) { try await mismatched.ping() }
            #expect(error?.kind == .invalidConfiguration)
            #expect(error?.message.contains("certificate verification failed") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("tls_server_name") == true)
        }
    }

    @Test func wrongCAFailsClearlyAndQuickly() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let store = try Self.store(Self.address(port: server.port, "tls_ca_file=\(certificates.otherCAFile)"))
            defer { store.shutdown() }
            let start = ContinuousClock.now
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.kind == .invalidConfiguration)
            #expect(error?.message.contains("certificate verification failed") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("cache_store_address") == true)
            #expect(error?.message.contains("tls_ca_file") == true)
            // Later commands fail too, each well before the 2 s command timeout: no hang.
            for _ in 0..<3 {
                let again = await #expect(throws: StoreError.self) { _ = try await store.get("k") }
                #expect(again?.kind == .invalidConfiguration)
            }
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test func systemRootsDoNotTrustAPrivateCA() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let store = try Self.store("rediss://127.0.0.1:\(server.port)")
            defer { store.shutdown() }
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.kind == .invalidConfiguration)
            #expect(error?.message.contains("tls_ca_file") == true, "\(error?.message ?? "")")
        }
    }

    @Test func skipVerifyConnectsAndWarns() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let records = InMemoryLogHandler.Store()
            let store = try Self.store(
                Self.address(port: server.port, "tls_skip_verify=true"), logger: Logger.inMemory(store: records))
            defer { store.shutdown() }
            try await store.ping()
            let warnings = records.all.filter { $0.level == .warning }.map(\.message)
            #expect(warnings.contains { $0.contains("does not verify the server's certificate") }, "\(warnings)")
        }
    }

    @Test func clientCertificateWhenRequired() async throws {
        let certificates = try Self.makeCertificates()
        let options = RedisTLSOptions(certificates: certificates, requireClientCertificates: true)
        try await Fixtures.withRedis(tls: options) { server in
            let withCertificate = try Self.store(
                Self.address(
                    port: server.port,
                    "tls_ca_file=\(certificates.caFile)&tls_cert_file=\(certificates.clientCertificate)"
                        + "&tls_key_file=\(certificates.clientKey)"))
            defer { withCertificate.shutdown() }
            try await withCertificate.set("mutual", value: [1], ttl: .seconds(60))
            #expect(try await withCertificate.get("mutual") == [1])

            let without = try Self.store(Self.address(port: server.port, "tls_ca_file=\(certificates.caFile)"))
            defer { without.shutdown() }
            let error = await #expect(throws: StoreError.self) { try await without.ping() }
            #expect(error?.message.contains("tls_cert_file") == true, "\(error?.message ?? "")")
        }
    }

    @Test func missingCAFileIsAConfigurationError() throws {
        let error = #expect(throws: StoreError.self) {
            try RedisStore(address: "rediss://127.0.0.1:6380?tls_ca_file=/nonexistent/redis-ca.pem")
        }
        #expect(error?.kind == .invalidConfiguration)
        #expect(error?.message.contains("/nonexistent/redis-ca.pem") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("tls_ca_file") == true)
    }

    @Test func plainURLAgainstTLSPortSuggestsRediss() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let store = try Self.store("redis://127.0.0.1:\(server.port)")
            defer { store.shutdown() }
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("rediss://") == true, "\(error?.message ?? "")")
        }
    }

    @Test func tlsURLAgainstPlainPortFailsClearly() async throws {
        let certificates = try Self.makeCertificates()
        try await Fixtures.withRedis { server in
            let start = ContinuousClock.now
            let store = try Self.store(Self.address(port: server.port, "tls_ca_file=\(certificates.caFile)"))
            defer { store.shutdown() }
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            // A plain Redis port waits for a line end that a ClientHello need not contain, so the
            // handshake times out instead of failing at once.
            #expect(error?.kind == .timeout)
            #expect(error?.message.contains("TLS handshake") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("redis://") == true)
            #expect(ContinuousClock.now - start < .seconds(4))
        }
    }

    /// A killed TLS server must not take the client's process down: OpenSSL writes with write(2),
    /// whose SIGPIPE would end the process if the client did not ignore it.
    @Test func killMidPipelineThenRestartOverTLS() async throws {
        let certificates = try Self.makeCertificates()
        let options = RedisTLSOptions(certificates: certificates)
        var server = try Fixtures.startRedis(tls: options)
        defer { server.process.stop() }
        let store = try Self.store(Self.address(port: server.port, "tls_ca_file=\(certificates.caFile)"))
        defer { store.shutdown() }
        try await store.ping()

        let value = [UInt8](repeating: 0x5a, count: 32 * 1024)
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        let start = ContinuousClock.now
                        for index in 0..<400 where ContinuousClock.now - start < .seconds(6) {
                            try? await store.set("tls-\(writer)-\(index % 20)", value: value, ttl: .seconds(60))
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        server.process.send(signal: SIGKILL)
        await writers.value

        let down = await #expect(throws: StoreError.self) { try await store.ping() }
        #expect(down?.kind == .unavailable || down?.kind == .timeout)

        server = try Fixtures.startRedis(tls: options, port: server.port)
        var recovered = false
        let recoveryStart = ContinuousClock.now
        while !recovered && ContinuousClock.now - recoveryStart < .seconds(10) {
            if (try? await store.set("after-restart", value: [1], ttl: .seconds(60))) != nil {
                recovered = true
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(recovered, "the client reconnected over TLS after the restart")
    }
}

/// Runs `redis-cli` over TLS against a test server, to check what the store wrote.
enum RedisTLSCLI {
    static func run(port: Int, certificates: TLSTestCertificates, _ arguments: [String]) throws -> String {
        let executable = try Fixtures.findExecutable("redis-cli").path
        let connection = ["-h", "127.0.0.1", "-p", String(port), "--tls", "--cacert", certificates.caFile]
        return try CommandRunner.run(executable, connection + ["--no-auth-warning"] + arguments).standardOutput
    }
}
