import CLMDB
import Glibc
import PomeriumCore
import PomeriumSessions
import Synchronization

/// The `bolt` store: a persistent key-value file at `cache_store_path`, kept by LMDB.
///
/// The store is one data file plus a `<path>-lock` file (LMDB's `MDB_NOSUBDIR`), both mode 0600.
/// Each value is stored behind an 8-byte big-endian expiry time in Unix milliseconds. Reads ignore
/// expired entries, and a sweep deletes them when the store opens and then on a write once every
/// `sweepInterval`. Every write is one committed LMDB transaction, synced to disk before the call
/// returns, so it survives a crash of the process (SIGKILL) or the machine. Several processes may
/// open the same file; LMDB's lock file coordinates them, and locks taken through this store are
/// visible to all of them. One process opens a path at most once at a time: LMDB's locks break
/// when a process closes a second descriptor of the same file, so a second open in the same
/// process fails with `invalidConfiguration`.
///
/// Threading, following LMDB's rules (lmdb.h, "Caveats"):
/// - `MDB_NOTLS` ties a read transaction's reader slot to the transaction object instead of the
///   thread, because Swift tasks share a small pool of threads and one thread may run several
///   read transactions for different tasks.
/// - LMDB allows one write transaction per environment at a time and blocks others in
///   `mdb_txn_begin`. A write transaction must end on the thread that began it; here every
///   transaction begins and ends inside one synchronous call with no suspension point.
/// - `mdb_env_set_mapsize` needs no transaction of this process to be open, so every transaction
///   holds `environmentLock` shared and growing the map holds it exclusively.
public final class LMDBStore: KeyValueStore, @unchecked Sendable {
    // @unchecked: `environment` is used only as LMDB's threading rules above allow, under
    // `environmentLock`; the other properties are immutable or a `Mutex`.

    public static let defaultInitialMapSize = 16 * 1024 * 1024
    public static let defaultMaximumMapSize = 1024 * 1024 * 1024

    public let path: String
    public let maximumMapSize: Int
    public let sweepInterval: Duration
    private let clock: any WallClock
    private let environment: OpaquePointer
    private let fileIdentity: FileIdentity
    private let environmentLock: ReadWriteLock
    private let nextSweep: Mutex<Double>

    /// Opens or creates the store file at `path` (the `cache_store_path` setting). The folder must
    /// exist.
    ///
    /// - Parameters:
    ///   - initialMapSize: the memory map's first size in bytes. The map doubles when a write does
    ///     not fit, up to `maximumMapSize`; beyond that a write fails with a `full` error.
    ///   - sweepInterval: how often a write first deletes every expired entry.
    public init(
        path: String,
        initialMapSize: Int = LMDBStore.defaultInitialMapSize,
        maximumMapSize: Int = LMDBStore.defaultMaximumMapSize,
        sweepInterval: Duration = .seconds(60),
        clock: any WallClock = SystemWallClock()
    ) throws(StoreError) {
        guard !path.isEmpty else {
            throw StoreError(.invalidConfiguration, "cache_store_path is empty: set it to a file path such as bolt.db")
        }
        guard initialMapSize >= 65536, maximumMapSize >= initialMapSize else {
            throw StoreError(
                .invalidConfiguration,
                "invalid LMDB map sizes \(initialMapSize) and \(maximumMapSize): the initial size must be at least "
                    + "65536 bytes and not above the maximum"
            )
        }
        let registration = try OpenFiles.register(path: path) { () throws(StoreError) -> OpaquePointer in
            try LMDBStore.openEnvironment(path: path, initialMapSize: initialMapSize)
        }
        self.path = path
        self.maximumMapSize = maximumMapSize
        self.sweepInterval = sweepInterval
        self.clock = clock
        self.environment = registration.environment
        self.fileIdentity = registration.identity
        self.environmentLock = ReadWriteLock()
        self.nextSweep = Mutex(clock.now() + StoreLimits.seconds(sweepInterval))
        try sweepExpired()
    }

