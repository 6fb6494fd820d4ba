import CLinux
import Glibc
import PomeriumLogging
import Synchronization

/// An object that owns a file descriptor registered with an `EventLoop`. The loop calls it on its
/// own thread.
public protocol EventHandler: AnyObject {
    /// Handles the epoll event bits (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`) for its descriptor.
    func handleEvents(_ events: UInt32)
    /// Releases the descriptor because the loop is shutting down.
    func loopWillClose()
}

/// A single-threaded, level-triggered epoll reactor. Every connection belongs to one loop and is
/// only touched on that loop's thread. Other threads and Swift tasks reach the loop with
/// `execute(_:)`, which queues a job under a lock and wakes the loop through an eventfd.
public final class EventLoop: @unchecked Sendable, CustomStringConvertible {
    /// The loop's position in its group, for logs.
    public let index: Int
    let epoll: Int32
    let wakeDescriptor: Int32
    private var handlers: [(any EventHandler)?] = []
    private let incoming = Mutex<[@Sendable () -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private var deferred: [() -> Void] = []
    /// Connections with output to send after the current batch of events. A list of connections
    /// instead of closures in `deferred` saves a closure allocation per flush.
    private var pendingFlushes: [StreamConnection] = []
    /// The maximum time, in nanoseconds, that output waits for the rest of its batch of events
    /// (`EventLoopGroup.defaultOutputDelayLimit`).
    let outputDelayLimit: UInt64
    /// When the loop last sent the pending output, or woke up with none pending.
    private var flushedAt: UInt64 = 0
    /// The lists `runDeferred` works through, kept to reuse their storage.
    private var flushing: [StreamConnection] = []
    private var running: [() -> Void] = []
    private var timers = TimerHeap()
    private var timerSequence: UInt64 = 0
    private var thread: pthread_t?
    private let finished = Mutex<Bool>(false)
    let logger: Logger

    /// The monotonic time in nanoseconds, read once each time the loop wakes up. Deadlines of
    /// whole seconds are set from it several times per request, where a clock call each would
    /// add up. Loop thread only; it lags the clock by the time the current batch has taken.
    public private(set) var now: UInt64 = MonotonicClock.nanoseconds()

    /// A 64 KiB scratch buffer that connections on this loop read into. Its contents are valid only
    /// during the callback that receives them.
    public let scratch: UnsafeMutableRawBufferPointer

    public var description: String { "EventLoop(\(index))" }

    init(index: Int, outputDelayLimit: UInt64, logger: Logger) throws {
        self.index = index
        self.outputDelayLimit = outputDelayLimit
        self.logger = logger
        epoll = try Syscall.epollCreate()
        wakeDescriptor = try Syscall.eventfdCreate()
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        try Syscall.epollControl(epoll, EPOLL_CTL_ADD, wakeDescriptor, events: UInt32(EPOLLIN.rawValue))
    }

    deinit {
        Syscall.close(epoll)
        Syscall.close(wakeDescriptor)
        scratch.deallocate()
    }

    /// Whether the caller runs on this loop's thread.
    public var inEventLoop: Bool {
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    // MARK: Registration (loop thread only)

    /// Registers `handler` for `descriptor` with the epoll `events` mask.
    public func register(_ descriptor: Int32, handler: any EventHandler, events: UInt32) throws {
        try Syscall.epollControl(epoll, EPOLL_CTL_ADD, descriptor, events: events)
        let slot = Int(descriptor)
        if slot >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: slot + 1 - handlers.count + 64))
        }
        handlers[slot] = handler
    }

    public func modify(_ descriptor: Int32, events: UInt32) throws {
        try Syscall.epollControl(epoll, EPOLL_CTL_MOD, descriptor, events: events)
    }

    /// Removes `descriptor` from epoll and the connection table; call before closing it.
    public func unregister(_ descriptor: Int32) {
        try? Syscall.epollControl(epoll, EPOLL_CTL_DEL, descriptor, events: 0)
        let slot = Int(descriptor)
        if slot < handlers.count { handlers[slot] = nil }
    }

    /// The number of registered descriptors, for tests and metrics.
    public var registeredCount: Int { handlers.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    // MARK: Jobs

    /// Runs `job` on the loop thread soon. Safe from any thread.
    public func execute(_ job: @escaping @Sendable () -> Void) {
        incoming.withLock { $0.append(job) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            do {
                try Syscall.eventfdSignal(wakeDescriptor)
            } catch {
                logger.error("event loop wake-up failed", metadata: ["loop": "\(index)", "error": "\(error)"])
            }
        }
    }

    /// Runs `job` on the loop thread after the current batch of events. Loop thread only.
    public func deferToNextTick(_ job: @escaping () -> Void) {
        deferred.append(job)
    }

    /// Calls `connection.flushScheduledOutput()` after the current batch of events. Loop thread only.
    func scheduleFlush(_ connection: StreamConnection) {
        pendingFlushes.append(connection)
    }

    /// Runs `operation` in a Swift task and hands its result to `completion` on this loop. This is
    /// how slow work (identity provider calls, Redis) returns to the connection that waits for it:
    /// the task never touches the connection, and the completion never leaves the loop thread.
    public func submit<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value,
        completion: @escaping (Result<Value, any Error>) -> Void
    ) {
        let bound = LoopBound(completion, loop: self)
        Task {
            let result: Result<Value, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            self.execute { bound.value(result) }
        }
    }

    /// Runs `body` on the loop thread and returns its result to the awaiting task.
    public func run<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            execute {
                continuation.resume(with: Result { try body() })
            }
        }
    }

    // MARK: Timers

    /// Calls `body` on the loop thread once `nanoseconds` have passed, unless cancelled first.
    @discardableResult
    public func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) -> LoopTimer {
        timerSequence &+= 1
        let timer = LoopTimer(deadline: MonotonicClock.nanoseconds() &+ nanoseconds, sequence: timerSequence)
        timer.body = body
        timers.insert(timer)
        return timer
    }

    @discardableResult
    public func schedule(after seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        schedule(afterNanoseconds: UInt64(max(0, seconds) * 1_000_000_000), body)
    }

    // MARK: Running

    func start() throws {
        let box = Unmanaged.passRetained(ThreadStart(loop: self))
        var handle = pthread_t()
        let result = pthread_create(
            &handle, nil,
            { argument in
                let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
                start.loop.runLoop()
                return nil
            }, box.toOpaque())
        if result != 0 {
            box.release()
            throw IOError(function: "pthread_create", errno: result)
        }
        thread = handle
    }

    /// Asks the loop to stop, closes every registered handler, and waits for the thread to end.
    func stopAndJoin() {
        stopRequested.store(true, ordering: .releasing)
        try? Syscall.eventfdSignal(wakeDescriptor)
        if let thread, !inEventLoop {
            pthread_join(thread, nil)
        }
    }

    private func runLoop() {
        let capacity: Int32 = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        while !stopRequested.load(ordering: .acquiring) {
            let timeout = nextTimeoutMilliseconds()
            let count: Int
            do {
                count = try Syscall.epollWait(epoll, events, capacity, timeoutMilliseconds: timeout)
                now = MonotonicClock.nanoseconds()
                flushedAt = now
            } catch {
                logger.critical("epoll_wait failed; stopping the loop", metadata: ["error": "\(error)"])
                break
            }
            for offset in 0..<count {
                let event = events[offset]
                let descriptor = event.data.fd
                if descriptor == wakeDescriptor {
                    try? Syscall.eventfdDrain(wakeDescriptor)
                    runIncoming()
                    continue
                }
                let slot = Int(descriptor)
                if slot < handlers.count, let handler = handlers[slot] {
                    handler.handleEvents(event.events)
                }
                // Output waits for the end of the batch, so that a busy loop sends it in fewer
                // system calls and wakes each peer less often. A long batch would hold an early
                // response for the whole batch and stretch the latency tail, so pending output
                // leaves once it has waited `outputDelayLimit`.
                if !pendingFlushes.isEmpty {
                    let clock = MonotonicClock.nanoseconds()
                    if clock &- flushedAt >= outputDelayLimit {
                        flushPending()
                        flushedAt = clock
                    }
                }
            }
            runTimers()
            runDeferred()
        }
        runIncoming()
        for handler in handlers.compactMap({ $0 }) {
            handler.loopWillClose()
        }
        handlers.removeAll()
        runDeferred()
    }

    private func runIncoming() {
        wakePending.store(false, ordering: .releasing)
        let jobs = incoming.withLock { jobs -> [@Sendable () -> Void] in
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            return taken
        }
        for job in jobs { job() }
    }

    private func runDeferred() {
        var rounds = 0
        while (!deferred.isEmpty || !pendingFlushes.isEmpty) && rounds < 16 {
            if !pendingFlushes.isEmpty { flushPending() }
            if !deferred.isEmpty {
                swap(&deferred, &running)
                for job in running { job() }
                running.removeAll(keepingCapacity: true)
            }
            rounds += 1
        }
    }

    private func flushPending() {
        // Swapped with a spare list, because emptying a copied list allocates new storage.
        // Walking a local list, which no flush can change, retains no element.
        var batch: [StreamConnection] = []
        swap(&batch, &flushing)
        swap(&batch, &pendingFlushes)
        for connection in batch { connection.flushScheduledOutput() }
        batch.removeAll(keepingCapacity: true)
        swap(&batch, &flushing)
    }

    private func runTimers() {
        guard !timers.isEmpty else { return }
        now = MonotonicClock.nanoseconds()
        while let first = timers.first, first.deadline <= now {
            timers.removeFirst()
            if first.isCancelled { continue }
            let body = first.body
            first.body = nil
            body?()
        }
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        if !deferred.isEmpty || !pendingFlushes.isEmpty { return 0 }
        while let first = timers.first, first.isCancelled { timers.removeFirst() }
        guard let first = timers.first else { return -1 }
        let now = MonotonicClock.nanoseconds()
        if first.deadline <= now { return 0 }
        let milliseconds = (first.deadline - now + 999_999) / 1_000_000
        return Int32(min(milliseconds, 60_000))
    }
}

