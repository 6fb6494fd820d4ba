import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumNet

/// The trust policy for clients' `X-Forwarded-*` headers. Headers from untrusted clients are replaced.
public enum ForwardedHeaderTrust: Sendable, Hashable {
    /// No client is trusted: `X-Forwarded-For` becomes the client's address alone.
    case none
    /// Every client is trusted: its `X-Forwarded-For` is kept and the client's address appended.
    case all
    /// Only these client IP addresses (as `inet_ntop` writes them) are trusted.
    case addresses(Set<String>)

    func trusts(_ address: SocketAddress?) -> Bool {
        trusts(ip: address?.ipString)
    }

    /// Returns whether the client with the address `ip` (as `SocketAddress.ipString` writes it) is trusted.
    func trusts(ip: String?) -> Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .addresses(let set): return ip.map { set.contains($0) } ?? false
        }
    }
}

/// Settings of a `ReverseProxy`.
public struct ReverseProxyConfiguration: Sendable {
    /// The default upstream, used unless the decision hook picks another.
    public var upstream: HTTPUpstream?
    public var timeouts: HTTPClientTimeouts
    public var forwardedHeaderTrust: ForwardedHeaderTrust
    /// Keep the client's `Host` header instead of sending the upstream's authority.
    public var preserveHost: Bool
    /// A `Via` pseudonym to add (`1.1 <value>`), or nil to add none.
    public var via: String?

    public init(
        upstream: HTTPUpstream? = nil,
        timeouts: HTTPClientTimeouts = HTTPClientTimeouts(),
        forwardedHeaderTrust: ForwardedHeaderTrust = .none,
        preserveHost: Bool = false,
        via: String? = nil
    ) {
        self.upstream = upstream
        self.timeouts = timeouts
        self.forwardedHeaderTrust = forwardedHeaderTrust
        self.preserveHost = preserveHost
        self.via = via
    }
}

/// The details of an incoming request passed to the decision hook.
public struct ProxyRequestContext: Sendable {
    /// The request head as the client sent it.
    public let incoming: HTTPRequestHead
    public let remoteAddress: SocketAddress?
    public let isTLS: Bool
    /// The TLS SNI name, when the request came over TLS.
    public let serverName: String?
    /// The request to send upstream, already cleaned of hop-by-hop headers and given the
    /// `X-Forwarded-*` headers. The hook may change it.
    public var route: ProxyRoute?
}

/// The upstream, outgoing head and timeouts of one forwarded request.
public struct ProxyRoute: Sendable {
    public var upstream: HTTPUpstream
    /// The outgoing head: change its target, or set and remove headers.
    public var head: HTTPRequestHead
    public var timeouts: HTTPClientTimeouts

    public init(upstream: HTTPUpstream, head: HTTPRequestHead, timeouts: HTTPClientTimeouts) {
        self.upstream = upstream
        self.head = head
        self.timeouts = timeouts
    }
}

/// The outcome of the decision hook for one request.
public enum ProxyDecision: Sendable {
    /// Forward the request along this route.
    case forward(ProxyRoute)
    /// Answer locally (a redirect, a 401 or 403 page) without contacting an upstream.
    case respond(status: Int, headers: HTTPHeaders, body: [UInt8])
}

/// The decision hook's answer: now, on the loop, or later, from async work whose result returns
/// to the connection's loop.
public enum ProxyDecisionStep: Sendable {
    case now(ProxyDecision)
    case later(@Sendable () async -> ProxyDecision)
}

/// The hook the access layer plugs in: called on the connection's loop before anything is
/// forwarded. The default forwards to the configured upstream.
public typealias ProxyDecide = @Sendable (ProxyRequestContext) -> ProxyDecisionStep
