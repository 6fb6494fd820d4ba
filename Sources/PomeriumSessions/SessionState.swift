import PomeriumCrypto
import Synchronization

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
///
/// The claims live in one shared, copy-on-write storage object, so a copy of a session costs one
/// reference count instead of one per string and list. The proxy copies the session of every
/// request several times (from the opened-cookie cache, into the decision and into the upstream
/// request), and copying the twenty fields measured about 5,000 instructions per request.
public struct SessionState: Sendable, Equatable {
    /// The claim values. A `SessionState` writes to its storage only while it holds the sole
    /// reference, and copies it first otherwise, so no two sessions ever see each other's writes.
    private final class Storage: @unchecked Sendable {
        var claims: Claims
        /// An object a caller derived from `claims` (see `derived(_:)`), with its type.
        let derived = Mutex<(type: ObjectIdentifier, object: any AnyObject & Sendable)?>(nil)

        init(_ claims: Claims) { self.claims = claims }
    }

    /// The fields, stored together.
    private struct Claims: Equatable {
        var issuer: String = ""
        var subject: String = ""
        var audience: [String] = []
        var expiry: Int64?
        var notBefore: Int64?
        var issuedAt: Int64?
        var id: String = ""
        var email: String = ""
        var groups: [String] = []
        var user: String?
        var name: String?
        var givenName: String?
        var familyName: String?
        var picture: String?
        var emailVerified: Bool?
        var impersonateEmail: String?
        var impersonateGroups: [String]?
        var programmatic: Bool = false
        var oauthToken: OAuthToken?
        var accessTokenID: String = ""
    }

    private var storage: Storage

    public init() { storage = Storage(Claims()) }

    /// Returns the claims for writing, copying the storage first when another session shares it.
    private var writableClaims: Claims {
        _read { yield storage.claims }
        _modify {
            if isKnownUniquelyReferenced(&storage) {
                // The claims change in place, so what was derived from them no longer holds.
                storage.derived.withLock { $0 = nil }
            } else {
                storage = Storage(storage.claims)
            }
            yield &storage.claims
        }
    }

    /// Returns the object `make` derives from this session, made on the first call and kept with
    /// the claims: copies of the session share it, and a change to the claims drops it. `make`
    /// must depend on the claims alone. One object is kept per session, so asking for another
    /// type replaces it.
    ///
    /// The proxy keeps what it computes from a session's claims for every request here, since the
    /// opened-cookie cache hands each request a copy of the same session.
    public func derived<Value: AnyObject & Sendable>(_ make: (SessionState) -> Value) -> Value {
        let type = ObjectIdentifier(Value.self)
        if let existing = storage.derived.withLock({ $0 }), existing.type == type {
            return unsafeDowncast(existing.object, to: Value.self)
        }
        let made = make(self)
        storage.derived.withLock { $0 = (type, made) }
        return made
    }

    public static func == (lhs: SessionState, rhs: SessionState) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.claims == rhs.storage.claims
    }

    /// Returns whether `other` shares this session's storage, which makes the two equal without comparing
    /// a field.
    func isSameStorage(as other: SessionState) -> Bool { storage === other.storage }

    /// `iss`: the authenticate host, with its port when it is not the scheme's default.
    public var issuer: String {
        get { storage.claims.issuer }
        set { writableClaims.issuer = newValue }
    }

    /// `sub`: the identity provider's subject.
    public var subject: String {
        get { storage.claims.subject }
        set { writableClaims.subject = newValue }
    }

    /// `aud`: the hosts this session is valid for.
    public var audience: [String] {
        get { storage.claims.audience }
        set { writableClaims.audience = newValue }
    }

    /// `exp`, Unix seconds.
    public var expiry: Int64? {
        get { storage.claims.expiry }
        set { writableClaims.expiry = newValue }
    }

    /// `nbf`, Unix seconds.
    public var notBefore: Int64? {
        get { storage.claims.notBefore }
        set { writableClaims.notBefore = newValue }
    }

    /// `iat`, Unix seconds.
    public var issuedAt: Int64? {
        get { storage.claims.issuedAt }
        set { writableClaims.issuedAt = newValue }
    }

    /// `jti`, omitted when empty.
    public var id: String {
        get { storage.claims.id }
        set { writableClaims.id = newValue }
    }

    /// `email`, always written, even when empty.
    public var email: String {
        get { storage.claims.email }
        set { writableClaims.email = newValue }
    }

    /// `groups`, omitted when empty.
    public var groups: [String] {
        get { storage.claims.groups }
        set { writableClaims.groups = newValue }
    }

    /// `user`, only when the provider supplies one.
    public var user: String? {
        get { storage.claims.user }
        set { writableClaims.user = newValue }
    }

    public var name: String? {
        get { storage.claims.name }
        set { writableClaims.name = newValue }
    }

    public var givenName: String? {
        get { storage.claims.givenName }
        set { writableClaims.givenName = newValue }
    }

    public var familyName: String? {
        get { storage.claims.familyName }
        set { writableClaims.familyName = newValue }
    }

    public var picture: String? {
        get { storage.claims.picture }
        set { writableClaims.picture = newValue }
    }

    public var emailVerified: Bool? {
        get { storage.claims.emailVerified }
        set { writableClaims.emailVerified = newValue }
    }

    public var impersonateEmail: String? {
        get { storage.claims.impersonateEmail }
        set { writableClaims.impersonateEmail = newValue }
    }

    public var impersonateGroups: [String]? {
        get { storage.claims.impersonateGroups }
        set { writableClaims.impersonateGroups = newValue }
    }

    /// `programatic` (v0.7's spelling): whether a script rather than a browser uses the session.
    public var programmatic: Bool {
        get { storage.claims.programmatic }
        set { writableClaims.programmatic = newValue }
    }

    /// `act`: the OAuth token; nil in route sessions.
    public var oauthToken: OAuthToken? {
        get { storage.claims.oauthToken }
        set { writableClaims.oauthToken = newValue }
    }

    /// `ati`: the access-token id, the cache key of the global session.
    public var accessTokenID: String {
        get { storage.claims.accessTokenID }
        set { writableClaims.accessTokenID = newValue }
    }

    /// Whether `ati` is set. Unlike `accessTokenID.isEmpty`, it reads the claim in place: a copy
    /// of the string cost a retain and a release, and the proxy checks it for every request.
    public var hasAccessTokenID: Bool { !storage.claims.accessTokenID.isEmpty }

    /// Returns whether `aud` lists `host`, reading the list in place instead of copying it.
    public func audienceContains(_ host: String) -> Bool { storage.claims.audience.contains(host) }

    /// The route-session view: the same claims without the OAuth token. A session without a token
    /// is its own view and shares its storage.
    public var routeSession: SessionState {
        guard oauthToken != nil else { return self }
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
