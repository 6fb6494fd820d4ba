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
        let process = Process()
        process.executableURL = RepositoryPaths.python
        process.arguments = ["-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        // Read both pipes before waiting, so a large output cannot fill a pipe and stall the child.
        let errorData = LockedData()
        let errorReader = Thread { errorData.set(stderr.fileHandleForReading.readDataToEndOfFile()) }
        errorReader.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errorData.isSet { usleep(1000) }
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errorData.value, as: UTF8.self)
            throw FixtureError("python exited with status \(process.terminationStatus): \(message)")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?

    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}
