import PomeriumCore
import Synchronization

/// Runs an operation with an overall time limit that applies even when the operation misses its own
/// timeouts (for example in a stalled TLS handshake), so a provider call cannot hold a login open.
public enum Deadline {
    /// Returns the result of `operation`, or throws `IdentityTransportError.timedOut` after `seconds`.
    /// On timeout the operation's task is cancelled and its late result is dropped.
    public static func run<T: Sendable>(
        seconds: Double,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.install(continuation)
                let work = Task {
                    // The time limit starts when the operation does: when busy threads delay the
                    // start, that delay does not count against the provider. A cancelled
                    // `Task.sleep` would keep its wake-up job for the whole timeout, and a flood of
                    // quick provider errors turns that into megabytes, so the timer is a
                    // `OneShotTimer`. Its expiry goes through a task of the operation's priority,
                    // as the operation's result does, so of two queued outcomes the first wins.
                    let priority = Task.currentPriority
                    let timer = OneShotTimer(seconds: seconds) {
                        Task(priority: priority) { outcome.finish(.failure(IdentityTransportError.timedOut)) }
                    }
                    outcome.onFinish { timer.cancel() }
                    do {
                        outcome.finish(.success(try await operation()))
                    } catch {
                        outcome.finish(.failure(error))
                    }
                }
                // After a timeout the operation is cancelled; after its own result this does nothing.
                outcome.onFinish { work.cancel() }
                outcome.onCancel { work.cancel() }
            }
        } onCancel: {
            outcome.cancel()
        }
    }

    /// The first result to arrive, delivered to the continuation once: `finish` sets `finished`
    /// under the lock, so later results are dropped.
    private final class Outcome<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var pending: Result<T, any Error>?
            var finished = false
            var finishActions: [@Sendable () -> Void] = []
            var cancelActions: [@Sendable () -> Void] = []
        }

        private let state = Mutex(State())

        func install(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Result<T, any Error>? in
                if let pending = state.pending {
                    state.pending = nil
                    return pending
                }
                state.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        /// Delivers `result` unless another result came first; returns whether this one won.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let (won, continuation, actions) = state.withLock { state in
                guard !state.finished else {
                    return (false, nil as CheckedContinuation<T, any Error>?, [@Sendable () -> Void]())
                }
                state.finished = true
                let continuation = state.continuation
                state.continuation = nil
                if continuation == nil { state.pending = result }
                let actions = state.finishActions
                state.finishActions = []
                return (true, continuation, actions)
            }
            if let continuation { continuation.resume(with: result) }
            for action in actions { action() }
            return won
        }

        func onFinish(_ action: @escaping @Sendable () -> Void) {
            let runNow = state.withLock { state in
                if state.finished { return true }
                state.finishActions.append(action)
                return false
            }
            if runNow { action() }
        }

        func onCancel(_ action: @escaping @Sendable () -> Void) {
            state.withLock { $0.cancelActions.append(action) }
        }

        func cancel() {
            let actions = state.withLock { state in
                let actions = state.cancelActions
                state.cancelActions = []
                return actions
            }
            for action in actions { action() }
            finish(.failure(CancellationError()))
        }
    }
}
