import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

/// Inputs from the attack tests (tests/integration/test_config_attacks.py) that a unit can check
/// directly: deep and large properties files, secrets in messages and in the printed settings,
/// header and address checks.
@Suite struct PropertiesHostileInputTests {
    @Test func deepKeyIsAnErrorNotACrash() {
        let text = "headers" + String(repeating: ".a", count: 100_000) + " = 1\n"
        do {
            _ = try PropertiesReader.parse(Array(text.utf8), path: "deep.properties")
            Issue.record("a key nested 100,001 deep was accepted")
        } catch {
            #expect(error.location == .file(path: "deep.properties", line: 1))
            #expect(error.reason.contains("nesting deeper than 64"))
            #expect(error.reason.utf8.count < 300)
        }
    }

    @Test func keyAtTheDepthLimitIsAccepted() throws {
        let text = "headers" + String(repeating: ".a", count: 63) + " = 1\n"
        _ = try PropertiesReader.parse(Array(text.utf8), path: "c.properties")
    }

    @Test func leadingZerosNameTheSameIndex() throws {
        let text = "policy.0.from = a\npolicy.00.to = b\npolicy.000.allowed_users = c\n"
        let root = try PropertiesReader.parse(Array(text.utf8), path: "c.properties")
        guard case .sequence(let routes) = try #require(root.entries)[0].value.value else {
            Issue.record("policy is not a list")
            return
        }
        #expect(routes.count == 1)
        #expect(routes[0].entries?.map(\.key) == ["from", "to", "allowed_users"])
    }

    @Test func gapInIndexesNamesTheWrittenIndex() {
        let text = "policy.0.from = a\npolicy.007.from = b\n"
        do {
            _ = try PropertiesReader.parse(Array(text.utf8), path: "c.properties")
            Issue.record("indexes 0 and 7 were accepted as a list")
        } catch {
            #expect(error.location == .file(path: "c.properties", line: 2))
            #expect(error.reason.contains("list index 007 skips index 1"))
        }
    }

    @Test func manyKeysAndRepeatsKeepOrderAndLastValue() throws {
        var text = ""
        for index in 0..<20_000 { text += "headers.X-H\(index) = v\(index)\n" }
        text += "headers.X-H5 = again\n"
        let root = try PropertiesReader.parse(Array(text.utf8), path: "c.properties")
        let headers = try #require(root.entries?[0].value.entries)
        #expect(headers.count == 20_000)
        #expect(headers.last?.key == "X-H5")
        #expect(headers.last?.value.scalar == "again")
        #expect(headers.first?.key == "X-H0")
    }
}

@Suite struct SecretEchoTests {
    @Test func tomlSyntaxErrorNamesTheKeyNotTheValue() {
        let secret = "Q09PS0lFU0VDUkVUQ09PS0lFU0VDUkVUQ09PS0lFMTI="
        do {
            _ = try TOMLReader.parse(Array("cookie_secret = \(secret)\n".utf8), path: "c.toml")
            Issue.record("an unquoted value parsed")
        } catch {
            #expect(!error.reason.contains("Q09P"))
            #expect(error.reason.contains("cookie_secret"))
            #expect(error.location == .file(path: "c.toml", line: 1))
        }
    }

