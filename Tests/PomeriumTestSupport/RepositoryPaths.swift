import Foundation

/// Paths inside this checkout, found from this source file's location so tests run from any
/// working directory.
public enum RepositoryPaths {
    /// The checkout's root folder.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // PomeriumTestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// The Python virtual environment that `scripts/bootstrap.sh` creates.
    public static var venv: URL { root.appendingPathComponent(".build/venv") }

    /// The venv's Python interpreter.
    public static var python: URL { venv.appendingPathComponent("bin/python") }

    /// Scripts that the fixtures run, under `tests/fixtures`.
    public static func fixture(_ name: String) -> URL {
        root.appendingPathComponent("tests/fixtures").appendingPathComponent(name)
    }

    /// A new empty temporary folder for one test.
    public static func makeTemporaryDirectory(prefix: String = "pomerium-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
