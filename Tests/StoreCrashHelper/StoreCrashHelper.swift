import Glibc
import PomeriumSessions
import PomeriumSessionsLMDB

/// Writes `count` entries to the LMDB store at `path`, one committed write each, and prints
/// `committed <index>` after each commit returns. A test kills it with SIGKILL part way and then
/// checks that every reported entry survived.
///
/// Usage: StoreCrashHelper <path> <count>
@main
struct StoreCrashHelper {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let count = Int(arguments[2]), count > 0 else {
            report("usage: StoreCrashHelper <path> <count>\n", to: 2)
            exit(2)
        }
        do {
            let store = try LMDBStore(path: arguments[1], initialMapSize: 1 << 20)
            for index in 0..<count {
                try await store.set("entry-\(index)", value: Array("value-\(index)".utf8), ttl: .seconds(3600))
                report("committed \(index)\n", to: 1)
            }
        } catch {
            report("StoreCrashHelper: \(error)\n", to: 2)
            exit(1)
        }
    }

    /// Writes with write(2), unbuffered, so every line is out before the next commit starts.
    static func report(_ line: String, to descriptor: Int32) {
        var bytes = Array(line.utf8)
        _ = write(descriptor, &bytes, bytes.count)
    }
}
