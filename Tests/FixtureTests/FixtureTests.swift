import Foundation
import PomeriumTestSupport
import Synchronization
import Testing

/// The real servers that integration tests rely on start on a free loopback port, answer, and are
/// gone after the `with…` block, also when the block throws.
@Suite(.serialized) struct FixtureTests {
    @Test func redisStartsAnswersAndStops() async throws {
        var pid: Int32 = 0
        try await Fixtures.withRedis { server in
            pid = server.process.processIdentifier
            let connection = try LoopbackConnection(port: server.port)
            try connection.send("PING\r\n")
            #expect(connection.receive(until: { $0.hasSuffix("\r\n") }) == "+PONG\r\n")
        }
        #expect(!processExists(pid))
    }

    @Test func oidcProviderServesDiscovery() async throws {
        try await Fixtures.withOIDCProvider { server in
            let response = try LoopbackConnection.httpGet(port: server.port, path: "/.well-known/openid-configuration")
            #expect(response.hasPrefix("HTTP/1.1 200"))
            #expect(
                response.contains("\"issuer\": \"http://127.0.0.1:\(server.port)\"")
                    || response.contains("\"issuer\":\"http://127.0.0.1:\(server.port)\""))
            #expect(response.contains("authorization_endpoint"))
        }
    }

    @Test func nginxServesAConfiguredBlock() async throws {
        var pid: Int32 = 0
        try await Fixtures.withNginx(serverBlock: "location / { return 200 'nginx fixture on @PORT@'; }") { server in
            pid = server.process.processIdentifier
            let response = try LoopbackConnection.httpGet(port: server.port, path: "/")
            #expect(response.hasPrefix("HTTP/1.1 200"))
            #expect(response.hasSuffix("nginx fixture on \(server.port)"))
        }
        #expect(!processExists(pid))
    }

    @Test func echoUpstreamReturnsHeadersAsJSON() async throws {
        try await Fixtures.withEchoUpstream { server in
            let response = try LoopbackConnection.httpGet(
                port: server.port,
                path: "/a?b=1",
                headers: ["X-Test-Header": "seen"]
            )
            #expect(response.hasPrefix("HTTP/1.1 200"))
            let body = try #require(response.components(separatedBy: "\r\n\r\n").last)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(json["path"] as? String == "/a?b=1")
            let headers = try #require(json["headers"] as? [[String]])
            #expect(headers.contains(["X-Test-Header", "seen"]))
        }
    }

    @Test func webSocketEchoAcceptsAnUpgrade() async throws {
        try await Fixtures.withWebSocketEcho { server in
            let connection = try LoopbackConnection(port: server.port)
            try connection.send(
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            let response = connection.receive(until: { $0.contains("\r\n\r\n") })
            #expect(response.hasPrefix("HTTP/1.1 101"))
            // The accept value for this key is given in RFC 6455, section 1.3.
            #expect(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        }
    }

    @Test func serverStopsWhenTheBodyThrows() async throws {
        var pid: Int32 = 0
        await #expect(throws: FixtureError.self) {
            try await Fixtures.withRedis { server in
                pid = server.process.processIdentifier
                throw FixtureError("thrown on purpose")
            }
        }
        #expect(pid != 0)
        #expect(!processExists(pid))
    }

    @Test func listenerOwnerIsChecked() throws {
        let held = try HeldListener()
        defer { held.close() }
        #expect(LoopbackPort.listener(of: held.port, isInProcessGroup: getpgrp()) == true)
        #expect(LoopbackPort.listener(of: held.port, isInProcessGroup: 1) == false)
    }

    /// A server started on a port that a listener of this process already uses must not pass
    /// for started: it fails to bind and exits, and the wait reports that.
    @Test func takenPortIsAStartFailure() throws {
        let held = try HeldListener()
        defer { held.close() }
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "echo-taken")
        let process = try ManagedProcess(
            name: "echo-upstream",
            executable: RepositoryPaths.python,
            arguments: [RepositoryPaths.fixture("echo_upstream.py").path, "--port", String(held.port)],
            logDirectory: directory
        )
        defer { process.stop() }
        #expect(throws: FixtureError.self) {
            try process.waitUntilListening(port: held.port)
        }
    }

    /// A listener of this process that closes after each connection and listens again moments
    /// later, as the servers of parallel tests come and go on one port, must not pass for the
    /// started server, which never listens. Taken for it, it got the requests meant for that
    /// server: an OIDC test then read another server's JSON as its discovery document.
    @Test func comingAndGoingListenerIsNotTheServer() throws {
        let squatter = try FlappingListener(seconds: 4)
        defer { squatter.stop() }
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "sleep-flapping")
        let process = try ManagedProcess(
            name: "sleep", executable: try Fixtures.findExecutable("sleep"), arguments: ["3"],
            logDirectory: directory)
        defer { process.stop() }
        #expect(throws: FixtureError.self) {
            try process.waitUntilListening(port: squatter.port, timeoutSeconds: 2)
        }
    }

    /// A server that exits because another process listens on its port is reported as exited at
    /// once, not after the whole timeout.
    @Test func exitWhilePortTakenIsReportedAtOnce() throws {
        let held = try HeldListener()
        defer { held.close() }
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "false-taken")
        let process = try ManagedProcess(
            name: "false", executable: try Fixtures.findExecutable("false"), arguments: [],
            logDirectory: directory)
        defer { process.stop() }
        let started = Date()
        do {
            try process.waitUntilListening(port: held.port, timeoutSeconds: 15)
            Issue.record("the wait returned for a process that exited")
        } catch let error as FixtureError {
            #expect(error.description.contains("exited"))
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// A test's socket without close-on-exec must not stay open in a server it starts, or the
    /// server would seem to own a listener of another test.
    @Test func childGetsOnlyStandardDescriptors() throws {
        let inherited = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(inherited >= 3)
        defer { close(inherited) }
        let script = """
            import os, stat, sys
            try:
                print("socket" if stat.S_ISSOCK(os.fstat(int(sys.argv[1])).st_mode) else "other")
            except OSError:
                print("closed")
            """
        let result = try CommandRunner.run(RepositoryPaths.python.path, ["-c", script, String(inherited)])
        #expect(result.status == 0)
        #expect(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) != "socket")
    }

    private func processExists(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        // A reaped child no longer exists; kill with signal 0 only checks.
        return kill(pid, 0) == 0
    }
}

