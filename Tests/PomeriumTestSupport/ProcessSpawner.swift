import CLinux
import Foundation
import Glibc

/// Starts child processes with `posix_spawn`, an empty signal mask and default signal actions.
///
/// Foundation's `Process` is not used for test subprocesses: a test runner's threads may block
/// SIGTERM, which children inherit, and `Process.waitUntilExit` was seen hanging after its child
/// had already exited.
enum ProcessSpawner {
    /// Spawns `executable` with standard input from `inputPath` and output to the given
    /// descriptors, in a process group of its own. Returns the child's pid.
    static func spawn(
        executable: String,
        arguments: [String],
        environment: [String: String],
        inheritEnvironment: Bool = true,
        inputPath: String,
        outputDescriptor: Int32,
        errorDescriptor: Int32
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, errorDescriptor, 2)
        // The child gets only these three. A test's sockets that lack close-on-exec would
        // otherwise stay open in a server, which then seems to own another test's listener.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] {
            sigaddset(&defaultSignals, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        // A process group of its own, so stopping the child also reaches its own children.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )

        let base = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        let fullEnvironment = base.merging(environment) { _, new in new }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = fullEnvironment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw FixtureError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }
}

/// The result of a finished command.
public struct CommandResult: Sendable {
    /// The exit status, or 128 + the signal number when a signal ended the command.
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs a short command to completion for a test, with a time limit.
public enum CommandRunner {
    /// Runs `executable` with `arguments`, feeding `input` on standard input. The command is
    /// killed (its whole process group) when it runs longer than `timeoutSeconds`, and the
    /// call then throws.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        input: String = "",
        environment: [String: String] = [:],
        inheritEnvironment: Bool = true,
        timeoutSeconds: Double = 60
    ) throws -> CommandResult {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "command")
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputPath = directory.appendingPathComponent("stdin").path
        let outputPath = directory.appendingPathComponent("stdout").path
        let errorPath = directory.appendingPathComponent("stderr").path
        try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
        let output = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let error = open(errorPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(output)
            close(error)
        }
        guard output >= 0, error >= 0 else { throw FixtureError("cannot create output files in \(directory.path)") }

        let pid = try ProcessSpawner.spawn(
            executable: executable,
            arguments: arguments,
            environment: environment,
            inheritEnvironment: inheritEnvironment,
            inputPath: inputPath,
            outputDescriptor: output,
            errorDescriptor: error
        )
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var waitStatus: Int32 = 0
        while true {
            let result = waitpid(pid, &waitStatus, WNOHANG)
            if result == pid { break }
            if result < 0 && errno != EINTR {
                throw FixtureError("waitpid for \(executable) failed: errno \(errno)")
            }
            if Date() > deadline {
                kill(-pid, SIGKILL)
                _ = waitpid(pid, &waitStatus, 0)
                throw FixtureError(
                    "\(executable) \(arguments.prefix(2).joined(separator: " ")) timed out after \(timeoutSeconds) s")
            }
            usleep(2_000)
        }
        let signal = waitStatus & 0x7f
        let status = signal == 0 ? (waitStatus >> 8) & 0xff : 128 + signal
        return CommandResult(
            status: status,
            standardOutput: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            standardError: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        )
    }
}

extension CommandRunner {
    /// Runs the command as `run` does, waiting on a thread of its own, so async tests do not block
    /// a thread of Swift's small cooperative pool while the command runs.
    public static func runAsync(
        _ executable: String,
        _ arguments: [String],
        input: String = "",
        environment: [String: String] = [:],
        timeoutSeconds: Double = 60
    ) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    let result = try run(
                        executable,
                        arguments,
                        input: input,
                        environment: environment,
                        timeoutSeconds: timeoutSeconds
                    )
                    continuation.resume(returning: result)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}
