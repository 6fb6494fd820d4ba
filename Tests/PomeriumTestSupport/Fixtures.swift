import Foundation

/// A real server on a free loopback port for one test. `with…` functions stop it when the body
/// returns or throws.
public struct RunningServer: Sendable {
    public let port: Int
    public let process: ManagedProcess
    public let directory: URL

    public init(port: Int, process: ManagedProcess, directory: URL) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
}

public enum Fixtures {
    /// Runs `body` with a `redis-server` that keeps nothing on disk. `extraArguments` are passed on,
    /// for example `["--requirepass", "secret"]` or `["--maxmemory", "1mb"]`.
    public static func withRedis<T>(
        extraArguments: [String] = [],
        _ body: (RunningServer) async throws -> T
    ) async throws -> T {
        let server = try await offCooperativePool { try startRedis(extraArguments: extraArguments) }
        defer { server.process.stop() }
        return try await body(server)
    }

    /// Starts a `redis-server`; the caller stops it. `port` reuses a port, to restart on it.
    public static func startRedis(port: Int? = nil, extraArguments: [String] = []) throws -> RunningServer {
        if let port {
            return try launchRedis(port: port, extraArguments: extraArguments)
        }
        return try startOnFreePort { port in try launchRedis(port: port, extraArguments: extraArguments) }
    }

    static func launchRedis(port: Int, extraArguments: [String]) throws -> RunningServer {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "redis")
        let process = try ManagedProcess(
            name: "redis-server",
            executable: try findExecutable("redis-server"),
            arguments: [
                "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--protected-mode", "yes",
            ] + extraArguments,
            logDirectory: directory
        )
        try process.waitUntilListening(port: port)
        return RunningServer(port: port, process: process, directory: directory)
    }

    /// Runs `body` with the OpenID Connect provider `oidc-provider-mock` from the test venv. Its
    /// issuer is `http://127.0.0.1:<port>`.
    public static func withOIDCProvider<T>(
        extraArguments: [String] = [],
        _ body: (RunningServer) async throws -> T
    ) async throws -> T {
        let executable = RepositoryPaths.venv.appendingPathComponent("bin/oidc-provider-mock")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw FixtureError("\(executable.path) is missing; run scripts/bootstrap.sh first")
        }
        let server = try await offCooperativePool {
            try startOnFreePort { port in
                let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "oidc")
                let process = try ManagedProcess(
                    name: "oidc-provider-mock",
                    executable: executable,
                    arguments: ["--host", "127.0.0.1", "--port", String(port)] + extraArguments,
                    environment: ["PYTHONWARNINGS": "ignore", "NO_COLOR": "1"],
                    logDirectory: directory
                )
                try process.waitUntilListening(port: port)
                return RunningServer(port: port, process: process, directory: directory)
            }
        }
        defer { server.process.stop() }
        return try await body(server)
    }

    /// Runs `body` with an nginx whose `server {}` block contents are `serverBlock`, listening on
    /// 127.0.0.1:<port>. `@PORT@` in the block is replaced by the port.
    public static func withNginx<T>(
        serverBlock: String,
        httpBlock: String = "",
        _ body: (RunningServer) async throws -> T
    ) async throws -> T {
        let server = try await offCooperativePool {
            try startOnFreePort { port in
                try launchNginx(port: port, serverBlock: serverBlock, httpBlock: httpBlock)
            }
        }
        defer { server.process.stop() }
        return try await body(server)
    }

    static func launchNginx(port: Int, serverBlock: String, httpBlock: String) throws -> RunningServer {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "nginx")
        let config = """
            worker_processes 1;
            daemon off;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(directory.path)/body;
                proxy_temp_path \(directory.path)/proxy;
                fastcgi_temp_path \(directory.path)/fastcgi;
                uwsgi_temp_path \(directory.path)/uwsgi;
                scgi_temp_path \(directory.path)/scgi;
                \(httpBlock)
                server {
                    listen 127.0.0.1:\(port);
                    \(serverBlock.replacingOccurrences(of: "@PORT@", with: String(port)))
                }
            }
            """
        let configFile = directory.appendingPathComponent("nginx.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "nginx",
            executable: try findExecutable("nginx"),
            arguments: ["-c", configFile.path, "-p", directory.path, "-e", "\(directory.path)/error.log"],
            logDirectory: directory
        )
        try process.waitUntilListening(port: port)
        return RunningServer(port: port, process: process, directory: directory)
    }

    /// Runs `body` with the upstream that answers every request with a JSON echo of what it
    /// received: method, path, headers and body length.
    public static func withEchoUpstream<T>(_ body: (RunningServer) async throws -> T) async throws -> T {
        try await withPythonFixture(script: "echo_upstream.py", name: "echo-upstream", body)
    }

    /// Runs `body` with a WebSocket server that echoes every message, on any path.
    public static func withWebSocketEcho<T>(_ body: (RunningServer) async throws -> T) async throws -> T {
        try await withPythonFixture(script: "websocket_echo.py", name: "websocket-echo", body)
    }

    static func withPythonFixture<T>(
        script: String,
        name: String,
        _ body: (RunningServer) async throws -> T
    ) async throws -> T {
        guard FileManager.default.isExecutableFile(atPath: RepositoryPaths.python.path) else {
            throw FixtureError("\(RepositoryPaths.python.path) is missing; run scripts/bootstrap.sh first")
        }
        let server = try await offCooperativePool {
            try startOnFreePort { port in
                let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: name)
                let process = try ManagedProcess(
                    name: name,
                    executable: RepositoryPaths.python,
                    arguments: [RepositoryPaths.fixture(script).path, "--port", String(port)],
                    logDirectory: directory
                )
                try process.waitUntilListening(port: port)
                return RunningServer(port: port, process: process, directory: directory)
            }
        }
        defer { server.process.stop() }
        return try await body(server)
    }

    /// Runs blocking start-up work (spawning, polling the port) on a thread of its own, so that
    /// waiting for a server does not hold one of the few threads of Swift's cooperative pool
    /// that other tests running in parallel need.
    public static func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                do {
                    continuation.resume(returning: try work())
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }

    /// Starts a server with `launch` on a port that was free a moment ago. Another process can
    /// bind that port between the allocation and the server's own bind; the server then exits
    /// before listening, and the start is tried again on a new port, up to `attempts` times.
    public static func startOnFreePort(attempts: Int = 3, _ launch: (Int) throws -> RunningServer) throws
        -> RunningServer
    {
        var lastError: any Error = FixtureError("no start attempted")
        for _ in 0..<attempts {
            do {
                return try launch(try LoopbackPort.allocate())
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The absolute path of `name` on `PATH` or in the sbin folders, where Debian puts servers.
    public static func findExecutable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        for folder in folders {
            let candidate = URL(fileURLWithPath: folder).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FixtureError("\(name) not found on PATH; run scripts/bootstrap.sh to install it")
    }
}
