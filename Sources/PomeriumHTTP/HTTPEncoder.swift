/// A head or trailer that cannot be written because it would corrupt the framing or inject
/// fields. The message names the part that failed but never repeats its bytes.
public struct HTTPEncodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case invalidHeaderName
        case invalidHeaderValue
        case invalidReason
        case invalidStatus
        case invalidTarget
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .invalidHeaderName: return "header field name is not a token"
        case .invalidHeaderValue: return "header field value contains CR, LF, NUL or another control character"
        case .invalidReason: return "reason phrase contains CR, LF, NUL or another control character"
        case .invalidStatus: return "status code is not in 100...999"
        case .invalidTarget: return "request target contains a space or a control character"
        }
    }
}

/// Serialises heads and chunked bodies into wire bytes (RFC 9112), appending to a caller's buffer.
/// Every field name must be a token and every value may contain only HTAB, SP, visible ASCII and
/// bytes above 0x7F, so a CR, LF or NUL from untrusted input cannot start a new field or message.
/// The encoder adds no fields: framing fields are the caller's choice.
public enum HTTPEncoder {
    public static func encode(_ head: HTTPRequestHead, into buffer: inout [UInt8]) throws(HTTPEncodingError) {
        // The strings are read in place (`withBytes`): copying them into variables for the mutating
        // `withUTF8` retained and released each, three times per proxied request with the reason below.
        let targetIsValid = HTTPHeaders.withBytes(of: head.target) { bytes in
            for byte in bytes where byte <= 0x20 || byte == 0x7F { return false }
            return true
        }
        guard targetIsValid else { throw HTTPEncodingError(.invalidTarget) }
        if let failure = head.headers.firstInvalidFieldKind() { throw HTTPEncodingError(failure) }
        let size =
            head.method.rawValue.utf8.count + 1 + head.target.utf8.count + 1 + versionLength(head.version) + 2
            + head.headers.fieldLinesSize + 2
        append(size, to: &buffer) { writer in
            HTTPHeaders.withBytes(of: head.method.rawValue) { writer.write($0) }
            writer.write(ASCII.space)
            HTTPHeaders.withBytes(of: head.target) { writer.write($0) }
            writer.write(ASCII.space)
            writeVersion(head.version, to: &writer)
            writer.write(ASCII.cr)
            writer.write(ASCII.lf)
            head.headers.writeFieldLines(to: &writer)
            writer.write(ASCII.cr)
            writer.write(ASCII.lf)
        }
    }

    public static func encode(_ head: HTTPResponseHead, into buffer: inout [UInt8]) throws(HTTPEncodingError) {
        guard (100...999).contains(head.status) else { throw HTTPEncodingError(.invalidStatus) }
        let reasonIsValid = HTTPHeaders.withBytes(of: head.reason) { bytes in
            for byte in bytes where !ASCII.isFieldValueCharacter(byte) { return false }
            return true
        }
        guard reasonIsValid else { throw HTTPEncodingError(.invalidReason) }
        if let failure = head.headers.firstInvalidFieldKind() { throw HTTPEncodingError(failure) }
        let size = versionLength(head.version) + 5 + head.reason.utf8.count + 2 + head.headers.fieldLinesSize + 2
        append(size, to: &buffer) { writer in
            writeVersion(head.version, to: &writer)
            writer.write(ASCII.space)
            writer.write(UInt8(ascii: "0") + UInt8(head.status / 100))
            writer.write(UInt8(ascii: "0") + UInt8(head.status / 10 % 10))
            writer.write(UInt8(ascii: "0") + UInt8(head.status % 10))
            writer.write(ASCII.space)
            HTTPHeaders.withBytes(of: head.reason) { writer.write($0) }
            writer.write(ASCII.cr)
            writer.write(ASCII.lf)
            head.headers.writeFieldLines(to: &writer)
            writer.write(ASCII.cr)
            writer.write(ASCII.lf)
        }
    }

