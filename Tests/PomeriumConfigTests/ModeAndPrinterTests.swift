import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

@Suite struct ServiceModeDefaultsTests {
    @Test func allInOneBindsGRPCToLoopback() throws {
        let options = try TestConfig.loadBase("grpc_address: \":443\"\ngrpc_insecure: false\n").options
        #expect(options.grpcAddress == "127.0.0.1:5443")
        #expect(options.grpcInsecure)
        #expect(options.authorizeServiceURL?.text == "http://127.0.0.1:5443")
        #expect(options.cacheServiceURL?.text == "http://127.0.0.1:5443")
    }

    @Test func allInOneWarnsAboutPublicGRPCAddress() throws {
        let result = try TestConfig.loadBase("grpc_address: \"0.0.0.0:5443\"\n")
        #expect(result.problems(for: "grpc_address").first?.severity == .warning)
        #expect(result.options.authorizeServiceURL?.text == "http://127.0.0.1:5443")
    }

    @Test func authorizeModeMovesHTTPListenerOffTheGRPCPort() throws {
        let result = try TestConfig.loadBase("services: authorize\n")
        #expect(result.options.address == ":5443")
        #expect(result.options.grpcAddress == ":443")
        #expect(!result.options.grpcInsecure)
        #expect(result.problems(for: "address").first?.severity == .warning)
    }

    @Test func splitModesGenerateNoSharedSecret() throws {
        let text =
            SettingDefaultsTests.base(without: ["shared_secret"])
            + "services: cache\ncache_service_url: https://c.example.test\n"
        let result = try TestConfig.load(text)
        #expect(result.options.sharedSecret.isEmpty)
        #expect(!result.options.sharedSecretIsGenerated)
        #expect(result.problems(for: "shared_secret").first?.severity == .error)
    }

    @Test func authenticateModeWithoutRoutesWarns() throws {
        let text = TestConfig.baseYAML + "services: authenticate\ncache_service_url: https://c.example.test\n"
        let warning = try #require(try TestConfig.load(text).problems(for: "policy").first)
        #expect(warning.severity == .warning)
        #expect(warning.message.contains("copy the proxy's policy"))
        let withRoutes =
            text + "policy:\n  - from: https://app.example.test\n    to: http://127.0.0.1:9\n"
            + "    allow_public_unauthenticated_access: true\n"
        #expect(try TestConfig.load(withRoutes).problems(for: "policy") == [])
    }

    @Test func generatedSecretIsStableAcrossLoads() throws {
        let text = SettingDefaultsTests.base(without: ["shared_secret"])
        let first = try TestConfig.load(text).options
        let second = try TestConfig.load(text).options
        #expect(first.sharedSecretIsGenerated)
        #expect(first.sharedSecret == second.sharedSecret)
        #expect(first.signingKeyPEM == second.signingKeyPEM)
    }

    @Test func disableHeaderClearsHeaders() throws {
        let options = try TestConfig.loadBase("headers:\n  disable: true\n  X-A: b\n").options
        #expect(options.headers == [:])
    }

    @Test func yamlKeysMatchWithoutCase() throws {
        let options = try TestConfig.loadBase(
            "COOKIE_NAME: _upper\npolicy:\n  - FROM: https://a.example.test\n    To: http://127.0.0.1:1\n    allowed_users: [a@example.test]\n"
        ).options
        #expect(options.cookieName == "_upper")
        #expect(options.policy.count == 1)
    }

    @Test func routeFieldsDecode() throws {
        let text = """
            policy:
              - from: https://a.example.test:8443/
                to: https://127.0.0.1:9443/base?x=1
                path: /exact
                regex: "^/api/v[0-9]+/.*$"
                allowed_groups: [admins]
                cors_allow_preflight: true
                preserve_host_header: true
                tls_skip_verify: true
                tls_server_name: upstream.example.test
                tls_custom_ca: \(TestConfig.base64(TestMaterial.otherCertificate))
                tls_client_cert: \(TestConfig.base64(TestMaterial.serverCertificate))
                tls_client_key: \(TestConfig.base64(TestMaterial.serverKey))
            """
        let result = try TestConfig.loadBase(text)
        #expect(result.errors == [], "\(result.summary)")
        let route = try #require(result.options.policy.first)
        #expect(route.from.authority == "a.example.test:8443")
        #expect(route.to.path == "/base")
        #expect(route.to.query == "x=1")
        #expect(route.path == "/exact")
        #expect(route.regex == "^/api/v[0-9]+/.*$")
        #expect(route.corsAllowPreflight)
        #expect(route.preserveHostHeader)
        #expect(route.tlsSkipVerify)
        #expect(route.tlsServerName == "upstream.example.test")
        #expect(route.tlsCustomCAPEM == TestMaterial.otherCertificate)
        #expect(
            route.tlsClientCertificate
                == TLSCertificatePair(certificatePEM: TestMaterial.serverCertificate, keyPEM: TestMaterial.serverKey))
        #expect(!route.hasExplicitTimeout)
    }

    @Test func routeClientCertificateFromFiles() throws {
        let certificate = try TestConfig.write(TestMaterial.serverCertificate, name: "client.crt")
        let key = try TestConfig.write(TestMaterial.serverKey, name: "client.key")
        let text = """
            policy:
              - from: https://a.example.test
                to: https://127.0.0.1:9443
                allowed_users: [a@example.test]
                tls_client_cert_file: \(certificate)
                tls_client_key_file: \(key)
                tls_custom_ca_file: \(certificate)
            """
        let route = try #require(try TestConfig.loadBase(text).options.policy.first)
        #expect(route.tlsClientCertificate?.keyPEM == TestMaterial.serverKey)
        #expect(route.tlsCustomCAPEM == TestMaterial.serverCertificate)
    }

    @Test func configURLAuthority() throws {
        #expect(ConfigURL("https://A.Example.test")?.authority == "a.example.test")
        #expect(ConfigURL("https://a.example.test:443")?.authority == "a.example.test")
        #expect(ConfigURL("http://a.example.test:8080")?.authority == "a.example.test:8080")
        #expect(ConfigURL("https://[::1]:8443")?.authority == "[::1]:8443")
        #expect(ConfigURL("https://a.example.test")?.effectivePort == 443)
        #expect(ConfigURL("example.test") == nil)
        #expect(ConfigURL("https://") == nil)
    }
}

