import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

/// Helpers that write a configuration to a temporary file and load it.
enum TestConfig {
    /// A fixed cookie secret: base64 of 32 bytes.
    static let cookieSecret = "KJZ6E0ZfEaX5zLwkBkdUCF+qtUwEMhcKNtXWjPgPUnA="
    /// A fixed shared secret: base64 of 32 bytes.
    static let sharedSecret = "aD9vAaNiZcd9W3tYNhUqOmkPu0TmPPaCfCOcqNDhZ/0="

    /// A valid all-in-one configuration without routes, to which tests add lines.
    static let baseYAML = """
        insecure_server: true
        shared_secret: \(sharedSecret)
        cookie_secret: \(cookieSecret)
        authenticate_service_url: https://authenticate.example.test
        idp_provider: google
        idp_client_id: client.example.test
        idp_client_secret: client-secret-value

        """

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// Writes `text` to a new temporary file named `name` and returns its path.
    static func write(_ text: String, name: String = "config.yaml") throws -> String {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "pomerium-config")
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Loads `text` as a file named `name`, with `environment` as the whole environment.
    static func load(_ text: String, name: String = "config.yaml", environment: [String: String] = [:]) throws
        -> ConfigLoadResult
    {
        let path = try write(text, name: name)
        return ConfigLoader(configFile: path, environment: { environment }).load()
    }

    /// Loads the base configuration with `extra` lines appended.
    static func loadBase(_ extra: String, environment: [String: String] = [:]) throws -> ConfigLoadResult {
        try load(baseYAML + extra, environment: environment)
    }

    /// Loads the environment alone, with no file.
    static func loadEnvironment(_ environment: [String: String]) -> ConfigLoadResult {
        ConfigLoader(configFile: nil, environment: { environment }).load()
    }

    /// The 1-based line of the first line of `text` that contains `marker`.
    static func line(of marker: String, in text: String) -> Int? {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(marker) }.map { $0 + 1 }
    }
}

extension ConfigLoadResult {
    /// The problems about `key`.
    func problems(for key: String) -> [ConfigProblem] { problems.filter { $0.key == key } }

    /// The error messages, one per line, for test failure output.
    var summary: String { problems.map(\.description).joined(separator: "\n") }
}