    /// Appends exactly `size` bytes that `body` writes. Heads are sized first and written through a
    /// pointer, because appending them byte by byte to an array measured about 3,000 instructions
    /// per proxied request in uniqueness and capacity checks. An empty buffer without room is
    /// replaced by a new array of exactly `size` bytes, so the usual case allocates once. An empty
    /// buffer with room, such as a connection's output buffer, is written in place.
    /// Inlined, so that `body` is too and the head it reads is not copied into a closure context.
    @inline(__always)
    private static func append(_ size: Int, to buffer: inout [UInt8], _ body: (inout ByteWriter) -> Void) {
        if buffer.isEmpty && buffer.capacity < size {
            buffer = [UInt8](unsafeUninitializedCapacity: size) { storage, initialized in
                var writer = ByteWriter(storage)
                body(&writer)
                writer.checkFull()
                initialized = size
            }
            return
        }
        let start = buffer.count
        ZeroBytes.append(size, to: &buffer)
        buffer.withUnsafeMutableBufferPointer { storage in
            var writer = ByteWriter(UnsafeMutableBufferPointer(rebasing: storage[start...]))
            body(&writer)
            writer.checkFull()
        }
    }

    private static func versionLength(_ version: HTTPVersion) -> Int {
        5 + decimalLength(version.major) + 1 + decimalLength(version.minor)
    }

    private static func decimalLength(_ value: Int) -> Int {
        (0...9).contains(value) ? 1 : String(value).utf8.count
    }

    /// Writes `HTTP/major.minor`. The prefix goes out as bytes: walking the UTF-8 view of a
    /// literal, and the digits' range checks, measured about 50 instructions per head.
    @inline(__always)
    private static func writeVersion(_ version: HTTPVersion, to writer: inout ByteWriter) {
        writer.write(UInt8(ascii: "H"), UInt8(ascii: "T"))
        writer.write(UInt8(ascii: "T"), UInt8(ascii: "P"))
        writer.write(UInt8(ascii: "/"))
        writeDecimal(version.major, to: &writer)
        writer.write(ASCII.dot)
        writeDecimal(version.minor, to: &writer)
    }

    @inline(__always)
    private static func writeDecimal(_ value: Int, to writer: inout ByteWriter) {
        if value >= 0 && value <= 9 {
            writer.write(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
        } else {
            for byte in String(value).utf8 { writer.write(byte) }
        }
    }

    /// Appends one chunk: the size in hex, CRLF, the data, CRLF. Appends nothing for empty data,
    /// because an empty chunk would end the body.
    public static func encodeChunk(_ data: some Collection<UInt8>, into buffer: inout [UInt8]) {
        guard !data.isEmpty else { return }
        appendHex(data.count, to: &buffer)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        buffer.append(contentsOf: data)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
    }

    /// Appends the last chunk `0`, the trailer fields and the final CRLF.
    public static func encodeLastChunk(
        trailers: HTTPHeaders = HTTPHeaders(), into buffer: inout [UInt8]
    ) throws(HTTPEncodingError) {
        try validate(trailers)
        buffer.append(UInt8(ascii: "0"))
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        appendFields(trailers, to: &buffer)
    }

    /// Throws unless every name is a token and every value is free of CR, LF, NUL and other controls.
    public static func validate(_ headers: HTTPHeaders) throws(HTTPEncodingError) {
        for field in headers {
            guard !field.name.isEmpty, allBytes(of: field.name, satisfy: ASCII.isTokenCharacter) else {
                throw HTTPEncodingError(.invalidHeaderName)
            }
            guard allBytes(of: field.value, satisfy: ASCII.isFieldValueCharacter) else {
                throw HTTPEncodingError(.invalidHeaderValue)
            }
        }
    }

    /// Whether every UTF-8 byte of `text` passes `test`. Scanning the contiguous bytes costs a
    /// fraction of `utf8.allSatisfy`, which matters because every proxied head is checked twice.
    @inline(__always)
    private static func allBytes(of text: String, satisfy test: (UInt8) -> Bool) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            for byte in bytes where !test(byte) { return false }
            return true
        }
    }

    /// Appends checked fields and the final CRLF.
    private static func appendFields(_ headers: HTTPHeaders, to buffer: inout [UInt8]) {
        append(headers.fieldLinesSize + 2, to: &buffer) { writer in
            headers.writeFieldLines(to: &writer)
            writer.write(ASCII.cr)
            writer.write(ASCII.lf)
        }
    }

    private static func appendHex(_ value: Int, to buffer: inout [UInt8]) {
        var digits: [UInt8] = []
        var remaining = value
        repeat {
            digits.append(ASCII.hexDigitsUppercase[remaining & 0x0F])
            remaining >>= 4
        } while remaining > 0
        buffer.append(contentsOf: digits.reversed())
    }
}

