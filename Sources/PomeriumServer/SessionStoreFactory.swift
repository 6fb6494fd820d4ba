import PomeriumConfig
import PomeriumLogging
import PomeriumSessions
import PomeriumSessionsLMDB
import PomeriumSessionsRedis

/// Opens the session store that `cache_store` names, once per process: a reload never reopens it.
public enum SessionStoreFactory {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Returns whether the authenticate service locks each completed login's state in the session
    /// store. Only a shared store (Redis, or an LMDB file that several processes open) needs it: a
    /// callback may reach another instance than the one whose replay guard saw the state. With
    /// `autocache` one process serves every login, and its replay guard suffices.
    public static func locksLogins(options: Options) -> Bool {
        options.cacheStore != .autocache
    }

    /// `autocache` → in-memory LRU, `bolt` → an LMDB file at `cache_store_path`, `redis` → Redis at
    /// `cache_store_address` (over TLS for `rediss://`). A Redis store is checked with PING before
    /// the process serves, so a wrong password or CA stops the start with the setting to fix.
    public static func open(options: Options, logger: Logger) async throws(Problem) -> any KeyValueStore {
        switch options.cacheStore {
        case .autocache:
            do {
                let store = try MemoryStore()
                logger.info("session store: in memory (cache_store autocache)")
                return store
            } catch {
                throw Problem(description: "cannot create the in-memory session store: \(error)")
            }
        case .bolt:
            do {
                let store = try LMDBStore(path: options.cacheStorePath)
                logger.info("session store: LMDB file", metadata: ["path": .string(options.cacheStorePath)])
                return store
            } catch {
                throw Problem(
                    description:
                        "cannot open cache_store_path \"\(options.cacheStorePath)\": \(error); check that its folder "
                        + "exists and is writable")
            }
        case .redis:
            guard let address = options.cacheStoreAddress, !address.isEmpty else {
                throw Problem(description: "cache_store is redis but cache_store_address is empty; set it to host:port")
            }
            let store: RedisStore
            do {
                store = try RedisStore(address: address, password: options.cacheStorePassword, logger: logger)
            } catch {
                throw Problem(description: "cannot use cache_store_address: \(error)")
            }
            do {
                try await store.ping()
            } catch {
                store.shutdown()
                throw Problem(
                    description:
                        "Redis at cache_store_address \(store.configuration.endpointDescription) did not answer PING: "
                        + "\(error); start Redis or fix cache_store_address and cache_store_password")
            }
            logger.info(
                "session store: Redis",
                metadata: [
                    "host": .string(store.configuration.host), "port": .string("\(store.configuration.port)"),
                    "tls": .string(store.configuration.useTLS ? "yes" : "no"),
                ])
            return store
        }
    }
}
