import Glibc
import PomeriumNet
import Synchronization
import Testing

@Suite("Event loop")
struct EventLoopTests {
    @Test("timers fire in deadline order")
    func timersFireInOrder() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let fired = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Int], any Error>) in
            loop.execute {
                var order: [Int] = []
                let start = MonotonicClock.nanoseconds()
                loop.schedule(afterNanoseconds: 30_000_000) {
                    order.append(3)
                    #expect(MonotonicClock.nanoseconds() - start >= 30_000_000)
                    continuation.resume(returning: order)
                }
                loop.schedule(afterNanoseconds: 10_000_000) { order.append(1) }
                loop.schedule(afterNanoseconds: 20_000_000) { order.append(2) }
            }
        }
        #expect(fired == [1, 2, 3])
    }

    @Test("cancelled timer does not fire")
    func cancelledTimer() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let fired = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<[String], any Error>) in
            loop.execute {
                var fired: [String] = []
                let cancelled = loop.schedule(afterNanoseconds: 5_000_000) { fired.append("cancelled") }
                loop.schedule(afterNanoseconds: 15_000_000) {
                    fired.append("kept")
                    continuation.resume(returning: fired)
                }
                cancelled.cancel()
            }
        }
        #expect(fired == ["kept"])
    }

    @Test("execute wakes the loop from other threads")
    func executeWakesLoop() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let total = await withTaskGroup(of: Int.self) { tasks in
            for _ in 0..<8 {
                tasks.addTask {
                    var onLoop = 0
                    for _ in 0..<100 where (try? await loop.run { loop.inEventLoop }) == true {
                        onLoop += 1
                    }
                    return onLoop
                }
            }
            return await tasks.reduce(0, +)
        }
        #expect(total == 800)
        #expect(!loop.inEventLoop)
    }

    @Test("submit hands the result back to the loop")
    func submitHandsBack() async throws {
        let group = try EventLoopGroup(loopCount: 2)
        defer { group.shutdown() }
        let loop = group.loops[1]
        let (value, onLoop) = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<(Int, Bool), any Error>) in
            loop.execute {
                loop.submit({ () async throws -> Int in
                    await Task.yield()
                    return 42
                }) { result in
                    continuation.resume(with: result.map { ($0, loop.inEventLoop) })
                }
            }
        }
        #expect(value == 42)
        #expect(onLoop)
    }

    @Test("submit hands errors back")
    func submitHandsBackErrors() async throws {
        struct Failure: Error {}
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.next()
        let failed = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            loop.execute {
                loop.submit({ () async throws -> Int in throw Failure() }) { result in
                    if case .failure(let error) = result {
                        continuation.resume(returning: error is Failure)
                    } else {
                        continuation.resume(returning: false)
                    }
                }
            }
        }
        #expect(failed)
    }

    @Test("default loop count follows the affinity mask")
    func defaultLoopCount() throws {
        #expect(EventLoopGroup.defaultLoopCount >= 1)
        let group = try EventLoopGroup()
        defer { group.shutdown() }
        #expect(group.loops.count == EventLoopGroup.defaultLoopCount)
    }

    @Test("socket address parsing")
    func socketAddressParsing() throws {
        let v4 = try SocketAddress(parsing: "127.0.0.1:8080")
        #expect(v4.description == "127.0.0.1:8080")
        let v6 = try SocketAddress(parsing: "[::1]:443")
        #expect(v6.description == "[::1]:443")
        #expect(v6.family == AF_INET6)
        #expect(throws: SocketAddressError.self) { try SocketAddress(parsing: "localhost:80") }
        #expect(throws: SocketAddressError.self) { try SocketAddress(parsing: "127.0.0.1:99999") }
        #expect(throws: SocketAddressError.self) { try SocketAddress(parsing: "127.0.0.1") }
        #expect(try SocketAddress(parsing: "::1", defaultPort: 80).port == 80)
    }

    @Test("syscall wrapper reports the function and errno")
    func syscallErrors() throws {
        var byte: UInt8 = 0
        #expect(throws: IOError(function: "read", errno: EBADF)) {
            _ = try Syscall.read(-1, &byte, 1)
        }
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0, &pair) == 0)
        defer {
            close(pair[0])
            close(pair[1])
        }
        guard case .wouldBlock = try Syscall.read(pair[0], &byte, 1) else {
            Issue.record("an empty non-blocking socket must report wouldBlock")
            return
        }
    }
}
