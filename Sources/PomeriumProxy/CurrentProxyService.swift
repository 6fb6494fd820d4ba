import Synchronization

/// The proxy service of the configuration in effect. A WebSocket tunnel outlives the snapshot
/// its request started with, so its periodic grant check reads the policy here: a reload that
/// removes the user's grant then ends the tunnel too. The reference is weak, so a service that
/// was replaced is freed once its requests end.
public final class CurrentProxyService: Sendable {
    private struct WeakReference: @unchecked Sendable {
        weak var service: ProxyService?
    }

    private let current = Mutex(WeakReference())

    public init() {}

    /// The service in effect, or nil before the first one is installed.
    public var service: ProxyService? { current.withLock { $0.service } }

    /// Records `service` as the one in effect; call it when the listener starts serving it.
    public func install(_ service: ProxyService) {
        current.withLock { $0.service = service }
    }
}
