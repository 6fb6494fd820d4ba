import PomeriumCrypto

/// The `jwt_claims_headers` option: listed session claims copied into `X-Pomerium-Claim-<Name>`
/// request headers for the upstream.
public enum ClaimHeaders {
    /// Returns (header name, value) pairs for each listed claim present in `claims`. Names are
    /// canonicalised as Go's `CanonicalMIMEHeaderKey` does (`email` becomes
    /// `X-Pomerium-Claim-Email`). Lists are comma-joined, integral numbers print as integers
    /// (v0.7 printed `1.586842679e+09`), Booleans as `true`/`false`. Claims that are null, and
    /// values with control characters, which could split a header, are left out.
    public static func headers(claims: JSONObject, names: [String]) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        for claim in names {
            guard let value = claims[claim], let text = headerValue(value) else { continue }
            guard !claim.isEmpty, claim.utf8.allSatisfy(isTokenCharacter) else { continue }
            guard !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { continue }
            result.append((canonicalName(prefix: "X-Pomerium-Claim-", claim), text))
        }
        return result
    }

    static func headerValue(_ value: JSONValue) -> String? {
        switch value {
        case .null: return nil
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .double(let number):
            if number.rounded() == number, abs(number) < 9.2e18 { return String(Int64(number)) }
            return number.description
        case .string(let text): return text
        case .array(let items):
            return items.compactMap(headerValue).joined(separator: ",")
        case .object: return String(decoding: JSONWriter.encode(value), as: UTF8.self)
        }
    }

    /// Upper-cases the first letter and each letter after `-`, lower-cases the rest.
    static func canonicalName(_ name: String) -> String {
        canonicalName(prefix: "", name)
    }

    /// `prefix`, which must be canonical already, followed by `name` canonicalised as if it
    /// continued `prefix`. Writes the string in one allocation, since the proxy builds these
    /// names for every identified request.
    static func canonicalName(prefix: StaticString, _ name: String) -> String {
        let prefixBytes = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        let count = prefixBytes.count + name.utf8.count
        return String(unsafeUninitializedCapacity: count) { output in
            var index = 0
            var upper = true
            for byte in prefixBytes {
                output[index] = byte
                index += 1
                upper = byte == UInt8(ascii: "-")
            }
            for byte in name.utf8 {
                var converted = byte
                if upper, byte >= 0x61, byte <= 0x7A { converted -= 0x20 }
                if !upper, byte >= 0x41, byte <= 0x5A { converted += 0x20 }
                output[index] = converted
                index += 1
                upper = byte == UInt8(ascii: "-")
            }
            return index
        }
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