    @Test func urlPasswordsAreRedacted() {
        #expect(
            ValueParsing.redactedURL("https://user:pw@host.example.test/a?x=1")
                == "https://user:[redacted]@host.example.test/a?x=1")
        #expect(ValueParsing.redactedURL("redis://tok@127.0.0.1:6379") == "redis://[redacted]@127.0.0.1:6379")
        #expect(
            ValueParsing.redactedURL("redis://127.0.0.1:6379/0?db=1&password=pw#f")
                == "redis://127.0.0.1:6379/0?db=1&password=[redacted]#f")
        #expect(ValueParsing.redactedURL("https://a.example.test/p@x") == "https://a.example.test/p@x")
    }

    @Test func serviceURLWithPasswordIsRejectedWithoutEcho() throws {
        let result = try TestConfig.load(
            TestConfig.baseYAML.replacingOccurrences(
                of: "https://authenticate.example.test", with: "https://user:hunter2@authenticate.example.test"))
        let problems = result.problems(for: "authenticate_service_url")
        #expect(problems.contains { $0.message.contains("user name or password") }, "\(result.summary)")
        #expect(!result.summary.contains("hunter2"))
    }

    @Test func cacheStoreQueryPasswordIsRedactedInDisplay() throws {
        let result = try TestConfig.loadBase(
            "cache_store: redis\ncache_store_address: \"redis://127.0.0.1:6379/0?password=hunter2\"\n")
        let text = EffectiveSettings.render(result.options)
        #expect(!text.contains("hunter2"))
        #expect(text.contains("password=[redacted]"))
    }

    @Test func credentialHeaderValuesAreRedactedInDisplay() throws {
        let result = try TestConfig.loadBase(
            """
            headers: {X-Api-Key: k123, X-Frame-Options: DENY}
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:8000
                allow_public_unauthenticated_access: true
                set_request_headers: {Authorization: Basic hunter2, X-Route: ws}

            """)
        #expect(result.isValid, "\(result.summary)")
        let text = EffectiveSettings.render(result.options)
        #expect(!text.contains("hunter2"))
        #expect(!text.contains("k123"))
        #expect(text.contains("X-Frame-Options=\"DENY\""))
        #expect(text.contains("set_request_headers=Authorization:[redacted],X-Route:ws"))
    }

    @Test func excerptEscapesAndShortens() {
        #expect(ValueParsing.excerpt("a\r\nb\u{0}") == "a\\r\\nb\\u{0}")
        let long = ValueParsing.excerpt(String(repeating: "y", count: 10_000))
        #expect(long.hasPrefix(String(repeating: "y", count: 64) + "..."))
        #expect(long.contains("10000 bytes"))
    }
}

@Suite struct ValueCheckTests {
    @Test func headerNamesAndValuesAreChecked() throws {
        let cases = [
            "headers: {X-A: \"v\\r\\nSet-Cookie: injected=1\"}\n",
            "headers: {\"X A\": v}\n",
            "headers: {\"\": v}\n",
            "jwt_claims_headers: [\"a b\"]\n",
        ]
        for extra in cases {
            let result = try TestConfig.loadBase(extra)
            #expect(!result.isValid, "accepted: \(extra)")
            #expect(!result.summary.contains("injected"))
        }
        let variable = try TestConfig.loadBase("", environment: ["HEADERS": "X-A:b\r\nSet-Cookie: injected=1"])
        #expect(variable.problems(for: "headers").count == 1, "\(variable.summary)")
    }

    @Test func cookieDomainMustBeADomain() throws {
        for domain in ["\"corp.example.test; SameSite=None\"", "\"corp example.test\"", "\"a..b\""] {
            let result = try TestConfig.loadBase("cookie_domain: \(domain)\n")
            #expect(result.problems(for: "cookie_domain").count == 1, "\(domain)")
        }
        #expect(try TestConfig.loadBase("cookie_domain: .corp.example.test\n").isValid)
    }

    @Test func listenAddresses() {
        for good in [":443", "127.0.0.1:9090", "[::1]:8443", "localhost:80", "0.0.0.0:65535", "127.0.0.1:0"] {
            #expect(ValueParsing.listenAddressProblem(good) == nil, "\(good)")
        }
        for bad in [":99999", ":65536", "not an address", "junk:port", "junk", "[::1:80", "a b:80"] {
            #expect(ValueParsing.listenAddressProblem(bad) != nil, "\(bad)")
        }
    }

    @Test func serviceURLSchemeQueryFragmentAndPort() throws {
        for url in [
            "ftp://authenticate.example.test", "https://authenticate.example.test/?a=b",
            "https://authenticate.example.test/#f", "https://authenticate.example.test:99999",
        ] {
            let result = try TestConfig.load(
                TestConfig.baseYAML.replacingOccurrences(of: "https://authenticate.example.test", with: url))
            #expect(!result.problems(for: "authenticate_service_url").isEmpty, "\(url)")
        }
    }

