import PomeriumHTTP

/// Header rules for a proxy hop (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    static let fixed = [
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
    ]

    /// Removes `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
    /// `Upgrade` and every header that `Connection` names.
    public static func remove(from headers: inout HTTPHeaders) {
        // This runs twice per proxied request, so it compares names in place instead of building
        // lowercased strings and sets, and skips the `Connection` token list when there is none.
        let named = headers.contains(name: "Connection") ? headers.tokens(name: "Connection") : []
        guard headers.contains(where: { isHopByHop($0, named: named) }) else { return }
        headers.removeAll { isHopByHop($0, named: named) }
    }

    private static func isHopByHop(_ field: HTTPHeaders.Field, named: [String]) -> Bool {
        if !named.isEmpty && named.contains(where: { field.hasName($0) }) { return true }
        // Every fixed name and `proxy-` starts with c, k, p, t or u, so most fields are rejected
        // by their first byte without a full comparison. `| 0x20` lowercases ASCII letters.
        guard let first = field.name.utf8.first else { return false }
        switch first | 0x20 {
        case UInt8(ascii: "c"), UInt8(ascii: "k"), UInt8(ascii: "p"), UInt8(ascii: "t"), UInt8(ascii: "u"):
            return fixed.contains { field.hasName($0) } || hasProxyPrefix(field.name)
        default:
            return false
        }
    }

    /// Whether `name` starts with `proxy-`, compared case-insensitively.
    private static func hasProxyPrefix(_ name: String) -> Bool {
        let prefix = "proxy-".utf8
        let utf8 = name.utf8
        guard utf8.count >= prefix.count else { return false }
        return zip(utf8, prefix).allSatisfy { byte, expected in
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            return lowered == expected
        }
    }
}
