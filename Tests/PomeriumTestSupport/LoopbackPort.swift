import Foundation
import Glibc

/// Free TCP ports on 127.0.0.1 for test servers.
public enum LoopbackPort {
    /// A port that was free a moment ago: the kernel picks it for a socket bound to port 0, and the
    /// socket is closed again. Another process may take it before the test server binds it.
    /// `ManagedProcess.waitUntilListening` then finds a listener outside the server's process
    /// group, and the server's exit becomes a start failure that the fixture retries on a new port.
    public static func allocate() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FixtureError("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw FixtureError("bind(127.0.0.1:0) failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Checks whether an IPv4 socket listening on 127.0.0.1:`port` or 0.0.0.0:`port` belongs to a
    /// process of process group `group`. Returns `nil` when /proc/net/tcp cannot be read.
    public static func listener(of port: Int, isInProcessGroup group: pid_t) -> Bool? {
        guard let inodes = listeningInodes(port: port) else { return nil }
        guard !inodes.isEmpty else { return false }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry), processGroup(of: pid) == group else { continue }
            let folder = "/proc/\(pid)/fd"
            for descriptor in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(descriptor)")
                else { continue }
                if target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()),
                    inodes.contains(inode)
                {
                    return true
                }
            }
        }
        return false
    }

    /// Reads the inodes of the IPv4 sockets in state LISTEN on 127.0.0.1:`port` or 0.0.0.0:`port`,
    /// or `nil` when /proc/net/tcp cannot be read. Sockets on other addresses are left out, because
    /// they do not receive the connections to 127.0.0.1 that the tests make.
    static func listeningInodes(port: Int) -> Set<UInt64>? {
        guard let text = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return nil }
        // The table prints an address's four bytes as one native-endian hexadecimal integer, so
        // 127.0.0.1 reads 0100007F on little-endian machines such as x86-64 and arm64.
        let addresses = ["0100007F:" + String(format: "%04X", port), "00000000:" + String(format: "%04X", port)]
        var inodes = Set<UInt64>()
        for line in text.split(separator: "\n").dropFirst() {
            // Fields: sl, local address, remote address, state, queues, timer, retransmits,
            // uid, timeout, inode. State 0A is LISTEN.
            let fields = line.split(separator: " ")
            guard fields.count > 9, addresses.contains(String(fields[1])), fields[3] == "0A",
                let inode = UInt64(fields[9])
            else { continue }
            inodes.insert(inode)
        }
        return inodes
    }

    /// Reads the process group of `pid` from /proc/`pid`/stat, or `nil` when the process is gone.
    static func processGroup(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let nameEnd = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state, parent pid, process group.
        let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
        guard fields.count > 2 else { return nil }
        return pid_t(fields[2])
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(_ port: Int) -> Bool {
        (try? LoopbackConnection(port: port)) != nil
    }
}

/// An error from a test fixture, with what failed and where to look.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