    @Test func routeURLOddities() throws {
        let cases: [(String, String, String)] = [
            ("https://*.example.test", "http://127.0.0.1:8000", "no wildcard routes"),
            ("https://app.example.test#f", "http://127.0.0.1:8000", "fragment"),
            ("https://app.example.test", "http://127.0.0.1:8000/b#f", "fragment"),
            ("https://app.example.test", "http://127.0.0.1:70000", "outside 1-65535"),
            ("https://app.example.test", "http://u:pw@127.0.0.1:8000", "user name or password"),
        ]
        for (from, to, expected) in cases {
            let result = try TestConfig.loadBase(
                "policy:\n  - from: \"\(from)\"\n    to: \"\(to)\"\n    allow_public_unauthenticated_access: true\n")
            #expect(result.problems.contains { $0.key.hasPrefix("policy[0]") && $0.message.contains(expected) })
            #expect(!result.summary.contains(":pw@"))
        }
    }

    @Test func jaegerCollectorNeedsAScheme() throws {
        let result = try TestConfig.loadBase(
            "tracing_provider: jaeger\ntracing_jaeger_collector_endpoint: jaeger.internal:14268\n")
        #expect(!result.problems(for: "tracing_jaeger_collector_endpoint").isEmpty, "\(result.summary)")
    }

    @Test func yamlBooleanWordsOnlyInYAML() throws {
        #expect(try TestConfig.loadBase("cookie_secure: yes\n").options.cookieSecure)
        let json = try TestConfig.load("{\"cookie_secure\": \"yes\"}", name: "c.json")
        #expect(json.problems(for: "cookie_secure").first?.message.contains("not a boolean") == true)
    }

    @Test func regexUsesTheRouterEngine() {
        #expect(NodeDecoder.regexProblem("^/api/(v1|v2)/.*$") == nil)
        #expect(NodeDecoder.regexProblem("a{1000000000}") != nil)
        #expect(NodeDecoder.regexProblem("^/api/(v1|v2")?.isEmpty == false)
    }
}

@Suite struct LoaderMessageTests {
    @Test func keysDifferingOnlyInCaseAreDuplicates() throws {
        let top = try TestConfig.loadBase("Cookie_Name: first\ncookie_name: second\n")
        #expect(top.problems(for: "cookie_name").contains { $0.message.hasPrefix("duplicate key") }, "\(top.summary)")
        let route = try TestConfig.loadBase(
            """
            policy:
              - from: https://app.example.test
                To: http://127.0.0.1:8001
                to: http://127.0.0.1:8000
                allow_public_unauthenticated_access: true

            """)
        #expect(route.problems(for: "policy[0].to").contains { $0.message.hasPrefix("duplicate key") })
    }

    @Test func blankPolicyVariableIsUnset() throws {
        let routes =
            "policy:\n  - from: https://app.example.test\n    to: http://127.0.0.1:8000\n"
            + "    allow_public_unauthenticated_access: true\n"
        let result = try TestConfig.loadBase(routes, environment: ["POLICY": "  \t "])
        #expect(result.options.policy.count == 1, "\(result.summary)")
    }

    @Test func syntaxErrorIsReportedAlone() throws {
        let result = try TestConfig.load("insecure_server: true\n\tcookie_name: x\n")
        #expect(result.errors.count == 1, "\(result.summary)")
    }

    @Test func byteErrorsNameTheirLine() throws {
        for bad: [UInt8] in [[0x61, 0x00, 0x62], [0x61, 0xFF, 0xFE, 0x62]] {
            let bytes = Array("a: 1\nb: 2\nc: ".utf8) + bad + Array("\n".utf8)
            do {
                _ = try YAMLReader.parse(bytes, path: "c.yaml")
                Issue.record("bytes \(bad) parsed")
            } catch {
                #expect(error.location == .file(path: "c.yaml", line: 3))
            }
        }
    }

