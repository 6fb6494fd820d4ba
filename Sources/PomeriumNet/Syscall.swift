import CLinux
import Glibc

/// A failed system call: the function name and its `errno`.
public struct IOError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The system call that failed, for example `accept4`.
    public let function: String
    /// The `errno` value the call left.
    public let errno: Int32

    public init(function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    public var description: String {
        "\(function) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// Whether the peer reset or abandoned the connection, as opposed to a local failure.
    public var isConnectionReset: Bool {
        errno == ECONNRESET || errno == EPIPE || errno == ECONNABORTED || errno == ETIMEDOUT
    }
}

/// The result of a non-blocking call: a value, or `wouldBlock` when the call returned `EAGAIN`.
public enum IOResult<Value> {
    case value(Value)
    case wouldBlock
}

/// The one wrapper through which the network core makes its system calls. Each function retries
/// `EINTR`, turns `EAGAIN`/`EWOULDBLOCK` into `.wouldBlock` where the call is non-blocking, and
/// throws `IOError` with the function name for any other failure.
public enum Syscall {
    @inline(__always)
    static func retrying(_ function: String, _ body: () -> Int) throws -> IOResult<Int> {
        while true {
            let result = body()
            if result >= 0 { return .value(result) }
            let code = CLinux_errno()
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw IOError(function: function, errno: code)
        }
    }

    @inline(__always)
    static func blocking(_ function: String, _ body: () -> Int) throws -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = CLinux_errno()
            if code == EINTR { continue }
            throw IOError(function: function, errno: code)
        }
    }

    public static func read(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws
        -> IOResult<Int>
    {
        try retrying("read") { Glibc.read(descriptor, buffer, count) }
    }

    public static func write(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) throws -> IOResult<Int> {
        try retrying("write") { Glibc.send(descriptor, buffer, count, Int32(MSG_NOSIGNAL)) }
    }

    public static func writev(_ descriptor: Int32, _ vectors: UnsafePointer<iovec>, _ count: Int32) throws
        -> IOResult<Int>
    {
        try retrying("writev") { Glibc.writev(descriptor, vectors, count) }
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket.
    public static func accept(_ descriptor: Int32) throws -> IOResult<(Int32, SocketAddress)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try retrying("accept4") {
                    let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
                    return Int(CLinux_accept4(descriptor, address, &length, flags))
                }
            }
        }
        switch result {
        case .value(let fd): return .value((Int32(fd), SocketAddress(storage: storage)))
        case .wouldBlock: return .wouldBlock
        }
    }

    public static func socket(domain: Int32, type: Int32) throws -> Int32 {
        let flags = type | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        return Int32(try blocking("socket") { Int(Glibc.socket(domain, flags, 0)) })
    }

    public static func setOption(_ descriptor: Int32, level: Int32, name: Int32, value: Int32) throws {
        var value = value
        _ = try blocking("setsockopt") {
            Int(Glibc.setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size)))
        }
    }

    public static func getSocketError(_ descriptor: Int32) throws -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try blocking("getsockopt") { Int(Glibc.getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &value, &length)) }
        return value
    }

    public static func bind(_ descriptor: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws {
        _ = try blocking("bind") { Int(Glibc.bind(descriptor, address, length)) }
    }

    public static func listen(_ descriptor: Int32, backlog: Int32) throws {
        _ = try blocking("listen") { Int(Glibc.listen(descriptor, backlog)) }
    }

    /// Starts a non-blocking connect; returns false while the connection is in progress.
    public static func connect(_ descriptor: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws
        -> Bool
    {
        while true {
            if Glibc.connect(descriptor, address, length) == 0 { return true }
            let code = CLinux_errno()
            if code == EINTR { continue }
            if code == EINPROGRESS { return false }
            throw IOError(function: "connect", errno: code)
        }
    }

    public static func localAddress(_ descriptor: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try blocking("getsockname") { Int(Glibc.getsockname(descriptor, address, &length)) }
            }
        }
        return SocketAddress(storage: storage)
    }

    public static func peerAddress(_ descriptor: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                try blocking("getpeername") { Int(Glibc.getpeername(descriptor, address, &length)) }
            }
        }
        return SocketAddress(storage: storage)
    }

    public static func shutdownWrite(_ descriptor: Int32) {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_WR))
    }

    /// Closes `descriptor`. `close` is not retried on `EINTR`: Linux has released the descriptor.
    public static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    public static func epollCreate() throws -> Int32 {
        Int32(try blocking("epoll_create1") { Int(epoll_create1(Int32(EPOLL_CLOEXEC))) })
    }

    public static func epollControl(_ epoll: Int32, _ operation: Int32, _ descriptor: Int32, events: UInt32) throws {
        var event = epoll_event()
        event.events = events
        event.data.fd = descriptor
        _ = try blocking("epoll_ctl") { Int(epoll_ctl(epoll, operation, descriptor, &event)) }
    }

    public static func epollWait(
        _ epoll: Int32,
        _ events: UnsafeMutablePointer<epoll_event>,
        _ capacity: Int32,
        timeoutMilliseconds: Int32
    ) throws -> Int {
        while true {
            let result = epoll_wait(epoll, events, capacity, timeoutMilliseconds)
            if result >= 0 { return Int(result) }
            let code = CLinux_errno()
            // A signal interrupted the wait: return no events so the caller recomputes its timeout.
            if code == EINTR { return 0 }
            throw IOError(function: "epoll_wait", errno: code)
        }
    }

    public static func eventfdCreate() throws -> Int32 {
        Int32(try blocking("eventfd") { Int(eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))) })
    }

    public static func eventfdSignal(_ descriptor: Int32) throws {
        var one: UInt64 = 1
        // EAGAIN means the counter is saturated, which still wakes the reader.
        _ = try retrying("write") { Glibc.write(descriptor, &one, 8) }
    }

    public static func eventfdDrain(_ descriptor: Int32) throws {
        var value: UInt64 = 0
        _ = try retrying("read") { Glibc.read(descriptor, &value, 8) }
    }

    public static func signalfdCreate(_ mask: UnsafePointer<sigset_t>) throws -> Int32 {
        Int32(try blocking("signalfd") { Int(signalfd(-1, mask, Int32(SFD_NONBLOCK | SFD_CLOEXEC))) })
    }

    public static func blockSignals(_ mask: UnsafePointer<sigset_t>) throws {
        let result = pthread_sigmask(SIG_BLOCK, mask, nil)
        if result != 0 { throw IOError(function: "pthread_sigmask", errno: result) }
    }
}
