import PomeriumHTTP

/// Header rules for a proxy hop (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    private static let connection = Array("connection".utf8)
    private static let keepAlive = Array("keep-alive".utf8)
    private static let te = Array("te".utf8)
    private static let trailer = Array("trailer".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)
    private static let upgrade = Array("upgrade".utf8)
    private static let proxyPrefix = Array("proxy-".utf8)

    /// Removes `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
    /// `Upgrade` and every header that `Connection` names.
    public static func remove(from headers: inout HTTPHeaders) {
        // This runs twice per proxied request, so it compares name bytes in place instead of
        // building strings, and skips the `Connection` token list when there is none.
        // `Connection` is itself a fixed hop-by-hop name, so a list without any fixed one names
        // none either, and one pass over the names settles the common case.
        var hasConnection = false
        let hasFixed = headers.containsField { name in
            guard isHopByHop(name, named: []) else { return false }
            hasConnection = HTTPFieldName.matches(name, lowercase: connection)
            return hasConnection
        }
        guard hasFixed else { return }
        let named = hasConnection ? headers.tokens(name: "Connection").map { Array($0.utf8) } : []
        headers.removeFields(whereName: { isHopByHop($0, named: named) })
    }

    /// Whether `name` is a fixed hop-by-hop name, starts with `proxy-`, or is in `named` (lowercase
    /// names from `Connection`).
    @inline(__always)
    static func isHopByHop(_ name: UnsafeBufferPointer<UInt8>, named: [[UInt8]]) -> Bool {
        for candidate in named where HTTPFieldName.matches(name, lowercase: candidate) { return true }
        // The first byte and the length pick the one fixed name a field could be, so most fields
        // are rejected without a comparison. `| 0x20` lowercases ASCII letters.
        guard let first = name.first else { return false }
        switch (first | 0x20, name.count) {
        case (UInt8(ascii: "c"), 10): return HTTPFieldName.matches(name, lowercase: connection)
        case (UInt8(ascii: "k"), 10): return HTTPFieldName.matches(name, lowercase: keepAlive)
        case (UInt8(ascii: "t"), 2): return HTTPFieldName.matches(name, lowercase: te)
        case (UInt8(ascii: "t"), 7): return HTTPFieldName.matches(name, lowercase: trailer)
        case (UInt8(ascii: "t"), 17): return HTTPFieldName.matches(name, lowercase: transferEncoding)
        case (UInt8(ascii: "u"), 7): return HTTPFieldName.matches(name, lowercase: upgrade)
        case (UInt8(ascii: "p"), 6...): return HTTPFieldName.hasPrefix(name, lowercase: proxyPrefix)
        default: return false
        }
    }
}
