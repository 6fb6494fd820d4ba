import PomeriumHTTP

/// The scheme, host and port of a route, which identify its token: Pomerium issues each route
/// JWT for one route host.
public struct RouteOrigin: Sendable, Hashable, CustomStringConvertible {
    public let scheme: String
    /// The host in lowercase, an IPv6 literal without brackets.
    public let host: String
    public let port: Int

    /// Parses the route part of `text`, an absolute `http` or `https` URL. Its path and query are
    /// ignored here; `fetch` sends them.
    public init(parsing text: String) throws(CLIError) {
        let url = try Self.parseWebURL(text, role: "route URL")
        self.init(url: url)
    }

    init(url: HTTPURL) {
        scheme = url.scheme
        host = url.host
        port = url.effectivePort ?? 443
    }

    /// `scheme://host[:port]`, without the port when it is the scheme's default.
    public var description: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : 80
        return port == defaultPort ? "\(scheme)://\(bracketed)" : "\(scheme)://\(bracketed):\(port)"
    }

    /// Returns the URL of `path` (which may carry a query) on this origin.
    public func url(path: String, query: String? = nil) -> HTTPURL {
        let defaultPort = scheme == "https" ? 443 : 80
        return HTTPURL(
            scheme: scheme, host: host, port: port == defaultPort ? nil : port, path: path, query: query)
    }

    /// Parses an absolute `http` or `https` URL, with an error that names `role`, the value and
    /// the expected form.
    static func parseWebURL(_ text: String, role: String) throws(CLIError) -> HTTPURL {
        let displayed = Self.redacted(text)
        guard !text.isEmpty else {
            throw CLIError(.invalidInput, "the \(role) is empty: give an absolute URL such as https://app.example.com")
        }
        guard text.contains("://") else {
            throw CLIError(
                .invalidInput, "invalid \(role) \"\(displayed)\": add the scheme, for example https://\(displayed)")
        }
        let url: HTTPURL
        do {
            url = try HTTPURL(parsing: text)
        } catch {
            throw CLIError(.invalidInput, "invalid \(role) \"\(displayed)\": \(error.description)")
        }
        guard url.scheme == "https" || url.scheme == "http" else {
            throw CLIError(
                .invalidInput, "invalid \(role) \"\(displayed)\": the scheme must be https or http, not \(url.scheme)")
        }
        guard !url.host.isEmpty else {
            throw CLIError(.invalidInput, "invalid \(role) \"\(displayed)\": the URL has no host")
        }
        guard url.userInfo == nil else {
            throw CLIError(
                .invalidInput, "invalid \(role): remove the user name and password before '@' from the URL")
        }
        return url
    }

    /// Returns the URL without user information, query and fragment, which may carry secrets, for
    /// error messages.
    static func redacted(_ text: String) -> String {
        var visible = text
        if let cut = visible.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            visible = String(visible[..<cut]) + "?..."
        }
        if let schemeEnd = visible.firstRange(of: "://") {
            let authorityEnd = visible[schemeEnd.upperBound...].firstIndex(of: "/") ?? visible.endIndex
            if let at = visible[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") {
                visible.replaceSubrange(schemeEnd.upperBound...at, with: "...@")
            }
        }
        return visible
    }
}
