/// Every way a call to an identity provider can fail. Messages name the endpoint (without its query)
/// and the value that was wrong, and never contain tokens, authorization codes or client secrets.
/// Equality compares `code` only, so callers and tests match the kind of failure while messages can
/// carry details.
public enum IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting is missing or invalid; the message names the setting and the fix.
    case invalidConfiguration(String)
    /// The provider refused the connection or could not be reached.
    case providerUnreachable(endpoint: String, reason: String)
    /// The provider did not respond within the configured timeout, in seconds.
    case timedOut(endpoint: String, seconds: Double)
    /// The transport failed in another way (TLS, malformed HTTP, oversized body).
    case transportFailed(endpoint: String, reason: String)
    /// The provider responded with a status code this call does not accept.
    case unexpectedStatus(endpoint: String, status: Int)
    /// The body was not the JSON document the call expects.
    case invalidResponse(endpoint: String, reason: String)
    /// The discovery document's `issuer` is not the configured issuer.
    case issuerMismatch(expected: String, actual: String)
    /// The token or revocation endpoint returned an OAuth 2.0 error response (RFC 6749 section 5.2).
    case oauthError(OAuthErrorResponse)
    /// The ID token failed validation.
    case invalidIDToken(IDTokenRejection)
    /// The userinfo `sub` is not the ID token's `sub` (OpenID Connect Core section 5.3.2).
    case userInfoSubjectMismatch
    /// The provider's discovery document lists no `revocation_endpoint`.
    case revocationNotSupported
    /// The caller's input is unusable, for example an empty authorization code.
    case invalidArgument(String)
    /// OpenSSL could not produce random bytes or a digest.
    case cryptographyFailed(String)

    /// A stable kebab-case code for logs, metrics and matching; ID-token rejections and OAuth errors
    /// include their reason.
    public var code: String {
        switch self {
        case .invalidConfiguration: return "idp-invalid-configuration"
        case .providerUnreachable: return "idp-unreachable"
        case .timedOut: return "idp-timeout"
        case .transportFailed: return "idp-transport-failed"
        case .unexpectedStatus: return "idp-unexpected-status"
        case .invalidResponse: return "idp-invalid-response"
        case .issuerMismatch: return "idp-issuer-mismatch"
        case .oauthError(let response): return "idp-oauth-error-\(response.code)"
        case .invalidIDToken(let rejection): return "idp-id-token-\(rejection.code)"
        case .userInfoSubjectMismatch: return "idp-userinfo-subject-mismatch"
        case .revocationNotSupported: return "idp-revocation-not-supported"
        case .invalidArgument: return "idp-invalid-argument"
        case .cryptographyFailed: return "idp-cryptography-failed"
        }
    }

    public static func == (lhs: IdentityError, rhs: IdentityError) -> Bool { lhs.code == rhs.code }

    public var description: String {
        switch self {
        case .invalidConfiguration(let message):
            return "invalid identity provider configuration: \(message)"
        case .providerUnreachable(let endpoint, let reason):
            return
                "identity provider unreachable at \(endpoint): \(reason); check idp_provider_url and that the provider is running"
        case .timedOut(let endpoint, let seconds):
            return "identity provider at \(endpoint) did not respond within \(formatSeconds(seconds)) s"
        case .transportFailed(let endpoint, let reason):
            return "request to identity provider at \(endpoint) failed: \(reason)"
        case .unexpectedStatus(let endpoint, let status):
            return "identity provider at \(endpoint) returned unexpected HTTP status \(status)"
        case .invalidResponse(let endpoint, let reason):
            return "identity provider at \(endpoint) returned an invalid response: \(reason)"
        case .issuerMismatch(let expected, let actual):
            return "discovery document issuer \"\(actual)\" does not match the configured issuer \"\(expected)\"; "
                + "set idp_provider_url to the provider's exact issuer"
        case .oauthError(let response):
            return response.description
        case .invalidIDToken(let rejection):
            return "invalid ID token: \(rejection)"
        case .userInfoSubjectMismatch:
            return "userinfo response is for a different subject than the ID token"
        case .revocationNotSupported:
            return
                "identity provider does not support token revocation: its discovery document has no revocation_endpoint"
        case .invalidArgument(let message):
            return message
        case .cryptographyFailed(let message):
            return message
        }
    }
}

/// The reason an ID token was rejected.
public enum IDTokenRejection: Sendable, Equatable, CustomStringConvertible {
    /// The token is not a three-part compact JWS with a JSON header and payload.
    case malformed(String)
    /// The `alg` header names an algorithm outside the allow-list (`none` and HS* are never allowed).
    case algorithmNotAllowed(String)
    /// No key in the provider's JWKS has this `kid`, even after a refetch.
    case unknownKeyID(String)
    /// The signature does not verify with the provider's key.
    case badSignature
    case issuerMismatch(expected: String, actual: String)
    /// The `aud` claim does not contain the client ID.
    case audienceMismatch
    /// Several audiences and `azp` is missing or not the client ID.
    case authorizedPartyMismatch
    /// `exp` plus the leeway is in the past; both values are Unix seconds.
    case expired(expiry: Int64, now: Int64)
    /// `nbf` minus the leeway is in the future.
    case notYetValid(notBefore: Int64, now: Int64)
    /// `iat` minus the leeway is in the future.
    case issuedInFuture(issuedAt: Int64, now: Int64)
    /// A required claim is absent or has the wrong JSON type.
    case missingClaim(String)
    /// The `nonce` claim is absent or differs from the nonce sent in the authorization request.
    case nonceMismatch
    /// A refreshed ID token names a different `sub` than the session's.
    case subjectChanged
    /// The `at_hash` claim does not match the access token issued with the ID token.
    case accessTokenHashMismatch

