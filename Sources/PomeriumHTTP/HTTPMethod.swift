/// A request method: any `token` of RFC 9110 §9.1, compared case-sensitively as the RFC requires.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method exactly as sent, for example `GET`.
    public let rawValue: String

    /// Creates a method from a token, or returns nil when `rawValue` is empty or contains a byte
    /// outside `tchar` (RFC 9110 §5.6.2).
    public init?(_ rawValue: String) {
        guard !rawValue.isEmpty, rawValue.utf8.allSatisfy(ASCII.isTokenCharacter) else { return nil }
        self.rawValue = rawValue
    }

    private init(validated: String) {
        rawValue = validated
    }

    /// Creates a method from bytes that the request parser has already checked to be a token.
    init(validatedBytes bytes: ArraySlice<UInt8>) {
        // The common methods are recognised by comparing their bytes one by one, which measured
        // a fraction of `elementsEqual` over a string's UTF-8 view.
        let start = bytes.startIndex
        switch bytes.count {
        case 3 where bytes[start + 1] == UInt8(ascii: "E") && bytes[start + 2] == UInt8(ascii: "T"):
            if bytes[start] == UInt8(ascii: "G") {
                self = .get
                return
            }
        case 3
        where bytes[start] == UInt8(ascii: "P") && bytes[start + 1] == UInt8(ascii: "U")
            && bytes[start + 2] == UInt8(ascii: "T"):
            self = .put
            return
        case 4
        where bytes[start] == UInt8(ascii: "P") && bytes[start + 1] == UInt8(ascii: "O")
            && bytes[start + 2] == UInt8(ascii: "S") && bytes[start + 3] == UInt8(ascii: "T"):
            self = .post
            return
        case 4
        where bytes[start] == UInt8(ascii: "H") && bytes[start + 1] == UInt8(ascii: "E")
            && bytes[start + 2] == UInt8(ascii: "A") && bytes[start + 3] == UInt8(ascii: "D"):
            self = .head
            return
        default:
            break
        }
        rawValue = String(decoding: bytes, as: UTF8.self)
    }

    public var description: String { rawValue }

    public static let get = HTTPMethod(validated: "GET")
    public static let head = HTTPMethod(validated: "HEAD")
    public static let post = HTTPMethod(validated: "POST")
    public static let put = HTTPMethod(validated: "PUT")
    public static let delete = HTTPMethod(validated: "DELETE")
    public static let connect = HTTPMethod(validated: "CONNECT")
    public static let options = HTTPMethod(validated: "OPTIONS")
    public static let trace = HTTPMethod(validated: "TRACE")
    public static let patch = HTTPMethod(validated: "PATCH")
}

/// An HTTP/1.x protocol version from the start line, such as `HTTP/1.1`.
public struct HTTPVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }

    public static func < (lhs: HTTPVersion, rhs: HTTPVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    /// Whether the version has HTTP/1.1 semantics: persistent connections by default and chunked
    /// transfer coding. RFC 9112 §2.3 treats a higher 1.x minor version as 1.1.
    public var isAtLeastHTTP11: Bool { major == 1 && minor >= 1 }
}
