import Foundation
import Testing

@testable import PomeriumConfig

/// A configuration change and the problem it must produce.
struct MessageCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// Lines appended to the base configuration; base lines with the same top-level keys are dropped.
    var yaml: String = ""
    var environment: [String: String] = [:]
    /// Keys to drop from the base configuration without replacing them.
    var removing: Set<String> = []
    let key: String
    var severity: ConfigProblem.Severity = .error
    /// Text the message must contain.
    let fragment: String
    /// Text on the line the problem must point at, for file problems.
    var lineMarker: String?

    var testDescription: String { name }
}

@Suite struct ValidationMessageTests {
    static let rsaOrP384 = TestConfig.base64(TestMaterial.p384Key)

    static let cases: [MessageCase] = [
        MessageCase(
            name: "policy_file key", yaml: "policy_file: policy.yaml", key: "policy_file",
            fragment: "removed in v0.0.5",
            lineMarker: "policy_file:"),
        MessageCase(
            name: "POLICY_FILE variable", environment: ["POLICY_FILE": "/etc/policy.yaml"], key: "POLICY_FILE",
            fragment: "POLICY_FILE was removed in v0.0.5"),
        MessageCase(
            name: "authenticate_internal_url key", yaml: "authenticate_internal_url: https://internal.example.test",
            key: "authenticate_internal_url", severity: .warning, fragment: "removed in v0.4.0",
            lineMarker: "authenticate_internal_url:"),
        MessageCase(
            name: "AUTHENTICATE_INTERNAL_URL variable",
            environment: ["AUTHENTICATE_INTERNAL_URL": "https://i.example.test"],
            key: "AUTHENTICATE_INTERNAL_URL", severity: .warning, fragment: "AUTHENTICATE_INTERNAL_URL was removed"),
        MessageCase(
            name: "cookie_refresh key", yaml: "cookie_refresh: 30m", key: "cookie_refresh", severity: .warning,
            fragment: "removed in v0.6.0", lineMarker: "cookie_refresh:"),
        MessageCase(
            name: "route from without scheme",
            yaml:
                "policy:\n  - from: httpbin.example.test\n    to: http://127.0.0.1:1\n    allowed_users: [a@example.test]",
            key: "policy[0].from", fragment: "write a full URL such as https://httpbin.example.test",
            lineMarker: "from: httpbin"),
        MessageCase(
            name: "route to without scheme",
            yaml: "policy:\n  - from: https://a.example.test\n    to: httpbin\n    allowed_users: [a@example.test]",
            key: "policy[0].to", fragment: "has no scheme", lineMarker: "to: httpbin"),
        MessageCase(
            name: "route without to",
            yaml: "policy:\n  - from: https://a.example.test\n    allowed_users: [a@example.test]",
            key: "policy[0].to", fragment: "is missing", lineMarker: "- from:"),
        MessageCase(
            name: "neither certificate nor insecure_server", removing: ["insecure_server"], key: "certificate",
            fragment: "insecure_server: true"),
        MessageCase(
            name: "public route with users",
            yaml: """
                policy:
                  - from: https://a.example.test
                    to: http://127.0.0.1:1
                    allow_public_unauthenticated_access: true
                    allowed_users: [a@example.test]
                """,
            key: "policy[0].allowed_users", fragment: "a public route admits everyone", lineMarker: "allowed_users"),
        MessageCase(
            name: "public route with groups",
            yaml: """
                policy:
                  - from: https://a.example.test
                    to: http://127.0.0.1:1
                    allow_public_unauthenticated_access: true
                    allowed_groups: [admins]
                """,
            key: "policy[0].allowed_groups", fragment: "remove allowed_groups or the public flag",
            lineMarker: "allowed_groups"),
        MessageCase(
            name: "public route with domains",
            yaml: """
                policy:
                  - from: https://a.example.test
                    to: http://127.0.0.1:1
                    allow_public_unauthenticated_access: true
                    allowed_domains: [example.test]
                """,
            key: "policy[0].allowed_domains", fragment: "public", lineMarker: "allowed_domains"),
        MessageCase(
            name: "short shared secret", yaml: "shared_secret: \(TestConfig.base64("0123456789abcdef"))",
            key: "shared_secret",
            fragment: "decodes to 16 bytes but must decode to exactly 32", lineMarker: "shared_secret:"),
        MessageCase(
            name: "shared secret with whitespace", yaml: "shared_secret: |\n  \(TestConfig.sharedSecret)\n",
            key: "shared_secret", fragment: "contains whitespace", lineMarker: "shared_secret:"),
        MessageCase(
            name: "cookie secret not base64", yaml: "cookie_secret: not*base64", key: "cookie_secret",
            fragment: "head -c32 /dev/urandom | base64", lineMarker: "cookie_secret:"),
        MessageCase(
            name: "signing key on P-384", yaml: "signing_key: \(rsaOrP384)", key: "signing_key", fragment: "not P-256",
            lineMarker: "signing_key:"),
        MessageCase(
            name: "signing key Ed25519", yaml: "signing_key: \(TestConfig.base64(TestMaterial.ed25519Key))",
            key: "signing_key",
            fragment: "not an EC key", lineMarker: "signing_key:"),
        MessageCase(
            name: "signing key not PEM", yaml: "signing_key: \(TestConfig.base64("just text"))", key: "signing_key",
            fragment: "holds no PEM block", lineMarker: "signing_key:"),
        MessageCase(
            name: "SameSite None without Secure", yaml: "cookie_samesite: None\ncookie_secure: false",
            key: "cookie_samesite",
            fragment: "without Secure", lineMarker: "cookie_samesite:"),
        MessageCase(
            name: "invalid services", yaml: "services: authenticate,proxy", key: "services",
            fragment: "is an invalid service type", lineMarker: "services:"),
        MessageCase(
            name: "invalid cache_store", yaml: "cache_store: memcached", key: "cache_store",
            fragment: "use autocache, bolt or redis", lineMarker: "cache_store:"),
        MessageCase(
            name: "redis without address", yaml: "cache_store: redis", key: "cache_store_address",
            fragment: "cache_store is redis", lineMarker: "cache_store:"),
        MessageCase(
            name: "redis address with bad scheme", yaml: "cache_store: redis\ncache_store_address: http://redis:6379",
            key: "cache_store_address", fragment: "redis://", lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis address with a parameter twice",
            yaml: "cache_store: redis\ncache_store_address: 'redis://redis:6379?db=1&db=2'", key: "cache_store_address",
            fragment: "db is given twice", lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis client certificate without key",
            yaml: "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_cert_file=/etc/hostname'",
            key: "cache_store_address", fragment: "tls_key_file go together", lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis CA file missing",
            yaml: "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_ca_file=/nonexistent/ca.pem'",
            key: "cache_store_address", fragment: "tls_ca_file \"/nonexistent/ca.pem\" does not exist",
            lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis CA file not a certificate",
            yaml: "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_ca_file=/etc/hostname'",
            key: "cache_store_address", fragment: "tls_ca_file \"/etc/hostname\" is not a valid CA certificate list",
            lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis client certificate that does not load",
            yaml:
                "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_cert_file=/etc/hostname&tls_key_file=/etc/hostname'",
            key: "cache_store_address", fragment: "the certificate and key do not load",
            lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis client key file missing",
            yaml:
                "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_cert_file=/etc/hostname&tls_key_file=/nonexistent/k.pem'",
            key: "cache_store_address", fragment: "tls_key_file \"/nonexistent/k.pem\" does not exist",
            lineMarker: "cache_store_address:"),
        MessageCase(
            name: "redis tls_skip_verify not a boolean",
            yaml: "cache_store: redis\ncache_store_address: 'rediss://redis:6379?tls_skip_verify=maybe'",
            key: "cache_store_address", fragment: "tls_skip_verify \"maybe\" is not true or false",
            lineMarker: "cache_store_address:"),
        MessageCase(
            name: "allowed_users entry not an address",
            yaml: "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    allowed_users: [alice]",
            key: "policy[0].allowed_users", fragment: "entry \"alice\" is not an email address",
            lineMarker: "allowed_users:"),
        MessageCase(
            name: "allowed_domains entry with @",
            yaml:
                "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    allowed_domains: ['@a.test']",
            key: "policy[0].allowed_domains", fragment: "entry \"@a.test\" is invalid", lineMarker: "allowed_domains:"),
        MessageCase(
            name: "administrators entry not an address", yaml: "administrators: [admin]", key: "administrators",
            fragment: "entry \"admin\" is not an email address", lineMarker: "administrators:"),
        MessageCase(
            name: "unknown idp_provider", yaml: "idp_provider: github", key: "idp_provider", fragment: "GitHub arrived",
            lineMarker: "idp_provider:"),
        MessageCase(
            name: "missing idp_client_id", removing: ["idp_client_id"], key: "idp_client_id", fragment: "is required"),
        MessageCase(
            name: "missing idp_client_secret in authenticate mode",
            yaml: "services: authenticate\ncache_service_url: https://cache.example.test",
            removing: ["idp_client_secret"],
            key: "idp_client_secret", fragment: "services is authenticate"),
        MessageCase(
            name: "missing idp_provider", removing: ["idp_provider"], key: "idp_provider", fragment: "is required"),
        MessageCase(
            name: "oidc without provider URL", yaml: "idp_provider: oidc", key: "idp_provider_url",
            fragment: "required for idp_provider oidc"),
        MessageCase(
            name: "tracing provider zipkin", yaml: "tracing_provider: zipkin", key: "tracing_provider",
            fragment: "only tracing provider is jaeger", lineMarker: "tracing_provider:"),
        MessageCase(
            name: "jaeger without endpoint", yaml: "tracing_provider: jaeger", key: "tracing_provider",
            fragment: "tracing_jaeger_collector_endpoint", lineMarker: "tracing_provider:"),
        MessageCase(
            name: "unknown log_level", yaml: "log_level: verbose", key: "log_level", severity: .warning,
            fragment: "debug is used", lineMarker: "log_level:"),
        MessageCase(
            name: "http authenticate URL with secure cookies",
            yaml: "authenticate_service_url: http://auth.example.test",
            key: "authenticate_service_url", severity: .warning, fragment: "cookie_secure",
            lineMarker: "authenticate_service_url:"),
        MessageCase(
            name: "unknown key", yaml: "servcies: all", key: "servcies", severity: .warning,
            fragment: "did you mean \"services\"",
            lineMarker: "servcies:"),
        MessageCase(
            name: "key from the docs' example", yaml: "scope: openid", key: "scope", severity: .warning,
            fragment: "did you mean \"idp_scopes\"", lineMarker: "scope:"),
        MessageCase(
            name: "unknown route field",
            yaml:
                "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    allowed_user: [a@example.test]",
            key: "policy[0].allowed_user", severity: .warning, fragment: "did you mean \"allowed_users\"",
            lineMarker: "allowed_user:"),
        MessageCase(
            name: "duration without unit", yaml: "timeout_read: 30", key: "timeout_read", fragment: "has no unit",
            lineMarker: "timeout_read:"),
        MessageCase(
            name: "negative duration", yaml: "timeout_idle: -5s", key: "timeout_idle", fragment: "negative",
            lineMarker: "timeout_idle:"),
        MessageCase(
            name: "boolean typo", yaml: "cookie_secure: ture", key: "cookie_secure", fragment: "not a boolean",
            lineMarker: "cookie_secure:"),
        MessageCase(
            name: "from with a path",
            yaml:
                "policy:\n  - from: https://a.example.test/app\n    to: http://127.0.0.1:1\n    allowed_users: [a@example.test]",
            key: "policy[0].from", fragment: "move the path to prefix: /app", lineMarker: "from: https"),
        MessageCase(
            name: "invalid regex",
            yaml:
                "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    regex: \"^/(a\"\n    allowed_users: [a@example.test]",
            key: "policy[0].regex", fragment: "not a valid regular expression", lineMarker: "regex:"),
        MessageCase(
            name: "prefix without slash",
            yaml:
                "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1\n    prefix: api\n    allowed_users: [a@example.test]",
            key: "policy[0].prefix", fragment: "must start with /", lineMarker: "prefix:"),
        MessageCase(
            name: "certificate and key mismatch",
            yaml: "certificate: \(TestConfig.base64(TestMaterial.serverCertificate))\n"
                + "certificate_key: \(TestConfig.base64(TestMaterial.otherKey))", removing: ["insecure_server"],
            key: "certificate", fragment: "does not match", lineMarker: "certificate:"),
        MessageCase(
            name: "certificate without key",
            yaml: "certificate: \(TestConfig.base64(TestMaterial.serverCertificate))", removing: ["insecure_server"],
            key: "certificate_key",
            fragment: "must be set together", lineMarker: "certificate:"),
        MessageCase(
            name: "expired certificate",
            yaml: "certificate: \(TestConfig.base64(TestMaterial.expiredCertificate))\n"
                + "certificate_key: \(TestConfig.base64(TestMaterial.expiredKey))",
            key: "certificate", severity: .warning, fragment: "has expired", lineMarker: "certificate:"),
        MessageCase(
            name: "certificate file missing",
            yaml: "certificate_file: /nonexistent/cert.pem\ncertificate_key_file: /nonexistent/key.pem",
            removing: ["insecure_server"], key: "certificate_file",
            fragment: "does not exist", lineMarker: "certificate_file:"),
        MessageCase(
            name: "route custom CA not a certificate",
            yaml: """
                policy:
                  - from: https://a.example.test
                    to: https://127.0.0.1:1
                    tls_custom_ca: \(TestConfig.base64(TestMaterial.serverKey))
                    allowed_users: [a@example.test]
                """,
            key: "policy[0].tls_custom_ca", fragment: "CA certificate", lineMarker: "tls_custom_ca:"),
        MessageCase(
            name: "proxy without shared secret",
            yaml: "services: proxy\nauthorize_service_url: https://authorize.example.test", removing: ["shared_secret"],
            key: "shared_secret", fragment: "same value on every service"),
        MessageCase(
            name: "proxy without cookie secret", removing: ["cookie_secret"], key: "cookie_secret",
            fragment: "is required"),
        MessageCase(
            name: "proxy without authorize URL", yaml: "services: proxy", key: "authorize_service_url",
            fragment: "is required when services is proxy"),
        MessageCase(
            name: "service URL without scheme", yaml: "authorize_service_url: authorize:443",
            key: "authorize_service_url",
            fragment: "scheme and a host", lineMarker: "authorize_service_url:"),
        MessageCase(
            name: "POLICY not base64", environment: ["POLICY": "this is not base64"], key: "POLICY",
            fragment: "base64 -w0"),
        MessageCase(
            name: "POLICY route problem",
            environment: ["POLICY": TestConfig.base64("- from: https://a.example.test\n  to: nope")],
            key: "policy[0].to", fragment: "has no scheme"),
        MessageCase(
            name: "HEADERS without colon", environment: ["HEADERS": "X-Test"], key: "headers", fragment: "has no colon"),
        MessageCase(
            name: "trusted proxy not an address", yaml: "trusted_proxies: [10.0.0.0/33]", key: "trusted_proxies",
            fragment: "not an IP address or CIDR", lineMarker: "trusted_proxies:"),
        MessageCase(
            name: "programmatic redirect domain with scheme",
            yaml: "programmatic_redirect_domains: [\"https://x.example.test\"]",
            key: "programmatic_redirect_domains", fragment: "host name", lineMarker: "programmatic_redirect_domains:"),
        MessageCase(
            name: "google service account not JSON", yaml: "idp_service_account: \(TestConfig.base64("not json"))",
            key: "idp_service_account", fragment: "JSON service-account key", lineMarker: "idp_service_account:"),
        MessageCase(
            name: "route allowing nobody",
            yaml: "policy:\n  - from: https://a.example.test\n    to: http://127.0.0.1:1", key: "policy[0]",
            severity: .warning,
            fragment: "allows nobody", lineMarker: "- from:"),
        MessageCase(
            name: "http and https routes of one name",
            yaml: """
                policy:
                  - from: http://a.example.test
                    to: http://127.0.0.1:1
                    allow_public_unauthenticated_access: true
                  - from: https://a.example.test:443
                    to: http://127.0.0.1:2
                    allowed_users: [b@example.test]
                """,
            key: "policy", severity: .warning, fragment: "decides only requests whose Host ends in :443",
            lineMarker: "to: http://127.0.0.1:1"),
        MessageCase(
            name: "duplicate route",
            yaml: """
                policy:
                  - from: https://a.example.test
                    to: http://127.0.0.1:1
                    allowed_users: [a@example.test]
                  - from: https://a.example.test
                    to: http://127.0.0.1:2
                    allowed_users: [b@example.test]
                """,
            key: "policy", severity: .warning, fragment: "match the same requests", lineMarker: "to: http://127.0.0.1:1"
        ),
    ]

