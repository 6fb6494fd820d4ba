import PomeriumCrypto

/// A JSON value as it appears in a claim set, a discovery document or a token response.
public enum ClaimValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A JSON number without fraction or exponent that fits in 64 bits.
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([ClaimValue])
    case object([String: ClaimValue])

    /// Converts a parsed JSON value. Duplicate member names never reach here: the parser rejects them.
    public init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .integer(let number): self = .integer(number)
        case .double(let number): self = .number(number)
        case .string(let text): self = .string(text)
        case .array(let elements): self = .array(elements.map(ClaimValue.init))
        case .object(let object):
            var members: [String: ClaimValue] = [:]
            for member in object.members { members[member.key] = ClaimValue(member.value) }
            self = .object(members)
        }
    }

    /// Parses `bytes` as a JSON object, the only top-level shape providers return.
    static func parseObject(_ bytes: [UInt8]) throws -> [String: ClaimValue] {
        let object = try JSONParser.parseObject(bytes)
        var members: [String: ClaimValue] = [:]
        for member in object.members { members[member.key] = ClaimValue(member.value) }
        return members
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// Whole seconds for a NumericDate claim (RFC 7519 section 2); fractions are cut toward zero.
    public var numericDate: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value) where value.isFinite && abs(value) < 9.2e18: return Int64(value)
        default: return nil
        }
    }

    /// A boolean, also from the strings `"true"` and `"false"` that some providers send for
    /// `email_verified`.
    public var booleanValue: Bool? {
        switch self {
        case .bool(let value): return value
        case .string("true"): return true
        case .string("false"): return false
        default: return nil
        }
    }

    /// A list of strings: an array of strings and numbers (numeric group ids become decimal text),
    /// or one string as a list of one.
    public var stringList: [String]? {
        switch self {
        case .string(let value):
            return [value]
        case .array(let elements):
            var strings: [String] = []
            for element in elements {
                switch element {
                case .string(let value): strings.append(value)
                case .integer(let value): strings.append(String(value))
                default: return nil
                }
            }
            return strings
        default:
            return nil
        }
    }
}

/// Describes a JSON parsing failure in one short line that never quotes the input.
func describeJSONError(_ error: any Error) -> String {
    if let error = error as? JSONParseError {
        return "the body is not a JSON object (\(error.reason) at byte \(error.offset))"
    }
    return "the body is not a JSON object"
}
