import PomeriumHTTP

/// Checks and small transformations of provider URLs: absolute `http`/`https`, no user info, no
/// fragment.
enum ProviderURL {
    /// Parses `url` and returns it when it is usable as a provider URL, else nil.
    static func parse(_ url: String) -> HTTPURL? {
        guard let parsed = try? HTTPURL(parsing: url) else { return nil }
        guard parsed.scheme == "http" || parsed.scheme == "https" else { return nil }
        guard parsed.userInfo == nil, parsed.fragment == nil, !parsed.host.isEmpty else { return nil }
        return parsed
    }

    /// Returns whether `host` is a loopback host. The host is in `HTTPURL` form: lowercase, IPv6 without brackets.
    static func isLoopback(host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Returns a message naming `setting` when `url` is unusable as a provider URL, else nil.
    static func problem(_ url: String, setting: String, allowsPlainHTTP: Bool) -> String? {
        guard let parts = parse(url) else {
            return
                "\(setting) \"\(redactQuery(url))\" is not an absolute http or https URL without user info or fragment"
        }
        if parts.scheme == "http" && !allowsPlainHTTP && !isLoopback(host: parts.host) {
            return
                "\(setting) \"\(redactQuery(url))\" uses plain http; use https (plain http is accepted only for loopback hosts)"
        }
        return nil
    }

    /// Returns the URL without query or fragment for messages, because query strings may carry codes
    /// or tokens.
    static func redactQuery(_ url: String) -> String {
        guard let mark = url.firstIndex(where: { $0 == "?" || $0 == "#" }) else { return url }
        return String(url[..<mark])
    }

    /// Returns `url` with the form-encoded `parameters` appended to its query.
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
        URLQuery(parameters).encoded
    }

    static func escape(_ text: String) -> String {
        PercentEncoding.encode(text, as: .queryComponent)
    }
}
