/// A URL, query or path that cannot be parsed. The message names the problem and, for URLs, the
/// component, but never repeats the input, which may carry tokens.
public struct URLParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case invalidScheme
        case missingAuthority
        case invalidUserInfo
        case invalidHost
        case invalidPort
        case invalidPath
        case invalidQuery
        case invalidFragment
        case invalidPercentEncoding
        case invalidUTF8
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .invalidScheme: return "invalid URL scheme: expected letters, digits, '+', '-' or '.' then ':'"
        case .missingAuthority: return "URL has no '//' authority: expected scheme://host[:port]"
        case .invalidUserInfo: return "invalid character in URL user information"
        case .invalidHost: return "invalid URL host: expected a name, an IPv4 address or a bracketed IPv6 address"
        case .invalidPort: return "invalid URL port: expected a number from 0 to 65535"
        case .invalidPath: return "invalid character in URL path: percent-encode it"
        case .invalidQuery: return "invalid character in URL query: percent-encode it"
        case .invalidFragment: return "invalid character in URL fragment: percent-encode it"
        case .invalidPercentEncoding: return "invalid percent-encoding: '%' must be followed by two hex digits"
        case .invalidUTF8: return "percent-decoded text is not valid UTF-8"
        }
    }
}
