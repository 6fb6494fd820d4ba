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

    /// The URL of `path` (which may carry a query) on this origin.
    public func url(path: String, query: String? = nil) -> HTTPURL {
        let defaultPort = scheme == "https" ? 443 : 80
        return HTTPURL(
            scheme: scheme, host: host, port: port == defaultPort ? nil : port, path: path, query: query)
    }

    /// Parses an absolute `http` or `https` URL, with an error that names `role`, the value and
    /// the expected form.
    static func parseWebURL(_ text: String, role: String) throws(CLIError) -> HTTPURL {
        let shown = Self.redacted(text)
        guard !text.isEmpty else {
            throw CLIError(.invalidInput, "the \(role) is empty: give an absolute URL such as https://app.example.com")
        }
        guard text.contains("://") else {
            throw CLIError(
                .invalidInput, "invalid \(role) \"\(shown)\": add the scheme, for example https://\(shown)")
        }
        let url: HTTPURL
        do {
            url = try HTTPURL(parsing: text)
        } catch {
            throw CLIError(.invalidInput, "invalid \(role) \"\(shown)\": \(error.description)")
        }
        guard url.scheme == "https" || url.scheme == "http" else {
            throw CLIError(
                .invalidInput, "invalid \(role) \"\(shown)\": the scheme must be https or http, not \(url.scheme)")
        }
        guard !url.host.isEmpty else {
            throw CLIError(.invalidInput, "invalid \(role) \"\(shown)\": the URL has no host")
        }
        guard url.userInfo == nil else {
            throw CLIError(
                .invalidInput, "invalid \(role): remove the user name and password before '@' from the URL")
        }
        return url
    }

    /// The URL without user information, query and fragment, which may carry secrets, for error
    /// messages.
    static func redacted(_ text: String) -> String {
        var shown = text
        if let cut = shown.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            shown = String(shown[..<cut]) + "?..."
        }
        if let schemeEnd = shown.range(of: "://") {
            let authorityEnd = shown[schemeEnd.upperBound...].firstIndex(of: "/") ?? shown.endIndex
            if let at = shown[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") {
                shown.replaceSubrange(schemeEnd.upperBound...at, with: "...@")
            }
        }
        return shown
    }
}