    private static func openEnvironment(path: String, initialMapSize: Int) throws(StoreError) -> OpaquePointer {
        var created: OpaquePointer?
        var status = mdb_env_create(&created)
        guard status == 0, let environment = created else {
            throw LMDBStore.error(status, "create an LMDB environment for cache_store_path \(path)")
        }
        status = mdb_env_set_mapsize(environment, initialMapSize)
        if status == 0 { status = mdb_env_set_maxreaders(environment, 512) }
        if status == 0 {
            status = mdb_env_open(environment, path, UInt32(MDB_NOSUBDIR | MDB_NOTLS), 0o600)
        }
        guard status == 0 else {
            mdb_env_close(environment)
            throw LMDBStore.openError(status, path: path)
        }
        // mdb_env_open applies the mode only to files it creates; an older file keeps its mode.
        chmod(path, 0o600)
        chmod(path + "-lock", 0o600)
        // Reader slots of processes that died (SIGKILL) would otherwise pin old pages forever.
        var deadReaders: Int32 = 0
        mdb_reader_check(environment, &deadReaders)
        return environment
    }

    deinit {
        mdb_env_close(environment)
        OpenFiles.unregister(fileIdentity)
    }

    /// The current size of the memory map in bytes.
    public var mapSize: Int {
        environmentLock.withReadLock {
            var info = MDB_envinfo()
            mdb_env_info(environment, &info)
            return info.me_mapsize
        }
    }

    /// The number of entries in the file, expired ones, locks and the sweep's marker record
    /// included, for tests and monitoring.
    public func entryCount() throws(StoreError) -> Int {
        try read { (transaction, database) throws(StoreError) in
            var statistics = MDB_stat()
            let status = mdb_stat(transaction, database, &statistics)
            guard status == 0 else { throw LMDBStore.error(status, "count entries in \(path)") }
            return statistics.ms_entries
        }
    }

    public func get(_ key: String) async throws(StoreError) -> [UInt8]? {
        try StoreLimits.validate(key: key)
        let now = milliseconds(clock.now())
        return try read { (transaction, database) throws(StoreError) in
            guard let record = try lookup(key, transaction, database), record.expiresAt > now else { return nil }
            return record.payload
        }
    }

