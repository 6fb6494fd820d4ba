import PomeriumCrypto

/// The OAuth 2.0 token of a global session (`act`): only the authenticate service stores it.
public struct OAuthToken: Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String
    public var refreshToken: String
    /// When the access token expires, Unix seconds; nil when the provider gave no lifetime.
    public var expiry: Int64?

    public init(accessToken: String, tokenType: String = "Bearer", refreshToken: String = "", expiry: Int64? = nil) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.refreshToken = refreshToken
        self.expiry = expiry
    }
}

/// The session state with Pomerium v0.7's JSON claim names. One type serves the global session
/// (with the OAuth token in `act`) and the route session and identity assertion (without it).
public struct SessionState: Sendable, Equatable {
    /// `iss`: the authenticate host, with its port when it is not the scheme's default.
    public var issuer: String = ""
    /// `sub`: the identity provider's subject.
    public var subject: String = ""
    /// `aud`: the hosts this session is valid for.
    public var audience: [String] = []
    /// `exp`, Unix seconds.
    public var expiry: Int64?
    /// `nbf`, Unix seconds.
    public var notBefore: Int64?
    /// `iat`, Unix seconds.
    public var issuedAt: Int64?
    /// `jti`, omitted when empty.
    public var id: String = ""
    /// `email`, always written, even when empty.
    public var email: String = ""
    /// `groups`, omitted when empty.
    public var groups: [String] = []
    /// `user`, only when the provider supplies one.
    public var user: String?
    public var name: String?
    public var givenName: String?
    public var familyName: String?
    public var picture: String?
    public var emailVerified: Bool?
    public var impersonateEmail: String?
    public var impersonateGroups: [String]?
    /// `programatic` (v0.7's spelling): whether a script rather than a browser uses the session.
    public var programmatic: Bool = false
    /// `act`: the OAuth token; nil in route sessions.
    public var oauthToken: OAuthToken?
    /// `ati`: the access-token id, the cache key of the global session.
    public var accessTokenID: String = ""

    public init() {}

    /// The route-session view: the same claims without the OAuth token.
    public var routeSession: SessionState {
        var copy = self
        copy.oauthToken = nil
        return copy
    }
}

/// A failure to decode session claims.
public struct SessionDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { "invalid session claims: \(reason)" }
}

extension SessionState {
    /// The claims as a JSON object in v0.7's field order.
    public var claims: JSONObject {
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(20)
        if !issuer.isEmpty { members.append(("iss", .string(issuer))) }
        if !subject.isEmpty { members.append(("sub", .string(subject))) }
        if !audience.isEmpty { members.append(("aud", .array(audience.map { .string($0) }))) }
        if let expiry { members.append(("exp", .integer(expiry))) }
        if let notBefore { members.append(("nbf", .integer(notBefore))) }
        if let issuedAt { members.append(("iat", .integer(issuedAt))) }
        if !id.isEmpty { members.append(("jti", .string(id))) }
        members.append(("email", .string(email)))
        if !groups.isEmpty { members.append(("groups", .array(groups.map { .string($0) }))) }
        if let user { members.append(("user", .string(user))) }
        if let name { members.append(("name", .string(name))) }
        if let givenName { members.append(("given_name", .string(givenName))) }
        if let familyName { members.append(("family_name", .string(familyName))) }
        if let picture { members.append(("picture", .string(picture))) }
        if let emailVerified { members.append(("email_verified", .bool(emailVerified))) }
        if let impersonateEmail { members.append(("impersonate_email", .string(impersonateEmail))) }
        if let impersonateGroups {
            members.append(("impersonate_groups", .array(impersonateGroups.map { .string($0) })))
        }
        members.append(("programatic", .bool(programmatic)))
        if let oauthToken {
            var token: [(key: String, value: JSONValue)] = [
                ("access_token", .string(oauthToken.accessToken)), ("token_type", .string(oauthToken.tokenType)),
            ]
            if !oauthToken.refreshToken.isEmpty { token.append(("refresh_token", .string(oauthToken.refreshToken))) }
            if let expiry = oauthToken.expiry { token.append(("expiry", .integer(expiry))) }
            members.append(("act", .object(JSONObject(token))))
        }
        if !accessTokenID.isEmpty { members.append(("ati", .string(accessTokenID))) }
        return JSONObject(members)
    }

