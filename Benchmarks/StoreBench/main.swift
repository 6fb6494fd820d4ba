// Get and set throughput of each session store, one operation at a time from one task, plus Redis
// with 32 tasks in flight to show pipelining. Each phase stops after 100,000 operations or 5 s.
//
// Usage: swift run -c release StoreBench [--redis-port PORT]
// Without --redis-port the benchmark starts its own redis-server on a free 127.0.0.1 port.
import Foundation
import PomeriumSessions
import PomeriumSessionsLMDB
import PomeriumSessionsRedis
import PomeriumTestSupport

let maximumOperations = 100_000
let maximumSeconds = 5.0
let value = [UInt8](repeating: 0x5A, count: 1024)

struct Row {
    var store: String
    var operation: String
    var count: Int
    var seconds: Double
}

/// Runs `operation` for indexes 0, 1, … until the count or time limit, `concurrency` at a time.
func measure(
    _ store: String,
    _ name: String,
    concurrency: Int = 1,
    _ operation: @escaping @Sendable (Int) async throws -> Void
) async throws -> Row {
    let start = Date()
    let perTask = maximumOperations / concurrency
    let counts = try await withThrowingTaskGroup(of: Int.self) { group in
        for task in 0..<concurrency {
            group.addTask {
                var done = 0
                while done < perTask {
                    try await operation(task * perTask + done)
                    done += 1
                    if done % 256 == 0 && Date().timeIntervalSince(start) > maximumSeconds { break }
                }
                return done
            }
        }
        return try await group.reduce(0, +)
    }
    return Row(store: store, operation: name, count: counts, seconds: Date().timeIntervalSince(start))
}

func bench(_ name: String, _ store: any KeyValueStore, concurrency: Int = 1) async throws -> [Row] {
    let set = try await measure(name, "set", concurrency: concurrency) { index in
        try await store.set("bench-\(index % 10_000)", value: value, ttl: .seconds(600))
    }
    let get = try await measure(name, "get", concurrency: concurrency) { index in
        _ = try await store.get("bench-\(index % 10_000)")
    }
    return [set, get]
}

var redisPort: Int?
if let flag = CommandLine.arguments.firstIndex(of: "--redis-port"), flag + 1 < CommandLine.arguments.count {
    redisPort = Int(CommandLine.arguments[flag + 1])
}

var rows: [Row] = []
rows += try await bench("memory (autocache)", MemoryStore(byteBudget: 64 << 20))

let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "store-bench")
rows += try await bench("lmdb (bolt)", LMDBStore(path: directory.appendingPathComponent("bench.db").path))
try? FileManager.default.removeItem(at: directory)

var server: RunningServer?
if redisPort == nil {
    server = try Fixtures.startRedis()
    redisPort = server?.port
}
let redis = try RedisStore(address: "127.0.0.1:\(redisPort ?? 6379)")
try await redis.ping()
rows += try await bench("redis", redis)
rows += try await bench("redis, 32 tasks", redis, concurrency: 32)
redis.shutdown()
server?.process.stop()

func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
print(pad("store", 20) + pad("op", 5) + pad("ops", 9) + pad("seconds", 9) + "ops/s")
for row in rows {
    let rate = Double(row.count) / row.seconds
    print(
        pad(row.store, 20) + pad(row.operation, 5) + pad(String(row.count), 9)
            + pad(String(format: "%.2f", row.seconds), 9) + String(format: "%.0f", rate))
}
