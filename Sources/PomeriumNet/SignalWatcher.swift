import CLinux
import Glibc

/// Delivers process signals (SIGTERM, SIGINT) to a callback on an event loop through a signalfd.
/// The signals must be blocked in every thread, so call `blockSignals` on the main thread before
/// any other thread (event loops, the Swift task pool) starts.
public final class SignalWatcher: EventHandler {
    public let descriptor: Int32
    public unowned let loop: EventLoop
    private let onSignal: (Int32) -> Void
    private var closed = false

    /// Blocks `signals` in the calling thread; threads started later inherit the mask.
    public static func blockSignals(_ signals: [Int32]) throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in signals { sigaddset(&mask, number) }
        try Syscall.blockSignals(&mask)
    }

    /// Watches `signals` on `loop` and calls `onSignal` with each one's number. Loop thread only.
    public init(signals: [Int32], loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in signals { sigaddset(&mask, number) }
        // The loop thread must block them too, or a signal aimed at it would run the default action.
        try Syscall.blockSignals(&mask)
        descriptor = try Syscall.signalfdCreate(&mask)
        self.loop = loop
        self.onSignal = onSignal
        try loop.register(descriptor, handler: self, events: UInt32(EPOLLIN.rawValue))
    }

    public func handleEvents(_ events: UInt32) {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        while !closed {
            let result = try? withUnsafeMutableBytes(of: &info) { try Syscall.read(descriptor, $0.baseAddress!, size) }
            guard case .value(let count) = result, count == size else { return }
            onSignal(Int32(info.ssi_signo))
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        loop.unregister(descriptor)
        Syscall.close(descriptor)
    }

    public func loopWillClose() { close() }
}
