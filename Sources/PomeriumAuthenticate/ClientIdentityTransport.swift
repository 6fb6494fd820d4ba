import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumIdentity

/// The identity layer's outbound HTTP over the product's own `HTTPClient`: discovery, JWKS,
/// token, userinfo and revocation calls to the provider, with the request's timeout and size limit.
public struct ClientIdentityTransport: IdentityHTTPTransport {
    private let client: HTTPClient

    public init(client: HTTPClient) {
        self.client = client
    }

    public func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse {
        let url: HTTPURL
        do {
            url = try HTTPURL(parsing: request.url)
        } catch {
            throw IdentityTransportError.unsupportedURL(reason: "the URL is not an absolute http or https URL")
        }
        guard url.scheme == "http" || url.scheme == "https" else {
            throw IdentityTransportError.unsupportedURL(reason: "the scheme \(url.scheme) is not http or https")
        }
        var tls: TLSClientConfiguration?
        if url.scheme == "https", let pem = request.certificateAuthorityPEM {
            // NOTE: `.pem` replaces the system roots, where the transport contract expects the
            // private CA in addition to them. A provider with a private CA trusts only that CA.
            tls = TLSClientConfiguration(trustRoots: .pem(Array(pem.utf8)))
        }
        let upstream = HTTPUpstream(
            scheme: url.scheme == "https" ? .https : .http, host: url.host, port: url.port, tls: tls)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostAndPort)
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        headers.replaceOrAdd(name: "User-Agent", value: "pomerium")
        let head: HTTPRequestHead
        do {
            head = try HTTPRequestHead(
                method: request.method == .post ? .post : .get, target: url.requestTarget, headers: headers)
        } catch {
            throw IdentityTransportError.unsupportedURL(reason: "the URL's path or query is invalid")
        }
        let timeout = max(0.001, request.timeout)
        let timeouts = HTTPClientTimeouts(connect: timeout, read: timeout, write: timeout)
        let response: HTTPClientResponse
        do {
            // The client's timeouts apply to each phase, so the deadline limits the whole exchange.
            response = try await Deadline.run(seconds: timeout) {
                try await client.send(
                    head, body: request.body, to: upstream, timeouts: timeouts,
                    maxResponseSize: request.maximumResponseBytes)
            }
        } catch let error as HTTPClientError {
            throw Self.map(error)
        }
        return IdentityHTTPResponse(
            status: response.head.status, headers: response.head.headers.map { ($0.name, $0.value) },
            body: response.body)
    }

    static func map(_ error: HTTPClientError) -> IdentityTransportError {
        switch error {
        case .connectFailed(let reason), .resolveFailed(let reason): .connectionFailed(reason: reason)
        case .connectTimeout, .readTimeout, .writeTimeout: .timedOut
        case .tlsFailed(let reason): .tlsFailed(reason: reason)
        case .invalidResponse(let reason): .malformedResponse(reason: reason)
        case .upstreamClosed: .malformedResponse(reason: "the provider closed the connection early")
        case .responseTooLarge: .responseTooLarge
        case .invalidUpstream(let reason): .unsupportedURL(reason: reason)
        case .cancelled: .connectionFailed(reason: "the request was cancelled")
        case .invalidRequestBody(let reason): .connectionFailed(reason: reason)
        }
    }
}
