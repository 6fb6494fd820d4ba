import PomeriumCrypto
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
        ("redis://host?db=x", "database \"x\""),
        ("redis://host#part", "fragments"),
        ("host:6379?db=1", "parameters need a URL"),
        ("redis://host?timeout=5", "unknown parameter \"timeout\""),
        ("redis://host?db", "has no value"),
        ("redis://host?db=1&db=2", "given twice"),
        ("rediss://host?tls_ca_file=", "is empty"),
        ("redis://host?tls_ca_file=/ca.pem", "tls_ca_file applies only to TLS"),
        ("rediss://host?tls_skip_verify=maybe", "is not true or false"),
        ("rediss://host?tls_cert_file=/c.pem", "set both or neither"),
        ("rediss://host?tls_ca_file=%zz", "a % in parameter tls_ca_file"),
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

    @Test func passwordSettingWinsOverURL() throws {
        let configuration = try RedisConfiguration(address: "redis://:url-secret@host", password: "setting-secret")
        #expect(configuration.password == "setting-secret")
    }

    @Test func databaseFromQueryWinsOverPath() throws {
        let configuration = try RedisConfiguration(address: "redis://host:6379/2?db=7")
        #expect(configuration.database == 7)
    }

    @Test func tlsParametersBuildTheClientConfiguration() throws {
        let configuration = try RedisConfiguration(
            address: "rediss://cache.internal:6380/1?tls_ca_file=/etc/redis/ca%20bundle.pem"
                + "&tls_cert_file=/c.pem&tls_key_file=/k.pem&tls_server_name=redis.example.test")
        let tls = try #require(configuration.tls)
        #expect(tls.trustRoots == .file("/etc/redis/ca bundle.pem"))
        #expect(tls.clientCertificate == .files(certificateChain: "/c.pem", privateKey: "/k.pem"))
        #expect(tls.serverNameOverride == "redis.example.test")
        #expect(tls.skipVerification == false)
        #expect(tls.applicationProtocols.isEmpty)
        #expect(configuration.database == 1)
    }

    @Test func tlsDefaultsToSystemRoots() throws {
        let tls = try #require(try RedisConfiguration(address: "rediss://host").tls)
        #expect(tls.trustRoots == .system)
        #expect(tls.clientCertificate == nil)
        #expect(tls.serverNameOverride == nil)
    }

    @Test(arguments: [("true", true), ("TRUE", true), ("1", true), ("false", false), ("0", false)])
    func tlsSkipVerifyValues(_ text: String, _ expected: Bool) throws {
        let tls = try #require(try RedisConfiguration(address: "rediss://host?tls_skip_verify=\(text)").tls)
        #expect(tls.skipVerification == expected)
    }

    @Test func plainURLHasNoTLS() throws {
        #expect(try RedisConfiguration(address: "redis://host/0?db=3").tls == nil)
    }

    @Test func userFromURLWithPasswordSetting() throws {
        let configuration = try RedisConfiguration(address: "redis://app@host", password: "pw")
        #expect(configuration.username == "app")
        #expect(configuration.password == "pw")
    }
}