private final class ThreadStart {
    let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
}

/// A value that may only be touched on the loop that created the wrapper. It lets a non-Sendable
/// value (a connection, a completion closure) ride through a Sendable closure back to its loop.
public struct LoopBound<Value>: @unchecked Sendable {
    private let stored: Value
    public let loop: EventLoop

    public init(_ value: Value, loop: EventLoop) {
        stored = value
        self.loop = loop
    }

    /// The wrapped value; traps when read off the owning loop's thread.
    public var value: Value {
        precondition(loop.inEventLoop, "LoopBound value read off its event loop")
        return stored
    }
}

/// Monotonic time in nanoseconds, for deadlines.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// A scheduled callback on an `EventLoop`. Cancel it on the loop thread.
public final class LoopTimer {
    public let deadline: UInt64
    let sequence: UInt64
    fileprivate var body: (() -> Void)?
    public private(set) var isCancelled = false

    init(deadline: UInt64, sequence: UInt64) {
        self.deadline = deadline
        self.sequence = sequence
    }

    /// Stops the callback from running; the heap drops the entry when it reaches it.
    public func cancel() {
        isCancelled = true
        body = nil
    }
}

/// A binary min-heap of timers ordered by deadline, then by scheduling order.
struct TimerHeap {
    private var items: [LoopTimer] = []

    var isEmpty: Bool { items.isEmpty }
    var first: LoopTimer? { items.first }

    private static func before(_ a: LoopTimer, _ b: LoopTimer) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
    }

    mutating func insert(_ timer: LoopTimer) {
        items.append(timer)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeFirst() {
        guard !items.isEmpty else { return }
        let last = items.removeLast()
        guard !items.isEmpty else { return }
        items[0] = last
        var parent = 0
        while true {
            let left = parent * 2 + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && Self.before(items[left], items[smallest]) { smallest = left }
            if right < items.count && Self.before(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
