import Foundation
import PomeriumConfig
import PomeriumLogging
import PomeriumServer
import PomeriumSessions
import PomeriumTestSupport
import Testing

/// Opening the Redis store from a configuration file's settings, against a real `redis-server`.
@Suite(.serialized) struct SessionStoreFactoryTests {
    static func options(cacheStoreAddress: String) throws -> Options {
        try options(storeLines: "cache_store: redis\ncache_store_address: \"\(cacheStoreAddress)\"")
    }

    /// Loads a valid all-in-one configuration whose store settings are `storeLines`.
    static func options(storeLines: String) throws -> Options {
        let text = """
            insecure_server: true
            address: 127.0.0.1:0
            authenticate_service_url: https://authenticate.example.test
            idp_provider: oidc
            idp_provider_url: http://127.0.0.1:5556
            idp_client_id: client
            idp_client_secret: secret
            cookie_secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
            shared_secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
            \(storeLines)
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:8000
                allow_public_unauthenticated_access: true
            """
        let result = ConfigLoader.load(text: text, format: .yaml)
        try #require(result.isValid, "configuration errors: \(result.errors)")
        return result.options
    }

    @Test func rediss() async throws {
        let certificates = try TLSTestCertificates.make()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let address = "rediss://127.0.0.1:\(server.port)/2?tls_ca_file=\(certificates.caFile)"
            let store = try await SessionStoreFactory.open(
                options: try Self.options(cacheStoreAddress: address), logger: Logger(label: "test"))
            try await store.set("factory", value: [4], ttl: .seconds(60))
            #expect(try await store.get("factory") == [4])
        }
    }

    @Test func redissWithWrongCAStopsTheStart() async throws {
        let certificates = try TLSTestCertificates.make()
        try await Fixtures.withRedis(tls: RedisTLSOptions(certificates: certificates)) { server in
            let address = "rediss://127.0.0.1:\(server.port)?tls_ca_file=\(certificates.otherCAFile)"
            let options = try Self.options(cacheStoreAddress: address)
            let problem = await #expect(throws: SessionStoreFactory.Problem.self) {
                _ = try await SessionStoreFactory.open(options: options, logger: Logger(label: "test"))
            }
            let description = problem?.description ?? ""
            #expect(description.contains("cache_store_address 127.0.0.1:\(server.port)"), "\(description)")
            #expect(description.contains("certificate verification failed"))
            #expect(description.contains("tls_ca_file"))
        }
    }

    @Test func unknownParameterStopsTheStart() async throws {
        // Validation catches the misspelt parameter before any store opens, naming the key.
        let text = """
            cache_store: redis
            cache_store_address: "rediss://127.0.0.1:6390?tls_ca=/ca.pem"
            """
        let result = ConfigLoader.load(text: text, format: .yaml)
        let messages = result.errors.map { "\($0)" }
        #expect(
            messages.contains { $0.contains("cache_store_address") && $0.contains("unknown parameter \"tls_ca\"") },
            "\(messages)")
    }
}

/// Tests which `cache_store` settings lock completed logins in the store.
@Suite struct LoginFlowStoreChoiceTests {
    @Test("autocache takes no login locks")
    func autocacheTakesNoLocks() throws {
        #expect(
            !SessionStoreFactory.locksLogins(
                options: try SessionStoreFactoryTests.options(storeLines: "cache_store: autocache")))
    }

    @Test("shared stores lock logins")
    func sharedStoresLockLogins() throws {
        let bolt = try SessionStoreFactoryTests.options(
            storeLines: "cache_store: bolt\ncache_store_path: /tmp/unused-sessions.db")
        #expect(SessionStoreFactory.locksLogins(options: bolt))
        let redis = try SessionStoreFactoryTests.options(
            storeLines: "cache_store: redis\ncache_store_address: 127.0.0.1:6379")
        #expect(SessionStoreFactory.locksLogins(options: redis))
    }
}
