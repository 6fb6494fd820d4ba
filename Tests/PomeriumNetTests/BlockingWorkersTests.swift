import Foundation
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumNet
import PomeriumTestSupport
import Synchronization
import Testing

/// A gate that blocking jobs wait on, with a count of the jobs that reached it.
final class JobGate: Sendable {
    private let condition = NSCondition()
    private let state = Mutex<(arrived: Int, open: Bool)>((0, false))

    func pass() {
        state.withLock { $0.arrived += 1 }
        condition.lock()
        while !state.withLock({ $0.open }) { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        state.withLock { $0.open = true }
        condition.broadcast()
        condition.unlock()
    }

    var arrived: Int { state.withLock { $0.arrived } }
    var isOpen: Bool { state.withLock { $0.open } }
}

/// Polls `condition` every 10 ms for up to `seconds`, and returns whether it became true.
func eventually(within seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return condition()
}

@Suite("Blocking workers")
struct BlockingWorkersTests {
    @Test("threads stop at the maximum")
    func maximumThreads() async throws {
        let workers = BlockingWorkers(maximumThreads: 2, idleSeconds: 5)
        let gate = JobGate()
        let finished = Mutex(0)
        for _ in 0..<3 {
            workers.run {
                gate.pass()
                finished.withLock { $0 += 1 }
            }
        }
        #expect(await eventually { gate.arrived == 2 })
        // The third job waits in the queue while both threads are busy.
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(gate.arrived == 2)
        #expect(workers.threadCount == 2)
        gate.open()
        #expect(await eventually { finished.withLock { $0 } == 3 })
        #expect(gate.arrived == 3)
    }

    @Test("queued jobs run in order")
    func order() async {
        let workers = BlockingWorkers(maximumThreads: 1, idleSeconds: 5)
        let seen = Mutex<[Int]>([])
        for index in 0..<20 {
            workers.run { seen.withLock { $0.append(index) } }
        }
        #expect(await eventually { seen.withLock { $0.count } == 20 })
        #expect(seen.withLock { $0 } == Array(0..<20))
    }

    @Test("idle threads exit")
    func idleExit() async {
        let workers = BlockingWorkers(maximumThreads: 4, idleSeconds: 0.05)
        let done = Mutex(0)
        for _ in 0..<3 {
            workers.run { done.withLock { $0 += 1 } }
        }
        #expect(await eventually { done.withLock { $0 } == 3 })
        #expect(await eventually { workers.threadCount == 0 })
        // A job after the exits starts a thread again.
        workers.run { done.withLock { $0 += 1 } }
        #expect(await eventually { done.withLock { $0 } == 4 })
    }

    @Test("result arrives on the loop thread")
    func submitBlocking() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let outcome = Mutex<(value: Int, onLoop: Bool)?>(nil)
        let failure = Mutex<String?>(nil)
        loop.execute {
            loop.submitBlocking(
                { 42 },
                completion: { result in
                    outcome.withLock { $0 = ((try? result.get()) ?? -1, loop.inEventLoop) }
                })
            loop.submitBlocking(
                { () throws -> Int in throw HTTPClientError.resolveFailed("'slow.test': no address") },
                completion: { result in
                    if case .failure(let error) = result { failure.withLock { $0 = "\(error)" } }
                })
        }
        #expect(await eventually { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0?.value } == 42)
        #expect(outcome.withLock { $0?.onLoop } == true)
        #expect(await eventually { failure.withLock { $0 } != nil })
        #expect(failure.withLock { $0 }?.contains("slow.test") == true)
    }
}

@Suite("Upstream host name lookup")
struct UpstreamLookupTests {
    static func get(_ path: String) throws -> HTTPRequestHead {
        try HTTPRequestHead(method: .get, target: path)
    }

    @Test("slow lookups hold no task threads")
    func slowLookupsDoNotBlockTasks() async throws {
        try await Fixtures.withEchoUpstream { upstream in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let gate = JobGate()
            let echoPort = upstream.port
            // More waiting lookups than the threads that run Swift tasks: in a task each one
            // would hold such a thread, and nothing else awaiting could resume.
            let slowCount = ProcessInfo.processInfo.activeProcessorCount + 2
            let client = HTTPClient(
                group: group,
                resolver: { host, port in
                    if host == "slow.test" { gate.pass() }
                    return try SocketAddress(parsing: "127.0.0.1", defaultPort: host == "slow.test" ? echoPort : port)
                },
                lookupWorkers: BlockingWorkers(maximumThreads: slowCount + 2, idleSeconds: 1))
            let slowTarget = try HTTPUpstream(url: "http://slow.test:\(echoPort)")
            let slowRequests = (0..<slowCount).map { index in
                Task { try await client.send(try Self.get("/slow/\(index)"), to: slowTarget) }
            }
            defer { gate.open() }
            // Held lookups would keep the fast request from resuming until this opens the gate.
            DispatchQueue.global().asyncAfter(deadline: .now() + 20) { gate.open() }
            #expect(await eventually(within: 15) { gate.arrived == slowCount })

            let fast = try await client.send(try Self.get("/fast"), to: try HTTPUpstream(url: upstream.baseURL))
            #expect(fast.head.status == 200)
            #expect(!gate.isOpen)

            gate.open()
            for request in slowRequests {
                #expect(try await request.value.head.status == 200)
            }
        }
    }

    @Test("connect timeout bounds the lookup")
    func lookupTimeout() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let gate = JobGate()
        defer { gate.open() }
        // Without the bound the request would wait for the lookup until this opens the gate, and
        // then fail to connect to the closed port 9 with another error. A time limit would not
        // do here, because a loaded test machine can delay the awaiting task by seconds.
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { gate.open() }
        let client = HTTPClient(
            group: group,
            resolver: { _, port in
                gate.pass()
                return try SocketAddress(parsing: "127.0.0.1", defaultPort: port)
            },
            lookupWorkers: BlockingWorkers(maximumThreads: 2, idleSeconds: 1))
        await #expect(throws: HTTPClientError.connectTimeout) {
            _ = try await client.send(
                try Self.get("/"), to: try HTTPUpstream(url: "http://hanging.test:9"),
                timeouts: HTTPClientTimeouts(connect: 0.2))
        }
        #expect(gate.arrived == 1)
    }

    @Test("lookup failure names the host")
    func lookupFailure() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let client = HTTPClient(
            group: group,
            resolver: { host, _ in throw HTTPClientError.resolveFailed("'\(host)': Name or service not known") })
        await #expect(throws: HTTPClientError.resolveFailed("'missing.test': Name or service not known")) {
            _ = try await client.send(try Self.get("/"), to: try HTTPUpstream(url: "http://missing.test:80"))
        }
    }
}
