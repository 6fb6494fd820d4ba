import Foundation
import Testing

@testable import PomeriumConfig

/// One setting written alone in each format: every format and the environment must read it the
/// same way, and differently from leaving it out. The combined sample in FormatParityTests covers
/// the keys that this table leaves out, such as routes, headers and the secrets of the base.
/// `grpc_insecure` is missing because all-in-one mode forces it on.
@Suite struct KeyParityTests {
    enum Kind: Sendable {
        case text
        case bool
        case list
    }

    struct KeyCase: Sendable, CustomStringConvertible {
        let key: String
        let kind: Kind
        /// The value as written in YAML and properties; lists are comma-separated.
        let value: String
        var description: String { key }
    }

    /// Everything a valid all-in-one configuration needs, set through the environment so the file
    /// contains only the key under test.
    static let baseEnvironment: [String: String] = [
        "INSECURE_SERVER": "true",
        "SHARED_SECRET": TestConfig.sharedSecret,
        "COOKIE_SECRET": TestConfig.cookieSecret,
        "AUTHENTICATE_SERVICE_URL": "https://authenticate.example.test",
        "IDP_PROVIDER": "google",
        "IDP_CLIENT_ID": "client.example.test",
        "IDP_CLIENT_SECRET": "client-secret-value",
    ]

    static let signingKey = TestConfig.base64(TestMaterial.p256SEC1)

    static let cases: [KeyCase] = [
        KeyCase(key: "cookie_domain", kind: .text, value: "example.test"),
        KeyCase(key: "cookie_http_only", kind: .bool, value: "false"),
        KeyCase(key: "refresh_cooldown", kind: .text, value: "10m"),
        KeyCase(key: "authenticate_callback_path", kind: .text, value: "/oauth2/other"),
        KeyCase(key: "forward_auth_url", kind: .text, value: "https://fwd.example.test"),
        KeyCase(key: "authorize_service_url", kind: .text, value: "https://authorize.example.test"),
        KeyCase(key: "cache_service_url", kind: .text, value: "https://cache.example.test"),
        KeyCase(key: "programmatic_redirect_domains", kind: .list, value: "cli.example.test, tool.example.test"),
        KeyCase(key: "trusted_proxies", kind: .list, value: "10.0.0.0/8, 192.168.1.1"),
        KeyCase(key: "signing_key", kind: .text, value: signingKey),
        KeyCase(key: "timeout_write", kind: .text, value: "5s"),
        KeyCase(key: "timeout_read_header", kind: .text, value: "3s"),
        KeyCase(key: "timeout_idle", kind: .text, value: "2m"),
        KeyCase(key: "http_redirect_addr", kind: .text, value: ":8080"),
        KeyCase(key: "metrics_address", kind: .text, value: "127.0.0.1:9090"),
        KeyCase(key: "grpc_address", kind: .text, value: ":5444"),
        KeyCase(key: "certificate_authority", kind: .text, value: TestConfig.base64(TestMaterial.serverCertificate)),
        KeyCase(key: "grpc_client_timeout", kind: .text, value: "3s"),
        KeyCase(key: "grpc_server_max_connection_age", kind: .text, value: "1m"),
        KeyCase(key: "override_certificate_name", kind: .text, value: "internal.example.test"),
        KeyCase(key: "cache_store", kind: .text, value: "bolt"),
        KeyCase(key: "cache_store_path", kind: .text, value: "/tmp/pomerium-parity.db"),
        KeyCase(key: "tracing_debug", kind: .bool, value: "true"),
        KeyCase(key: "log_level", kind: .text, value: "error"),
        KeyCase(key: "pomerium_debug", kind: .bool, value: "true"),
        KeyCase(key: "cookie_expire", kind: .text, value: "2h"),
        KeyCase(key: "default_upstream_timeout", kind: .text, value: "45s"),
    ]

    static func items(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    static func quoted(_ text: String) -> String { "\"\(text)\"" }

    /// Writes the key in the format of `name`'s extension.
    static func file(_ setting: KeyCase, name: String) -> String {
        let key = setting.key
        let value = setting.value
        switch ((name as NSString).pathExtension, setting.kind) {
        case ("yaml", .list): return "\(key): [\(items(value).joined(separator: ", "))]\n"
        case ("yaml", _): return "\(key): \(quotedForYAML(setting))\n"
        case ("json", .text): return "{\"\(key)\": \(quoted(value))}\n"
        case ("json", .bool): return "{\"\(key)\": \(value)}\n"
        case ("json", .list): return "{\"\(key)\": [\(items(value).map(quoted).joined(separator: ", "))]}\n"
        case ("toml", .text): return "\(key) = \(quoted(value))\n"
        case ("toml", .bool): return "\(key) = \(value)\n"
        case ("toml", .list): return "\(key) = [\(items(value).map(quoted).joined(separator: ", "))]\n"
        default: return "\(key) = \(value)\n"
        }
    }

    /// YAML reads `:8080` and `/oauth2/other` as text; only a value starting with `:` needs quotes.
    static func quotedForYAML(_ setting: KeyCase) -> String {
        setting.value.hasPrefix(":") ? quoted(setting.value) : setting.value
    }

    static func load(_ text: String, name: String) throws -> ConfigLoadResult {
        try TestConfig.load(text, name: name, environment: baseEnvironment)
    }

    @Test(arguments: cases)
    func everyFormatReadsTheKeyAlike(_ setting: KeyCase) throws {
        let unset = TestConfig.loadEnvironment(Self.baseEnvironment)
        #expect(unset.errors == [], "\(unset.summary)")
        let reference = try Self.load(Self.file(setting, name: "config.yaml"), name: "config.yaml")
        #expect(reference.errors == [], "\(reference.summary)")
        #expect(reference.options != unset.options, "\(setting.key) had no effect")
        for name in ["config.json", "config.toml", "config.properties"] {
            let result = try Self.load(Self.file(setting, name: name), name: name)
            #expect(result.errors == [], "\(name): \(result.summary)")
            #expect(result.options == reference.options, "\(name) differs for \(setting.key)")
        }
        var environment = Self.baseEnvironment
        environment[setting.key.uppercased()] = setting.value.replacingOccurrences(of: ", ", with: ",")
        let fromEnvironment = TestConfig.loadEnvironment(environment)
        #expect(fromEnvironment.errors == [], "\(fromEnvironment.summary)")
        #expect(fromEnvironment.options == reference.options, "the environment differs for \(setting.key)")
    }

    @Test func tableAvoidsTheBaseKeys() {
        let base = Set(Self.baseEnvironment.keys.map { $0.lowercased() })
        #expect(Set(Self.cases.map(\.key)).isDisjoint(with: base))
        #expect(Set(Self.cases.map(\.key)).isSubset(of: Set(SettingsCatalog.settings.map(\.key))))
    }
}
