import Foundation
import Glibc
import PomeriumIdentity
import Synchronization

/// A TEST-ONLY blocking HTTP/1.1 transport for the integration tests: plain `http` to 127.0.0.1 only,
/// one connection per request (`Connection: close`), `Content-Length`, chunked and read-to-close
/// bodies, and the request's timeout as one deadline over connect, write and read. Each request runs
/// on its own thread so a blocked socket never holds a Swift concurrency thread. It records every
/// request line so tests can count calls per path.
final class LoopbackTestTransport: IdentityHTTPTransport {
    private let log = Mutex<[String]>([])

    /// `METHOD path` of every request sent, in order.
    var requestLines: [String] { log.withLock { $0 } }

    /// Counts the requests sent to `path` (query excluded).
    func count(path: String) -> Int {
        requestLines.filter { line in
            let target = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            return target.split(separator: "?", maxSplits: 1).first.map(String.init) == path
        }.count
    }

    func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse {
        guard let target = LoopbackTarget(url: request.url) else {
            throw IdentityTransportError.unsupportedURL(reason: "the test transport sends only http://127.0.0.1 URLs")
        }
        log.withLock { $0.append("\(request.method.rawValue) \(target.pathAndQuery)") }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try BlockingExchange.perform(request, target: target) })
            }
            thread.start()
        }
    }
}

/// The host part of an `http://127.x.x.x[:port]/path` URL.
struct LoopbackTarget: Sendable {
    let host: String
    let port: UInt16
    let pathAndQuery: String

    init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        pathAndQuery = slash == rest.endIndex ? "/" : String(rest[slash...])
        let pieces = authority.split(separator: ":", maxSplits: 1)
        guard let first = pieces.first, first.hasPrefix("127.") else { return nil }
        host = String(first)
        if pieces.count == 2 {
            guard let value = UInt16(pieces[1]) else { return nil }
            port = value
        } else {
            port = 80
        }
    }
}

/// One request and response over a fresh socket, bounded by a deadline.
private struct BlockingExchange {
    let descriptor: Int32
    let deadline: Double

    static func perform(_ request: IdentityHTTPRequest, target: LoopbackTarget) throws -> IdentityHTTPResponse {
        let deadline = monotonicSeconds() + request.timeout
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { throw IdentityTransportError.connectionFailed(reason: "socket() failed") }
        defer { close(descriptor) }
        let exchange = BlockingExchange(descriptor: descriptor, deadline: deadline)
        try exchange.connect(host: target.host, port: target.port)

        var head = "\(request.method.rawValue) \(target.pathAndQuery) HTTP/1.1\r\n"
        head += "Host: \(target.host):\(target.port)\r\nConnection: close\r\n"
        for header in request.headers { head += "\(header.name): \(header.value)\r\n" }
        if request.method == .post || !request.body.isEmpty { head += "Content-Length: \(request.body.count)\r\n" }
        head += "\r\n"
        try exchange.write(Array(head.utf8) + request.body)
        return try exchange.readResponse(limit: request.maximumResponseBytes)
    }

