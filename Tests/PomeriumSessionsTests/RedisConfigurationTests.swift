import PomeriumSessions
import PomeriumSessionsRedis
import Testing

@Suite struct RedisConfigurationTests {
    @Test func plainHostAndPortAsInV07() throws {
        let configuration = try RedisConfiguration(address: "cache.internal:6380", password: "pw")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 0)
        #expect(configuration.password == "pw")
        #expect(configuration.username == nil)
        #expect(configuration.useTLS == false)
    }

    @Test func fullURL() throws {
        let configuration = try RedisConfiguration(address: "redis://app:p%40ss@127.0.0.1:7000/5")
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 7000)
        #expect(configuration.database == 5)
        #expect(configuration.username == "app")
        #expect(configuration.password == "p@ss")
        #expect(configuration.endpointDescription == "127.0.0.1:7000")
    }

    @Test func passwordOnlyURLAndDefaults() throws {
        let configuration = try RedisConfiguration(address: "REDIS://:secret@localhost")
        #expect(configuration.username == nil)
        #expect(configuration.password == "secret")
        #expect(configuration.port == 6379)
    }

    @Test func ipv6AndTLS() throws {
        let configuration = try RedisConfiguration(address: "rediss://[::1]:6390/2")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 6390)
        #expect(configuration.useTLS)
        #expect(configuration.endpointDescription == "[::1]:6390")
    }

    @Test(arguments: [
        ("", "cache_store_address is empty"),
        ("http://host:1", "scheme \"http\" is not supported"),
        ("redis://host:0", "port \"0\" is not a number from 1 to 65535"),
        ("redis://host:abc", "port \"abc\""),
        ("redis://host/x", "database \"x\""),
        ("redis://host?db=1", "query strings"),
        ("redis://:6379", "the host is missing"),
        ("redis://[::1:6379", "without closing ]"),
        ("redis://user@host", "names a Redis user but no password"),
        ("redis://:pa%zzss@host", "not followed by two hex digits"),
    ])
    func invalidAddresses(_ address: String, _ expected: String) {
        let error = #expect(throws: StoreError.self) { try RedisConfiguration(address: address) }
        #expect(error?.kind == .invalidConfiguration)
        #expect(error?.message.contains(expected) == true, "message: \(error?.message ?? "")")
    }

    @Test func passwordInBothPlacesIsRejectedWithoutEchoingIt() {
        let error = #expect(throws: StoreError.self) {
            try RedisConfiguration(address: "redis://:url-secret@host", password: "setting-secret")
        }
        #expect(error?.message.contains("url-secret") == false)
        #expect(error?.message.contains("setting-secret") == false)
        #expect(error?.message.contains("cache_store_password") == true)
    }

    @Test func userFromURLWithPasswordSetting() throws {
        let configuration = try RedisConfiguration(address: "redis://app@host", password: "pw")
        #expect(configuration.username == "app")
        #expect(configuration.password == "pw")
    }
}
