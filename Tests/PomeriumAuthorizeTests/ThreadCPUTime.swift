import Glibc

/// Measures the CPU time the calling thread spends in `body`, in nanoseconds.
///
/// Thread CPU time leaves out the time the thread waits while other processes run, so timing prints stay
/// comparable on a shared machine, where wall time varies with load.
func threadCPUNanoseconds(_ body: () -> Void) -> Int64 {
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
    body()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
    return (Int64(end.tv_sec) - Int64(start.tv_sec)) * 1_000_000_000 + Int64(end.tv_nsec) - Int64(start.tv_nsec)
}
