import PomeriumHTTP

/// Header rules for a proxy hop (RFC 9110 §7.6.1).
public enum HopByHopHeaders {
    static let fixed: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection",
    ]

    /// Removes `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
    /// `Upgrade` and every header that `Connection` names.
    public static func remove(from headers: inout HTTPHeaders) {
        let named = Set(headers.tokens(name: "Connection"))
        headers.removeAll { field in
            let name = field.name.lowercased()
            return fixed.contains(name) || named.contains(name) || name.hasPrefix("proxy-")
        }
    }
}
