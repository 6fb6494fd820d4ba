import PomeriumConfig
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet

/// Makes a service's handler for one request on the connection's loop.
public typealias RequestHandlerFactory = @Sendable (EventLoop) -> any HTTPRequestHandler

/// The services one configuration generation serves. A reload builds a new set and the dispatcher
/// swaps it in whole; a request keeps the set it started with until it ends.
public final class ServiceSet: Sendable {
    /// The authenticate service's host, when this process runs it.
    public let authenticateHost: AuthenticateHost?
    public let authenticate: RequestHandlerFactory?
    public let proxy: RequestHandlerFactory?
    /// The `forward_auth_url` host, when this process runs the proxy and the setting is set.
    public let forwardAuthHost: AuthenticateHost?
    public let forwardAuth: RequestHandlerFactory?
    /// Whether a peer's `X-Forwarded-Uri` may send a request to forward-auth (`trusted_proxies`).
    public let trustsForwardedHeaders: @Sendable (SocketAddress?) -> Bool
    /// The `headers` setting, set on every response of the listener.
    public let responseHeaders: HTTPHeaders
    /// `responseHeaders` without a `Request-Id` field, so the dispatcher appends each request's id
    /// without looking for one.
    let responseHeadersWithoutRequestID: HTTPHeaders
    /// The configuration generation the services were built from (1 at start).
    public let generation: Int

    public init(
        authenticateHost: AuthenticateHost?,
        authenticate: RequestHandlerFactory?,
        proxy: RequestHandlerFactory?,
        forwardAuthHost: AuthenticateHost? = nil,
        forwardAuth: RequestHandlerFactory? = nil,
        trustsForwardedHeaders: @escaping @Sendable (SocketAddress?) -> Bool = { _ in false },
        responseHeaders: HTTPHeaders,
        generation: Int
    ) {
        self.authenticateHost = authenticate == nil ? nil : authenticateHost
        self.authenticate = authenticate
        self.proxy = proxy
        self.forwardAuthHost = forwardAuth == nil ? nil : forwardAuthHost
        self.forwardAuth = forwardAuth
        self.trustsForwardedHeaders = trustsForwardedHeaders
        self.responseHeaders = responseHeaders
        var withoutRequestID = responseHeaders
        withoutRequestID.remove(name: RequestID.headerName)
        responseHeadersWithoutRequestID = withoutRequestID
        self.generation = generation
    }

    /// The `headers` map as response fields, sorted by name so every response lists them alike.
    /// v0.7's default map gains `X-Content-Type-Options: nosniff`, which v0.7's documentation
    /// listed and its code left out; a map set with a `disable` key is empty and adds nothing.
    public static func responseHeaders(from map: [String: String]) -> HTTPHeaders {
        var map = map
        if map == Options.defaultHeaders { map["X-Content-Type-Options"] = "nosniff" }
        return HTTPHeaders(map.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
    }
}
