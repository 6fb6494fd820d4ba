import PomeriumCore
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct OneShotTimerTests {
    /// An object that reports its own deallocation, to see when the timer lets go of its handler.
    private final class ReleaseProbe: Sendable {
        let released: AsyncStream<Void>.Continuation

        init(_ released: AsyncStream<Void>.Continuation) { self.released = released }

        deinit { released.yield() }
    }

    private final class CallCounter: Sendable {
        private let count = Atomic<Int>(0)

        var value: Int { count.load(ordering: .relaxed) }

        func increment() { count.add(1, ordering: .relaxed) }
    }

    @Test func firesOnceAfterDelay() async {
        let (fired, continuation) = AsyncStream.makeStream(of: Void.self)
        let calls = CallCounter()
        let timer = OneShotTimer(seconds: 0.01) {
            calls.increment()
            continuation.yield()
        }
        var iterator = fired.makeAsyncIterator()
        let first: Void? = await iterator.next()
        #expect(first != nil)
        timer.cancel()
        #expect(calls.value == 1)
    }

    @Test func cancelReleasesHandlerBeforeDeadline() async {
        let (released, continuation) = AsyncStream.makeStream(of: Void.self)
        let calls = CallCounter()
        var probe: ReleaseProbe? = ReleaseProbe(continuation)
        let timer = OneShotTimer(seconds: 3600) { [probe] in
            _ = probe
            calls.increment()
        }
        probe = nil
        timer.cancel()
        // The deadline is an hour away, so the probe is released only because cancel() dropped
        // the handler. A timer that kept the handler until its deadline fails the suite's time limit.
        var iterator = released.makeAsyncIterator()
        let release: Void? = await iterator.next()
        #expect(release != nil)
        #expect(calls.value == 0)
        #expect(probe == nil)
    }
}
