import Glibc
import PomeriumLogging

/// A small set of threads for calls that block, such as `getaddrinfo`. Such a call must not run
/// on a loop thread, where it would stall every connection of the loop, nor in a Swift task,
/// where it would hold one of the few threads that run every task of the process.
///
/// Threads start when jobs wait and no thread is free, up to `maximumThreads`; past that, jobs
/// queue in submission order. A thread that finds no job for `idleSeconds` exits.
public final class BlockingWorkers: @unchecked Sendable {
    /// The process-wide set, used for host name lookups of upstreams and Redis servers.
    public static let shared = BlockingWorkers(maximumThreads: 8, idleSeconds: 30)

    public let maximumThreads: Int
    public let idleSeconds: Double
    private let logger: Logger
    // Everything below is guarded by `mutex`, which is what makes the unchecked `Sendable` sound.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let jobAvailable: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [@Sendable () -> Void] = []
    /// The index of the oldest job not yet taken, so that taking one does not shift the array.
    private var nextJob = 0
    private var threads = 0
    private var idleThreads = 0

    public init(maximumThreads: Int, idleSeconds: Double, logger: Logger = Logger(label: "pomerium.net")) {
        precondition(maximumThreads > 0, "BlockingWorkers needs at least one thread")
        self.maximumThreads = maximumThreads
        self.idleSeconds = idleSeconds
        self.logger = logger
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        jobAvailable = .allocate(capacity: 1)
        // Idle waits measure time on the monotonic clock, so that a wall clock step cannot end
        // them early or make them last for hours.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(jobAvailable, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    // Each thread retains the set, so this runs only after the last thread has exited.
    deinit {
        pthread_cond_destroy(jobAvailable)
        jobAvailable.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The threads that exist now, busy or idle, for tests.
    public var threadCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return threads
    }

    /// Queues `job` to run on one of the threads.
    public func run(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let waitingJobs = jobs.count - nextJob
        let startThread = waitingJobs > idleThreads && threads < maximumThreads
        if startThread { threads += 1 }
        if idleThreads > 0 { pthread_cond_signal(jobAvailable) }
        pthread_mutex_unlock(mutex)
        guard startThread else { return }
        if let error = spawnThread() {
            pthread_mutex_lock(mutex)
            threads -= 1
            let stranded = threads == 0
            pthread_mutex_unlock(mutex)
            // With no thread at all the job would never run, so the caller's thread runs the
            // waiting jobs itself. Blocking it is better than losing the work.
            if stranded {
                logger.error(
                    "cannot start a thread for blocking work; running it on the calling thread",
                    metadata: ["error": "\(String(cString: strerror(error)))"])
                drainOnCallerThread()
            }
        }
    }

    /// Starts one worker thread, or returns the `pthread_create` error.
    private func spawnThread() -> Int32? {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        defer { pthread_attr_destroy(&attributes) }
        let result = pthread_create(
            &handle, &attributes,
            { argument in
                let workers = Unmanaged<BlockingWorkers>.fromOpaque(argument!).takeRetainedValue()
                workers.work()
                return nil
            }, box.toOpaque())
        if result != 0 {
            box.release()
            return result
        }
        return nil
    }

    private func drainOnCallerThread() {
        while let job = takeJob() { job() }
    }

    /// Removes and returns the oldest waiting job, or `nil` when none waits.
    private func takeJob() -> (@Sendable () -> Void)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return takeJobLocked()
    }

    private func takeJobLocked() -> (@Sendable () -> Void)? {
        guard nextJob < jobs.count else { return nil }
        let job = jobs[nextJob]
        nextJob += 1
        if nextJob == jobs.count {
            jobs.removeAll(keepingCapacity: jobs.capacity <= 64)
            nextJob = 0
        }
        return job
    }

    /// Runs jobs on the current thread until none comes for `idleSeconds`: the body of each thread.
    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            if let job = takeJobLocked() {
                pthread_mutex_unlock(mutex)
                job()
                pthread_mutex_lock(mutex)
                continue
            }
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let nanoseconds = Int(deadline.tv_nsec) + Int(idleSeconds * 1_000_000_000)
            deadline.tv_sec += nanoseconds / 1_000_000_000
            deadline.tv_nsec = nanoseconds % 1_000_000_000
            idleThreads += 1
            let status = pthread_cond_timedwait(jobAvailable, mutex, &deadline)
            idleThreads -= 1
            if status == ETIMEDOUT && nextJob == jobs.count {
                threads -= 1
                pthread_mutex_unlock(mutex)
                return
            }
        }
    }
}

extension EventLoop {
    /// Runs `operation`, which may block, on one of the shared blocking-work threads and passes
    /// its result to `completion` on this loop's thread.
    public func submitBlocking<Value: Sendable>(
        on workers: BlockingWorkers = .shared,
        _ operation: @escaping @Sendable () throws -> Value,
        completion: @escaping (Result<Value, any Error>) -> Void
    ) {
        let bound = LoopBound(completion, loop: self)
        workers.run {
            let result = Result<Value, any Error> { try operation() }
            self.execute { bound.value(result) }
        }
    }
}
