import Glibc
import Synchronization

/// A file descriptor that log lines go to. Each line is written under one lock with `write(2)`,
/// so lines from different threads never interleave.
struct LogOutput: Sendable {
    let descriptor: Int32
    private static let lock = Mutex(())

    static let standardError = LogOutput(descriptor: 2)

    func write(_ line: String) {
        var line = line
        line.withUTF8 { buffer in
            LogOutput.lock.withLock { _ in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        // Nothing sensible can report a failed write to the log itself.
                        return
                    }
                    offset += written
                }
            }
        }
    }
}

/// Wall-clock time for log lines, formatted without `DateFormatter`.
enum LogClock {
    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// RFC 3339 in UTC with whole seconds, as zerolog's default time format.
    static func rfc3339(_ time: timespec) -> String {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))Z"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
