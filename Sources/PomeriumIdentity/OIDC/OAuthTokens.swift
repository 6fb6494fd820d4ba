/// The tokens of a token endpoint response (RFC 6749 section 5.1, OpenID Connect Core section 3.1.3.3).
/// `description` shows which tokens are present, never their values.
public struct OAuthTokens: Sendable, Equatable, CustomStringConvertible {
    public var accessToken: String
    /// `token_type`, usually `Bearer`.
    public var tokenType: String
    public var refreshToken: String?
    /// The raw compact ID token, when the response carried one.
    public var idToken: String?
    /// When the access token expires, in Unix seconds: the clock at receipt plus `expires_in`; nil
    /// when the provider sent no `expires_in`.
    public var expiry: Int64?
    /// The granted scopes, when the provider reported them.
    public var scope: String?

    public init(
        accessToken: String,
        tokenType: String = "Bearer",
        refreshToken: String? = nil,
        idToken: String? = nil,
        expiry: Int64? = nil,
        scope: String? = nil
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.refreshToken = refreshToken
        self.idToken = idToken
        self.expiry = expiry
        self.scope = scope
    }

    public var description: String {
        var parts = ["access_token: [redacted]", "token_type: \(tokenType)"]
        if refreshToken != nil { parts.append("refresh_token: [redacted]") }
        if idToken != nil { parts.append("id_token: [redacted]") }
        if let expiry { parts.append("expiry: \(expiry)") }
        return "OAuthTokens(" + parts.joined(separator: ", ") + ")"
    }

    /// Parses a successful token response received at `now` (Unix seconds).
    static func parse(_ object: [String: ClaimValue], now: Int64, endpoint: String) throws(IdentityError)
        -> OAuthTokens
    {
        func invalid(_ reason: String) -> IdentityError { .invalidResponse(endpoint: endpoint, reason: reason) }

        guard let accessToken = object["access_token"]?.stringValue, !accessToken.isEmpty else {
            throw invalid("the token response has no access_token")
        }
        guard let tokenType = object["token_type"]?.stringValue, !tokenType.isEmpty else {
            throw invalid("the token response has no token_type")
        }
        var expiry: Int64?
        switch object["expires_in"] {
        case nil, .null?:
            expiry = nil
        case .integer(let seconds)? where seconds >= 0 && seconds < 1 << 40:
            expiry = now + seconds
        case .string(let text)?:
            // Some providers (older Azure AD endpoints) send the number as a string.
            guard let seconds = Int64(text), seconds >= 0, seconds < 1 << 40 else {
                throw invalid("expires_in is not a non-negative number of seconds")
            }
            expiry = now + seconds
        default:
            throw invalid("expires_in is not a non-negative number of seconds")
        }
        func optionalString(_ name: String) throws(IdentityError) -> String? {
            switch object[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value.isEmpty ? nil : value
            default: throw invalid("\(name) is not a string")
            }
        }
        return OAuthTokens(
            accessToken: accessToken,
            tokenType: tokenType,
            refreshToken: try optionalString("refresh_token"),
            idToken: try optionalString("id_token"),
            expiry: expiry,
            scope: try optionalString("scope")
        )
    }
}
