import CLinux
import Glibc
import PomeriumCrypto
import PomeriumSessions

/// A non-blocking TCP socket to Redis, with TLS on top for `rediss://`, used only on the
/// connection's event loop.
struct RedisSocket {
    let descriptor: Int32
    let endpoint: String
    private(set) var tls: TLSSession?

    /// The socket state a TLS handshake step waits for next.
    enum HandshakeProgress {
        case finished
        case needsReadable
        case needsWritable
    }

    /// The result of one write: bytes taken, and whether TLS needs the socket readable before
    /// the rest can go.
    struct WriteProgress {
        var written: Int
        var needsReadable = false
    }

    /// Returns the addresses of `host` when it is a numeric IPv4 or IPv6 address, without a lookup.
    /// Returns `nil` for a host name, which needs `resolve`.
    static func numericAddresses(host: String, port: Int) -> [RedisAddress]? {
        try? lookUp(host: host, port: port, flags: AI_NUMERICHOST, endpoint: "")
    }

    /// Resolves `host` with getaddrinfo. A host name may block on DNS for seconds, so the
    /// connection calls this off its loop thread.
    static func resolve(host: String, port: Int, endpoint: String) throws(StoreError) -> [RedisAddress] {
        try lookUp(host: host, port: port, flags: 0, endpoint: endpoint)
    }

