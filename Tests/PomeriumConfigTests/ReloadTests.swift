import Foundation
import PomeriumLogging
import PomeriumTestSupport
import Synchronization
import Testing

@testable import PomeriumConfig

/// Collects reload outcomes from the watcher thread for a test to wait on.
final class OutcomeRecorder: Sendable {
    private let outcomes = Mutex<[ReloadOutcome]>([])

    func record(_ outcome: ReloadOutcome) { outcomes.withLock { $0.append(outcome) } }

    /// Waits until `count` outcomes have arrived or `timeout` passes; returns them either way.
    func wait(count: Int, timeout: Duration = .seconds(10)) async -> [ReloadOutcome] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = outcomes.withLock { $0 }
            if current.count >= count { return current }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return outcomes.withLock { $0 }
    }
}

/// A config file in a fresh directory with a reloader over it.
struct ReloadFixture {
    let directory: URL
    let path: String
    let holder: ConfigSnapshotHolder
    let reloader: ConfigReloader
    let logs = InMemoryLogHandler.Store()

    init(_ text: String, environment: [String: String] = [:], layout: Layout = .plain) throws {
        directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "pomerium-reload")
        switch layout {
        case .plain:
            path = directory.appendingPathComponent("config.yaml").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        case .kubernetes:
            // The ConfigMap layout: config.yaml -> ..data/config.yaml, ..data -> ..<version>.
            let version = directory.appendingPathComponent("..v1")
            try FileManager.default.createDirectory(at: version, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: version.appendingPathComponent("config.yaml"))
            try FileManager.default.createSymbolicLink(
                atPath: directory.appendingPathComponent("..data").path, withDestinationPath: "..v1")
            path = directory.appendingPathComponent("config.yaml").path
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "..data/config.yaml")
        }
        let loader = ConfigLoader(configFile: path, environment: { environment })
        let result = loader.load()
        #expect(result.isValid, "\(result.summary)")
        holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: result.options, warnings: result.warnings, inputs: result.inputs, generation: 1))
        reloader = ConfigReloader(loader: loader, holder: holder, logger: .inMemory(store: logs))
    }

    enum Layout { case plain, kubernetes }

    func write(_ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Publishes a new ConfigMap version the way the kubelet does: a new directory, a temporary
    /// symlink to it, and an atomic rename over `..data`.
    func swapKubernetesVersion(_ text: String, version: String) throws {
        let folder = directory.appendingPathComponent("..\(version)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: folder.appendingPathComponent("config.yaml"))
        let temporary = directory.appendingPathComponent("..data_tmp").path
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: "..\(version)")
        #expect(rename(temporary, directory.appendingPathComponent("..data").path) == 0)
    }
}