    @Test(arguments: cases)
    func problemNamesKeyAndSource(_ testCase: MessageCase) throws {
        let text =
            SettingDefaultsTests.base(
                without: SettingDefaultsTests.topLevelKeys(testCase.yaml).union(testCase.removing)) + testCase.yaml
            + "\n"
        let path = try TestConfig.write(text)
        let result = ConfigLoader(configFile: path, environment: { testCase.environment }).load()
        let matching = result.problems(for: testCase.key).filter { $0.message.contains(testCase.fragment) }
        let problem = try #require(matching.first, "no problem for \(testCase.key) in:\n\(result.summary)")
        #expect(problem.severity == testCase.severity)
        #expect(result.isValid == (testCase.severity == .warning) || testCase.severity == .error)
        if testCase.severity == .error {
            #expect(!result.isValid)
        }
        if let marker = testCase.lineMarker {
            // The duplicate-route case points at the second route, so look for the last marker line there.
            let expectedLine = TestConfig.line(of: marker, in: text)
            #expect(problem.location == .file(path: path, line: expectedLine) || testCase.key == "policy")
            #expect(problem.description.contains("\(path):"))
        }
        if let name = testCase.environment.keys.first, problem.location != .defaultValue,
            case .environment(let variable, _) = problem.location
        {
            #expect(variable == name)
        }
    }

