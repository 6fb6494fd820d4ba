import PomeriumHTTP

/// The URL a forward-auth request checks, taken from the `uri` query parameter or from a
/// trusted ingress's `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Uri` headers.
enum ForwardAuthTarget {
    /// Why no target could be read; the message is safe to show.
    struct Failure: Error, Equatable, CustomStringConvertible {
        let description: String
    }

    /// Splits a raw query into the `uri` parameter's value, decoded when it was sent encoded,
    /// and the other parameters.
    ///
    /// Two spellings of `uri` are accepted, distinguished by whether the text after `uri=` starts
    /// with an unencoded `http://` or `https://`:
    /// - raw, as nginx's `uri=$scheme://$host$request_uri` sends it: the value runs to the end of
    ///   the query, `&` included, and is used byte for byte, so the target's own query survives.
    ///   Other parameters (such as `auth_status`) must come before `uri=` in this form.
    /// - encoded (`uri=https%3A%2F%2Fapp%2Fa%3Fb%3D1`): the value ends at the next `&` and is
    ///   percent-decoded once.
    static func split(rawQuery: String) -> (uri: String?, others: URLQuery) {
        var others: [Substring] = []
        var uri: String?
        var start = rawQuery.startIndex
        while start < rawQuery.endIndex {
            let end = rawQuery[start...].firstIndex(of: "&") ?? rawQuery.endIndex
            let pair = rawQuery[start..<end]
            if uri == nil, pair.hasPrefix("uri=") {
                let valueStart = rawQuery.index(start, offsetBy: 4)
                let rest = rawQuery[valueStart...]
                if startsWithRawScheme(rest) {
                    uri = String(rest)
                    break
                }
                uri = URLQuery(parsingLeniently: String(pair)).value(for: "uri")
            } else {
                others.append(pair)
            }
            start = end < rawQuery.endIndex ? rawQuery.index(after: end) : end
        }
        return (uri, URLQuery(parsingLeniently: others.joined(separator: "&")))
    }

    private static func startsWithRawScheme(_ text: Substring) -> Bool {
        let lower = text.prefix(8).lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    /// Returns the target: from the forwarded headers when `trustsForwardedHeaders` and
    /// `X-Forwarded-Uri` is present, else from the `uri` parameter.
    ///
    /// The forwarded form takes `X-Forwarded-Host` (falling back to the `uri` parameter's
    /// authority) and `X-Forwarded-Proto` (falling back to the `uri` parameter's scheme, then
    /// `https`), so Traefik with a fixed `uri` per application still reports the path.
    ///
    /// - Throws: `Failure` when neither source yields an absolute `http` or `https` URL with a
    ///   host and no user information.
    static func resolve(rawQuery: String?, headers: HTTPHeaders, trustsForwardedHeaders: Bool) throws(Failure)
        -> HTTPURL
    {
        let parameter = rawQuery.flatMap { split(rawQuery: $0).uri }
        var fallback: HTTPURL?
        if let parameter { fallback = try? HTTPURL(parsing: parameter) }

        if trustsForwardedHeaders, let forwardedURI = headers.first(name: "X-Forwarded-Uri") {
            guard forwardedURI.hasPrefix("/") else {
                throw Failure(description: "X-Forwarded-Uri must be an absolute path, starting with /.")
            }
            var scheme = fallback?.scheme ?? "https"
            if let proto = headers.first(name: "X-Forwarded-Proto")?.lowercased(), proto == "http" || proto == "https" {
                scheme = proto
            }
            guard let authority = headers.first(name: "X-Forwarded-Host") ?? fallback?.hostAndPort else {
                throw Failure(description: "X-Forwarded-Uri came without X-Forwarded-Host or a uri parameter.")
            }
            return try checked("\(scheme)://\(authority)\(forwardedURI)")
        }
        guard let parameter else {
            if headers.contains(name: "X-Forwarded-Uri") {
                throw Failure(
                    description:
                        "The uri parameter is missing, and X-Forwarded-Uri counts only from an address in trusted_proxies."
                )
            }
            throw Failure(description: "The uri parameter is missing; pass the URL to check as ?uri=.")
        }
        return try checked(parameter)
    }

    private static func checked(_ text: String) throws(Failure) -> HTTPURL {
        guard let url = try? HTTPURL(parsing: text) else {
            throw Failure(description: "The URL to check is not a valid absolute URL.")
        }
        guard url.scheme == "http" || url.scheme == "https" else {
            throw Failure(description: "The URL to check must use http or https.")
        }
        guard url.userInfo == nil, !url.host.isEmpty else {
            throw Failure(description: "The URL to check must have a host and no user information.")
        }
        var target = url
        target.fragment = nil
        return target
    }
}