@Suite struct EffectiveSettingsTests {
    @Test func everySecretIsRedacted() throws {
        let text =
            TestConfig.baseYAML + """
                certificate: \(TestConfig.base64(TestMaterial.serverCertificate))
                certificate_key: \(TestConfig.base64(TestMaterial.serverKey))
                signing_key: \(TestConfig.base64(TestMaterial.p256SEC1))
                idp_service_account: \(TestConfig.base64("{\"private_key\":\"service-account-secret\"}"))
                cache_store: redis
                cache_store_address: redis://:redis-url-password@127.0.0.1:6379/1
                cache_store_password: redis-explicit-password
                policy:
                  - from: https://a.example.test
                    to: https://127.0.0.1:1
                    allowed_users: [a@example.test]
                    tls_client_cert: \(TestConfig.base64(TestMaterial.serverCertificate))
                    tls_client_key: \(TestConfig.base64(TestMaterial.serverKey))

                """
        let result = try TestConfig.load(text)
        let printed = EffectiveSettings.render(result.options)
        for secret in [
            TestConfig.cookieSecret, TestConfig.sharedSecret, "client-secret-value", "MIGHAgEAMBMGByqGSM49",
            "MHcCAQEEIKcXXClq0Uzi", "redis-url-password", "redis-explicit-password",
            TestConfig.base64("{\"private_key\":\"service-account-secret\"}"),
        ] {
            #expect(!printed.contains(secret), "printed \(secret)")
        }
        for key in SettingsCatalog.settings.filter(\.isSecret).map(\.key) {
            let line = try #require(printed.split(separator: "\n").first { $0.hasPrefix("\(key): ") })
            #expect(line.contains(EffectiveSettings.redacted), "\(line)")
        }
        #expect(printed.contains("tls_client_key=\(EffectiveSettings.redacted)"))
        #expect(printed.contains("cache_store_address: redis://:\(EffectiveSettings.redacted)@127.0.0.1:6379/1"))
    }

    @Test func everyCatalogKeyIsPrinted() throws {
        let lines = EffectiveSettings.displayLines(try TestConfig.loadBase("").options)
        for key in SettingsCatalog.settings.map(\.key) {
            #expect(lines.contains { $0.hasPrefix("\(key): ") }, "\(key) missing")
        }
    }

    @Test func changedKeysFollowCatalogOrder() throws {
        let old = try TestConfig.loadBase("").options
        let new = try TestConfig.loadBase("timeout_idle: 1m\naddress: \":1\"\n").options
        #expect(EffectiveSettings.changedKeys(from: old, to: new) == ["address", "timeout_idle"])
    }
}

@Suite struct SigningKeyFileTests {
    @Test func corruptKeyFileIsAnError() throws {
        let path = try TestConfig.write(TestMaterial.p384Key, name: "signing.pem")
        let result = try TestConfig.loadBase("signing_key_file: \(path)\n")
        #expect(
            result.problems(for: "signing_key_file").first?.message.contains("does not hold a P-256 private key")
                == true)
    }
}

@Suite struct InMemoryLoadTests {
    @Test func textLoadsLikeAFile() throws {
        let fromFile = try TestConfig.load(FormatParityTests.toml, name: "config.toml")
        let fromText = ConfigLoader.load(text: FormatParityTests.toml, format: .toml)
        #expect(fromText.options == fromFile.options)
        #expect(fromText.isValid)
    }

    @Test func problemsNameTheFormat() {
        let result = ConfigLoader.load(text: "cache_store: nope\n", format: .yaml, environment: ["COOKIE_NAME": "_env"])
        #expect(result.problems(for: "cache_store").first?.location == .file(path: "config.yaml", line: 1))
        #expect(result.options.cookieName == "_env")
    }
}
