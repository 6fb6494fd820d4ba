import PomeriumConfig
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet

/// Makes a service's handler for one request on the connection's loop.
public typealias RequestHandlerFactory = @Sendable (EventLoop) -> any HTTPRequestHandler

/// Makes a service's handler for one request on the connection's loop, given the id that the
/// listener's dispatcher made for the request. A handler made this way writes the `headers`
/// setting and `Request-Id` on each of its responses itself, so the dispatcher does not put them
/// into the responder's additional headers, which the handler would only read back and clear.
public typealias IdentifiedRequestHandlerFactory = @Sendable (EventLoop, String) -> any HTTPRequestHandler

/// The factory of the proxy's handlers, in one of two forms the listener's dispatcher calls.
public enum ProxyHandlerFactory: Sendable {
    /// The handler reads the `headers` setting and `Request-Id` from the responder's additional
    /// headers, which the dispatcher sets.
    case plain(RequestHandlerFactory)
    /// The handler is given the request's id and writes the response fields itself. Passing the
    /// id to the factory replaced a dynamic cast of the handler to a protocol, which cost about
    /// 300 instructions per request.
    case identified(IdentifiedRequestHandlerFactory)
}

/// The services one configuration generation serves. A reload builds a new set and the dispatcher
/// swaps it in whole; a request keeps the set it started with until it ends.
public final class ServiceSet: Sendable {
    /// The authenticate service's host, when this process runs it.
    public let authenticateHost: AuthenticateHost?
    public let authenticate: RequestHandlerFactory?
    /// The factory of the proxy's handlers, when this process runs the proxy.
    public var proxy: ProxyHandlerFactory? {
        if let identifiedProxy { return .identified(identifiedProxy) }
        return plainProxy.map { .plain($0) }
    }
    /// `proxy` in two fields, so the dispatcher reads the factory without copying an enum.
    let identifiedProxy: IdentifiedRequestHandlerFactory?
    let plainProxy: RequestHandlerFactory?
    /// Whether this process runs the proxy.
    var runsProxy: Bool { identifiedProxy != nil || plainProxy != nil }
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

    /// Creates a set whose proxy handlers, when there is a proxy, read the `headers` setting and
    /// `Request-Id` from the responder's additional headers.
    public convenience init(
        authenticateHost: AuthenticateHost?,
        authenticate: RequestHandlerFactory?,
        proxy: RequestHandlerFactory?,
        forwardAuthHost: AuthenticateHost? = nil,
        forwardAuth: RequestHandlerFactory? = nil,
        trustsForwardedHeaders: @escaping @Sendable (SocketAddress?) -> Bool = { _ in false },
        responseHeaders: HTTPHeaders,
        generation: Int
    ) {
        self.init(
            authenticateHost: authenticateHost, authenticate: authenticate, proxyHandler: proxy.map { .plain($0) },
            forwardAuthHost: forwardAuthHost, forwardAuth: forwardAuth, trustsForwardedHeaders: trustsForwardedHeaders,
            responseHeaders: responseHeaders, generation: generation)
    }

    /// Creates a set whose proxy, when there is one, makes its handlers with `proxyHandler`.
    public init(
        authenticateHost: AuthenticateHost?,
        authenticate: RequestHandlerFactory?,
        proxyHandler proxy: ProxyHandlerFactory?,
        forwardAuthHost: AuthenticateHost? = nil,
        forwardAuth: RequestHandlerFactory? = nil,
        trustsForwardedHeaders: @escaping @Sendable (SocketAddress?) -> Bool = { _ in false },
        responseHeaders: HTTPHeaders,
        generation: Int
    ) {
        self.authenticateHost = authenticate == nil ? nil : authenticateHost
        self.authenticate = authenticate
        switch proxy {
        case .identified(let factory)?:
            identifiedProxy = factory
            plainProxy = nil
        case .plain(let factory)?:
            identifiedProxy = nil
            plainProxy = factory
        case nil:
            identifiedProxy = nil
            plainProxy = nil
        }
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
