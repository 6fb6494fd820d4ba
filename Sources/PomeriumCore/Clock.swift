import Glibc
import Synchronization

/// Wall-clock time as whole and fractional Unix seconds. Logic targets read time only through a
/// `WallClock`, so tests can move it.
public protocol WallClock: Sendable {
    /// Seconds since the Unix epoch.
    func now() -> Double
}

extension WallClock {
    /// Whole seconds since the Unix epoch, as JWT `iat`/`exp` use.
    public func unixSeconds() -> Int64 { Int64(now().rounded(.down)) }
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000
    }
}

/// A clock that stands still until a test advances it.
public final class ManualWallClock: WallClock {
    private let current: Mutex<Double>

    public init(now: Double = 1_700_000_000) { current = Mutex(now) }

    public func now() -> Double { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: Double) { current.withLock { $0 += seconds } }

    /// Sets the clock to `seconds` since the epoch.
    public func set(_ seconds: Double) { current.withLock { $0 = seconds } }
}

/// A clock for measuring intervals in one process: seconds from an unspecified starting point,
/// never set back or forward. Its readings mean nothing in another process or after a restart,
/// so they must not be stored or sent. Times that leave the process come from a `WallClock`.
public protocol IntervalClock: Sendable {
    /// Seconds since the clock's starting point.
    func now() -> Double
}

/// The system's monotonic clock (`CLOCK_MONOTONIC`), which setting the system time does not move.
/// It stops while the machine is suspended.
public struct SystemIntervalClock: IntervalClock {
    public init() {}

    public func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000
    }
}

/// A monotonic clock that keeps one reading until a test advances it.
public final class ManualIntervalClock: IntervalClock {
    private let current: Mutex<Double>

    public init(now: Double = 1000) { current = Mutex(now) }

    public func now() -> Double { current.withLock { $0 } }

    /// Moves the clock forward by `seconds`, which must not be negative: a monotonic clock never
    /// goes back.
    public func advance(by seconds: Double) {
        precondition(seconds >= 0, "a monotonic clock cannot move back (advance(by: \(seconds)))")
        current.withLock { $0 += seconds }
    }
}
