import Foundation
import Glibc

/// A server process started for one test. Its output goes to a log file that failure messages
/// name. `stop()` ends it with SIGTERM, then SIGKILL after a grace period; `deinit` does the same
/// so a test that throws still leaves no process behind.
///
/// The process is started by `ProcessSpawner`, with an empty signal mask.
public final class ManagedProcess: @unchecked Sendable {
    // @unchecked: `exitStatus` and `reaped` are only touched under `lock`; the rest is immutable.
    public let name: String
    public let logFile: URL
    public let processIdentifier: pid_t
    private let lock = NSLock()
    private var reaped = false
    private var exitStatus: Int32 = 0

    /// Starts `executable` with `arguments`. `environment` adds to the test's own environment.
    public init(
        name: String,
        executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        logDirectory: URL
    ) throws {
        self.name = name
        self.logFile = logDirectory.appendingPathComponent("\(name).log")
        let logDescriptor = open(logFile.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard logDescriptor >= 0 else { throw FixtureError("\(name): cannot create log file \(logFile.path)") }
        defer { close(logDescriptor) }

        processIdentifier = try ProcessSpawner.spawn(
            executable: executable.path,
            arguments: arguments,
            environment: environment,
            inputPath: "/dev/null",
            outputDescriptor: logDescriptor,
            errorDescriptor: logDescriptor
        )
    }

    deinit { stop() }

    /// Whether the process has not exited yet.
    public var isRunning: Bool {
        lock.withLock { !reapIfExited(blocking: false) }
    }

    /// The log file's text, for failure messages.
    public var output: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Waits until a process of this process's group listens on 127.0.0.1:`port`, or fails with
    /// the process's output. A connection to the port proves nothing: it can reach a server of a
    /// test running in parallel that listens on the port for a moment while this one is still
    /// starting.
    public func waitUntilListening(port: Int, timeoutSeconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            switch LoopbackPort.listener(of: port, isInProcessGroup: processIdentifier) {
            case .some(true):
                return
            case .some(false):
                break
            case .none:
                throw FixtureError(
                    "\(name): /proc/net/tcp cannot be read, so the owner of port \(port) is unknown; "
                        + "run the tests on Linux with /proc mounted")
            }
            if !isRunning {
                let status = lock.withLock { exitStatus }
                throw FixtureError("\(name) exited (wait status \(status)) before listening on \(port):\n\(output)")
            }
            usleep(50_000)
        }
        throw FixtureError("\(name) did not listen on 127.0.0.1:\(port) within \(timeoutSeconds) s:\n\(output)")
    }

    /// Sends `signal` to the process without waiting.
    public func send(signal: Int32) {
        if isRunning { kill(processIdentifier, signal) }
    }

    /// Ends the process group: SIGTERM, then SIGKILL after `graceSeconds`, and reaps the process.
    public func stop(graceSeconds: Double = 5) {
        guard isRunning else { return }
        kill(-processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(graceSeconds)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning {
            kill(-processIdentifier, SIGKILL)
            lock.withLock { _ = reapIfExited(blocking: true) }
        }
    }

    /// Reaps the child if it has exited; returns whether it has. Call under `lock`.
    private func reapIfExited(blocking: Bool) -> Bool {
        if reaped { return true }
        var status: Int32 = 0
        let result = waitpid(processIdentifier, &status, blocking ? 0 : WNOHANG)
        if result == processIdentifier || (result < 0 && errno == ECHILD) {
            reaped = true
            exitStatus = status
            return true
        }
        return false
    }
}
