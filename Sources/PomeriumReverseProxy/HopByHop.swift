import PomeriumHTTP

/// Header rules for a proxy hop (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    static let fixed = [
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
    ]
    private static let fixedLowercase: [[UInt8]] = fixed.map { Array($0.lowercased().utf8) }
    private static let proxyPrefix = Array("proxy-".utf8)

    /// Removes `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
    /// `Upgrade` and every header that `Connection` names.
    public static func remove(from headers: inout HTTPHeaders) {
        // This runs twice per proxied request, so it compares name bytes in place instead of
        // building strings, and skips the `Connection` token list when there is none.
        let named =
            headers.contains(name: "Connection") ? headers.tokens(name: "Connection").map { Array($0.utf8) } : []
        headers.removeFields(whereName: { isHopByHop($0, named: named) })
    }

    /// Whether `name` is a fixed hop-by-hop name, starts with `proxy-`, or is in `named` (lowercase
    /// names from `Connection`).
    @inline(__always)
    static func isHopByHop(_ name: UnsafeBufferPointer<UInt8>, named: [[UInt8]]) -> Bool {
        for candidate in named where HTTPFieldName.matches(name, lowercase: candidate) { return true }
        // Every fixed name and `proxy-` starts with c, k, p, t or u, so most fields are rejected
        // by their first byte without a full comparison. `| 0x20` lowercases ASCII letters.
        guard let first = name.first else { return false }
        switch first | 0x20 {
        case UInt8(ascii: "c"), UInt8(ascii: "k"), UInt8(ascii: "p"), UInt8(ascii: "t"), UInt8(ascii: "u"):
            for candidate in fixedLowercase where HTTPFieldName.matches(name, lowercase: candidate) { return true }
            return HTTPFieldName.hasPrefix(name, lowercase: proxyPrefix)
        default:
            return false
        }
    }
}
