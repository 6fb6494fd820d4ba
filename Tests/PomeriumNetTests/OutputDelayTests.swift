import Glibc
import PomeriumNet
import Synchronization
import Testing

/// A delegate that calls `onRead` for each read. The test owns the socket pair behind it.
private final class ReadStep: StreamConnectionDelegate {
    let onRead: (StreamConnection) -> Void

    init(onRead: @escaping (StreamConnection) -> Void) { self.onRead = onRead }

    func connectionDidOpen(_ connection: StreamConnection) {}
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) { onRead(connection) }
    func connectionDidReadEOF(_ connection: StreamConnection) { connection.close() }
    func connectionDidDrain(_ connection: StreamConnection) {}
    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?) {}
}

@Suite("Output delay limit")
struct OutputDelayTests {
    /// Makes three connections readable in one batch of events, in order. The first writes a
    /// reply, the second keeps the loop busy for `busyNanoseconds`, and the third reports whether
    /// the first reply had reached its peer by then.
    private func replyArrivedBeforeBatchEnd(outputDelayLimit: UInt64, busyNanoseconds: UInt64) async throws -> Bool {
        let group = try EventLoopGroup(loopCount: 1, outputDelayLimit: outputDelayLimit)
        defer { group.shutdown() }
        let loop = group.next()
        var pairs: [(loopSide: Int32, testSide: Int32)] = []
        defer {
            for pair in pairs { Syscall.close(pair.testSide) }
        }
        for _ in 0..<3 {
            var descriptors: [Int32] = [0, 0]
            let status = socketpair(
                AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &descriptors)
            try #require(status == 0)
            pairs.append((descriptors[0], descriptors[1]))
        }
        let testSides = pairs.map(\.testSide)
        let loopSides = pairs.map(\.loopSide)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            loop.execute {
                do {
                    var connections: [StreamConnection] = []
                    let steps = [
                        ReadStep { $0.write([0x41]) },
                        ReadStep { _ in
                            let start = MonotonicClock.nanoseconds()
                            while MonotonicClock.nanoseconds() - start < busyNanoseconds {}
                        },
                        ReadStep { _ in
                            var byte: UInt8 = 0
                            let peeked = recv(testSides[0], &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                            for connection in connections { connection.close() }
                            continuation.resume(returning: peeked == 1)
                        },
                    ]
                    for (descriptor, step) in zip(loopSides, steps) {
                        let connection = try StreamConnection(
                            descriptor: descriptor, loop: loop, tls: nil, connecting: false)
                        connection.delegate = step
                        connection.start()
                        connections.append(connection)
                    }
                    // The loop is inside this job, so all three become readable before it next
                    // waits, and epoll reports them in the order they became ready.
                    for descriptor in testSides {
                        var byte: UInt8 = 0x31
                        guard write(descriptor, &byte, 1) == 1 else {
                            throw IOError(function: "write", errno: errno)
                        }
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    @Test("short batch holds output to its end")
    func shortBatchHoldsOutput() async throws {
        let arrived = try await replyArrivedBeforeBatchEnd(
            outputDelayLimit: 10_000_000_000, busyNanoseconds: 2_000_000)
        #expect(!arrived)
    }

    @Test("long batch sends output at the limit")
    func longBatchSendsOutputEarly() async throws {
        let arrived = try await replyArrivedBeforeBatchEnd(outputDelayLimit: 1_000_000, busyNanoseconds: 5_000_000)
        #expect(arrived)
    }
}
