import PomeriumCore

/// Sends the provider's requests through the transport with the configured limits, and turns
/// transport failures into `IdentityError` values that name the endpoint.
struct ProviderHTTPClient: Sendable {
    let transport: any IdentityHTTPTransport
    let timeout: Double
    let maximumResponseBytes: Int
    let certificateAuthorityPEM: String?

    init(transport: any IdentityHTTPTransport, configuration: ProviderConfiguration) {
        self.transport = transport
        timeout = configuration.requestTimeout
        maximumResponseBytes = configuration.maximumResponseBytes
        certificateAuthorityPEM = configuration.certificateAuthorityPEM
    }

    func get(_ url: String, headers: [(name: String, value: String)] = []) async throws(IdentityError)
        -> IdentityHTTPResponse
    {
        try await send(method: .get, url: url, headers: [("Accept", "application/json")] + headers, body: [])
    }

    func postForm(
        _ url: String,
        parameters: [(name: String, value: String)],
        headers: [(name: String, value: String)] = []
    ) async throws(IdentityError) -> IdentityHTTPResponse {
        let body = Array(FormEncoding.encode(parameters).utf8)
        let formHeaders: [(name: String, value: String)] = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ]
        return try await send(method: .post, url: url, headers: formHeaders + headers, body: body)
    }

    private func send(
        method: IdentityHTTPRequest.Method,
        url: String,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) async throws(IdentityError) -> IdentityHTTPResponse {
        let endpoint = ProviderURL.redactQuery(url)
        let request = IdentityHTTPRequest(
            method: method,
            url: url,
            headers: [("User-Agent", BuildInfo.userAgent)] + headers,
            body: body,
            timeout: timeout,
            maximumResponseBytes: maximumResponseBytes,
            certificateAuthorityPEM: certificateAuthorityPEM
        )
        let response: IdentityHTTPResponse
        do {
            let transport = self.transport
            response = try await Deadline.run(seconds: timeout) { try await transport.send(request) }
        } catch let error as IdentityTransportError {
            switch error {
            case .connectionFailed(let reason):
                throw .providerUnreachable(endpoint: endpoint, reason: reason)
            case .timedOut:
                throw .timedOut(endpoint: endpoint, seconds: timeout)
            case .tlsFailed(let reason):
                throw .transportFailed(endpoint: endpoint, reason: "TLS failed: \(reason)")
            case .malformedResponse(let reason):
                throw .transportFailed(endpoint: endpoint, reason: "malformed HTTP response: \(reason)")
            case .responseTooLarge:
                throw .transportFailed(endpoint: endpoint, reason: "response larger than \(maximumResponseBytes) bytes")
            case .unsupportedURL(let reason):
                throw .transportFailed(endpoint: endpoint, reason: reason)
            }
        } catch is CancellationError {
            throw .transportFailed(endpoint: endpoint, reason: "the request was cancelled")
        } catch {
            throw .transportFailed(endpoint: endpoint, reason: String(describing: type(of: error)))
        }
        guard response.body.count <= maximumResponseBytes else {
            throw .transportFailed(endpoint: endpoint, reason: "response larger than \(maximumResponseBytes) bytes")
        }
        return response
    }

    /// Parses the body of a `200` response as a JSON object.
    func jsonObject(_ response: IdentityHTTPResponse, endpoint url: String) throws(IdentityError)
        -> [String: ClaimValue]
    {
        let endpoint = ProviderURL.redactQuery(url)
        guard response.status == 200 else {
            throw .unexpectedStatus(endpoint: endpoint, status: response.status)
        }
        do {
            return try ClaimValue.parseObject(response.body)
        } catch {
            throw .invalidResponse(endpoint: endpoint, reason: describeJSONError(error))
        }
    }
}
