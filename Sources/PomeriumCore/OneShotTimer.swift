import Dispatch

/// A timer that calls its handler once on a global dispatch queue, unless cancelled first.
///
/// Use it for timeouts that usually do not fire. A cancelled `Task.sleep` resumes its caller at
/// once, but the Swift 6.3.1 runtime keeps its wake-up task and a dispatch timer until the original
/// deadline passes. Under valgrind massif that was about 1 KiB per sleep, so a 30-second timeout
/// per request kept the memory of every request of the last 30 seconds. `cancel()` here releases
/// the timer and the handler as soon as dispatch processes the cancellation.
public final class OneShotTimer: @unchecked Sendable {
    // Dispatch sources are safe to use from any thread, and `source` is never reassigned.
    private let source: any DispatchSourceTimer

    /// Starts a timer that calls `handler` after `seconds` (at least one millisecond).
    public init(seconds: Double, _ handler: @escaping @Sendable () -> Void) {
        let source = DispatchSource.makeTimerSource(queue: .global())
        self.source = source
        source.schedule(deadline: .now() + max(0.001, seconds), leeway: .milliseconds(10))
        // The handler cancels its own source, so dispatch then releases the handler, which ends
        // the reference cycle between the two.
        source.setEventHandler {
            handler()
            source.cancel()
        }
        source.activate()
    }

    /// Stops the timer. The handler is not called afterwards unless it is already running, and
    /// dispatch releases it shortly after. Calling it again, or after the timer fired, does nothing.
    public func cancel() {
        source.cancel()
    }

    deinit {
        source.cancel()
    }
}