/// A socket of the test process listening on 127.0.0.1:`port`, by default a free port.
struct HeldListener {
    let descriptor: Int32
    let port: Int

    init(port requested: Int = 0) throws {
        // Close-on-exec, so that the server under test does not inherit the listener.
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed: errno \(errno)") }
        // Binds again at once after a close, while the closed connections are in TIME_WAIT.
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(requested).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else {
            Glibc.close(descriptor)
            throw FixtureError("bind or listen on 127.0.0.1:\(requested) failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }
}

/// A listener on one 127.0.0.1 port, on a thread of its own, that closes after each connection it
/// accepts and listens again 30 ms later. It stops after `seconds` or at `stop()`.
final class FlappingListener: Sendable {
    let port: Int
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(seconds: Double) throws {
        let first = try HeldListener()
        port = first.port
        let deadline = Date().addingTimeInterval(seconds)
        Thread { [self] in
            var listener: HeldListener? = first
            while !stopRequested.load(ordering: .relaxed) && Date() < deadline {
                guard let current = listener else {
                    usleep(30_000)
                    listener = try? HeldListener(port: port)
                    continue
                }
                var entry = pollfd(fd: current.descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 20) > 0 else { continue }
                let connection = accept(current.descriptor, nil, nil)
                if connection >= 0 { Glibc.close(connection) }
                current.close()
                listener = nil
            }
            listener?.close()
            self.finished.signal()
        }.start()
    }

    /// Stops the thread and waits until it has closed its listener.
    func stop() {
        stopRequested.store(true, ordering: .relaxed)
        finished.wait()
    }
}