    private static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000
    }

    /// Waits until the socket is ready for `events`, or throws `timedOut` at the deadline.
    private func wait(for events: Int16) throws {
        let remaining = deadline - Self.monotonicSeconds()
        guard remaining > 0 else { throw IdentityTransportError.timedOut }
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        let ready = poll(&entry, 1, Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up)))
        if ready == 0 { throw IdentityTransportError.timedOut }
        if ready < 0 && errno != EINTR {
            throw IdentityTransportError.connectionFailed(reason: "poll failed: errno \(errno)")
        }
    }

    private func connect(host: String, port: UInt16) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw IdentityTransportError.unsupportedURL(reason: "\(host) is not an IPv4 address")
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 { return }
        guard errno == EINPROGRESS else { throw Self.connectError(errno) }
        try wait(for: Int16(POLLOUT))
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length)
        if code != 0 { throw Self.connectError(code) }
    }

    private static func connectError(_ code: Int32) -> IdentityTransportError {
        code == ECONNREFUSED
            ? .connectionFailed(reason: "connection refused")
            : .connectionFailed(reason: String(cString: strerror(code)))
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written > 0 {
                offset += written
            } else if errno == EAGAIN || errno == EINTR {
                try wait(for: Int16(POLLOUT))
            } else {
                throw IdentityTransportError.connectionFailed(
                    reason: "write failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Reads once; an empty result means the peer closed the connection.
    private func readSome() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, $0.count, 0) }
            if count >= 0 { return Array(buffer[0..<count]) }
            if errno == EAGAIN || errno == EINTR {
                try wait(for: Int16(POLLIN))
                continue
            }
            throw IdentityTransportError.connectionFailed(reason: "read failed: \(String(cString: strerror(errno)))")
        }
    }

    private func readResponse(limit: Int) throws -> IdentityHTTPResponse {
        var received: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil {
            let chunk = try readSome()
            if chunk.isEmpty {
                throw IdentityTransportError.malformedResponse(reason: "connection closed in the header")
            }
            received += chunk
            headEnd = Self.find([13, 10, 13, 10], in: received)
            if headEnd == nil && received.count > 65_536 {
                throw IdentityTransportError.malformedResponse(reason: "header larger than 64 KiB")
            }
        }

        let headerBytes = received[..<headEnd!]
        var rest = Array(received[(headEnd! + 4)...])
        let lines = String(decoding: headerBytes, as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw IdentityTransportError.malformedResponse(reason: "invalid status line")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else {
                throw IdentityTransportError.malformedResponse(reason: "header line without a colon")
            }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }

        let response = IdentityHTTPResponse(status: status, headers: headers)
        let transferEncoding = response.header("Transfer-Encoding")?.lowercased() ?? ""
        var body: [UInt8]
        if transferEncoding.contains("chunked") {
            body = try readChunked(&rest, limit: limit)
        } else if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw IdentityTransportError.malformedResponse(reason: "invalid Content-Length")
            }
            guard length <= limit else { throw IdentityTransportError.responseTooLarge }
            while rest.count < length {
                let chunk = try readSome()
                if chunk.isEmpty {
                    throw IdentityTransportError.malformedResponse(reason: "body shorter than Content-Length")
                }
                rest += chunk
            }
            body = Array(rest.prefix(length))
        } else {
            body = rest
            while true {
                let chunk = try readSome()
                if chunk.isEmpty { break }
                body += chunk
                if body.count > limit { throw IdentityTransportError.responseTooLarge }
            }
        }
        return IdentityHTTPResponse(status: status, headers: headers, body: body)
    }

    /// Decodes a chunked body (RFC 9112 section 7.1), reading more bytes as needed. Trailers are read
    /// and dropped.
    private func readChunked(_ buffer: inout [UInt8], limit: Int) throws -> [UInt8] {
        var body: [UInt8] = []
        func line() throws -> String {
            while true {
                if let end = Self.find([13, 10], in: buffer) {
                    let text = String(decoding: buffer[..<end], as: UTF8.self)
                    buffer.removeFirst(end + 2)
                    return text
                }
                let chunk = try readSome()
                if chunk.isEmpty { throw IdentityTransportError.malformedResponse(reason: "chunked body cut short") }
                buffer += chunk
            }
        }
        while true {
            let sizeText = try line().split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw IdentityTransportError.malformedResponse(reason: "invalid chunk size")
            }
            if size == 0 {
                while try !line().isEmpty {}
                return body
            }
            guard body.count + size <= limit else { throw IdentityTransportError.responseTooLarge }
            while buffer.count < size + 2 {
                let chunk = try readSome()
                if chunk.isEmpty { throw IdentityTransportError.malformedResponse(reason: "chunked body cut short") }
                buffer += chunk
            }
            body += buffer[..<size]
            guard buffer[size] == 13, buffer[size + 1] == 10 else {
                throw IdentityTransportError.malformedResponse(reason: "chunk not followed by CRLF")
            }
            buffer.removeFirst(size + 2)
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
