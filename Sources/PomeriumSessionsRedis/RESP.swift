/// One value of the Redis serialization protocol, version 2 (RESP2).
public enum RESPValue: Equatable, Sendable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case array([RESPValue])
    /// The null bulk string (`$-1`) or null array (`*-1`).
    case null
}

/// A malformed RESP stream. The connection that produced it cannot be trusted any more.
public struct RESPError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Encodes commands as RESP arrays of bulk strings, the form Redis expects from clients.
public enum RESPEncoder {
    public static func encodeCommand(_ arguments: [[UInt8]], into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &buffer)
        for argument in arguments {
            buffer.append(UInt8(ascii: "$"))
            appendDecimal(argument.count, to: &buffer)
            buffer.append(contentsOf: argument)
            buffer.append(contentsOf: crlf)
        }
    }

    public static func encodeCommand(_ arguments: [[UInt8]]) -> [UInt8] {
        var buffer: [UInt8] = []
        encodeCommand(arguments, into: &buffer)
        return buffer
    }

    /// Encodes any value, as a server would; tests use it to build replies.
    public static func encode(_ value: RESPValue, into buffer: inout [UInt8]) {
        switch value {
        case .simpleString(let text):
            buffer.append(UInt8(ascii: "+"))
            buffer.append(contentsOf: text.utf8)
            buffer.append(contentsOf: crlf)
        case .error(let text):
            buffer.append(UInt8(ascii: "-"))
            buffer.append(contentsOf: text.utf8)
            buffer.append(contentsOf: crlf)
        case .integer(let number):
            buffer.append(UInt8(ascii: ":"))
            buffer.append(contentsOf: String(number).utf8)
            buffer.append(contentsOf: crlf)
        case .bulkString(let bytes):
            buffer.append(UInt8(ascii: "$"))
            appendDecimal(bytes.count, to: &buffer)
            buffer.append(contentsOf: bytes)
            buffer.append(contentsOf: crlf)
        case .array(let elements):
            buffer.append(UInt8(ascii: "*"))
            appendDecimal(elements.count, to: &buffer)
            for element in elements { encode(element, into: &buffer) }
        case .null:
            buffer.append(contentsOf: Array("$-1\r\n".utf8))
        }
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func appendDecimal(_ number: Int, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: String(number).utf8)
        buffer.append(contentsOf: crlf)
    }
}

/// An incremental RESP2 parser: append bytes as they arrive and take complete values with `next()`.
/// It does no I/O. Limits bound what a misbehaving server can make it allocate.
public struct RESPParser: Sendable {
    public struct Limits: Sendable {
        /// The largest bulk string. Redis's own default `proto-max-bulk-len` is 512 MiB.
        public var maximumBulkBytes = 64 * 1024 * 1024
        /// The maximum number of elements in one array.
        public var maximumArrayCount = 1 << 20
        /// The deepest nesting of arrays.
        public var maximumDepth = 16
        /// The maximum length of a simple string, error or integer line.
        public var maximumLineBytes = 64 * 1024

        public init() {}
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// The number of bytes received but not yet returned as values.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        // Drop consumed bytes once they are the larger part, so appends stay amortised O(1).
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete value, or `nil` when more bytes are needed.
    public mutating func next() throws(RESPError) -> RESPValue? {
        var position = start
        guard let value = try parseValue(at: &position, depth: 0) else { return nil }
        start = position
        return value
    }

    private func parseValue(at position: inout Int, depth: Int) throws(RESPError) -> RESPValue? {
        guard position < buffer.count else { return nil }
        let type = buffer[position]
        var cursor = position + 1
        guard let line = try readLine(at: &cursor) else { return nil }
        let value: RESPValue
        switch type {
        case UInt8(ascii: "+"):
            value = .simpleString(String(decoding: buffer[line], as: UTF8.self))
        case UInt8(ascii: "-"):
            value = .error(String(decoding: buffer[line], as: UTF8.self))
        case UInt8(ascii: ":"):
            value = .integer(try parseInteger(line))
        case UInt8(ascii: "$"):
            let length = try parseInteger(line)
            if length == -1 {
                value = .null
                break
            }
            guard length >= 0, length <= limits.maximumBulkBytes else {
                throw RESPError("invalid bulk string length \(length): allowed are -1 to \(limits.maximumBulkBytes)")
            }
            let end = cursor + Int(length)
            guard end + 2 <= buffer.count else { return nil }
            guard buffer[end] == 13, buffer[end + 1] == 10 else {
                throw RESPError("bulk string of \(length) bytes is not followed by CRLF")
            }
            value = .bulkString(Array(buffer[cursor..<end]))
            cursor = end + 2
        case UInt8(ascii: "*"):
            let count = try parseInteger(line)
            if count == -1 {
                value = .null
                break
            }
            guard count >= 0, count <= limits.maximumArrayCount else {
                throw RESPError("invalid array length \(count): allowed are -1 to \(limits.maximumArrayCount)")
            }
            guard depth < limits.maximumDepth else {
                throw RESPError("arrays nested deeper than \(limits.maximumDepth) levels")
            }
            var elements: [RESPValue] = []
            // Reserve no more than the bytes at hand can hold, so a huge claimed count costs nothing.
            elements.reserveCapacity(min(Int(count), (buffer.count - cursor) / 3))
            for _ in 0..<count {
                guard let element = try parseValue(at: &cursor, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            value = .array(elements)
        default:
            throw RESPError("invalid RESP type byte 0x\(String(type, radix: 16))")
        }
        position = cursor
        return value
    }

    /// Returns the range of the line starting at `cursor`, without its CRLF, and moves `cursor` past
    /// the CRLF; `nil` when the CRLF has not arrived yet.
    private func readLine(at cursor: inout Int) throws(RESPError) -> Range<Int>? {
        var index = cursor
        let limit = min(buffer.count, cursor + limits.maximumLineBytes + 1)
        while index < limit {
            if buffer[index] == 13 {
                guard index + 1 < buffer.count else { return nil }
                guard buffer[index + 1] == 10 else { throw RESPError("CR not followed by LF in a RESP line") }
                let line = cursor..<index
                cursor = index + 2
                return line
            }
            if buffer[index] == 10 { throw RESPError("LF without CR in a RESP line") }
            index += 1
        }
        if limit - cursor > limits.maximumLineBytes {
            throw RESPError("RESP line longer than \(limits.maximumLineBytes) bytes")
        }
        return nil
    }

    private func parseInteger(_ line: Range<Int>) throws(RESPError) -> Int64 {
        var index = line.lowerBound
        var negative = false
        if index < line.upperBound && buffer[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < line.upperBound, line.upperBound - index <= 19 else {
            throw RESPError("invalid RESP integer of \(line.count) bytes")
        }
        var magnitude: UInt64 = 0
        while index < line.upperBound {
            let byte = buffer[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw RESPError("invalid RESP integer: byte 0x\(String(byte, radix: 16)) is not a digit")
            }
            magnitude = magnitude * 10 + UInt64(byte - UInt8(ascii: "0"))
            index += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw RESPError("RESP integer out of range") }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw RESPError("RESP integer out of range") }
        return Int64(magnitude)
    }
}
