import Foundation

/// Runs Python snippets in the venv that `scripts/bootstrap.sh` creates, for cross-checks against
/// reference libraries such as PyJWT and jwcrypto.
public enum PythonRunner {
    /// Whether the venv's interpreter exists.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: RepositoryPaths.python.path)
    }

    /// Runs `script` with `input` on standard input and returns standard output.
    ///
    /// - Throws: `FixtureError` when the venv is missing or the script exits non-zero; the message
    ///   carries the script's standard error.
    public static func run(_ script: String, input: String = "") throws -> String {
        guard isAvailable else {
            throw FixtureError("Python venv not found at \(RepositoryPaths.python.path); run scripts/bootstrap.sh")
        }
        let result = try CommandRunner.run(RepositoryPaths.python.path, ["-c", script], input: input)
        guard result.status == 0 else {
            throw FixtureError("python exited with status \(result.status): \(result.standardError)")
        }
        return result.standardOutput
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?

    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