    @Test func mismatchedCertificateFilesAreNamed() throws {
        let certificate = try TestConfig.write(TestMaterial.serverCertificate, name: "tls.crt")
        let key = try TestConfig.write(TestMaterial.otherKey, name: "tls.key")
        let text =
            SettingDefaultsTests.base(without: ["insecure_server"])
            + "certificate_file: \(certificate)\ncertificate_key_file: \(key)\n"
        let result = try TestConfig.load(text)
        let problem = try #require(result.problems(for: "certificate_file").first, "\(result.summary)")
        #expect(problem.severity == .error)
        #expect(problem.message.contains("does not match"))
        #expect(problem.message.contains(certificate))
        #expect(problem.message.contains(key))
        #expect(problem.description.contains("certificate_file: "))
    }

    @Test func redisTLSFilesThatLoadPassAndMismatchedOnesAreNamed() throws {
        let authority = try TestConfig.write(TestMaterial.serverCertificate, name: "redis-ca.pem")
        let certificate = try TestConfig.write(TestMaterial.serverCertificate, name: "redis-client.crt")
        let key = try TestConfig.write(TestMaterial.serverKey, name: "redis-client.key")
        let otherKey = try TestConfig.write(TestMaterial.otherKey, name: "redis-other.key")
        func load(_ keyFile: String) throws -> ConfigLoadResult {
            let address =
                "rediss://:secret-pw@redis:6379/0?tls_ca_file=\(authority)&tls_cert_file=\(certificate)&tls_key_file=\(keyFile)"
            let text =
                SettingDefaultsTests.base(without: ["cache_store", "cache_store_address"])
                + "cache_store: redis\ncache_store_address: '\(address)'\n"
            return try TestConfig.load(text)
        }
        let good = try load(key)
        #expect(good.problems(for: "cache_store_address").isEmpty, "\(good.summary)")
        #expect(good.inputs.referencedFiles.keys.contains(authority))
        let mismatched = try load(otherKey)
        let problem = try #require(mismatched.problems(for: "cache_store_address").first, "\(mismatched.summary)")
        #expect(problem.severity == .error)
        #expect(problem.message.contains("does not match"))
        #expect(problem.message.contains(otherKey))
        #expect(!problem.description.contains("secret-pw"))
    }

