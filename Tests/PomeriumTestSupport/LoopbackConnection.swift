import Glibc

/// A blocking TCP connection to 127.0.0.1 for fixture checks, with a receive timeout. Tests of
/// the product use the product's own client or real clients instead.
public final class LoopbackConnection {
    private let descriptor: Int32

    public init(port: Int, timeoutSeconds: Int = 5) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed: errno \(errno)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            // No close here: the stored properties are set, so deinit runs and closes the socket.
            // A second close could shut a descriptor that another test has just opened.
            let code = errno
            throw FixtureError("connect(127.0.0.1:\(port)) failed: errno \(code)")
        }
    }

    deinit { close(descriptor) }

    /// Sends all of `text`.
    public func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            guard written > 0 else { throw FixtureError("write failed: errno \(errno)") }
            offset += written
        }
    }

    /// Reads until the peer closes, `limit` bytes arrive, `stop` returns true or the timeout fires.
    public func receive(limit: Int = 1 << 20, until stop: (String) -> Bool = { _ in false }) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while received.count < limit {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if stop(String(decoding: received, as: UTF8.self)) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Sends one HTTP/1.1 request with `Connection: close` and returns the whole response text.
    /// `host` defaults to `127.0.0.1:<port>`.
    public static func httpGet(port: Int, path: String, host: String? = nil, headers: [String: String] = [:])
        throws -> String
    {
        let connection = try LoopbackConnection(port: port)
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            request += "\(name): \(value)\r\n"
        }
        try connection.send(request + "\r\n")
        return connection.receive()
    }
}