    public func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        try StoreLimits.validate(valueCount: value.count)
        let ttlMilliseconds = try StoreLimits.validate(ttl: ttl)
        try sweepIfDue()
        let record = LMDBRecord.encode(expiresAt: milliseconds(clock.now()) + ttlMilliseconds, payload: value)
        try write { (transaction, database) throws(StoreError) in
            try put(key, record, transaction, database)
        }
    }

    public func delete(_ key: String) async throws(StoreError) {
        try StoreLimits.validate(key: key)
        try write { (transaction, database) throws(StoreError) in
            try remove(key, transaction, database)
        }
    }

    public func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let ttlMilliseconds = try StoreLimits.validate(ttl: ttl)
        let key = LMDBStore.lockPrefix + name
        return try write { (transaction, database) throws(StoreError) in
            let now = milliseconds(clock.now())
            if let lease = try lookup(key, transaction, database), lease.expiresAt > now { return false }
            let record = LMDBRecord.encode(expiresAt: now + ttlMilliseconds, payload: Array(owner.token.utf8))
            try put(key, record, transaction, database)
            return true
        }
    }

    public func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool {
        try StoreLimits.validate(key: name)
        let key = LMDBStore.lockPrefix + name
        return try write { (transaction, database) throws(StoreError) in
            guard let lease = try lookup(key, transaction, database), lease.payload == Array(owner.token.utf8) else {
                return false
            }
            try remove(key, transaction, database)
            return lease.expiresAt > milliseconds(clock.now())
        }
    }

    /// Deletes every expired entry and lease, and every entry too short to carry an expiry.
    public func sweepExpired() throws(StoreError) {
        let now = milliseconds(clock.now())
        try write(sweepWhenFull: false) { (transaction, database) throws(StoreError) in
            var cursor: OpaquePointer?
            var status = mdb_cursor_open(transaction, database, &cursor)
            guard status == 0 else { throw LMDBStore.error(status, "open a cursor on \(path)") }
            defer { mdb_cursor_close(cursor) }
            var key = MDB_val()
            var value = MDB_val()
            status = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
            while status == 0 {
                let bytes = UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
                if LMDBRecord.expiry(of: bytes).map({ $0 <= now }) ?? true {
                    status = mdb_cursor_del(cursor, 0)
                    guard status == 0 else { throw LMDBStore.error(status, "delete an expired entry in \(path)") }
                }
                status = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
            }
            guard status == MDB_NOTFOUND else { throw LMDBStore.error(status, "sweep expired entries in \(path)") }
        }
        // LMDB reuses a page freed by transaction N only from transaction N+2 on, so a write after
        // the sweep would still find a full map. One more small commit makes the freed pages usable;
        // if even that does not fit, the next write reports the store full.
        let marker = LMDBRecord.encode(expiresAt: now + 3_600_000, payload: [])
        try? write(sweepWhenFull: false) { (transaction, database) throws(StoreError) in
            try put(LMDBStore.sweepMarkerKey, marker, transaction, database)
        }
    }

    /// The key of the record that each sweep rewrites.
    static let sweepMarkerKey = "\u{1}swept"

    // MARK: Transactions

    /// Lock names get a control byte in front, which `StoreLimits.validate(key:)` rejects in keys.
    static let lockPrefix = "\u{1}lock:"

    private func sweepIfDue() throws(StoreError) {
        let now = clock.now()
        let due = nextSweep.withLock { next in
            guard now >= next else { return false }
            next = now + StoreLimits.seconds(sweepInterval)
            return true
        }
        if due { try sweepExpired() }
    }

    private func milliseconds(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded(.down)) }

    private func read<T>(_ body: (OpaquePointer, MDB_dbi) throws(StoreError) -> T) throws(StoreError) -> T {
        while true {
            let outcome: Result<T, StoreError>? = environmentLock.withReadLock { () -> Result<T, StoreError>? in
                var transaction: OpaquePointer?
                let status = mdb_txn_begin(environment, nil, UInt32(MDB_RDONLY), &transaction)
                if status == MDB_MAP_RESIZED { return nil }
                guard status == 0, let transaction else {
                    return .failure(LMDBStore.error(status, "begin a read transaction on \(path)"))
                }
                defer { mdb_txn_abort(transaction) }
                var database: MDB_dbi = 0
                let openStatus = mdb_dbi_open(transaction, nil, 0, &database)
                guard openStatus == 0 else {
                    return .failure(LMDBStore.error(openStatus, "open the database in \(path)"))
                }
                do throws(StoreError) {
                    return .success(try body(transaction, database))
                } catch {
                    return .failure(error)
                }
            }
            if let outcome { return try outcome.get() }
            try adoptResizedMap()
        }
    }

    /// Runs `body` in a write transaction and commits it. When the map is full, the map doubles up
    /// to `maximumMapSize` and the transaction runs again. At the maximum, expired entries are
    /// swept once before a `full` error.
    @discardableResult
    private func write<T>(
        sweepWhenFull: Bool = true,
        _ body: (OpaquePointer, MDB_dbi) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        var sweptAtMaximum = !sweepWhenFull
        while true {
            let outcome = environmentLock.withReadLock { () -> WriteOutcome<T> in
                var transaction: OpaquePointer?
                let status = mdb_txn_begin(environment, nil, 0, &transaction)
                if status == MDB_MAP_RESIZED { return .mapResized }
                guard status == 0, let transaction else {
                    return .failed(LMDBStore.error(status, "begin a write transaction on \(path)"))
                }
                var database: MDB_dbi = 0
                let openStatus = mdb_dbi_open(transaction, nil, 0, &database)
                guard openStatus == 0 else {
                    mdb_txn_abort(transaction)
                    return .failed(LMDBStore.error(openStatus, "open the database in \(path)"))
                }
                let value: T
                do throws(StoreError) {
                    value = try body(transaction, database)
                } catch {
                    mdb_txn_abort(transaction)
                    return error.kind == .full ? .mapFull : .failed(error)
                }
                let commitStatus = mdb_txn_commit(transaction)
                if commitStatus == MDB_MAP_FULL { return .mapFull }
                guard commitStatus == 0 else {
                    return .failed(LMDBStore.error(commitStatus, "commit a write to \(path)"))
                }
                return .committed(value)
            }
            switch outcome {
            case .committed(let value):
                return value
            case .failed(let error):
                throw error
            case .mapResized:
                try adoptResizedMap()
            case .mapFull:
                if try growMap() { continue }
                guard !sweptAtMaximum else {
                    throw StoreError(
                        .full,
                        "the LMDB store at cache_store_path \(path) is full at its maximum size of \(maximumMapSize) "
                            + "bytes; delete entries, shorten their TTLs or raise the maximum map size"
                    )
                }
                sweptAtMaximum = true
                try sweepExpired()
            }
        }
    }

    private enum WriteOutcome<T> {
        case committed(T)
        case failed(StoreError)
        case mapFull
        case mapResized
    }

    /// Doubles the map up to `maximumMapSize`. Returns `false` when it is already at the maximum.
    private func growMap() throws(StoreError) -> Bool {
        let status: Int32? = environmentLock.withWriteLock {
            var info = MDB_envinfo()
            mdb_env_info(environment, &info)
            guard info.me_mapsize < maximumMapSize else { return nil }
            let newSize = min(maximumMapSize, info.me_mapsize * 2)
            return mdb_env_set_mapsize(environment, newSize)
        }
        guard let status else { return false }
        guard status == 0 else { throw LMDBStore.error(status, "grow the memory map of \(path)") }
        return true
    }

    /// Adopts the larger map size that another process set (`MDB_MAP_RESIZED`).
    private func adoptResizedMap() throws(StoreError) {
        let status = environmentLock.withWriteLock { mdb_env_set_mapsize(environment, 0) }
        guard status == 0 else { throw LMDBStore.error(status, "adopt the new map size of \(path)") }
    }

    private func lookup(_ key: String, _ transaction: OpaquePointer, _ database: MDB_dbi) throws(StoreError)
        -> LMDBRecord?
    {
        var keyCopy = key
        let result: Result<LMDBRecord?, StoreError> = keyCopy.withUTF8 { keyBytes in
            var keyValue = MDB_val(
                mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            var data = MDB_val()
            let status = mdb_get(transaction, database, &keyValue, &data)
            if status == MDB_NOTFOUND { return .success(nil) }
            guard status == 0 else { return .failure(LMDBStore.error(status, "read from \(path)")) }
            return .success(LMDBRecord.decode(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)))
        }
        return try result.get()
    }

    private func put(_ key: String, _ record: [UInt8], _ transaction: OpaquePointer, _ database: MDB_dbi)
        throws(StoreError)
    {
        var keyCopy = key
        let status = keyCopy.withUTF8 { keyBytes in
            record.withUnsafeBytes { recordBytes in
                var keyValue = MDB_val(
                    mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
                var data = MDB_val(
                    mv_size: recordBytes.count, mv_data: UnsafeMutableRawPointer(mutating: recordBytes.baseAddress))
                return mdb_put(transaction, database, &keyValue, &data, 0)
            }
        }
        guard status == 0 else { throw LMDBStore.error(status, "write to \(path)") }
    }

    private func remove(_ key: String, _ transaction: OpaquePointer, _ database: MDB_dbi) throws(StoreError) {
        var keyCopy = key
        let status = keyCopy.withUTF8 { keyBytes in
            var keyValue = MDB_val(
                mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_del(transaction, database, &keyValue, nil)
        }
        guard status == 0 || status == MDB_NOTFOUND else { throw LMDBStore.error(status, "delete from \(path)") }
    }

    // MARK: Errors

    static func error(_ status: Int32, _ action: String) -> StoreError {
        let reason = String(cString: mdb_strerror(status))
        switch status {
        case MDB_MAP_FULL:
            return StoreError(.full, "failed to \(action): \(reason)")
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH:
            return StoreError(.protocolError, "failed to \(action): \(reason)")
        default:
            return StoreError(.unavailable, "failed to \(action): \(reason)")
        }
    }

    static func openError(_ status: Int32, path: String) -> StoreError {
        let reason = String(cString: mdb_strerror(status))
        switch status {
        case ENOENT:
            return StoreError(
                .invalidConfiguration,
                "cannot open cache_store_path \(path): its folder does not exist; create it or change the setting")
        case EACCES, EPERM:
            return StoreError(
                .invalidConfiguration,
                "cannot open cache_store_path \(path): permission denied; make the file and folder writable by "
                    + "this user")
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            return StoreError(
                .invalidConfiguration,
                "cannot open cache_store_path \(path): it is not an LMDB file (\(reason)); a v0.7 bolt file cannot be "
                    + "read, so move it away and a new store is created")
        default:
            return StoreError(.unavailable, "cannot open cache_store_path \(path): \(reason)")
        }
    }
}

/// An entry's bytes in the file: the expiry in Unix milliseconds, 8 bytes big-endian, then the payload.
struct LMDBRecord {
    var expiresAt: Int64
    var payload: [UInt8]

    static func encode(expiresAt: Int64, payload: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + payload.count)
        let bits = UInt64(bitPattern: expiresAt)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
        bytes.append(contentsOf: payload)
        return bytes
    }

    static func expiry(of bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count >= 8 else { return nil }
        var bits: UInt64 = 0
        for index in 0..<8 { bits = bits << 8 | UInt64(bytes[index]) }
        return Int64(bitPattern: bits)
    }

    /// Returns `nil` for bytes too short to be a record, which reads treat as missing.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> LMDBRecord? {
        guard let expiresAt = expiry(of: bytes) else { return nil }
        return LMDBRecord(expiresAt: expiresAt, payload: Array(bytes[8...]))
    }
}

