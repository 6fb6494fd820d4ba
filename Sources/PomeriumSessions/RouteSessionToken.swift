import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging

/// Host names as they appear in `iss` and `aud`: lowercase, with the port unless it is the
/// scheme's default (80 for http, 443 for https), as v0.7 does since 0.7.0.
public enum AudienceHost {
    /// Returns `host` or `host:port`.
    public static func format(host: String, port: Int?, scheme: String) -> String {
        // Every proxied request formats its host, so ASCII hosts, already lowercase as a rule,
        // skip `lowercased()`, and the colon test reads bytes: `String.contains(":")` resolved to
        // Foundation's substring search and measured 5,800 instructions.
        let needsLowercasing = host.utf8.contains { ($0 >= 0x41 && $0 <= 0x5A) || $0 >= 0x80 }
        let lower = needsLowercasing ? host.lowercased() : host
        let bracketed = lower.utf8.contains(UInt8(ascii: ":")) ? "[\(lower)]" : lower
        guard let port else { return bracketed }
        let defaultPort = scheme == "http" || scheme.lowercased() == "http" ? 80 : 443
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }
}

/// Route session tokens: HS256 JWTs of the session claims without `act`, header
/// `{"alg":"HS256","typ":"JWT"}`, keyed with the 32 bytes decoded from `shared_secret` (v0.7
/// keyed HMAC with the base64 text). Verification allows HS256 only, checks `exp` and `nbf`
/// against the clock with no leeway, and requires the request host in `aud`.
public struct RouteSessionTokenCodec: Sendable {
    static let artefact = "route-session-token"
    private static let encodedHeader = JWS.encodeHeader(
        JSONObject([("alg", .string("HS256")), ("typ", .string("JWT"))]))

    private let key: HMACKey
    private let verifier: JWSVerifier
    private let clock: any WallClock
    private let logger: Logger

    public init(sharedSecret: [UInt8], clock: any WallClock, logger: Logger) throws {
        guard sharedSecret.count == 32 else {
            throw PomeriumError(
                "shared-secret-invalid", "shared_secret must decode to 32 bytes, got \(sharedSecret.count)")
        }
        key = try HMACKey(key: sharedSecret, digest: .sha256)
        verifier = try JWSVerifier(hmacKey: key)
        self.clock = clock
        self.logger = logger
    }

    /// Signs the route view of `session` (its OAuth token removed).
    public func sign(_ session: SessionState) throws -> String {
        try JWS.sign(payload: session.routeSession.jsonBytes(), with: .hs256(key), encodedHeader: Self.encodedHeader)
    }

    /// Verifies a token for a request to `audienceHost` (see `AudienceHost.format`).
    ///
    /// - Throws: `SessionRejection` (`malformed`, `algorithmNotAllowed`, `badSignature`,
    ///   `invalidClaims`, `expired`, `notYetValid`, `wrongAudience`), logged once.
    /// With `allowExpired`, a token past its `exp` passes the other checks and is returned as it
    /// is, so the caller can renew it through a backend refresh, as it does for cookie sessions.
    public func verify(_ token: some Collection<UInt8>, audienceHost: String, allowExpired: Bool = false) throws
        -> SessionState
    {
        do {
            return try check(token, audienceHost: audienceHost, allowExpired: allowExpired)
        } catch let rejection as SessionRejection {
            logger.logRejection(rejection)
            throw rejection
        }
    }

    private func check(_ token: some Collection<UInt8>, audienceHost: String, allowExpired: Bool) throws
        -> SessionState
    {
        let parsed: CompactJWS
        do {
            parsed = try verifier.verify(compact: token)
        } catch {
            switch error {
            case .algorithmNotAllowed, .unsupportedAlgorithm:
                throw SessionRejection(Self.artefact, .algorithmNotAllowed)
            case .invalidSignature, .noMatchingKey: throw SessionRejection(Self.artefact, .badSignature)
            case .malformed, .unsupportedCriticalHeader: throw SessionRejection(Self.artefact, .malformed)
            }
        }
        let session: SessionState
        do {
            session = try SessionState(json: parsed.payload)
        } catch {
            throw SessionRejection(Self.artefact, .invalidClaims)
        }
        let now = clock.unixSeconds()
        guard let expiry = session.expiry else { throw SessionRejection(Self.artefact, .invalidClaims) }
        guard now < expiry || allowExpired else { throw SessionRejection(Self.artefact, .expired) }
        if let notBefore = session.notBefore, now < notBefore { throw SessionRejection(Self.artefact, .notYetValid) }
        guard session.audience.contains(audienceHost.lowercased()) else {
            throw SessionRejection(Self.artefact, .wrongAudience)
        }
        guard session.oauthToken == nil else { throw SessionRejection(Self.artefact, .invalidClaims) }
        return session
    }
}

