/// A message that the parsers reject. `status` is the response a server sends before closing the
/// connection, and `reason` is a short fixed text that never echoes received bytes, so it is safe
/// to send to the client and to log.
public struct HTTPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong with the message.
    public enum Kind: Hashable, Sendable, CaseIterable {
        case invalidMethod
        case invalidTarget
        case invalidVersion
        case unsupportedVersion
        case requestLineTooLong
        case headerSectionTooLarge
        case tooManyHeaders
        case invalidHeaderName
        case invalidHeaderValue
        case whitespaceBeforeColon
        case obsoleteLineFolding
        case bareCarriageReturn
        case bareLineFeed
        case tooManyEmptyLines
        case missingHost
        case multipleHost
        case invalidHost
        case invalidContentLength
        case multipleContentLength
        case contentLengthWithTransferEncoding
        case transferEncodingInHTTP10
        case invalidTransferEncoding
        case unsupportedTransferCoding
        case invalidChunkSize
        case chunkLineTooLong
        case invalidChunkExtension
        case missingChunkTerminator
        case bodyTooLarge
        case expectationFailed
        case incompleteMessage
        case invalidStatusLine
        case unexpectedResponse
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// The status code to answer with (RFC 9110 §15).
    public var status: Int {
        switch kind {
        case .requestLineTooLong: return 414
        case .headerSectionTooLarge, .tooManyHeaders: return 431
        case .unsupportedVersion: return 505
        case .unsupportedTransferCoding: return 501
        case .bodyTooLarge: return 413
        case .expectationFailed: return 417
        case .invalidStatusLine, .unexpectedResponse: return 502
        default: return 400
        }
    }

    /// A short explanation for the client and the log, with no received bytes in it.
    public var reason: String {
        switch kind {
        case .invalidMethod: return "invalid request method"
        case .invalidTarget: return "invalid request target"
        case .invalidVersion: return "invalid HTTP version"
        case .unsupportedVersion: return "HTTP version not supported"
        case .requestLineTooLong: return "request line too long"
        case .headerSectionTooLarge: return "header section too large"
        case .tooManyHeaders: return "too many header fields"
        case .invalidHeaderName: return "invalid header field name"
        case .invalidHeaderValue: return "invalid character in header field value"
        case .whitespaceBeforeColon: return "whitespace between header field name and colon"
        case .obsoleteLineFolding: return "obsolete line folding is not accepted"
        case .bareCarriageReturn: return "carriage return not followed by line feed"
        case .bareLineFeed: return "line feed without carriage return"
        case .tooManyEmptyLines: return "too many empty lines before the start line"
        case .missingHost: return "missing Host header field"
        case .multipleHost: return "more than one Host header field"
        case .invalidHost: return "invalid Host header field"
        case .invalidContentLength: return "invalid Content-Length"
        case .multipleContentLength: return "more than one Content-Length"
        case .contentLengthWithTransferEncoding: return "Content-Length together with Transfer-Encoding"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in an HTTP/1.0 message"
        case .invalidTransferEncoding: return "invalid Transfer-Encoding"
        case .unsupportedTransferCoding: return "transfer coding not implemented"
        case .invalidChunkSize: return "invalid chunk size"
        case .chunkLineTooLong: return "chunk size line too long"
        case .invalidChunkExtension: return "invalid chunk extension"
        case .missingChunkTerminator: return "chunk data not followed by CRLF"
        case .bodyTooLarge: return "message body too large"
        case .expectationFailed: return "expectation not supported"
        case .incompleteMessage: return "connection closed before the message was complete"
        case .invalidStatusLine: return "invalid status line"
        case .unexpectedResponse: return "response without a request"
        }
    }

    public var description: String { "\(status) \(reason)" }
}
