/// The identity of a signed-in user: the validated ID token's claims merged with userinfo. These are
/// the values the session layer stores (Pomerium's session state) and copies into headers.
public struct IdentityClaims: Sendable, Equatable {
    public let issuer: String
    public let subject: String
    public let audience: [String]
    /// The ID token's `exp`, in Unix seconds.
    public let expiry: Int64
    /// The ID token's `iat`, in Unix seconds.
    public let issuedAt: Int64
    /// The ID token's `jti`, when present.
    public let tokenID: String?
    public let email: String?
    public let emailVerified: Bool?
    public let name: String?
    public let givenName: String?
    public let familyName: String?
    public let picture: String?
    /// Group identifiers from the `groups` claim; empty when the provider sent none.
    public let groups: [String]
    /// The `user` claim, only when the provider supplies one.
    public let user: String?
    /// Every claim after the merge, for `X-Pomerium-Claim-*` headers and custom policies.
    public let all: [String: ClaimValue]

    /// Registered ID-token claims that userinfo must not replace.
    static let protectedClaims: Set<String> = [
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "nonce", "auth_time", "at_hash", "c_hash",
    ]

    /// Extracts the claims from a validated ID-token payload. Claims with an unexpected JSON type are
    /// ignored, except `sub`, `iss`, `exp` and `iat`, which validation has already checked.
    init(validated claims: [String: ClaimValue]) throws(IdentityError) {
        guard let issuer = claims["iss"]?.stringValue else { throw .invalidIDToken(.missingClaim("iss")) }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else {
            throw .invalidIDToken(.missingClaim("sub"))
        }
        guard let expiry = claims["exp"]?.numericDate else { throw .invalidIDToken(.missingClaim("exp")) }
        guard let issuedAt = claims["iat"]?.numericDate else { throw .invalidIDToken(.missingClaim("iat")) }
        self.issuer = issuer
        self.subject = subject
        self.audience = claims["aud"]?.stringList ?? []
        self.expiry = expiry
        self.issuedAt = issuedAt
        self.tokenID = claims["jti"]?.stringValue
        self.email = claims["email"]?.stringValue
        self.emailVerified = claims["email_verified"]?.booleanValue
        self.name = claims["name"]?.stringValue
        self.givenName = claims["given_name"]?.stringValue
        self.familyName = claims["family_name"]?.stringValue
        self.picture = claims["picture"]?.stringValue
        self.groups = claims["groups"]?.stringList ?? []
        self.user = claims["user"]?.stringValue
        self.all = claims
    }

    /// These claims with the userinfo response merged in: userinfo adds and replaces profile claims
    /// but never the registered ones (`iss`, `sub`, `aud`, `exp`, ...). A userinfo `sub` other than
    /// this subject is rejected (OpenID Connect Core section 5.3.2).
    public func merging(userInfo: [String: ClaimValue]) throws(IdentityError) -> IdentityClaims {
        guard let userInfoSubject = userInfo["sub"]?.stringValue, userInfoSubject == subject else {
            throw .userInfoSubjectMismatch
        }
        var merged = all
        for (name, value) in userInfo where !Self.protectedClaims.contains(name) {
            merged[name] = value
        }
        return try IdentityClaims(validated: merged)
    }
}