    @Test func unreadableConfigPathGivesTheReason() throws {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "pomerium-config")
        #expect(ConfigLoader.unreadableReason(directory.path) == "is a directory, not a file")
        let fifo = directory.appendingPathComponent("fifo.yaml").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(ConfigLoader.unreadableReason(fifo)?.contains("FIFO") == true)
        #expect(ConfigLoader.unreadableReason("/dev/null")?.contains("device") == true)
        #expect(ConfigLoader.unreadableReason(directory.appendingPathComponent("none.yaml").path) == "does not exist")
        let result = ConfigLoader(configFile: directory.path + "/c.yaml", environment: { [:] }).load()
        #expect(result.errors.count == 1, "\(result.summary)")
    }
}

@Suite struct PrecedenceAndWordingTests {
    @Test func certificateVariablesOverrideFilePathsWithoutWarning() throws {
        let environment = [
            "CERTIFICATE": TestConfig.base64(TestMaterial.serverCertificate),
            "CERTIFICATE_KEY": TestConfig.base64(TestMaterial.serverKey),
        ]
        let result = try TestConfig.loadBase(
            "certificate_file: /nonexistent/fullchain.pem\ncertificate_key_file: /nonexistent/privkey.pem\n",
            environment: environment)
        #expect(result.isValid, "\(result.summary)")
        #expect(result.problems(for: "certificate_file").isEmpty, "\(result.summary)")
        #expect(result.options.tlsCertificates.first?.certificatePEM == TestMaterial.serverCertificate)
    }

    @Test func removedKeyIsNamedOnce() throws {
        let result = try TestConfig.loadBase("policy_file: policy.yaml\n")
        let line = try #require(result.problems(for: "policy_file").first).description
        #expect(line.components(separatedBy: "policy_file").count == 2, "\(line)")
    }

    @Test func controlCharactersInKeysAreEscaped() throws {
        let result = try TestConfig.loadBase("\"bad\\nkey\\u001b[31m\": 1\n")
        let line = try #require(result.warnings.first).description
        #expect(!line.contains("\n"))
        #expect(!line.contains("\u{1B}"))
    }
}

@Suite struct CertificateValidityTests {
    @Test func notBeforeOfGeneralizedAndUTCTime() throws {
        #expect(CertificateValidity.notBefore(pem: Array(TestMaterial.futureCertificate.utf8)) == 4_039_470_245)
        let current = try #require(CertificateValidity.notBefore(pem: Array(TestMaterial.serverCertificate.utf8)))
        #expect(current > 946_684_800)
        #expect(current < 4_039_470_245)
        #expect(
            CertificateValidity.notBefore(
                pem: Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".utf8)) == nil)
    }

    @Test func unservedObservabilitySettingsWarn() throws {
        let result = try TestConfig.loadBase(
            "metrics_address: 127.0.0.1:9090\ntracing_provider: jaeger\n"
                + "tracing_jaeger_collector_endpoint: http://127.0.0.1:14268/api/traces\n")
        #expect(result.isValid, "\(result.summary)")
        #expect(
            result.warnings.contains { $0.key == "metrics_address" && $0.message.contains("127.0.0.1:9090") },
            "\(result.summary)")
        #expect(result.warnings.contains { $0.key == "tracing_provider" }, "\(result.summary)")
        #expect(
            try TestConfig.loadBase("").warnings.allSatisfy {
                !["metrics_address", "tracing_provider"].contains($0.key)
            })
    }

    @Test func futureCertificateWarns() throws {
        let result = try TestConfig.loadBase(
            "certificate: \(TestConfig.base64(TestMaterial.futureCertificate))\n"
                + "certificate_key: \(TestConfig.base64(TestMaterial.futureKey))\n")
        #expect(result.isValid, "\(result.summary)")
        #expect(
            result.warnings.contains { $0.message.contains("not valid until 2098-01-02T03:04:05Z") },
            "\(result.summary)")
    }
}
