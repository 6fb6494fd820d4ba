/// An email address as the policy compares it: a local part kept exactly as written and a domain lower-cased in
/// ASCII.
///
/// Matching rules:
/// - The text must contain exactly one `@` with a non-empty local part and a non-empty domain, and no whitespace or
///   control characters. Anything else is not an address and matches no `allowed_users`, `allowed_domains` or
///   `administrators` entry (`a@b@c`, `@example.test`, `alice@`, the empty string).
/// - The domain is compared after mapping ASCII `A`–`Z` to `a`–`z`, because DNS names are case-insensitive.
///   Non-ASCII characters in the domain are compared byte for byte, without Unicode case folding or normalisation,
///   so an internationalised look-alike never matches an ASCII domain.
/// - The local part is compared byte for byte, case included, as Pomerium v0.7 does. RFC 5321 section 2.4 leaves
///   the local part's case to the receiving mail system, so the proxy does not merge `Alice@` and `alice@`, which
///   a provider may hand to two different people. Operators write `allowed_users` in the case their identity
///   provider puts in the `email` claim.
public struct EmailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The part before the `@`, exactly as given.
    public let localPart: String
    /// The part after the `@`, with ASCII letters lower-cased.
    public let domain: String

    /// Parses `text`, or returns nil when it is not an address by the rules above.
    public init?(_ text: String) {
        // ASCII text, the common case, is checked and split in one pass over its bytes. This runs
        // for the session's email on every request.
        var copy = text
        switch copy.withUTF8({ Self.splitASCII($0) }) {
        case .address(let localPart, let domain):
            self.localPart = localPart
            self.domain = domain
            return
        case .invalid:
            return nil
        case .notASCII:
            break
        }
        guard !text.containsWhitespaceOrControl else { return nil }
        let bytes = text.utf8
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")), at == bytes.lastIndex(of: UInt8(ascii: "@")) else {
            return nil
        }
        let domainStart = bytes.index(after: at)
        guard at != bytes.startIndex, domainStart != bytes.endIndex else { return nil }
        // Slicing the UTF-8 view keeps byte positions exact; String subscripts would round to grapheme boundaries
        // when a combining mark follows the `@`.
        localPart = String(decoding: bytes[..<at], as: UTF8.self)
        domain = String(decoding: bytes[domainStart...], as: UTF8.self).asciiLowercased
    }

    private enum ASCIISplit {
        case address(localPart: String, domain: String)
        case invalid
        case notASCII
    }

    /// Applies the rules above to ASCII text, or returns `.notASCII` for text with any other byte.
    private static func splitASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> ASCIISplit {
        var at = -1
        var domainHasUppercase = false
        for index in 0..<bytes.count {
            let byte = bytes[index]
            if byte >= 0x80 { return .notASCII }
            if byte <= 0x20 || byte == 0x7F { return .invalid }
            if byte == UInt8(ascii: "@") {
                // After a second `@` the scan goes on, so a later non-ASCII byte still selects the general path.
                if at >= 0 { at = -2 } else if at == -1 { at = index }
            } else if at >= 0, byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") {
                domainHasUppercase = true
            }
        }
        guard at > 0, at < bytes.count - 1 else { return .invalid }
        let localPart = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<at]), as: UTF8.self)
        let domain = String(decoding: UnsafeBufferPointer(rebasing: bytes[(at + 1)...]), as: UTF8.self)
        return .address(localPart: localPart, domain: domainHasUppercase ? domain.asciiLowercased : domain)
    }

    /// The address as `local@domain`, with the domain lower-cased.
    public var description: String { "\(localPart)@\(domain)" }

    public static func == (lhs: EmailAddress, rhs: EmailAddress) -> Bool {
        ExactText(lhs.localPart) == ExactText(rhs.localPart) && ExactText(lhs.domain) == ExactText(rhs.domain)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ExactText(localPart))
        hasher.combine(ExactText(domain))
    }
}