    /// The claims as compact JSON bytes.
    public func jsonBytes() -> [UInt8] { JSONWriter.encode(.object(claims)) }

    /// Decodes claims from JSON bytes. `aud` may be a string or a list, as RFC 7519 allows; unknown
    /// members are ignored; a legacy `access_token` object is read as `act`.
    public init(json bytes: some Collection<UInt8>) throws {
        let object: JSONObject
        do {
            object = try JSONParser.parseObject(bytes)
        } catch {
            throw SessionDecodingError(reason: "not a JSON object")
        }
        try self.init(claims: object)
    }

    /// Decodes claims from a parsed JSON object.
    public init(claims object: JSONObject) throws {
        self.init()
        for (key, value) in object.members {
            switch key {
            case "iss": issuer = try Self.string(value, key)
            case "sub": subject = try Self.string(value, key)
            case "aud":
                if case .string(let single) = value {
                    audience = [single]
                } else {
                    audience = try Self.strings(value, key)
                }
            case "exp": expiry = try Self.seconds(value, key)
            case "nbf": notBefore = try Self.seconds(value, key)
            case "iat": issuedAt = try Self.seconds(value, key)
            case "jti": id = try Self.string(value, key)
            case "email": email = try Self.string(value, key)
            case "groups": groups = try Self.strings(value, key)
            case "user": user = try Self.string(value, key)
            case "name": name = try Self.string(value, key)
            case "given_name": givenName = try Self.string(value, key)
            case "family_name": familyName = try Self.string(value, key)
            case "picture": picture = try Self.string(value, key)
            case "email_verified": emailVerified = try Self.bool(value, key)
            case "impersonate_email": impersonateEmail = try Self.string(value, key)
            case "impersonate_groups": impersonateGroups = try Self.strings(value, key)
            case "programatic": programmatic = try Self.bool(value, key)
            case "ati": accessTokenID = try Self.string(value, key)
            case "act", "access_token":
                if case .null = value { continue }
                guard let token = value.objectValue else {
                    throw SessionDecodingError(reason: "\(key) is not an object")
                }
                oauthToken = try Self.oauthToken(token)
            default: continue
            }
        }
    }

    private static func oauthToken(_ object: JSONObject) throws -> OAuthToken {
        var token = OAuthToken(accessToken: "")
        for (key, value) in object.members {
            switch key {
            case "access_token": token.accessToken = try string(value, "act.access_token")
            case "token_type": token.tokenType = try string(value, "act.token_type")
            case "refresh_token": token.refreshToken = try string(value, "act.refresh_token")
            case "expiry": token.expiry = try seconds(value, "act.expiry")
            default: continue
            }
        }
        return token
    }

    private static func string(_ value: JSONValue, _ key: String) throws -> String {
        guard let string = value.stringValue else { throw SessionDecodingError(reason: "\(key) is not a string") }
        return string
    }

    private static func strings(_ value: JSONValue, _ key: String) throws -> [String] {
        if case .null = value { return [] }
        guard let array = value.arrayValue else { throw SessionDecodingError(reason: "\(key) is not a list") }
        return try array.map { try string($0, key) }
    }

    private static func bool(_ value: JSONValue, _ key: String) throws -> Bool {
        guard let flag = value.boolValue else { throw SessionDecodingError(reason: "\(key) is not a Boolean") }
        return flag
    }

    private static func seconds(_ value: JSONValue, _ key: String) throws -> Int64 {
        // NumericDate may carry a fraction (RFC 7519 section 2); whole seconds are kept.
        if let whole = value.int64Value { return whole }
        guard let number = value.doubleValue, number.isFinite, abs(number) < 9.2e18 else {
            throw SessionDecodingError(reason: "\(key) is not a number of seconds")
        }
        return Int64(number.rounded(.down))
    }
}
