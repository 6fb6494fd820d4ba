// NOTE: these helpers cover only what provider URLs need; they can move onto PomeriumHTTP's URL and
// query types once that target has them.

/// Checks and small transformations of provider URLs: absolute `http`/`https`, no user info, no
/// fragment.
enum ProviderURL {
    struct Parts: Equatable {
        var scheme: String
        /// The host as written, with brackets for IPv6 literals.
        var host: String
        var port: Int?
        /// Path and query, starting with `/` (or empty).
        var pathAndQuery: String
    }

    static func parse(_ url: String) -> Parts? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[schemeEnd.upperBound...]
        if rest.contains("#") { return nil }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var pathAndQuery = String(rest[authorityEnd...])
        if pathAndQuery.hasPrefix("?") { pathAndQuery = "/" + pathAndQuery }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        guard pathAndQuery.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return nil }

        var host = String(authority)
        var port: Int?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[...close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let value = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = value
        }
        if let port, !(1...65535).contains(port) { return nil }
        let hostCharacters = host.unicodeScalars.allSatisfy {
            ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || ".-_:[]".unicodeScalars.contains($0)
        }
        guard !host.isEmpty, hostCharacters else { return nil }
        return Parts(scheme: scheme, host: host.lowercased(), port: port, pathAndQuery: pathAndQuery)
    }

    static func isLoopback(host: String) -> Bool {
        if host == "localhost" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// A message naming `setting` when `url` is unusable as a provider URL, else nil.
    static func problem(_ url: String, setting: String, allowsPlainHTTP: Bool) -> String? {
        guard let parts = parse(url) else {
            return "\(setting) \"\(redactQuery(url))\" is not an absolute http or https URL without user info or fragment"
        }
        if parts.scheme == "http" && !allowsPlainHTTP && !isLoopback(host: parts.host) {
            return "\(setting) \"\(redactQuery(url))\" uses plain http; use https (plain http is accepted only for loopback hosts)"
        }
        return nil
    }

    /// The URL without query, for messages: query strings may carry codes or tokens.
    static func redactQuery(_ url: String) -> String {
        guard let mark = url.firstIndex(where: { $0 == "?" || $0 == "#" }) else { return url }
        return String(url[..<mark])
    }

    /// `url` with the encoded `parameters` appended to its query.
    static func appendingQuery(_ url: String, _ parameters: [(name: String, value: String)]) -> String {
        guard !parameters.isEmpty else { return url }
        let separator: String
        if !url.contains("?") {
            separator = "?"
        } else if url.hasSuffix("?") || url.hasSuffix("&") {
            separator = ""
        } else {
            separator = "&"
        }
        return url + separator + FormEncoding.encode(parameters)
    }
}

/// `application/x-www-form-urlencoded` serialization as RFC 6749 Appendix B requires: every byte of
/// the UTF-8 form except ASCII letters, digits and `-._~` is percent-encoded, and space becomes `+`.
enum FormEncoding {
    static func encode(_ parameters: [(name: String, value: String)]) -> String {
        parameters.map { escape($0.name) + "=" + escape($0.value) }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        let hexDigits = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.append(byte)
            case UInt8(ascii: " "):
                output.append(UInt8(ascii: "+"))
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
