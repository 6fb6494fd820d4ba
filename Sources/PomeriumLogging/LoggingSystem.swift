import Synchronization

/// The process-wide factory that `Logger(label:)` uses. Only the executable bootstraps it, once;
/// tests build loggers from an `InMemoryLogHandler` instead.
public enum LoggingSystem {
    private struct State: Sendable {
        var factory: @Sendable (String) -> any LogHandler = { _ in JSONLogHandler() }
        var bootstrapped = false
    }

    private static let state = Mutex(State())

    /// Installs the handler factory. A second call is a programming error and traps.
    public static func bootstrap(_ factory: @escaping @Sendable (String) -> any LogHandler) {
        state.withLock { state in
            precondition(!state.bootstrapped, "LoggingSystem.bootstrap may be called only once per process")
            state.factory = factory
            state.bootstrapped = true
        }
    }

    static func makeHandler(label: String) -> any LogHandler {
        let factory = state.withLock { $0.factory }
        return factory(label)
    }
}