    @Test func everyErrorIsReportedInOnePass() throws {
        let text = """
            services: proxy
            shared_secret: short
            cookie_secret: \(TestConfig.base64("0123456789"))
            cookie_samesite: sometimes
            cache_store: memcached
            timeout_read: forever
            policy:
              - from: one.example.test
                to: http://127.0.0.1:1
              - from: https://two.example.test
                to: two
            """
        let result = try TestConfig.load(text)
        let keys = Set(result.errors.map(\.key))
        for key in [
            "shared_secret", "cookie_secret", "cookie_samesite", "cache_store", "timeout_read", "policy[0].from",
            "policy[1].to", "certificate", "authenticate_service_url", "authorize_service_url",
        ] {
            #expect(keys.contains(key), "missing \(key) in:\n\(result.summary)")
        }
    }

    @Test func messagesNeverContainSecrets() throws {
        let secret = "c2VjcmV0LXRoYXQtaXMtbm90LTMyLWJ5dGVz"
        let text = """
            shared_secret: \(secret)
            cookie_secret: \(secret)
            idp_client_secret: \(secret)
            cache_store: redis
            cache_store_address: redis://:\(secret)@:6379
            cache_store_password: \(secret)
            """
        let result = try TestConfig.load(text)
        #expect(!result.problems.isEmpty)
        for problem in result.problems {
            #expect(!problem.description.contains(secret), "\(problem)")
        }
        #expect(!EffectiveSettings.render(result.options).contains(secret))
    }

