import PomeriumCrypto
import PomeriumHTTP

/// The `jwt_claims_headers` option: listed session claims copied into `X-Pomerium-Claim-<Name>`
/// request headers for the upstream.
public enum ClaimHeaders {
    /// Returns (header name, value) pairs for each listed claim present in `claims`. Names are
    /// canonicalised as Go's `CanonicalMIMEHeaderKey` does (`email` becomes
    /// `X-Pomerium-Claim-Email`). Lists are comma-joined, integral numbers print as integers
    /// (v0.7 printed `1.586842679e+09`), Booleans as `true`/`false`. Claims that are null, and
    /// values with control characters, which could split a header, are left out.
    public static func headers(claims: JSONObject, names: [String]) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        for claim in names {
            guard let value = claims[claim], let text = headerValue(value) else { continue }
            guard isToken(claim) else { continue }
            guard !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { continue }
            result.append((canonicalName(prefix: "X-Pomerium-Claim-", claim), text))
        }
        return result
    }

    static func headerValue(_ value: JSONValue) -> String? {
        switch value {
        case .null: return nil
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .double(let number):
            if number.rounded() == number, abs(number) < 9.2e18 { return String(Int64(number)) }
            return number.description
        case .string(let text): return text
        case .array(let items):
            return items.compactMap(headerValue).joined(separator: ",")
        case .object: return String(decoding: JSONWriter.encode(value), as: UTF8.self)
        }
    }

    /// Upper-cases the first letter and each letter after `-`, lower-cases the rest.
    static func canonicalName(_ name: String) -> String {
        canonicalName(prefix: "", name)
    }

    /// `prefix`, which must be canonical already, followed by `name` canonicalised as if it
    /// continued `prefix`. Writes the string in one allocation, since the proxy builds these
    /// names for every identified request.
    static func canonicalName(prefix: StaticString, _ name: String) -> String {
        let prefixBytes = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        let count = prefixBytes.count + name.utf8.count
        return String(unsafeUninitializedCapacity: count) { output in
            var index = 0
            var upper = true
            for byte in prefixBytes {
                output[index] = byte
                index += 1
                upper = byte == UInt8(ascii: "-")
            }
            for byte in name.utf8 {
                var converted = byte
                if upper, byte >= 0x61, byte <= 0x7A { converted -= 0x20 }
                if !upper, byte >= 0x41, byte <= 0x5A { converted += 0x20 }
                output[index] = converted
                index += 1
                upper = byte == UInt8(ascii: "-")
            }
            return index
        }
    }

    /// Returns whether `claim` is a non-empty header token, so it can be part of a header name.
    static func isToken(_ claim: String) -> Bool { HTTPFieldName.isValidName(claim) }
}

/// The `jwt_claims_headers` option prepared once per configuration: each listed claim with its
/// canonical header name and the session field it reads. `forEachHeader` gives the same headers
/// as `ClaimHeaders.headers(claims: session.claims, names:)` but reads the fields directly, so an
/// identified request builds no claims object.
public struct ClaimHeaderPlan: Sendable {
    /// A listed claim: the header name and where its value comes from.
    struct Entry: Sendable {
        let claim: String
        let headerName: String
        let field: Field
    }

    /// The session field behind a claim of `SessionState.claims`.
    enum Field: Sendable {
        case issuer, subject, audience, expiry, notBefore, issuedAt, id, email, groups, user, name, givenName
        case familyName, picture, emailVerified, impersonateEmail, impersonateGroups, programmatic, accessTokenID
        /// `act`, the OAuth token object, written as JSON; rare enough to take the general path.
        case oauthToken

        init?(claim: String) {
            switch claim {
            case "iss": self = .issuer
            case "sub": self = .subject
            case "aud": self = .audience
            case "exp": self = .expiry
            case "nbf": self = .notBefore
            case "iat": self = .issuedAt
            case "jti": self = .id
            case "email": self = .email
            case "groups": self = .groups
            case "user": self = .user
            case "name": self = .name
            case "given_name": self = .givenName
            case "family_name": self = .familyName
            case "picture": self = .picture
            case "email_verified": self = .emailVerified
            case "impersonate_email": self = .impersonateEmail
            case "impersonate_groups": self = .impersonateGroups
            case "programatic": self = .programmatic
            case "act": self = .oauthToken
            case "ati": self = .accessTokenID
            default: return nil
            }
        }
    }

