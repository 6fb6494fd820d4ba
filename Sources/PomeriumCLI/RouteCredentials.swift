import PomeriumCrypto

/// The result of a login for one route: the route JWT that requests carry, the refresh token that
/// the authenticate service's `/api/v1/refresh` takes, and where that service is.
public struct RouteCredentials: Sendable, Equatable {
    public var route: RouteOrigin
    /// The authenticate service's origin, taken from the sign-in URL of the login.
    public var authenticateURL: String
    public var jwt: String
    public var refreshToken: String

    public init(route: RouteOrigin, authenticateURL: String, jwt: String, refreshToken: String) {
        self.route = route
        self.authenticateURL = authenticateURL
        self.jwt = jwt
        self.refreshToken = refreshToken
    }

    /// The JWT's `exp` claim in Unix seconds, or nil when the token is malformed or has none.
    /// The signature is not checked here: the proxy does that, and the client only decides
    /// whether the token is worth sending.
    public var expiry: Int64? { Self.expiry(ofJWT: jwt) }

    /// Returns whether the JWT is still valid `margin` seconds after `now`. A token without a
    /// readable `exp` counts as expired, so it is refreshed instead of sent.
    public func isValid(now: Int64, margin: Int64) -> Bool {
        guard let expiry else { return false }
        return now + margin < expiry
    }

    /// Reads `exp` from the payload of a compact JWS.
    static func expiry(ofJWT token: String) -> Int64? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64.urlUnpadded.decode(parts[1]),
            let object = try? JSONParser.parseObject(payload)
        else { return nil }
        return object["exp"]?.int64Value
    }

    /// Returns whether `token` has the shape of a compact JWS: three base64url parts.
    static func isCompactJWS(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && Base64.urlUnpadded.decode(part) != nil
        }
    }
}
