import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

/// Every file under config/examples validates once the secrets the examples leave to the
/// environment are set.
@Suite struct ExampleConfigTests {
    static let examples = RepositoryPaths.root.appendingPathComponent("config/examples")

    static let environment: [String: String] = [
        "COOKIE_SECRET": TestConfig.cookieSecret,
        "SHARED_SECRET": TestConfig.sharedSecret,
        "IDP_CLIENT_SECRET": "example-client-secret",
        "CERTIFICATE": TestConfig.base64(TestMaterial.serverCertificate),
        "CERTIFICATE_KEY": TestConfig.base64(TestMaterial.serverKey),
        "CACHE_STORE_PASSWORD": "example-redis-password",
    ]

    static func load(_ relativePath: String) -> ConfigLoadResult {
        let path = examples.appendingPathComponent(relativePath).path
        return ConfigLoader(configFile: path, environment: { environment }).load()
    }

    @Test(arguments: [
        "config.yaml", "config.json", "config.toml", "config.properties", "split/authenticate.yaml",
        "split/authorize.yaml", "split/cache.yaml", "split/proxy.yaml", "forward-auth/config.yaml",
    ])
    func exampleValidates(_ relativePath: String) {
        let result = Self.load(relativePath)
        #expect(result.errors == [], "\(result.summary)")
        // The only expected warning: the CERTIFICATE variables win over certificate_file.
        #expect(result.warnings.allSatisfy { $0.key == "certificate_file" }, "\(result.summary)")
    }

    @Test(arguments: ["config.json", "config.toml", "config.properties"])
    func allInOneFormatsAgree(_ relativePath: String) {
        let reference = Self.load("config.yaml").options
        #expect(Self.load(relativePath).options == reference)
    }

    @Test func allInOneExampleHasFourRoutes() {
        let options = Self.load("config.yaml").options
        #expect(options.services == .all)
        #expect(options.policy.count == 4)
        #expect(options.policy[3].prefix == "/api/")
        #expect(options.grpcAddress == "127.0.0.1:5443")
    }

    @Test func splitExamplesRunOneServiceEach() {
        #expect(Self.load("split/authenticate.yaml").options.services == .authenticate)
        #expect(Self.load("split/authorize.yaml").options.services == .authorize)
        #expect(Self.load("split/cache.yaml").options.redis?.host == "redis.internal")
        #expect(Self.load("split/proxy.yaml").options.authorizeServiceURL?.host == "pomerium-authorize.internal")
    }

    @Test func everyExampleFileIsCovered() throws {
        let enumerator = try #require(FileManager.default.enumerator(atPath: Self.examples.path))
        let files = enumerator.compactMap { $0 as? String }.filter {
            ["yaml", "json", "toml", "properties"].contains(($0 as NSString).pathExtension)
        }
        #expect(
            Set(files) == [
                "config.yaml", "config.json", "config.toml", "config.properties", "split/authenticate.yaml",
                "split/authorize.yaml", "split/cache.yaml", "split/proxy.yaml", "forward-auth/config.yaml",
            ])
    }
}

/// Runs the built `pomerium` binary with `-validate`. Build it first: swift build --product pomerium.
@Suite struct ValidateCommandTests {
    static func binary() -> URL? {
        let candidates = [".build/debug/pomerium", ".build/release/pomerium"].map {
            RepositoryPaths.root.appendingPathComponent($0)
        }
        let existing = candidates.filter { FileManager.default.isExecutableFile(atPath: $0.path) }
        return existing.max { lhs, rhs in
            let left =
                (try? lhs.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate)
                ?? .distantPast
            let right =
                (try? rhs.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate)
                ?? .distantPast
            return left < right
        }
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let executable = try #require(binary(), "build the binary first: swift build --product pomerium")
        let result = try CommandRunner.run(
            executable.path,
            arguments,
            environment: environment,
            inheritEnvironment: false
        )
        return (result.status, result.standardOutput + result.standardError)
    }

    @Test func goodFileExitsZero() throws {
        let path = try TestConfig.write(TestConfig.baseYAML + "cookie_name: _validated\n")
        let (status, output) = try Self.run(["-config", path, "-validate"], environment: [:])
        #expect(status == 0, "\(output)")
        #expect(output.contains("configuration is valid"))
        #expect(output.contains("cookie_name: _validated"))
        #expect(output.contains("cookie_secret: [redacted]"))
        #expect(!output.contains(TestConfig.cookieSecret))
        #expect(!output.contains(TestConfig.sharedSecret))
        #expect(!output.contains("client-secret-value"))
    }

    @Test func badFileExitsOneAndListsEveryError() throws {
        let text = TestConfig.baseYAML + "cache_store: memcached\ncookie_samesite: sometimes\n"
        let path = try TestConfig.write(text)
        let (status, output) = try Self.run(["-config", path, "-validate"], environment: [:])
        #expect(status == 1)
        let cacheLine = try #require(TestConfig.line(of: "cache_store:", in: text))
        #expect(output.contains("error: \(path):\(cacheLine): cache_store:"))
        #expect(output.contains("cookie_samesite"))
        #expect(output.contains("configuration is invalid: 2 errors"))
        #expect(output.contains("effective settings"))
    }

    @Test func environmentOverridesFileInBinary() throws {
        let path = try TestConfig.write(TestConfig.baseYAML)
        let (status, output) = try Self.run(["-config", path, "-validate"], environment: ["COOKIE_NAME": "_from_env"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("cookie_name: _from_env"))
    }

    @Test func invalidConfigWithoutValidateExitsOne() throws {
        let path = try TestConfig.write(TestConfig.baseYAML + "cache_store: memcached\n")
        let (status, output) = try Self.run(["-config", path], environment: [:])
        #expect(status == 1)
        #expect(output.contains("cache_store"))
        #expect(output.contains("the configuration is invalid"))
    }

    @Test func unreachableProviderStopsTheStart() throws {
        // Port 9 on loopback refuses connections, so discovery fails without leaving the machine.
        let path = try TestConfig.write(
            TestConfig.baseYAML + "address: 127.0.0.1:0\nidp_provider_url: http://127.0.0.1:9\n")
        let (status, output) = try Self.run(["-config", path], environment: [:])
        #expect(status == 1)
        #expect(output.contains("idp_provider_url"))
    }

    @Test func missingFileIsNamed() throws {
        let (status, output) = try Self.run(["-config", "/nonexistent/pomerium.yaml", "-validate"], environment: [:])
        #expect(status == 1)
        #expect(output.contains("cannot read config file \"/nonexistent/pomerium.yaml\""))
    }
}