/// A `pthread_rwlock_t` with closure-scoped locking.
final class ReadWriteLock: @unchecked Sendable {
    // @unchecked: the pthread lock is the synchronisation; the pointer itself never changes.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func withReadLock<T>(_ body: () -> T) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }

    func withWriteLock<T>(_ body: () -> T) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }
}

/// A file's device and inode numbers, which identify it under any path.
struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}

/// The LMDB files this process has open, so a second open of the same file is refused before it
/// can break the first one's locks.
enum OpenFiles {
    private static let open = Mutex<Set<FileIdentity>>([])

    static func register(
        path: String,
        opening: () throws(StoreError) -> OpaquePointer
    ) throws(StoreError) -> (environment: OpaquePointer, identity: FileIdentity) {
        let result: Result<(OpaquePointer, FileIdentity), StoreError> = open.withLock { files in
            if let existing = FileIdentity(path: path), files.contains(existing) {
                return .failure(
                    StoreError(
                        .invalidConfiguration,
                        "cache_store_path \(path) is already open in this process; open each store file once"))
            }
            let environment: OpaquePointer
            do throws(StoreError) {
                environment = try opening()
            } catch {
                return .failure(error)
            }
            guard let identity = FileIdentity(path: path) else {
                mdb_env_close(environment)
                return .failure(StoreError(.unavailable, "cannot stat cache_store_path \(path) after opening it"))
            }
            files.insert(identity)
            return .success((environment, identity))
        }
        let (environment, identity) = try result.get()
        return (environment, identity)
    }

    static func unregister(_ identity: FileIdentity) {
        _ = open.withLock { $0.remove(identity) }
    }
}
