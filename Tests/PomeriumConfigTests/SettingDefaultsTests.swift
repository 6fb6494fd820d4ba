import Foundation
import Testing

@testable import PomeriumConfig

/// One setting: the YAML that sets it, and checks of its default and of the set value.
struct SettingCase: Sendable, CustomTestStringConvertible {
    let key: String
    let yaml: String
    let isDefault: @Sendable (Options) -> Bool
    let isSet: @Sendable (Options) -> Bool

    var testDescription: String { key }
}

/// Every key of the catalog has its default checked and a set value checked.
@Suite struct SettingDefaultsTests {
    static let certificate = TestConfig.base64(TestMaterial.serverCertificate)
    static let key = TestConfig.base64(TestMaterial.serverKey)
    static let otherCertificate = TestConfig.base64(TestMaterial.otherCertificate)
    static let otherKey = TestConfig.base64(TestMaterial.otherKey)
    static let caBase64 = TestConfig.base64(TestMaterial.otherCertificate)

    /// A file that contains `text`, created once for the `_file` cases.
    static func file(_ name: String, _ text: String) -> String {
        (try? TestConfig.write(text, name: name)) ?? "/nonexistent/\(name)"
    }

    static let cases: [SettingCase] = [
        SettingCase(
            key: "services", yaml: "services: proxy", isDefault: { $0.services == .all },
            isSet: { $0.services == .proxy }),
        SettingCase(
            key: "address", yaml: "address: \":8443\"", isDefault: { $0.address == ":443" },
            isSet: { $0.address == ":8443" }),
        SettingCase(
            key: "insecure_server",
            yaml: "insecure_server: false\ncertificate: \(certificate)\ncertificate_key: \(key)",
            isDefault: { $0.insecureServer == false }, isSet: { !$0.insecureServer }),
        SettingCase(
            key: "http_redirect_addr", yaml: "http_redirect_addr: \":80\"",
            isDefault: { $0.httpRedirectAddress == nil },
            isSet: { $0.httpRedirectAddress == ":80" }),
        SettingCase(
            key: "metrics_address", yaml: "metrics_address: 127.0.0.1:9090", isDefault: { $0.metricsAddress == nil },
            isSet: { $0.metricsAddress == "127.0.0.1:9090" }),
        SettingCase(
            key: "certificate", yaml: "certificate: \(certificate)\ncertificate_key: \(key)",
            isDefault: { $0.tlsCertificates.isEmpty },
            isSet: { $0.tlsCertificates.first?.certificatePEM.contains("BEGIN CERTIFICATE") == true }),
        SettingCase(
            key: "certificate_key", yaml: "certificate: \(certificate)\ncertificate_key: \(key)",
            isDefault: { $0.tlsCertificates.isEmpty },
            isSet: { $0.tlsCertificates.first?.keyPEM.contains("PRIVATE KEY") == true }),
        SettingCase(
            key: "certificate_file",
            yaml: "certificate_file: \(file("cert.pem", TestMaterial.serverCertificate))\n"
                + "certificate_key_file: \(file("key.pem", TestMaterial.serverKey))",
            isDefault: { $0.certificateFile == nil },
            isSet: { $0.certificateFile?.hasSuffix("cert.pem") == true && $0.tlsCertificates.count == 1 }),
        SettingCase(
            key: "certificate_key_file",
            yaml: "certificate_file: \(file("cert.pem", TestMaterial.serverCertificate))\n"
                + "certificate_key_file: \(file("key.pem", TestMaterial.serverKey))",
            isDefault: { $0.certificateKeyFile == nil },
            isSet: { $0.certificateKeyFile?.hasSuffix("key.pem") == true && $0.tlsCertificates.count == 1 }),
        SettingCase(
            key: "certificates",
            yaml: """
                certificates:
                  - cert: \(certificate)
                    key: \(key)
                  - cert_file: \(file("other.crt", TestMaterial.otherCertificate))
                    key_file: \(file("other.key", TestMaterial.otherKey))
                  - cert: \(file("third.crt", TestMaterial.otherCertificate))
                    key: \(file("third.key", TestMaterial.otherKey))
                """,
            isDefault: { $0.tlsCertificates.isEmpty }, isSet: { $0.tlsCertificates.count == 3 }),
        SettingCase(
            key: "shared_secret", yaml: "shared_secret: \(TestConfig.sharedSecret)",
            isDefault: { $0.sharedSecret.count == 32 && $0.sharedSecretIsGenerated },
            isSet: {
                Data($0.sharedSecret).base64EncodedString() == TestConfig.sharedSecret && !$0.sharedSecretIsGenerated
            }),
        SettingCase(
            key: "cookie_secret", yaml: "cookie_secret: \(TestConfig.cookieSecret)",
            isDefault: { $0.cookieSecret.isEmpty },
            isSet: { Data($0.cookieSecret).base64EncodedString() == TestConfig.cookieSecret }),
        SettingCase(
            key: "cookie_name", yaml: "cookie_name: _session", isDefault: { $0.cookieName == "_pomerium" },
            isSet: { $0.cookieName == "_session" }),
        SettingCase(
            key: "cookie_domain", yaml: "cookie_domain: example.test", isDefault: { $0.cookieDomain == "" },
            isSet: { $0.cookieDomain == "example.test" }),
        SettingCase(
            key: "cookie_secure", yaml: "cookie_secure: false", isDefault: { $0.cookieSecure },
            isSet: { !$0.cookieSecure }),
        SettingCase(
            key: "cookie_http_only", yaml: "cookie_http_only: false", isDefault: { $0.cookieHTTPOnly },
            isSet: { !$0.cookieHTTPOnly }),
        SettingCase(
            key: "cookie_expire", yaml: "cookie_expire: 1h", isDefault: { $0.cookieExpire == .seconds(14 * 3600) },
            isSet: { $0.cookieExpire == .seconds(3600) }),
        SettingCase(
            key: "cookie_samesite", yaml: "cookie_samesite: strict", isDefault: { $0.cookieSameSite == .lax },
            isSet: { $0.cookieSameSite == .strict }),
        SettingCase(
            key: "refresh_cooldown", yaml: "refresh_cooldown: 1m", isDefault: { $0.refreshCooldown == .seconds(300) },
            isSet: { $0.refreshCooldown == .seconds(60) }),
        SettingCase(
            key: "authenticate_service_url", yaml: "authenticate_service_url: https://auth.example.test:8443",
            isDefault: { $0.authenticateServiceURL == nil },
            isSet: { $0.authenticateServiceURL?.authority == "auth.example.test:8443" }),
        SettingCase(
            key: "authenticate_callback_path", yaml: "authenticate_callback_path: /callback",
            isDefault: { $0.authenticateCallbackPath == "/oauth2/callback" },
            isSet: { $0.authenticateCallbackPath == "/callback" }),
        SettingCase(
            key: "authorize_service_url", yaml: "authorize_service_url: https://authorize.example.test",
            isDefault: { $0.authorizeServiceURL?.text == "http://127.0.0.1:5443" },
            isSet: { $0.authorizeServiceURL?.host == "authorize.example.test" }),
        SettingCase(
            key: "cache_service_url", yaml: "cache_service_url: https://cache.example.test",
            isDefault: { $0.cacheServiceURL?.text == "http://127.0.0.1:5443" },
            isSet: { $0.cacheServiceURL?.host == "cache.example.test" }),
        SettingCase(
            key: "forward_auth_url", yaml: "forward_auth_url: https://fwd.example.test",
            isDefault: { $0.forwardAuthURL == nil },
            isSet: { $0.forwardAuthURL?.host == "fwd.example.test" }),
        SettingCase(
            key: "idp_provider", yaml: "idp_provider: azure",
            isDefault: { $0.idpProvider == nil && $0.idpScopes.isEmpty },
            isSet: { $0.idpProvider == .azure && $0.idpScopes.contains("Group.Read.All") }),
        SettingCase(
            key: "idp_provider_url", yaml: "idp_provider_url: https://idp.example.test/v2.0",
            isDefault: { $0.idpProviderURL?.text == "https://accounts.google.com" },
            isSet: { $0.idpProviderURL?.text == "https://idp.example.test/v2.0" }),
        SettingCase(
            key: "idp_client_id", yaml: "idp_client_id: other-client", isDefault: { $0.idpClientID == "" },
            isSet: { $0.idpClientID == "other-client" }),
        SettingCase(
            key: "idp_client_secret", yaml: "idp_client_secret: other-secret",
            isDefault: { $0.idpClientSecret == "" }, isSet: { $0.idpClientSecret == "other-secret" }),
        SettingCase(
            key: "idp_scopes", yaml: "idp_scopes: openid,email",
            isDefault: { $0.idpScopes == ["openid", "profile", "email"] },
            isSet: { $0.idpScopes == ["openid", "email"] }),
        SettingCase(
            key: "idp_service_account",
            yaml: "idp_service_account: \(TestConfig.base64("{\"type\":\"service_account\"}"))",
            isDefault: { $0.idpServiceAccount == nil }, isSet: { $0.idpServiceAccount?.isEmpty == false }),
        SettingCase(
            key: "idp_ca", yaml: "idp_ca: \(caBase64)", isDefault: { $0.idpCertificateAuthorityPEM == nil },
            isSet: { $0.idpCertificateAuthorityPEM?.contains("BEGIN CERTIFICATE") == true }),
        SettingCase(
            key: "idp_ca_file", yaml: "idp_ca_file: \(file("idp-ca.pem", TestMaterial.otherCertificate))",
            isDefault: { $0.idpCertificateAuthorityPEM == nil },
            isSet: { $0.idpCertificateAuthorityPEM == TestMaterial.otherCertificate }),
        SettingCase(
            key: "programmatic_redirect_domains", yaml: "programmatic_redirect_domains: [cli.example.test]",
            isDefault: { $0.programmaticRedirectDomains == ["localhost", "127.0.0.1", "::1"] },
            isSet: { $0.programmaticRedirectDomains == ["cli.example.test"] }),
        SettingCase(
            key: "administrators", yaml: "administrators: a@example.test, b@example.test",
            isDefault: { $0.administrators.isEmpty },
            isSet: { $0.administrators == ["a@example.test", "b@example.test"] }),
        SettingCase(
            key: "signing_key", yaml: "signing_key: \(TestConfig.base64(TestMaterial.p256SEC1))",
            isDefault: { $0.signingKeyIsGenerated && $0.signingKeyPEM != nil },
            isSet: { $0.signingKeyPEM == TestMaterial.p256SEC1 && !$0.signingKeyIsGenerated }),
        SettingCase(
            key: "signing_key_file", yaml: "signing_key_file: \(file("signing.pem", TestMaterial.p256PKCS8))",
            isDefault: { $0.signingKeyFile == nil },
            isSet: { $0.signingKeyPEM == TestMaterial.p256PKCS8 && !$0.signingKeyIsGenerated }),
        SettingCase(
            key: "headers", yaml: "headers:\n  X-Test: yes-really", isDefault: { $0.headers == Options.defaultHeaders },
            isSet: { $0.headers == ["X-Test": "yes-really"] }),
        SettingCase(
            key: "jwt_claims_headers", yaml: "jwt_claims_headers: [email]", isDefault: { $0.jwtClaimsHeaders.isEmpty },
            isSet: { $0.jwtClaimsHeaders == ["email"] }),
        SettingCase(
            key: "trusted_proxies", yaml: "trusted_proxies: [10.0.0.0/8, \"::1\"]",
            isDefault: { $0.trustedProxies.isEmpty },
            isSet: { $0.trustedProxies == ["10.0.0.0/8", "::1"] }),
        SettingCase(
            key: "default_upstream_timeout", yaml: "default_upstream_timeout: 1m",
            isDefault: { $0.defaultUpstreamTimeout == .seconds(30) },
            isSet: { $0.defaultUpstreamTimeout == .seconds(60) }),
        SettingCase(
            key: "timeout_read", yaml: "timeout_read: 1.5h", isDefault: { $0.timeoutRead == .seconds(30) },
            isSet: { $0.timeoutRead == .seconds(5400) }),
        SettingCase(
            key: "timeout_write", yaml: "timeout_write: 300ms", isDefault: { $0.timeoutWrite == .zero },
            isSet: { $0.timeoutWrite == .milliseconds(300) }),
        SettingCase(
            key: "timeout_read_header", yaml: "timeout_read_header: 5s",
            isDefault: { $0.timeoutReadHeader == .seconds(10) },
            isSet: { $0.timeoutReadHeader == .seconds(5) }),
        SettingCase(
            key: "timeout_idle", yaml: "timeout_idle: 1h30m", isDefault: { $0.timeoutIdle == .seconds(300) },
            isSet: { $0.timeoutIdle == .seconds(5400) }),
        SettingCase(
            key: "grpc_address", yaml: "grpc_address: 127.0.0.1:6000",
            isDefault: { $0.grpcAddress == "127.0.0.1:5443" },
            isSet: { $0.grpcAddress == "127.0.0.1:6000" && $0.authorizeServiceURL?.text == "http://127.0.0.1:6000" }),
        SettingCase(
            key: "grpc_insecure", yaml: "services: authorize\ngrpc_insecure: true",
            isDefault: { $0.grpcInsecure }, isSet: { $0.grpcInsecure && $0.services == .authorize }),
        SettingCase(
            key: "grpc_client_timeout", yaml: "grpc_client_timeout: 2s",
            isDefault: { $0.grpcClientTimeout == .seconds(10) },
            isSet: { $0.grpcClientTimeout == .seconds(2) }),
        SettingCase(
            key: "grpc_client_dns_roundrobin", yaml: "grpc_client_dns_roundrobin: off",
            isDefault: { $0.grpcClientDNSRoundRobin }, isSet: { !$0.grpcClientDNSRoundRobin }),
        SettingCase(
            key: "grpc_server_max_connection_age", yaml: "grpc_server_max_connection_age: 10m",
            isDefault: { $0.grpcServerMaxConnectionAge == .seconds(300) },
            isSet: { $0.grpcServerMaxConnectionAge == .seconds(600) }),
        SettingCase(
            key: "grpc_server_max_connection_age_grace", yaml: "grpc_server_max_connection_age_grace: 10m",
            isDefault: { $0.grpcServerMaxConnectionAgeGrace == .seconds(300) },
            isSet: { $0.grpcServerMaxConnectionAgeGrace == .seconds(600) }),
        SettingCase(
            key: "override_certificate_name", yaml: "override_certificate_name: authorize.internal",
            isDefault: { $0.overrideCertificateName == nil },
            isSet: { $0.overrideCertificateName == "authorize.internal" }),
        SettingCase(
            key: "certificate_authority", yaml: "certificate_authority: \(caBase64)",
            isDefault: { $0.certificateAuthorityPEM == nil },
            isSet: { $0.certificateAuthorityPEM == TestMaterial.otherCertificate }),
        SettingCase(
            key: "certificate_authority_file",
            yaml: "certificate_authority_file: \(file("ca.pem", TestMaterial.otherCertificate))",
            isDefault: { $0.certificateAuthorityPEM == nil },
            isSet: { $0.certificateAuthorityPEM == TestMaterial.otherCertificate }),
        SettingCase(
            key: "cache_store", yaml: "cache_store: bolt", isDefault: { $0.cacheStore == .autocache },
            isSet: { $0.cacheStore == .bolt }),
        SettingCase(
            key: "cache_store_address",
            yaml: "cache_store: redis\ncache_store_address: rediss://:pw@redis.example.test:6380/3",
            isDefault: { $0.cacheStoreAddress == nil && $0.redis == nil },
            isSet: {
                $0.redis
                    == RedisAddress(
                        host: "redis.example.test", port: 6380, useTLS: true, database: 3, username: nil, password: "pw"
                    )
            }),
        SettingCase(
            key: "cache_store_password",
            yaml: "cache_store: redis\ncache_store_address: 127.0.0.1:6379\ncache_store_password: pw2",
            isDefault: { $0.cacheStorePassword == nil },
            isSet: { $0.redis?.password == "pw2" && $0.redis?.port == 6379 && $0.redis?.database == 0 }),
        SettingCase(
            key: "cache_store_path", yaml: "cache_store_path: /var/lib/pomerium/bolt.db",
            isDefault: { $0.cacheStorePath == "bolt.db" }, isSet: { $0.cacheStorePath == "/var/lib/pomerium/bolt.db" }),
        SettingCase(
            key: "tracing_provider", yaml: "tracing_provider: jaeger\ntracing_jaeger_agent_endpoint: 127.0.0.1:6831",
            isDefault: { $0.tracingProvider == nil }, isSet: { $0.tracingProvider == .jaeger }),
        SettingCase(
            key: "tracing_debug", yaml: "tracing_debug: true", isDefault: { !$0.tracingDebug },
            isSet: { $0.tracingDebug }),
        SettingCase(
            key: "tracing_jaeger_collector_endpoint",
            yaml: "tracing_jaeger_collector_endpoint: http://127.0.0.1:14268/api/traces",
            isDefault: { $0.tracingJaegerCollectorEndpoint == nil },
            isSet: { $0.tracingJaegerCollectorEndpoint == "http://127.0.0.1:14268/api/traces" }),
        SettingCase(
            key: "tracing_jaeger_agent_endpoint", yaml: "tracing_jaeger_agent_endpoint: 127.0.0.1:6831",
            isDefault: { $0.tracingJaegerAgentEndpoint == nil },
            isSet: { $0.tracingJaegerAgentEndpoint == "127.0.0.1:6831" }),
        SettingCase(
            key: "log_level", yaml: "log_level: WARN", isDefault: { $0.logLevel == .debug },
            isSet: { $0.logLevel == .warn }),
        SettingCase(
            key: "pomerium_debug", yaml: "pomerium_debug: TRUE", isDefault: { !$0.pomeriumDebug },
            isSet: { $0.pomeriumDebug }),
        SettingCase(
            key: "policy",
            yaml:
                "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    allowed_users: [a@example.test]",
            isDefault: { $0.policy.isEmpty },
            isSet: { $0.policy.count == 1 && $0.policy[0].allowedUsers == ["a@example.test"] }),
    ]

    @Test func tableCoversEveryKey() {
        let covered = Set(Self.cases.map(\.key))
        let known = Set(SettingsCatalog.settings.map(\.key))
        #expect(known.subtracting(covered).sorted() == [])
        #expect(covered.subtracting(known).sorted() == [])
    }

    /// The base configuration without the lines of `keys`, so a case can set or omit them.
    static func base(without keys: Set<String>) -> String {
        TestConfig.baseYAML.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { line in !keys.contains { line.hasPrefix("\($0):") } }
            .joined(separator: "\n")
    }

    /// The top-level keys that a case's YAML sets.
    static func topLevelKeys(_ yaml: String) -> Set<String> {
        Set(
            yaml.split(separator: "\n").compactMap { line in
                guard !line.hasPrefix(" "), let colon = line.firstIndex(of: ":") else { return nil }
                return String(line[..<colon])
            })
    }

    @Test(arguments: cases)
    func defaultValue(_ setting: SettingCase) throws {
        let result = try TestConfig.load(Self.base(without: [setting.key]))
        #expect(setting.isDefault(result.options))
    }

    @Test(arguments: cases)
    func setValue(_ setting: SettingCase) throws {
        let result = try TestConfig.load(Self.base(without: Self.topLevelKeys(setting.yaml)) + setting.yaml + "\n")
        #expect(result.problems(for: setting.key).filter { $0.severity == .error } == [], "\(result.summary)")
        #expect(setting.isSet(result.options), "\(result.summary)")
    }
}
