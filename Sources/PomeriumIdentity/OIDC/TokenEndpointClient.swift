import PomeriumCore
import PomeriumCrypto

/// Requests to the token and revocation endpoints, with client authentication and OAuth error mapping.
struct TokenEndpointClient: Sendable {
    let http: ProviderHTTPClient
    let clientID: String
    let clientSecret: String
    let method: ClientAuthenticationMethod
    let clock: any WallClock

    /// Picks the configured method, else `client_secret_basic` when the provider lists it (or lists
    /// nothing), else `client_secret_post` when the provider lists only that.
    static func chooseMethod(configured: ClientAuthenticationMethod?, supported: [String]) -> ClientAuthenticationMethod
    {
        if let configured { return configured }
        if supported.isEmpty || supported.contains(ClientAuthenticationMethod.clientSecretBasic.rawValue) {
            return .clientSecretBasic
        }
        if supported.contains(ClientAuthenticationMethod.clientSecretPost.rawValue) {
            return .clientSecretPost
        }
        return .clientSecretBasic
    }

    /// Builds the `Authorization` value for `client_secret_basic`. Both parts are form-encoded before they
    /// are joined with `:` and base64-encoded (RFC 6749 section 2.3.1), so a `:` in the ID survives.
    static func basicAuthorization(clientID: String, clientSecret: String) -> String {
        let credentials = FormEncoding.escape(clientID) + ":" + FormEncoding.escape(clientSecret)
        return "Basic " + Base64.standard.encode(Array(credentials.utf8))
    }

    /// Posts `parameters` with client authentication. `secrets` are values of this request that must
    /// not come back in an error message.
    func post(_ url: String, parameters: [(name: String, value: String)], secrets: [String]) async throws(IdentityError)
        -> IdentityHTTPResponse
    {
        var parameters = parameters
        var headers: [(name: String, value: String)] = []
        switch method {
        case .clientSecretBasic:
            headers.append(("Authorization", Self.basicAuthorization(clientID: clientID, clientSecret: clientSecret)))
        case .clientSecretPost:
            parameters.append(("client_id", clientID))
            parameters.append(("client_secret", clientSecret))
        }
        let response = try await http.postForm(url, parameters: parameters, headers: headers)
        if response.status != 200 {
            throw Self.error(for: response, endpoint: url, secrets: secrets + [clientSecret])
        }
        return response
    }

    /// Sends a token request and parses the token response.
    func requestTokens(_ url: String, parameters: [(name: String, value: String)], secrets: [String])
        async throws(IdentityError) -> OAuthTokens
    {
        let response = try await post(url, parameters: parameters, secrets: secrets)
        let object = try http.jsonObject(response, endpoint: url)
        return try OAuthTokens.parse(object, now: clock.unixSeconds(), endpoint: ProviderURL.redactQuery(url))
    }

    /// Maps an error response to an OAuth error when the body has an `error` code, else to an
    /// unexpected-status error.
    static func error(for response: IdentityHTTPResponse, endpoint url: String, secrets: [String]) -> IdentityError {
        let endpoint = ProviderURL.redactQuery(url)
        guard let object = try? ClaimValue.parseObject(response.body),
            let code = object["error"]?.stringValue, !code.isEmpty
        else {
            return .unexpectedStatus(endpoint: endpoint, status: response.status)
        }
        let safeCode = sanitized(code, secrets: secrets) ?? "unknown_error"
        let description = object["error_description"]?.stringValue.flatMap { sanitized($0, secrets: secrets) }
        return .oauthError(
            OAuthErrorResponse(
                endpoint: endpoint,
                status: response.status,
                code: OAuthErrorCode(safeCode),
                errorDescription: description
            )
        )
    }

    /// Printable ASCII text of at most 200 characters, or nil when it is empty or contains one of
    /// `secrets`.
    static func sanitized(_ text: String, secrets: [String]) -> String? {
        for secret in secrets where !secret.isEmpty && text.contains(secret) {
            return nil
        }
        let printable = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F }))
        let trimmed = printable.count > 200 ? String(printable.prefix(200)) + "..." : printable
        return trimmed.isEmpty ? nil : trimmed
    }
}
