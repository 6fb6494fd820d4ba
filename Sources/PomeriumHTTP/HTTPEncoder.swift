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
        try validate(head.headers)
        buffer.append(contentsOf: head.method.rawValue.utf8)
        buffer.append(ASCII.space)
        buffer.append(contentsOf: head.target.utf8)
        buffer.append(ASCII.space)
        appendVersion(head.version, to: &buffer)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        appendFields(head.headers, to: &buffer)
    }

    public static func encode(_ head: HTTPResponseHead, into buffer: inout [UInt8]) throws(HTTPEncodingError) {
        guard (100...999).contains(head.status) else { throw HTTPEncodingError(.invalidStatus) }
        guard head.reason.utf8.allSatisfy(ASCII.isFieldValueCharacter) else { throw HTTPEncodingError(.invalidReason) }
        try validate(head.headers)
        appendVersion(head.version, to: &buffer)
        buffer.append(ASCII.space)
        buffer.append(UInt8(ascii: "0") + UInt8(head.status / 100))
        buffer.append(UInt8(ascii: "0") + UInt8(head.status / 10 % 10))
        buffer.append(UInt8(ascii: "0") + UInt8(head.status % 10))
        buffer.append(ASCII.space)
        buffer.append(contentsOf: head.reason.utf8)
        buffer.append(ASCII.cr)
        buffer.append(ASCII.lf)
        appendFields(head.headers, to: &buffer)
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
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(ASCII.isTokenCharacter) else {
                throw HTTPEncodingError(.invalidHeaderName)
            }
            guard field.value.utf8.allSatisfy(ASCII.isFieldValueCharacter) else {
                throw HTTPEncodingError(.invalidHeaderValue)
            }
        }
    }

    private static func appendVersion(_ version: HTTPVersion, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: "HTTP/".utf8)
        buffer.append(contentsOf: String(version.major).utf8)
        buffer.append(ASCII.dot)
        buffer.append(contentsOf: String(version.minor).utf8)
    }

    private static func appendFields(_ headers: HTTPHeaders, to buffer: inout [UInt8]) {
        for field in headers {
            buffer.append(contentsOf: field.name.utf8)
            buffer.append(ASCII.colon)
            buffer.append(ASCII.space)
            buffer.append(contentsOf: field.value.utf8)
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