/// Appends zero bytes to arrays that are then written through a pointer. Appending a slice of a
/// constant block of zeros costs one copy; appending `repeatElement(0, count:)` went through the
/// generic sequence path at several instructions per byte.
enum ZeroBytes {
    private static let block = [UInt8](repeating: 0, count: 1024)

    static func append(_ count: Int, to array: inout [UInt8]) {
        var remaining = count
        while remaining > 0 {
            let step = Swift.min(remaining, block.count)
            block.withUnsafeBufferPointer { array.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<step])) }
            remaining -= step
        }
    }
}

/// Writes bytes into memory sized in advance. Writing past the end traps instead of corrupting
/// memory, should a size computation ever disagree with what is written.
struct ByteWriter {
    private let storage: UnsafeMutableBufferPointer<UInt8>
    private var count = 0

    init(_ storage: UnsafeMutableBufferPointer<UInt8>) {
        self.storage = storage
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        precondition(count < storage.count, "head larger than its computed size")
        storage[count] = byte
        count += 1
    }

    /// Writes two bytes with one bounds check, for the separators of field lines.
    @inline(__always)
    mutating func write(_ first: UInt8, _ second: UInt8) {
        precondition(count + 2 <= storage.count, "head larger than its computed size")
        storage[count] = first
        storage[count + 1] = second
        count += 2
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(bytes.count <= storage.count - count, "head larger than its computed size")
        Self.copy(source, to: storage.baseAddress! + count, count: bytes.count)
        count += bytes.count
    }

    /// Copies `count` bytes. Names and values in a head are mostly 4 to 16 bytes, and for those
    /// two overlapping word copies cost a few instructions where a `memcpy` call cost dozens.
    @inline(__always)
    static func copy(_ source: UnsafePointer<UInt8>, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        let from = UnsafeRawPointer(source)
        let to = UnsafeMutableRawPointer(target)
        switch count {
        case 8...16:
            let first = from.loadUnaligned(as: UInt64.self)
            let last = from.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            to.storeBytes(of: first, as: UInt64.self)
            to.storeBytes(of: last, toByteOffset: count - 8, as: UInt64.self)
        case 4..<8:
            let first = from.loadUnaligned(as: UInt32.self)
            let last = from.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
            to.storeBytes(of: first, as: UInt32.self)
            to.storeBytes(of: last, toByteOffset: count - 4, as: UInt32.self)
        case 0..<4:
            var index = 0
            while index < count {
                target[index] = source[index]
                index += 1
            }
        default:
            target.update(from: source, count: count)
        }
    }

    /// Writes each field of `entries` as `name: value` CRLF from `storage`, with one bounds check
    /// per field instead of one per piece.
    @inline(__always)
    mutating func writeFieldLines(_ entries: [HTTPHeaders.Entry], from storage: UnsafeBufferPointer<UInt8>) {
        guard let start = self.storage.baseAddress else {
            precondition(entries.isEmpty, "head larger than its computed size")
            return
        }
        var target = start + count
        let limit = start + self.storage.count
        for entry in entries {
            precondition(entry.name.upperBound <= storage.count && entry.value.upperBound <= storage.count)
            precondition(
                entry.name.count + entry.value.count + 4 <= limit - target, "head larger than its computed size")
            if let source = storage.baseAddress {
                Self.copy(source + entry.name.lowerBound, to: target, count: entry.name.count)
                target += entry.name.count
                target[0] = ASCII.colon
                target[1] = ASCII.space
                target += 2
                Self.copy(source + entry.value.lowerBound, to: target, count: entry.value.count)
                target += entry.value.count
            } else {
                target[0] = ASCII.colon
                target[1] = ASCII.space
                target += 2
            }
            target[0] = ASCII.cr
            target[1] = ASCII.lf
            target += 2
        }
        count = target - start
    }

    /// Traps unless every byte of the storage was written, so no uninitialised byte is sent.
    func checkFull() {
        precondition(count == storage.count, "head smaller than its computed size")
    }
}
