import Foundation
import Glibc
import PomeriumCore
import PomeriumSessions
import PomeriumSessionsLMDB
import PomeriumTestSupport
import Testing

@Suite struct LMDBStoreTests {
    private func temporaryPath() throws -> String {
        try RepositoryPaths.makeTemporaryDirectory(prefix: "lmdb").appendingPathComponent("bolt.db").path
    }

    @Test(arguments: KeyValueStoreSuite.Case.allCases)
    func sharedSuite(_ testCase: KeyValueStoreSuite.Case) async throws {
        let clock = ManualWallClock()
        let path = try temporaryPath()
        let suite = KeyValueStoreSuite(
            ttl: .seconds(10),
            advanceTime: { clock.advance(by: StoreLimits.seconds($0)) },
            makeStore: { try LMDBStore(path: path, clock: clock) }
        )
        try await suite.run(testCase)
    }

    @Test func entriesSurviveReopen() async throws {
        let path = try temporaryPath()
        do {
            let store = try LMDBStore(path: path)
            try await store.set("kept", value: [1, 2, 3], ttl: .seconds(600))
        }
        let reopened = try LMDBStore(path: path)
        #expect(try await reopened.get("kept") == [1, 2, 3])
    }

    @Test func filesAreOwnerOnly() throws {
        let path = try temporaryPath()
        let store = try LMDBStore(path: path)
        for file in [path, path + "-lock"] {
            var status = stat()
            #expect(stat(file, &status) == 0)
            #expect(status.st_mode & 0o777 == 0o600, "mode of \(file)")
            #expect(status.st_mode & S_IFMT == S_IFREG, "\(file) is a plain file, not a folder")
        }
        _ = store
    }

    @Test func looseModeOfOldFileIsTightened() throws {
        let path = try temporaryPath()
        do { _ = try LMDBStore(path: path) }
        chmod(path, 0o644)
        _ = try LMDBStore(path: path)
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
    }

    @Test func expiredEntriesAreSweptOnOpen() async throws {
        let clock = ManualWallClock()
        let path = try temporaryPath()
        do {
            let store = try LMDBStore(path: path, clock: clock)
            try await store.set("short", value: [1], ttl: .seconds(5))
            try await store.set("long", value: [2], ttl: .seconds(500))
            #expect(try store.entryCount() == 3, "two entries and the marker of the sweep on open")
        }
        clock.advance(by: 10)
        let reopened = try LMDBStore(path: path, clock: clock)
        #expect(try reopened.entryCount() == 2, "the entry that lives on and the sweep's marker")
        #expect(try await reopened.get("long") == [2])
    }

    @Test func writesSweepPeriodically() async throws {
        let clock = ManualWallClock()
        let store = try LMDBStore(path: try temporaryPath(), sweepInterval: .seconds(60), clock: clock)
        for index in 0..<50 { try await store.set("entry-\(index)", value: [1], ttl: .seconds(5)) }
        clock.advance(by: 30)
        try await store.set("trigger", value: [1], ttl: .seconds(500))
        #expect(try store.entryCount() == 52, "no sweep before the interval has passed")
        clock.advance(by: 31)
        try await store.set("trigger", value: [2], ttl: .seconds(500))
        #expect(try store.entryCount() == 2, "the trigger entry and the sweep's marker")
    }

    @Test func mapGrowsWhenFull() async throws {
        let store = try LMDBStore(path: try temporaryPath(), initialMapSize: 65536, maximumMapSize: 64 << 20)
        let value = [UInt8](repeating: 9, count: 100_000)
        for index in 0..<40 { try await store.set("entry-\(index)", value: value, ttl: .seconds(60)) }
        #expect(store.mapSize > 65536)
        #expect(try await store.get("entry-0") == value)
    }

    @Test func fullStoreReportsAndRecovers() async throws {
        let clock = ManualWallClock()
        let path = try temporaryPath()
        let store = try LMDBStore(path: path, initialMapSize: 1 << 20, maximumMapSize: 1 << 20, clock: clock)
        let value = [UInt8](repeating: 9, count: 50_000)
        var fullError: StoreError?
        for index in 0..<100 {
            do {
                try await store.set("entry-\(index)", value: value, ttl: .seconds(5))
            } catch {
                fullError = error
                break
            }
        }
        let error = try #require(fullError)
        #expect(error.kind == .full)
        #expect(error.message.contains("cache_store_path \(path) is full"))
        clock.advance(by: 10)
        try await store.set("after-expiry", value: value, ttl: .seconds(5))
        #expect(try await store.get("after-expiry") == value)
    }

    @Test func missingFolderIsAConfigurationError() throws {
        let error = #expect(throws: StoreError.self) { try LMDBStore(path: "/nonexistent-pomerium-folder/bolt.db") }
        #expect(error?.kind == .invalidConfiguration)
        #expect(error?.message.contains("folder does not exist") == true)
    }

    @Test func otherFileFormatIsAConfigurationError() throws {
        let path = try temporaryPath()
        try Data(repeating: 0x42, count: 16384).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try LMDBStore(path: path) }
        #expect(error?.kind == .invalidConfiguration)
        #expect(error?.message.contains("not an LMDB file") == true)
    }

    @Test func secondOpenInProcessIsRejected() throws {
        let path = try temporaryPath()
        let first = try LMDBStore(path: path)
        let error = #expect(throws: StoreError.self) { try LMDBStore(path: path) }
        #expect(error?.kind == .invalidConfiguration)
        _ = first
        _ = try first.entryCount()
    }

    @Test func commitsSurviveSIGKILL() async throws {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "lmdb-crash")
        let path = directory.appendingPathComponent("bolt.db").path
        let executable = try Self.crashHelperURL()
        let process = try ManagedProcess(
            name: "store-crash-helper", executable: executable, arguments: [path, "100000"],
            logDirectory: directory)
        let deadline = Date().addingTimeInterval(30)
        while Self.committedIndexes(process.output).count < 200 && process.isRunning && Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        process.send(signal: SIGKILL)
        while process.isRunning { try await Task.sleep(for: .milliseconds(1)) }
        let committed = Self.committedIndexes(process.output)
        #expect(committed.count >= 200, "helper output: \(process.output.suffix(500))")
        #expect(committed.count < 100_000, "the helper was killed before it finished")

        let store = try LMDBStore(path: path)
        var missing: [Int] = []
        for index in committed where try await store.get("entry-\(index)") != Array("value-\(index)".utf8) {
            missing.append(index)
        }
        #expect(missing.isEmpty, "entries reported committed but missing after SIGKILL: \(missing.prefix(10))")
    }

    /// The indexes on complete `committed <index>` lines; a line cut by the kill is ignored.
    private static func committedIndexes(_ output: String) -> [Int] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()  // empty, or a partial line
        return lines.compactMap { line in line.hasPrefix("committed ") ? Int(line.dropFirst(10)) : nil }
    }

    /// The helper executable, built next to the test bundle because the test target depends on it.
    private static func crashHelperURL() throws -> URL {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw FixtureError("cannot read /proc/self/exe") }
        let executable = URL(
            fileURLWithPath: String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        // …/debug/pomeriumPackageTests.xctest: the helper sits in the same folder.
        let candidate = executable.deletingLastPathComponent().appendingPathComponent("StoreCrashHelper")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw FixtureError("\(candidate.path) is missing; build it with swift build --build-tests")
        }
        return candidate
    }
}
