/// A request method: any `token` of RFC 9110 §9.1, compared case-sensitively as the RFC requires.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method exactly as sent, for example `GET`.
    public let rawValue: String
    /// A number from 1 to 9 for the methods of RFC 9110 §9 and PATCH, spelt in uppercase, and 0 for
    /// any other method. Comparing two methods compares the codes first, because `String ==` on
    /// two different strings takes a slow path, and the server compares methods several times
    /// per request.
    private let code: UInt8

    /// Creates a method from a token, or returns nil when `rawValue` is empty or contains a byte
    /// outside `tchar` (RFC 9110 §5.6.2).
    public init?(_ rawValue: String) {
        guard !rawValue.isEmpty, rawValue.utf8.allSatisfy(ASCII.isTokenCharacter) else { return nil }
        self.init(validated: rawValue)
    }

    private init(validated: String) {
        rawValue = validated
        code = Self.code(of: validated)
    }

    private init(validated: String, code: UInt8) {
        rawValue = validated
        self.code = code
    }

    private static func code(of method: String) -> UInt8 {
        switch method {
        case "GET": return 1
        case "HEAD": return 2
        case "POST": return 3
        case "PUT": return 4
        case "DELETE": return 5
        case "CONNECT": return 6
        case "OPTIONS": return 7
        case "TRACE": return 8
        case "PATCH": return 9
        default: return 0
        }
    }

    public static func == (left: HTTPMethod, right: HTTPMethod) -> Bool {
        // Equal raw values give equal codes, so different codes decide, and two nonzero codes
        // decide too. Only two methods outside the list compare their strings.
        if left.code != 0 || right.code != 0 { return left.code == right.code }
        return left.rawValue == right.rawValue
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue)
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
        self.init(validated: String(decoding: bytes, as: UTF8.self))
    }

    public var description: String { rawValue }

    public static let get = HTTPMethod(validated: "GET", code: 1)
    public static let head = HTTPMethod(validated: "HEAD", code: 2)
    public static let post = HTTPMethod(validated: "POST", code: 3)
    public static let put = HTTPMethod(validated: "PUT", code: 4)
    public static let delete = HTTPMethod(validated: "DELETE", code: 5)
    public static let connect = HTTPMethod(validated: "CONNECT", code: 6)
    public static let options = HTTPMethod(validated: "OPTIONS", code: 7)
    public static let trace = HTTPMethod(validated: "TRACE", code: 8)
    public static let patch = HTTPMethod(validated: "PATCH", code: 9)
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