    @Test(arguments: ["hcl", "dotenv", "env", "ini"])
    func unsupportedFormatNamesFileAndList(_ fileExtension: String) throws {
        let result = try TestConfig.load("a = b", name: "config.\(fileExtension)")
        let problem = try #require(result.errors.first)
        #expect(problem.message.contains(".\(fileExtension) format is not supported"))
        #expect(problem.message.contains(".yaml, .yml, .json, .toml, .properties, .props, .prop"))
        #expect(problem.description.contains("config.\(fileExtension)"))
    }

    @Test func unknownExtensionIsAnError() throws {
        let result = try TestConfig.load("a: b", name: "config.txt")
        #expect(result.errors.first?.message.contains("rename the file") == true)
    }

    @Test func yamlSyntaxErrorNamesLine() throws {
        let text = "insecure_server: true\ncookie_name: [unclosed\nother: 1\n"
        let path = try TestConfig.write(text)
        let result = ConfigLoader(configFile: path, environment: { [:] }).load()
        let problem = try #require(result.errors.first)
        #expect(problem.key == "config file")
        #expect(problem.description.contains("\(path):"))
        #expect(problem.message.contains("invalid yaml"))
    }

    @Test(arguments: [TestMaterial.p256SEC1, TestMaterial.p256PKCS8])
    func signingKeyAcceptsBothP256Forms(_ pem: String) throws {
        let result = try TestConfig.loadBase("signing_key: \(TestConfig.base64(pem))\n")
        #expect(result.problems(for: "signing_key") == [])
        #expect(result.options.signingKeyPEM == pem)
    }

    @Test func missingConfigFileIsAnError() {
        let result = ConfigLoader(configFile: "/nonexistent/pomerium.yaml", environment: { [:] }).load()
        #expect(result.errors.first?.message.contains("/nonexistent/pomerium.yaml") == true)
    }
}
