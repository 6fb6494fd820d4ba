import Glibc

/// An IPv4 or IPv6 address with a port.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family and bytes.
    public enum Host: Sendable, Hashable {
        case ipv4(UInt32)  // network byte order
        case ipv6([UInt8])
    }

    public let host: Host
    public let port: Int

    public init(host: Host, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `127.0.0.1:8080`, `[::1]:8080` or a bare IP literal with `defaultPort`.
    public init(parsing text: String, defaultPort: Int? = nil) throws {
        var hostPart = Substring(text)
        var portPart: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else {
                throw SocketAddressError(text, "an IPv6 literal needs a closing ']'")
            }
            let after = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if after.hasPrefix(":") {
                portPart = after.dropFirst()
            } else if !after.isEmpty {
                throw SocketAddressError(text, "expected ':PORT' after ']'")
            }
        } else if hostPart.filter({ $0 == ":" }).count == 1, let colon = hostPart.firstIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        let port: Int
        if let portPart {
            guard let value = Int(portPart), (0...65_535).contains(value) else {
                throw SocketAddressError(text, "the port must be a number from 0 to 65535")
            }
            port = value
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw SocketAddressError(text, "a port is missing; write HOST:PORT")
        }
        let hostString = String(hostPart)
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, hostString, &v4) == 1 {
            self.init(host: .ipv4(v4.s_addr), port: port)
        } else if inet_pton(AF_INET6, hostString, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            self.init(host: .ipv6(bytes), port: port)
        } else {
            throw SocketAddressError(text, "'\(hostString)' is not an IPv4 or IPv6 address")
        }
    }

    init(storage: sockaddr_storage) {
        var storage = storage
        if storage.ss_family == sa_family_t(AF_INET6) {
            let (bytes, port) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var address = pointer.pointee.sin6_addr
                    return (
                        withUnsafeBytes(of: &address) { Array($0) }, Int(UInt16(bigEndian: pointer.pointee.sin6_port))
                    )
                }
            }
            self.init(host: .ipv6(bytes), port: port)
        } else {
            let (address, port) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    ($0.pointee.sin_addr.s_addr, Int(UInt16(bigEndian: $0.pointee.sin_port)))
                }
            }
            self.init(host: .ipv4(address), port: port)
        }
    }

    public var family: Int32 {
        switch host {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        }
    }

    /// The address without the port, as `inet_ntop` writes it.
    public var ipString: String {
        switch host {
        case .ipv4(let raw):
            // Formatted here rather than by inet_ntop, which goes through sprintf: a proxy writes
            // the client's address into X-Forwarded-For on every request.
            return Self.dottedQuad(raw)
        case .ipv6(let bytes):
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Formats an IPv4 address in network byte order as `a.b.c.d`, in one pass into a byte
    /// buffer because appending each octet's `String` cost more than the rest of the proxy's header
    /// rewriting.
    static func dottedQuad(_ raw: UInt32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { text in
            var count = 0
            withUnsafeBytes(of: raw) { octets in
                for (index, octet) in octets.enumerated() {
                    if index > 0 {
                        text[count] = UInt8(ascii: ".")
                        count += 1
                    }
                    if octet >= 100 {
                        text[count] = UInt8(ascii: "0") + octet / 100
                        count += 1
                    }
                    if octet >= 10 {
                        text[count] = UInt8(ascii: "0") + octet / 10 % 10
                        count += 1
                    }
                    text[count] = UInt8(ascii: "0") + octet % 10
                    count += 1
                }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: text[..<count]), as: UTF8.self)
        }
    }

    public var description: String {
        switch host {
        case .ipv4: return "\(ipString):\(port)"
        case .ipv6: return "[\(ipString)]:\(port)"
        }
    }

    /// Calls `body` with this address as a `sockaddr` pointer and its length.
    public func withSockAddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        switch host {
        case .ipv4(let raw):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = raw
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6(let bytes):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = UInt16(port).bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes) }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }
}

/// An address that could not be parsed, with the reason and the expected form.
public struct SocketAddressError: Error, CustomStringConvertible, Sendable {
    public let text: String
    public let reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid socket address '\(text)': \(reason)" }
}
