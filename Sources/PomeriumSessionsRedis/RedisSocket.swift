import CLinux
import Glibc
import PomeriumSessions

/// A non-blocking TCP socket to Redis, used only by the connection's I/O thread.
struct RedisSocket {
    let descriptor: Int32
    let endpoint: String

    /// Resolves `host` and starts a non-blocking connect to one of its addresses, chosen by
    /// `addressIndex` so that successive attempts try each address in turn. Completion is reported
    /// by `poll` (POLLOUT) and checked with `connectionError()`.
    static func connect(host: String, port: Int, addressIndex: Int, endpoint: String) throws(StoreError) -> RedisSocket
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw StoreError(
                .unavailable,
                "cannot resolve the Redis host in cache_store_address \(endpoint): \(String(cString: gai_strerror(status)))"
            )
        }
        defer { freeaddrinfo(list) }
        var addresses: [UnsafeMutablePointer<addrinfo>] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            addresses.append(entry)
            cursor = entry.pointee.ai_next
        }
        let address = addresses[addressIndex % addresses.count].pointee

        let descriptor = socket(
            address.ai_family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw StoreError(.unavailable, "cannot create a socket for Redis at \(endpoint): \(errnoText())")
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = Glibc.connect(descriptor, address.ai_addr, address.ai_addrlen)
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

    /// Writes as much of `bytes` as the socket takes now and returns the count.
    func write(_ bytes: [UInt8]) throws(StoreError) -> Int {
        guard !bytes.isEmpty else { return 0 }
        let written = bytes.withUnsafeBytes { buffer in
            // MSG_NOSIGNAL: a peer that closed the connection must not raise SIGPIPE in this process.
            Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
        }
        if written >= 0 { return written }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return 0 }
        throw StoreError(.unavailable, "writing to Redis at \(endpoint) failed: \(Self.errnoText())")
    }

    /// Reads what has arrived, up to 1 MiB at a time.
    func readAvailable() throws(StoreError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < 1 << 20 {
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                result.append(contentsOf: chunk[0..<count])
                if count < chunk.count { break }
                continue
            }
            if count == 0 {
                throw StoreError(.unavailable, "Redis at \(endpoint) closed the connection")
            }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
            throw StoreError(.unavailable, "reading from Redis at \(endpoint) failed: \(Self.errnoText())")
        }
        return result
    }

    func close() { Glibc.close(descriptor) }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