/// The parts of a request that carry a session.
public struct SessionRequest: Sendable {
    /// The `Cookie` pairs in header order.
    public var cookies: [(name: String, value: String)]
    /// The `Authorization` header value, if any.
    public var authorization: String?
    /// The `pomerium_session` query parameter, if any.
    public var sessionQueryParameter: String?
    /// The request host as `AudienceHost.format` writes it.
    public var audienceHost: String

    public init(
        cookies: [(name: String, value: String)],
        authorization: String? = nil,
        sessionQueryParameter: String? = nil,
        audienceHost: String
    ) {
        self.cookies = cookies
        self.authorization = authorization
        self.sessionQueryParameter = sessionQueryParameter
        self.audienceHost = audienceHost
    }
}

/// Loads the session of a request on a route: from the session cookie, then
/// `Authorization: Pomerium <jwt>`, then `Authorization: Bearer <jwt>` (this product's own route
/// tokens; v0.7 had no Bearer), then `?pomerium_session=<jwt>`. The first source present decides:
/// when it does not hold a valid session the result is "no session", without trying later sources.
/// A correctly signed token past its `exp` is returned from every source, so the policy reports
/// `session_expired` and the proxy can renew it by backend refresh, as v0.7 did for scripts.
public final class SessionLoader: Sendable {
    /// Where a session came from.
    public enum Source: String, Sendable {
        case cookie
        case authorizationPomerium
        case authorizationBearer
        case queryParameter
    }

    private let cookies: SessionCookieCodec
    private let tokens: RouteSessionTokenCodec

    public init(cookies: SessionCookieCodec, tokens: RouteSessionTokenCodec) {
        self.cookies = cookies
        self.tokens = tokens
    }

    /// Returns the session and its source, or nil for no session.
    public func load(_ request: SessionRequest) -> (session: SessionState, source: Source)? {
        load(
            cookies: request.cookies.map { HTTPCookie(name: $0.name, value: $0.value) },
            authorization: { request.authorization }, sessionQueryParameter: { request.sessionQueryParameter },
            audienceHost: request.audienceHost)
    }

    /// Loads the session as `load(_:)` does, from the request's parsed cookies. `authorization`
    /// and `sessionQueryParameter` are read only when no session cookie is present, so a browser's
    /// request looks up neither.
    public func load(
        cookies requestCookies: [HTTPCookie], authorization: () -> String?, sessionQueryParameter: () -> String?,
        audienceHost: String
    ) -> (session: SessionState, source: Source)? {
        if cookies.hasCookie(in: requestCookies) {
            return cookies.session(fromCookies: requestCookies).map { ($0, .cookie) }
        }
        if let authorization = authorization() {
            if let token = Self.credential(authorization, scheme: "pomerium") {
                return (try? tokens.verify(token, audienceHost: audienceHost, allowExpired: true)).map {
                    ($0, .authorizationPomerium)
                }
            }
            if let token = Self.credential(authorization, scheme: "bearer") {
                return (try? tokens.verify(token, audienceHost: audienceHost, allowExpired: true)).map {
                    ($0, .authorizationBearer)
                }
            }
        }
        if let parameter = sessionQueryParameter() {
            return (try? tokens.verify(Array(parameter.utf8), audienceHost: audienceHost, allowExpired: true))
                .map {
                    ($0, .queryParameter)
                }
        }
        return nil
    }

    /// The credential after `<scheme> ` (scheme compared case-insensitively, one separator), as v0.7
    /// parsed the header.
    static func credential(_ header: String, scheme: String) -> ArraySlice<UInt8>? {
        let bytes = Array(header.utf8)
        guard bytes.count > scheme.utf8.count + 1 else { return nil }
        for (index, expected) in scheme.utf8.enumerated() where bytes[index] | 0x20 != expected {
            return nil
        }
        guard bytes[scheme.utf8.count] == UInt8(ascii: " ") else { return nil }
        return bytes[(scheme.utf8.count + 1)...]
    }
}
