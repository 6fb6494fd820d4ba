/// The claim checks of OpenID Connect Core section 3.1.3.7 on a payload whose signature has already
/// been verified. Times are Unix seconds; `leeway` widens every time window in both directions.
struct IDTokenClaimChecks: Sendable {
    let issuer: String
    let clientID: String
    let leeway: Int64

    /// Checks `claims` and returns them as `IdentityClaims`. `expectedNonce` is the nonce of the
    /// authorization request, or nil on refresh, where a nonce is not required.
    func check(
        _ claims: [String: ClaimValue],
        now: Int64,
        expectedNonce: String?,
        nonceEquals: (String, String) -> Bool
    ) throws(IdentityError) -> IdentityClaims {
        guard case .string(let tokenIssuer)? = claims["iss"] else {
            throw .invalidIDToken(.missingClaim("iss"))
        }
        guard tokenIssuer == issuer else {
            throw .invalidIDToken(.issuerMismatch(expected: issuer, actual: String(tokenIssuer.prefix(200))))
        }
        guard case .string(let subject)? = claims["sub"], !subject.isEmpty else {
            throw .invalidIDToken(.missingClaim("sub"))
        }

        let audience: [String]
        switch claims["aud"] {
        case .string(let value)?:
            audience = [value]
        case .array(let values)?:
            audience = values.compactMap(\.stringValue)
            guard audience.count == values.count, !audience.isEmpty else {
                throw .invalidIDToken(.missingClaim("aud"))
            }
        default:
            throw .invalidIDToken(.missingClaim("aud"))
        }
        guard audience.contains(clientID) else { throw .invalidIDToken(.audienceMismatch) }
        switch claims["azp"] {
        case nil:
            if audience.count > 1 { throw .invalidIDToken(.authorizedPartyMismatch) }
        case .string(let party)?:
            if party != clientID { throw .invalidIDToken(.authorizedPartyMismatch) }
        default:
            throw .invalidIDToken(.authorizedPartyMismatch)
        }

        guard let expiry = claims["exp"]?.numericDate else { throw .invalidIDToken(.missingClaim("exp")) }
        guard now < expiry.addingClamped(leeway) else { throw .invalidIDToken(.expired(expiry: expiry, now: now)) }
        guard let issuedAt = claims["iat"]?.numericDate else { throw .invalidIDToken(.missingClaim("iat")) }
        guard issuedAt <= now.addingClamped(leeway) else {
            throw .invalidIDToken(.issuedInFuture(issuedAt: issuedAt, now: now))
        }
        if let value = claims["nbf"] {
            guard let notBefore = value.numericDate else { throw .invalidIDToken(.missingClaim("nbf")) }
            guard notBefore <= now.addingClamped(leeway) else {
                throw .invalidIDToken(.notYetValid(notBefore: notBefore, now: now))
            }
        }

        if let expectedNonce {
            guard case .string(let nonce)? = claims["nonce"], nonceEquals(nonce, expectedNonce) else {
                throw .invalidIDToken(.nonceMismatch)
            }
        }
        return try IdentityClaims(validated: claims)
    }
}

extension Int64 {
    /// `self + other`, clamped to the representable range instead of trapping.
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        if !overflow { return sum }
        return other > 0 ? .max : .min
    }
}