    private static func lookUp(host: String, port: Int, flags: Int32, endpoint: String) throws(StoreError)
        -> [RedisAddress]
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV | flags
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw StoreError(
                .unavailable,
                "cannot resolve the Redis host in cache_store_address \(endpoint): \(String(cString: gai_strerror(status)))"
            )
        }
        defer { freeaddrinfo(list) }
        var addresses: [RedisAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                addresses.append(
                    RedisAddress(family: entry.pointee.ai_family, address: address, length: entry.pointee.ai_addrlen))
            }
            cursor = entry.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            throw StoreError(.unavailable, "the Redis host in cache_store_address \(endpoint) has no address")
        }
        return addresses
    }

    /// Starts a non-blocking connect to `address`. Completion is reported by epoll (EPOLLOUT) and
    /// checked with `connectionError()`.
    static func connect(to address: RedisAddress, endpoint: String) throws(StoreError) -> RedisSocket {
        let descriptor = socket(
            address.family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create a socket for Redis at \(endpoint): \(errnoText())")
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSocketAddress { Glibc.connect(descriptor, $0, $1) }
        if result != 0 && errno != EINPROGRESS {
            let error = StoreError(.unavailable, "cannot connect to Redis at \(endpoint): \(errnoText())")
            Glibc.close(descriptor)
            throw error
        }
        return RedisSocket(descriptor: descriptor, endpoint: endpoint)
    }

    /// The reason a non-blocking connect failed, or `nil` once it succeeded.
    func connectionError() -> String? {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return Self.errnoText() }
        return error == 0 ? nil : String(cString: strerror(error))
    }

    /// Wraps the connected socket in a client TLS session that verifies the server as `host`
    /// (or the configuration's `serverNameOverride`).
    mutating func startTLS(context: TLSClientContext, host: String) throws(StoreError) {
        do {
            tls = try TLSSession(client: context, descriptor: descriptor, host: host)
        } catch {
            throw StoreError(
                .invalidConfiguration,
                "cannot set up TLS to Redis at \(endpoint): \(error); check tls_server_name in cache_store_address")
        }
    }

    /// Advances the TLS handshake. Errors name the likely setting to fix.
    func handshake() throws(StoreError) -> HandshakeProgress {
        guard let tls else { return .finished }
        let result: TLSIOResult
        do {
            result = try tls.handshake()
        } catch {
            throw Self.handshakeError(String(describing: error), endpoint: endpoint)
        }
        switch result {
        case .done: return .finished
        case .wantRead: return .needsReadable
        case .wantWrite: return .needsWritable
        case .closed:
            throw StoreError(
                .unavailable,
                "Redis at \(endpoint) closed the connection during the TLS handshake; check that the port serves "
                    + "TLS (redis-server --tls-port) and, if the server requires client certificates, set "
                    + "tls_cert_file and tls_key_file in cache_store_address")
        }
    }

    static func handshakeError(_ reason: String, endpoint: String) -> StoreError {
        if reason.contains("certificate verification failed") {
            return StoreError(
                .invalidConfiguration,
                "TLS handshake with Redis at \(endpoint) failed: \(reason); set tls_ca_file in cache_store_address "
                    + "to the CA that signed the server's certificate (rediss://host:port/0?tls_ca_file=/path/ca.pem), "
                    + "or tls_server_name to a name the certificate contains")
        }
        if reason.contains("wrong version number") || reason.contains("packet length too long")
            || reason.contains("record layer failure")
        {
            return StoreError(
                .unavailable,
                "TLS handshake with Redis at \(endpoint) failed: \(reason); the port does not seem to serve TLS: "
                    + "use redis:// for a plain port, or point cache_store_address at redis-server's --tls-port")
        }
        return StoreError(.unavailable, "TLS handshake with Redis at \(endpoint) failed: \(reason)")
    }

    /// Writes as much of `bytes` as the connection takes now.
    func write(_ bytes: [UInt8]) throws(StoreError) -> WriteProgress {
        guard !bytes.isEmpty else { return WriteProgress(written: 0) }
        if let tls {
            let result: TLSIOResult
            do {
                result = try bytes.withUnsafeBytes { buffer in try tls.write(buffer) }
            } catch {
                throw StoreError(.unavailable, "writing to Redis at \(endpoint) failed: \(error)")
            }
            switch result {
            case .done(let count): return WriteProgress(written: count)
            case .wantWrite: return WriteProgress(written: 0)
            case .wantRead: return WriteProgress(written: 0, needsReadable: true)
            case .closed: throw StoreError(.unavailable, "Redis at \(endpoint) closed the TLS connection")
            }
        }
        let written = bytes.withUnsafeBytes { buffer in
            // MSG_NOSIGNAL: a peer that closed the connection must not raise SIGPIPE in this process.
            Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
        }
        if written >= 0 { return WriteProgress(written: written) }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return WriteProgress(written: 0) }
        throw StoreError(.unavailable, "writing to Redis at \(endpoint) failed: \(Self.errnoText())")
    }

    /// Reads what has arrived into `scratch` and hands each chunk to `consume`, up to about 1 MiB
    /// per call. Over TLS it also drains the plaintext OpenSSL has already decrypted, because
    /// epoll cannot report those bytes. A chunk is valid only during its `consume` call.
    func readAvailable(
        into scratch: UnsafeMutableRawBufferPointer,
        _ consume: (UnsafeRawBufferPointer) throws(StoreError) -> Void
    ) throws(StoreError) {
        var total = 0
        while total < 1 << 20 || (tls?.hasBufferedPlaintext ?? false) {
            let count = try readChunk(into: scratch)
            guard count > 0 else { return }
            total += count
            try consume(UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
            // A short plain read means the socket is drained; TLS reads return one record at a time.
            if tls == nil && count < scratch.count { return }
        }
    }

    /// Reads once. Returns 0 when nothing is available now; throws when the connection closed.
    private func readChunk(into scratch: UnsafeMutableRawBufferPointer) throws(StoreError) -> Int {
        guard let tls else {
            let count = Glibc.recv(descriptor, scratch.baseAddress, scratch.count, 0)
            if count > 0 { return count }
            if count == 0 { throw StoreError(.unavailable, "Redis at \(endpoint) closed the connection") }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return 0 }
            throw StoreError(.unavailable, "reading from Redis at \(endpoint) failed: \(Self.errnoText())")
        }
        let outcome: TLSIOResult
        do {
            outcome = try tls.read(into: scratch)
        } catch {
            let reason = String(describing: error)
            if reason.contains("certificate required") || reason.contains("certificate unknown")
                || reason.contains("bad certificate")
            {
                throw StoreError(
                    .invalidConfiguration,
                    "Redis at \(endpoint) rejected the TLS client: \(reason); set tls_cert_file and tls_key_file "
                        + "in cache_store_address to a client certificate the server's tls-ca-cert-file trusts")
            }
            throw StoreError(.unavailable, "reading from Redis at \(endpoint) failed: \(reason)")
        }
        switch outcome {
        case .done(let count): return count
        case .wantRead, .wantWrite: return 0
        case .closed: throw StoreError(.unavailable, "Redis at \(endpoint) closed the connection")
        }
    }

    func close() {
        tls?.shutdown()
        Glibc.close(descriptor)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// One resolved socket address of the Redis host, copied out of getaddrinfo's list so that it can
/// travel from the resolving task to the loop.
struct RedisAddress: Sendable {
    let family: Int32
    private let storage: sockaddr_storage
    private let length: socklen_t

    init(family: Int32, address: UnsafePointer<sockaddr>, length: socklen_t) {
        self.family = family
        var storage = sockaddr_storage()
        let count = min(Int(length), MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: count))
        }
        self.storage = storage
        self.length = socklen_t(count)
    }

    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafePointer(to: storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