    /// The prepared list, shared by copies of the plan. Its identity distinguishes plans.
    private final class Entries: Sendable {
        let list: [Entry]

        init(_ list: [Entry]) { self.list = list }
    }

    private let prepared: Entries
    var entries: [Entry] { prepared.list }
    /// Whether a listed claim is `act`, the OAuth token, which a route session does not carry.
    let readsOAuthToken: Bool

    /// Prepares `names`, the `jwt_claims_headers` list. Names that are not claims of a session, or
    /// not valid header tokens, never produce a header and are dropped here.
    public init(names: [String]) {
        let entries = names.compactMap { claim -> Entry? in
            guard let field = Field(claim: claim), ClaimHeaders.isToken(claim) else { return nil }
            return Entry(
                claim: claim, headerName: ClaimHeaders.canonicalName(prefix: "X-Pomerium-Claim-", claim), field: field)
        }
        prepared = Entries(entries)
        readsOAuthToken = entries.contains { if case .oauthToken = $0.field { true } else { false } }
    }

    /// Returns whether `other` is this plan or a copy of it, prepared by the same `init`.
    func isSamePlan(as other: ClaimHeaderPlan) -> Bool { prepared === other.prepared }

    /// Returns the headers `forEachHeader` gives for `session`, as a list.
    func headers(for session: SessionState) -> [ClaimHeader] {
        var result: [ClaimHeader] = []
        result.reserveCapacity(entries.count)
        forEachHeader(for: session) { result.append(ClaimHeader(name: $0, value: $1)) }
        return result
    }

    /// Returns whether no listed claim can produce a header.
    public var isEmpty: Bool { entries.isEmpty }

    /// The number of listed claims that can produce a header.
    public var count: Int { entries.count }

    /// Calls `body` with the header name and value of each listed claim that `session` has, in
    /// the order of the list. Values with control characters are left out, so every value given
    /// to `body` is a valid field value and every name a token: callers add them as validated.
    public func forEachHeader(for session: SessionState, _ body: (_ name: String, _ value: String) -> Void) {
        for entry in entries {
            guard let value = Self.value(entry, of: session), !Self.hasControlCharacter(value) else { continue }
            body(entry.headerName, value)
        }
    }

    /// Returns whether `value` has a byte below 0x20 or DEL, read in place.
    private static func hasControlCharacter(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            for byte in bytes where byte < 0x20 || byte == 0x7F { return true }
            return false
        }
    }

    /// Returns the value `ClaimHeaders.headerValue` gives for the claim, or nil when `SessionState.claims`
    /// leaves the claim out.
    private static func value(_ entry: Entry, of session: SessionState) -> String? {
        switch entry.field {
        case .issuer: return session.issuer.isEmpty ? nil : session.issuer
        case .subject: return session.subject.isEmpty ? nil : session.subject
        case .audience: return session.audience.isEmpty ? nil : session.audience.joined(separator: ",")
        case .expiry: return session.expiry.map { String($0) }
        case .notBefore: return session.notBefore.map { String($0) }
        case .issuedAt: return session.issuedAt.map { String($0) }
        case .id: return session.id.isEmpty ? nil : session.id
        case .email: return session.email
        case .groups: return session.groups.isEmpty ? nil : session.groups.joined(separator: ",")
        case .user: return session.user
        case .name: return session.name
        case .givenName: return session.givenName
        case .familyName: return session.familyName
        case .picture: return session.picture
        case .emailVerified: return session.emailVerified.map { $0 ? "true" : "false" }
        case .impersonateEmail: return session.impersonateEmail
        case .impersonateGroups: return session.impersonateGroups.map { $0.joined(separator: ",") }
        case .programmatic: return session.programmatic ? "true" : "false"
        case .accessTokenID: return session.accessTokenID.isEmpty ? nil : session.accessTokenID
        case .oauthToken: return session.claims[entry.claim].flatMap(ClaimHeaders.headerValue)
        }
    }
}
