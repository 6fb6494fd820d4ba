import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet

/// The `http_redirect_addr` listener: every request gets a 301 to the same host, path and query
/// over https. v0.7 dropped the path and query, which sent every user to the home page; here they
/// are kept.
public enum HTTPSRedirect {
    /// The `Location` for a request, or nil when the request names no host. `httpsPort` is the
    /// port of the TLS listener; it appears in the URL unless it is 443.
    public static func location(for head: HTTPRequestHead, httpsPort: Int) -> String? {
        guard let authority = head.authority, !authority.host.isEmpty else { return nil }
        var host = authority.host
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        let port = httpsPort == 443 ? "" : ":\(httpsPort)"
        var target = head.path
        if target.isEmpty || target == "*" { target = "/" }
        if let query = head.query { target += "?\(query)" }
        return "https://\(host)\(port)\(target)"
    }

    /// A handler factory for an `HTTPServer` on the redirect address.
    public static func makeHandlerFactory(httpsPort: Int, responseHeaders: HTTPHeaders) -> RequestHandlerFactory {
        { _ in RedirectHandler(httpsPort: httpsPort, responseHeaders: responseHeaders) }
    }
}

final class RedirectHandler: HTTPRequestHandler {
    private let httpsPort: Int
    private let responseHeaders: HTTPHeaders

    init(httpsPort: Int, responseHeaders: HTTPHeaders) {
        self.httpsPort = httpsPort
        self.responseHeaders = responseHeaders
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        responder.additionalHeaders = responseHeaders
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        guard let location = HTTPSRedirect.location(for: head, httpsPort: httpsPort) else {
            responder.respond(
                status: 400, headers: headers, body: Array("400 bad request: the request names no host\n".utf8))
            return
        }
        headers.add(name: "Location", value: location)
        responder.respond(status: 301, headers: headers, body: Array("Moved Permanently\n".utf8))
    }

    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}
}
