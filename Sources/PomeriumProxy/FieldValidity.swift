import PomeriumHTTP

/// Checks that let the proxy add a header field or a request target as already validated, so the
/// encoder does not check it again on every request. Configuration values are checked once when a
/// configuration is prepared; values built per request from bytes of unknown origin are checked
/// here, with the rules of `PomeriumHTTP`'s encoder and request parser.
enum FieldValidity {
    /// Whether `text` is a non-empty token (RFC 9110 section 5.6.2), as a field name must be.
    static func isToken(_ text: String) -> Bool { HTTPFieldName.isValidName(text) }

    /// Whether `text` may be a field value: no control character but HTAB, no DEL.
    static func isValue(_ text: String) -> Bool { HTTPFieldName.isValidValue(text) }

    /// Whether a field named `name` with `value` may be added as validated.
    static func isField(name: String, value: String) -> Bool {
        isToken(name) && isValue(value)
    }

    /// Whether `path` is an origin-form path the request parser accepts: `/` followed by RFC 3986
    /// path characters, slashes and `%HH` escapes.
    static func isOriginPath(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.first == UInt8(ascii: "/") else { return false }
            return allTargetBytes(bytes, allowingQuestionMark: false)
        }
    }

    /// Whether `query` (without its `?`) contains only the characters the request parser accepts in
    /// a query: path characters, `/`, `?` and `%HH` escapes.
    static func isQuery(_ query: String) -> Bool {
        var query = query
        return query.withUTF8 { allTargetBytes($0, allowingQuestionMark: true) }
    }

    private static func allTargetBytes(_ bytes: UnsafeBufferPointer<UInt8>, allowingQuestionMark: Bool) -> Bool {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else {
                    return false
                }
                index += 3
                continue
            }
            guard
                isPathCharacter(byte) || byte == UInt8(ascii: "/")
                    || (allowingQuestionMark && byte == UInt8(ascii: "?"))
            else { return false }
            index += 1
        }
        return true
    }

    /// `pchar` of RFC 3986 section 3.3 without `%`: unreserved, sub-delims, `:` and `@`.
    private static func isPathCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"),
            UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
            UInt8(ascii: ":"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }
}
