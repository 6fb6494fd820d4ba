import CLinux
import Glibc
import PomeriumCrypto
import PomeriumLogging

/// A listening socket on one loop. Several loops bind the same address with `SO_REUSEPORT`, and
/// the kernel spreads new connections across them.
public final class Listener: EventHandler {
    public let descriptor: Int32
    public unowned let loop: EventLoop
    public let address: SocketAddress
    private let onAccept: (Int32, SocketAddress) -> Void
    private var pausedForDescriptors = false
    private var closed = false

    /// Binds and listens on `address`, and calls `onAccept` on the loop thread with each new
    /// non-blocking socket and the peer's address. Loop thread only.
    public init(
        address: SocketAddress,
        loop: EventLoop,
        backlog: Int32 = 4096,
        onAccept: @escaping (Int32, SocketAddress) -> Void
    ) throws {
        self.loop = loop
        self.onAccept = onAccept
        descriptor = try Self.bindSocket(address, backlog: backlog)
        do {
            self.address = try Syscall.localAddress(descriptor)
            try loop.register(descriptor, handler: self, events: UInt32(EPOLLIN.rawValue))
        } catch {
            Syscall.close(descriptor)
            throw error
        }
    }

    /// Throws when a socket already listens on `address`, also one with `SO_REUSEPORT`, which a
    /// second process of the same user would otherwise share unnoticed. Port 0 always passes.
    public static func checkUnused(_ address: SocketAddress) throws {
        guard address.port != 0 else { return }
        // A probe bound without SO_REUSEPORT gets EADDRINUSE from any listener on the address.
        let probe = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        defer { Syscall.close(probe) }
        try Syscall.setOption(probe, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
        if address.family == AF_INET6 {
            try Syscall.setOption(probe, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 1)
        }
        try address.withSockAddr { try Syscall.bind(probe, $0, $1) }
    }

    /// A non-blocking listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`.
    public static func bindSocket(_ address: SocketAddress, backlog: Int32) throws -> Int32 {
        let descriptor = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        do {
            try Syscall.setOption(descriptor, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            try Syscall.setOption(descriptor, level: SOL_SOCKET, name: SO_REUSEPORT, value: 1)
            if address.family == AF_INET6 {
                try Syscall.setOption(descriptor, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 1)
            }
            try address.withSockAddr { try Syscall.bind(descriptor, $0, $1) }
            try Syscall.listen(descriptor, backlog: backlog)
        } catch {
            Syscall.close(descriptor)
            throw error
        }
        return descriptor
    }

    public func handleEvents(_ events: UInt32) {
        // Accept a bounded batch; level-triggered epoll reports the rest on the next turn.
        for _ in 0..<64 {
            guard !closed else { return }
            do {
                switch try Syscall.accept(descriptor) {
                case .value(let (socket, peer)):
                    onAccept(socket, peer)
                case .wouldBlock:
                    return
                }
            } catch let error as IOError where error.errno == EMFILE || error.errno == ENFILE {
                // Out of descriptors: stop listening briefly instead of spinning on the ready socket.
                loop.logger.warning(
                    "accept paused: out of file descriptors", metadata: ["address": "\(address)", "error": "\(error)"])
                pauseAccepting(seconds: 0.1)
                return
            } catch let error as IOError where error.errno == ECONNABORTED {
                continue
            } catch {
                loop.logger.error("accept failed", metadata: ["address": "\(address)", "error": "\(error)"])
                return
            }
        }
    }

    private func pauseAccepting(seconds: Double) {
        guard !pausedForDescriptors else { return }
        pausedForDescriptors = true
        try? loop.modify(descriptor, events: 0)
        loop.schedule(after: seconds) { [weak self] in
            guard let self, !self.closed else { return }
            self.pausedForDescriptors = false
            try? self.loop.modify(self.descriptor, events: UInt32(EPOLLIN.rawValue))
        }
    }

    /// Stops accepting and closes the socket. Loop thread only.
    public func close() {
        guard !closed else { return }
        closed = true
        loop.unregister(descriptor)
        Syscall.close(descriptor)
    }

    public func loopWillClose() { close() }
}

extension StreamConnection {
    /// Starts a non-blocking connect to `address` on `loop`. The delegate hears `connectionDidOpen`
    /// once TCP (and TLS, when `tls` is given) is up, or `didCloseWith` an error. `host` is the name
    /// TLS sends as SNI and verifies. Loop thread only.
    public static func connect(
        to address: SocketAddress,
        loop: EventLoop,
        tls: TLSClientContext? = nil,
        host: String,
        delegate: any StreamConnectionDelegate
    ) throws -> StreamConnection {
        let descriptor = try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue))
        do {
            try Syscall.setOption(descriptor, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            let session = try tls.map { try TLSSession(client: $0, descriptor: descriptor, host: host) }
            _ = try address.withSockAddr { try Syscall.connect(descriptor, $0, $1) }
            let connection = try StreamConnection(
                descriptor: descriptor, loop: loop, tls: session, connecting: true, remoteAddress: address)
            connection.delegate = delegate
            return connection
        } catch {
            Syscall.close(descriptor)
            throw error
        }
    }
}
