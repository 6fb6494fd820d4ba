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
        guard head.target.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw HTTPEncodingError(.invalidTarget)
        }
        let start = buffer.count
        buffer.reserveCapacity(start + head.target.utf8.count + estimatedSize(of: head.headers))
        buffer.append(contentsOf: head.method.rawValue.utf8)
        buffer.append(ASCII.space)
        appendBytes(of: head.target, to: &buffer)
        buffer.append(ASCII.space)
        appendVersion(head.version, to: &buffer)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        try appendValidatedFields(head.headers, to: &buffer, removingFrom: start)
    }

    public static func encode(_ head: HTTPResponseHead, into buffer: inout [UInt8]) throws(HTTPEncodingError) {
        guard (100...999).contains(head.status) else { throw HTTPEncodingError(.invalidStatus) }
        guard head.reason.utf8.allSatisfy(ASCII.isFieldValueCharacter) else { throw HTTPEncodingError(.invalidReason) }
        let start = buffer.count
        buffer.reserveCapacity(start + head.reason.utf8.count + estimatedSize(of: head.headers))
        appendVersion(head.version, to: &buffer)
        buffer.append(ASCII.space)
        buffer.append(UInt8(ascii: "0") + UInt8(head.status / 100))
        buffer.append(UInt8(ascii: "0") + UInt8(head.status / 10 % 10))
        buffer.append(UInt8(ascii: "0") + UInt8(head.status % 10))
        buffer.append(ASCII.space)
        buffer.append(contentsOf: head.reason.utf8)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        try appendValidatedFields(head.headers, to: &buffer, removingFrom: start)
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

    private static func appendVersion(_ version: HTTPVersion, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: "HTTP/".utf8)
        appendDecimal(version.major, to: &buffer)
        buffer.append(ASCII.dot)
        appendDecimal(version.minor, to: &buffer)
    }

    /// Appends a version number; single digits, the only ones HTTP/1.x uses, skip the `String`.
    private static func appendDecimal(_ value: some BinaryInteger, to buffer: inout [UInt8]) {
        if (0...9).contains(value) {
            buffer.append(UInt8(ascii: "0") + UInt8(value))
        } else {
            buffer.append(contentsOf: String(value).utf8)
        }
    }

    /// Appends the UTF-8 bytes of `text` as one copy; `append(contentsOf: text.utf8)` goes byte by byte.
    @inline(__always)
    private static func appendBytes(of text: String, to buffer: inout [UInt8]) {
        var text = text
        text.withUTF8 { buffer.append(contentsOf: $0) }
    }

    /// A capacity guess for a head with `headers`, so that most heads need one allocation. Counting
    /// the exact size would walk the fields once more.
    private static func estimatedSize(of headers: HTTPHeaders) -> Int {
        64 + headers.count * 48
    }

    /// Checks and appends the fields in one pass over their bytes, as `validate` and `appendFields`
    /// would. On an invalid field, removes everything from `start` on, so that a throwing encode
    /// leaves the caller's buffer as it found it.
    private static func appendValidatedFields(
        _ headers: HTTPHeaders, to buffer: inout [UInt8], removingFrom start: Int
    ) throws(HTTPEncodingError) {
        for field in headers {
            var name = field.name
            var value = field.value
            let nameIsToken = name.withUTF8 { bytes in
                guard !bytes.isEmpty else { return false }
                for byte in bytes where !ASCII.isTokenCharacter(byte) { return false }
                buffer.append(contentsOf: bytes)
                return true
            }
            guard nameIsToken else {
                buffer.removeSubrange(start...)
                throw HTTPEncodingError(.invalidHeaderName)
            }
            buffer.append(ASCII.colon)
            buffer.append(ASCII.space)
            let valueIsValid = value.withUTF8 { bytes in
                for byte in bytes where !ASCII.isFieldValueCharacter(byte) { return false }
                buffer.append(contentsOf: bytes)
                return true
            }
            guard valueIsValid else {
                buffer.removeSubrange(start...)
                throw HTTPEncodingError(.invalidHeaderValue)
            }
            buffer.append(ASCII.cr)
            buffer.append(ASCII.lf)
        }
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
    }

    private static func appendFields(_ headers: HTTPHeaders, to buffer: inout [UInt8]) {
        for field in headers {
            appendBytes(of: field.name, to: &buffer)
            buffer.append(ASCII.colon)
            buffer.append(ASCII.space)
            appendBytes(of: field.value, to: &buffer)
            buffer.append(ASCII.cr)
            buffer.append(ASCII.lf)
        }
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
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