@Suite struct ConfigReloaderTests {
    @Test func validChangeSwapsSnapshot() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        try fixture.write(TestConfig.baseYAML + "cookie_name: _second\ntimeout_read: 1m\ncache_store_path: other.db\n")
        // cookie_name and the listener's timeouts apply at once; the store path needs a restart.
        guard case .applied(let report) = fixture.reloader.reload() else {
            Issue.record("reload was not applied")
            return
        }
        #expect(report.generation == 2)
        #expect(report.changedKeys == ["cookie_name", "timeout_read", "cache_store_path"])
        #expect(report.hotKeys == ["cookie_name", "timeout_read"])
        #expect(report.restartKeys == ["cache_store_path"])
        #expect(fixture.holder.current.options.cookieName == "_second")
        #expect(fixture.holder.current.generation == 2)
    }

    @Test func invalidChangeKeepsSnapshot() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        let before = fixture.holder.current
        try fixture.write(
            TestConfig.baseYAML + "cookie_name: _second\ncache_store: memcached\npolicy: [{from: nope}]\n")
        guard case .rejected(let problems) = fixture.reloader.reload() else {
            Issue.record("invalid reload was not rejected")
            return
        }
        #expect(problems.contains { $0.key == "cache_store" })
        #expect(problems.contains { $0.key == "policy[0].from" })
        #expect(fixture.holder.current === before)
        #expect(fixture.holder.current.options.cookieName == "_first")
        let messages = fixture.logs.all.map(\.message)
        #expect(messages.contains { $0.contains("not a cache store") })
        #expect(messages.contains { $0.contains("previous one stays in effect") })
    }

    @Test func unchangedContentDoesNothing() throws {
        let text = TestConfig.baseYAML + "cookie_name: _same\n"
        let fixture = try ReloadFixture(text)
        let before = fixture.holder.current
        try fixture.write(text)
        guard case .unchanged = fixture.reloader.reload() else {
            Issue.record("rewriting the same bytes reloaded")
            return
        }
        #expect(fixture.holder.current === before)
    }

    @Test func restartOnlyChangeIsReported() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML)
        try fixture.write(
            TestConfig.baseYAML + "address: \":8443\"\nmetrics_address: 127.0.0.1:9090\nheaders: {X-A: b}\n")
        guard case .applied(let report) = fixture.reloader.reload() else {
            Issue.record("reload was not applied")
            return
        }
        #expect(report.restartKeys == ["address", "metrics_address"])
        #expect(report.hotKeys == ["headers"])
        let warnings = fixture.logs.all.filter { $0.level == .warning }.map(\.message)
        #expect(warnings.contains { $0.contains("setting address changed but needs a restart") })
        #expect(warnings.contains { $0.contains("setting metrics_address changed but needs a restart") })
    }

    @Test func generatedSharedSecretSurvivesReload() throws {
        let base = SettingDefaultsTests.base(without: ["shared_secret"])
        let fixture = try ReloadFixture(base + "cookie_name: _first\n")
        let before = fixture.holder.current.options
        #expect(before.sharedSecretIsGenerated)
        try fixture.write(base + "cookie_name: _second\n")
        guard case .applied(let report) = fixture.reloader.reload() else {
            Issue.record("reload was not applied")
            return
        }
        #expect(!report.changedKeys.contains("shared_secret"))
        #expect(fixture.holder.current.options.sharedSecret == before.sharedSecret)
        #expect(fixture.holder.current.options.signingKeyPEM == before.signingKeyPEM)
    }

    @Test func environmentChangeIsPickedUp() throws {
        let environment = Mutex(["COOKIE_NAME": "_env_one"])
        let path = try TestConfig.write(TestConfig.baseYAML)
        let loader = ConfigLoader(configFile: path, environment: { environment.withLock { $0 } })
        let first = loader.load()
        let holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: first.options, warnings: [], inputs: first.inputs, generation: 1))
        let reloader = ConfigReloader(loader: loader, holder: holder, logger: .inMemory(store: .init()))
        environment.withLock { $0["COOKIE_NAME"] = "_env_two" }
        guard case .applied = reloader.reload() else {
            Issue.record("environment change was not applied")
            return
        }
        #expect(holder.current.options.cookieName == "_env_two")
    }

    @Test func secretsNeverReachReloadLogs() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML)
        let secret = "c2VjcmV0LXRoYXQtaXMtbm90LTMyLWJ5dGVz"
        try fixture.write(TestConfig.baseYAML.replacingOccurrences(of: TestConfig.cookieSecret, with: secret))
        _ = fixture.reloader.reload()
        for entry in fixture.logs.all {
            #expect(!entry.jsonLine.contains(secret))
        }
    }
}

@Suite struct ConfigWatcherTests {
    static func startWatcher(_ fixture: ReloadFixture) throws -> (ConfigWatcher, OutcomeRecorder) {
        let recorder = OutcomeRecorder()
        let watcher = ConfigWatcher(
            reloader: fixture.reloader, debounce: .milliseconds(30), logger: .inMemory(store: fixture.logs),
            onOutcome: { recorder.record($0) })
        try watcher.start()
        return (watcher, recorder)
    }

    static func stop(_ watcher: ConfigWatcher) async {
        watcher.stop()
        let deadline = ContinuousClock.now + .seconds(5)
        while !watcher.hasStopped, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        #expect(watcher.hasStopped)
    }