    /// A stable kebab-case code; equality compares it, so the values inside do not matter.
    public var code: String {
        switch self {
        case .malformed: return "malformed"
        case .algorithmNotAllowed: return "algorithm-not-allowed"
        case .unknownKeyID: return "unknown-kid"
        case .badSignature: return "bad-signature"
        case .issuerMismatch: return "issuer-mismatch"
        case .audienceMismatch: return "audience-mismatch"
        case .authorizedPartyMismatch: return "azp-mismatch"
        case .expired: return "expired"
        case .notYetValid: return "not-yet-valid"
        case .issuedInFuture: return "issued-in-future"
        case .missingClaim: return "missing-claim"
        case .nonceMismatch: return "nonce-mismatch"
        case .subjectChanged: return "subject-changed"
        case .accessTokenHashMismatch: return "at-hash-mismatch"
        }
    }

    public static func == (lhs: IDTokenRejection, rhs: IDTokenRejection) -> Bool { lhs.code == rhs.code }

    public var description: String {
        switch self {
        case .malformed(let reason): return "malformed token: \(reason)"
        case .algorithmNotAllowed(let algorithm): return "signing algorithm \"\(algorithm)\" is not allowed"
        case .unknownKeyID(let keyID): return "no signing key with kid \"\(keyID)\" in the provider's JWKS"
        case .badSignature: return "signature verification failed"
        case .issuerMismatch(let expected, let actual): return "iss \"\(actual)\" is not \"\(expected)\""
        case .audienceMismatch: return "aud does not contain the client ID"
        case .authorizedPartyMismatch: return "azp is not the client ID although aud has several values"
        case .expired(let expiry, let now): return "token expired at \(expiry), now \(now)"
        case .notYetValid(let notBefore, let now): return "token not valid before \(notBefore), now \(now)"
        case .issuedInFuture(let issuedAt, let now): return "token issued in the future at \(issuedAt), now \(now)"
        case .missingClaim(let name): return "claim \"\(name)\" is missing or has the wrong type"
        case .nonceMismatch: return "nonce does not match the authorization request"
        case .subjectChanged: return "refreshed token is for a different subject"
        case .accessTokenHashMismatch: return "at_hash does not match the access token"
        }
    }
}

/// The standard OAuth 2.0 error codes of RFC 6749 section 5.2 and RFC 7009 section 2.2.1, and any other
/// code the provider sends.
public enum OAuthErrorCode: Sendable, Equatable, CustomStringConvertible {
    case invalidRequest
    case invalidClient
    case invalidGrant
    case unauthorizedClient
    case unsupportedGrantType
    case invalidScope
    case unsupportedTokenType
    case other(String)

    public init(_ code: String) {
        switch code {
        case "invalid_request": self = .invalidRequest
        case "invalid_client": self = .invalidClient
        case "invalid_grant": self = .invalidGrant
        case "unauthorized_client": self = .unauthorizedClient
        case "unsupported_grant_type": self = .unsupportedGrantType
        case "invalid_scope": self = .invalidScope
        case "unsupported_token_type": self = .unsupportedTokenType
        default: self = .other(code)
        }
    }

    public var description: String {
        switch self {
        case .invalidRequest: return "invalid_request"
        case .invalidClient: return "invalid_client"
        case .invalidGrant: return "invalid_grant"
        case .unauthorizedClient: return "unauthorized_client"
        case .unsupportedGrantType: return "unsupported_grant_type"
        case .invalidScope: return "invalid_scope"
        case .unsupportedTokenType: return "unsupported_token_type"
        case .other(let code): return code
        }
    }
}

/// An OAuth 2.0 error response from the token or revocation endpoint.
public struct OAuthErrorResponse: Sendable, Equatable, CustomStringConvertible {
    public let endpoint: String
    public let status: Int
    public let code: OAuthErrorCode
    /// The provider's `error_description`, shortened and stripped of control characters. It is nil
    /// when it was absent or contained a code, token or secret that the request sent.
    public let errorDescription: String?

    public init(endpoint: String, status: Int, code: OAuthErrorCode, errorDescription: String?) {
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.errorDescription = errorDescription
    }

    /// Whether the provider failed rather than refused the request: a 5xx status, or the codes
    /// `server_error` and `temporarily_unavailable`, which some providers also send from the token
    /// endpoint. Trying again later can succeed.
    public var isProviderFailure: Bool {
        status >= 500 || code == .other("server_error") || code == .other("temporarily_unavailable")
    }

    public var description: String {
        var text = "identity provider at \(endpoint) returned error \(code) (HTTP \(status))"
        if let errorDescription { text += ": \(errorDescription)" }
        return text
    }
}

private func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int64(seconds)) : String(seconds)
}