    @Test func fileEditIsReloaded() async throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        let (watcher, recorder) = try Self.startWatcher(fixture)
        try fixture.write(TestConfig.baseYAML + "cookie_name: _second\n")
        let outcomes = await recorder.wait(count: 1)
        guard case .applied(let report)? = outcomes.last else {
            Issue.record("no applied reload: \(outcomes)")
            await Self.stop(watcher)
            return
        }
        #expect(report.changedKeys == ["cookie_name"])
        #expect(fixture.holder.current.options.cookieName == "_second")
        await Self.stop(watcher)
    }

    @Test func invalidEditIsRejected() async throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        let (watcher, recorder) = try Self.startWatcher(fixture)
        try fixture.write(TestConfig.baseYAML + "cookie_name: [broken\n")
        let outcomes = await recorder.wait(count: 1)
        guard case .rejected? = outcomes.last else {
            Issue.record("invalid edit was not rejected: \(outcomes)")
            await Self.stop(watcher)
            return
        }
        #expect(fixture.holder.current.generation == 1)
        #expect(fixture.holder.current.options.cookieName == "_first")
        await Self.stop(watcher)
    }

    @Test func kubernetesSymlinkSwapIsReloaded() async throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _v1\n", layout: .kubernetes)
        #expect(fixture.holder.current.options.cookieName == "_v1")
        let (watcher, recorder) = try Self.startWatcher(fixture)
        try fixture.swapKubernetesVersion(TestConfig.baseYAML + "cookie_name: _v2\n", version: "v2")
        let outcomes = await recorder.wait(count: 1)
        guard case .applied? = outcomes.last else {
            Issue.record("symlink swap was not applied: \(outcomes)")
            await Self.stop(watcher)
            return
        }
        #expect(fixture.holder.current.options.cookieName == "_v2")
        await Self.stop(watcher)
    }

    @Test func touchWithSameContentDoesNothing() async throws {
        let text = TestConfig.baseYAML + "cookie_name: _same\n"
        let fixture = try ReloadFixture(text)
        let (watcher, recorder) = try Self.startWatcher(fixture)
        try fixture.write(text)
        let outcomes = await recorder.wait(count: 1)
        guard case .unchanged? = outcomes.last else {
            Issue.record("same content was not reported unchanged: \(outcomes)")
            await Self.stop(watcher)
            return
        }
        #expect(fixture.holder.current.generation == 1)
        await Self.stop(watcher)
    }

    @Test func burstOfWritesReloadsOnce() async throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        let (watcher, recorder) = try ConfigWatcherTests.startWatcherWithLongDebounce(fixture)
        for index in 0..<5 {
            try fixture.write(TestConfig.baseYAML + "cookie_name: _burst\(index)\n")
        }
        let outcomes = await recorder.wait(count: 1)
        #expect(fixture.holder.current.options.cookieName == "_burst4")
        #expect(outcomes.count == 1)
        await Self.stop(watcher)
    }

    @Test func busyDirectoryStillReloads() async throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML + "cookie_name: _first\n")
        let (watcher, recorder) = try Self.startWatcher(fixture)
        try fixture.write(TestConfig.baseYAML + "cookie_name: _second\n")
        // Another file in the directory changes every few milliseconds, so the directory never
        // stays quiet for the 30 ms debounce; the reload must still happen.
        let noise = fixture.directory.appendingPathComponent("access.log")
        let deadline = ContinuousClock.now + .seconds(10)
        var count = 0
        while fixture.holder.current.generation == 1, ContinuousClock.now < deadline {
            try Data("line \(count)\n".utf8).write(to: noise)
            count += 1
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(fixture.holder.current.options.cookieName == "_second")
        #expect(await recorder.wait(count: 1).isEmpty == false)
        await Self.stop(watcher)
    }

    static func startWatcherWithLongDebounce(_ fixture: ReloadFixture) throws -> (ConfigWatcher, OutcomeRecorder) {
        let recorder = OutcomeRecorder()
        let watcher = ConfigWatcher(
            reloader: fixture.reloader, debounce: .milliseconds(300), logger: .inMemory(store: fixture.logs),
            onOutcome: { recorder.record($0) })
        try watcher.start()
        return (watcher, recorder)
    }

    // The inotify mask bits of <sys/inotify.h>.
    static let modified: UInt32 = 0x2
    static let movedTo: UInt32 = 0x80
    static let created: UInt32 = 0x100
    static let queueOverflow: UInt32 = 0x4000

    /// Encodes one `struct inotify_event` as the kernel writes it: wd, mask, cookie, len, padded name.
    static func event(watch: Int32, mask: UInt32, name: String) -> [UInt8] {
        var name = Array(name.utf8) + [0]
        while name.count % 16 != 0 { name.append(0) }
        var bytes: [UInt8] = []
        for word in [UInt32(bitPattern: watch), mask, 0, UInt32(name.count)] {
            bytes += (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) }
        }
        return bytes + name
    }

    @Test func otherFilesInTheDirectoryAreIgnored() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML)
        let watcher = ConfigWatcher(reloader: fixture.reloader, logger: .inMemory(store: fixture.logs))
        try watcher.start()
        defer { watcher.stop() }
        // The config directory is the first watch of a new inotify instance.
        let logLine = Self.event(watch: 1, mask: Self.modified, name: "config.yaml.log")
        let swapFile = Self.event(watch: 1, mask: Self.created, name: ".config.yaml.swp")
        let edit = Self.event(watch: 1, mask: Self.movedTo, name: "config.yaml")
        #expect(!watcher.eventsAreRelevant(ArraySlice(logLine + swapFile)))
        #expect(watcher.eventsAreRelevant(ArraySlice(logLine + edit)))
        #expect(watcher.eventsAreRelevant(ArraySlice(Self.event(watch: -1, mask: Self.queueOverflow, name: ""))))
        #expect(!watcher.eventsAreRelevant(ArraySlice(Self.event(watch: 7, mask: Self.modified, name: "config.yaml"))))
    }

    @Test func directoryWithTwoNamesKeepsBoth() throws {
        // The certificate is named through a symbolic link to the config directory, so both
        // watches land on one inotify descriptor.
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "pomerium-two-names")
        let link = directory.path + "-link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: directory.path)
        defer { try? FileManager.default.removeItem(atPath: link) }
        try TestMaterial.serverCertificate.write(
            toFile: directory.appendingPathComponent("tls.crt").path, atomically: true, encoding: .utf8)
        try TestMaterial.serverKey.write(
            toFile: directory.appendingPathComponent("tls.key").path, atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("config.yaml").path
        let text =
            SettingDefaultsTests.base(without: ["insecure_server"])
            + "certificate_file: \(link)/tls.crt\ncertificate_key_file: \(link)/tls.key\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let loader = ConfigLoader(configFile: path, environment: { [:] })
        let result = loader.load()
        try #require(result.isValid, "\(result.summary)")
        let holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: result.options, warnings: [], inputs: result.inputs, generation: 1))
        let reloader = ConfigReloader(loader: loader, holder: holder, logger: .inMemory(store: .init()))
        let watcher = ConfigWatcher(reloader: reloader, logger: .inMemory(store: .init()))
        try watcher.start()
        defer { watcher.stop() }
        #expect(watcher.eventsAreRelevant(ArraySlice(Self.event(watch: 1, mask: Self.movedTo, name: "config.yaml"))))
        #expect(watcher.eventsAreRelevant(ArraySlice(Self.event(watch: 1, mask: Self.movedTo, name: "tls.crt"))))
        #expect(!watcher.eventsAreRelevant(ArraySlice(Self.event(watch: 1, mask: Self.modified, name: "other"))))
    }

    @Test func kubernetesDataLinkIsRelevant() throws {
        let fixture = try ReloadFixture(TestConfig.baseYAML, layout: .kubernetes)
        let watcher = ConfigWatcher(reloader: fixture.reloader, logger: .inMemory(store: fixture.logs))
        let directory = (fixture.path as NSString).deletingLastPathComponent
        #expect(watcher.relevantPaths == [directory + "/config.yaml", directory + "/..data"])
    }

    @Test func missingDirectoryFailsToStart() throws {
        let loader = ConfigLoader(configFile: "/nonexistent-dir/config.yaml", environment: { [:] })
        let options = Options()
        let holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: options, warnings: [], inputs: loader.readInputs(), generation: 1))
        let reloader = ConfigReloader(loader: loader, holder: holder, logger: .inMemory(store: .init()))
        let watcher = ConfigWatcher(reloader: reloader, logger: .inMemory(store: .init()))
        #expect(throws: (any Error).self) { try watcher.start() }
    }
}
