import PomeriumHTTP
import PomeriumNet
import PomeriumSessions

/// Builds the request the upstream receives: the joined target, cleaned headers, the forwarding
/// headers, the route's `set_request_headers` and, for an identified request, the assertion and
/// the claim headers.
struct UpstreamRequestBuilder {
    let service: ProxyService

    func build(
        incoming: HTTPRequestHead,
        path: String,
        route: UpstreamRoute,
        session: SessionState?,
        applySetHeaders: Bool,
        removeBearer: Bool = false,
        cookies: [HTTPCookie]? = nil,
        remoteAddress: SocketAddress?,
        isTLS: Bool
    ) throws -> HTTPRequestHead {
        var headers = incoming.headers
        let chunkedBody = headers.containsToken("chunked", name: "Transfer-Encoding")
        let upgrade = incoming.isUpgradeRequest ? headers.first(name: "Upgrade") : nil
        headers.removeHopByHopFields()
        if chunkedBody { headers.add(name: "Transfer-Encoding", value: "chunked") }
        if let upgrade {
            headers.add(name: "Connection", value: "Upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        Self.removeIdentityHeaders(&headers)
        removeProductCookies(&headers, parsed: cookies)
        removeProductAuthorization(&headers, removeBearer: removeBearer)
        setForwardingHeaders(&headers, remoteAddress: remoteAddress, isTLS: isTLS)
        if !route.preserveHostHeader {
            headers.replaceOrAdd(name: "Host", value: route.hostHeader)
        }
        if applySetHeaders {
            for header in route.setRequestHeaders {
                headers.replaceOrAdd(name: header.name, value: header.value)
            }
        }
        if let session {
            // The assertion and claim headers come last, so no client header or setting overrides them.
            Self.removeIdentityHeaders(&headers)
            let sessionID = session.accessTokenID.isEmpty ? session.subject : session.accessTokenID
            let assertion = try service.shared.signer.assertion(for: session, sessionID: sessionID, route: route.id)
            headers.add(name: IdentityAssertionSigner.headerName, value: assertion)
            if !service.options.jwtClaimsHeaders.isEmpty {
                for claim in ClaimHeaders.headers(claims: session.claims, names: service.options.jwtClaimsHeaders) {
                    headers.add(name: claim.name, value: claim.value)
                }
            }
        }
        let query = incoming.query.flatMap(Self.removingSessionParameter)
        let target = UpstreamTarget.target(upstream: route.to, requestPath: path, requestQuery: query)
        return try HTTPRequestHead(method: incoming.method, target: target, version: .http1_1, headers: headers)
    }

    /// Removes every copy of the identity headers: `X-Pomerium-Jwt-Assertion`, `X-Pomerium-Claim-*`
    /// and v0.6's `X-Pomerium-Authenticated-User-*`, in any letter case and with `_` for `-`,
    /// because some servers treat the two as the same header.
    static func removeIdentityHeaders(_ headers: inout HTTPHeaders) {
        // Name bytes in place: building each field's strings measured thousands of instructions
        // per request, and this runs three times per proxied request.
        headers.removeFields(whereName: isIdentityHeaderName)
    }

    static func isIdentityHeaderName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { isIdentityHeaderName($0) }
    }

    static func isIdentityHeaderName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count >= 17, name[0] | 0x20 == UInt8(ascii: "x") else { return false }
        return hasNormalizedPrefix(name, "x-pomerium-claim-")
            || (name.count == 24 && hasNormalizedPrefix(name, "x-pomerium-jwt-assertion"))
            || hasNormalizedPrefix(name, "x-pomerium-authenticated-user-")
    }

    /// Whether `name`, with ASCII letters lowercased and `_` read as `-`, starts with `prefix`.
    static func hasNormalizedPrefix(_ name: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        guard name.count >= prefix.utf8CodeUnitCount else { return false }
        let expected = prefix.utf8Start
        for index in 0..<prefix.utf8CodeUnitCount {
            let byte = name[index]
            let normalized =
                byte == UInt8(ascii: "_") ? UInt8(ascii: "-") : (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
            if normalized != expected[index] { return false }
        }
        return true
    }

    /// Removes the session cookie, its chunks `<name>_1`, `<name>_2`, ..., the CSRF cookie
    /// `<name>_csrf` and the sign-in cookie `<name>_signin`, matched by exact name; other cookies,
    /// such as `<name>_app`, stay.
    /// `parsed` is the request's cookies when the caller has parsed them already.
    private func removeProductCookies(_ headers: inout HTTPHeaders, parsed: [HTTPCookie]?) {
        guard headers.contains(name: "Cookie") else { return }
        let name = service.options.cookieName
        let cookies = parsed ?? CookieParser.parse(headers: headers)
        guard cookies.contains(where: { Self.isProductCookie($0.name, cookieName: name) }) else { return }
        let kept = cookies.filter { !Self.isProductCookie($0.name, cookieName: name) }
        headers.remove(name: "Cookie")
        if !kept.isEmpty {
            headers.add(name: "Cookie", value: CookieParser.headerValue(kept))
        }
    }

    static func isProductCookie(_ candidate: String, cookieName: String) -> Bool {
        if candidate == cookieName || candidate == cookieName + "_csrf" || candidate == cookieName + "_signin" {
            return true
        }
        guard candidate.hasPrefix(cookieName + "_") else { return false }
        let suffix = candidate.utf8.dropFirst(cookieName.utf8.count + 1)
        return !suffix.isEmpty && suffix.first != UInt8(ascii: "0")
            && suffix.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Removes `Authorization: Pomerium <token>`, the product's own credential, which the upstream
    /// must not be able to replay, and `Bearer` when it carried the route session. Any other
    /// `Authorization` header belongs to the application and stays.
    private func removeProductAuthorization(_ headers: inout HTTPHeaders, removeBearer: Bool) {
        guard headers.contains(name: "Authorization") else { return }
        headers.removeAll { field in
            guard field.hasName("Authorization") else { return false }
            return Self.hasScheme(field.value, "pomerium ") || (removeBearer && Self.hasScheme(field.value, "bearer "))
        }
    }

    /// Returns whether `value` starts with `scheme` (lowercase, with its trailing space), compared
    /// case-insensitively.
    private static func hasScheme(_ value: String, _ scheme: String) -> Bool {
        let bytes = value.utf8
        guard bytes.count > scheme.utf8.count else { return false }
        return bytes.prefix(scheme.utf8.count).map { $0 | 0x20 }.elementsEqual(scheme.utf8)
    }

    /// Drops the `pomerium_session` pairs from a raw query and keeps the other pairs byte for
    /// byte. Returns nil when nothing remains. Names are compared after form decoding, as the
    /// session loader reads them, so `pomerium%5Fsession` cannot carry the token upstream.
    static func removingSessionParameter(_ query: String) -> String? {
        guard query.contains("pomerium_session") || query.contains("%") else { return query }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).filter { pair in
            let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let decoded = (try? PercentEncoding.decode(String(name), plusAsSpace: true)) ?? String(name)
            return decoded != "pomerium_session"
        }
        let joined = pairs.joined(separator: "&")
        return joined.isEmpty ? nil : joined
    }

    /// Keeps a trusted hop's `X-Forwarded-*` and appends the client to `X-Forwarded-For`. For any
    /// other client, every `X-Forwarded-*`, `Forwarded` and `X-Real-Ip` header (also spelled with
    /// `_`) is replaced by the proxy's own view of the connection.
    private func setForwardingHeaders(_ headers: inout HTTPHeaders, remoteAddress: SocketAddress?, isTLS: Bool) {
        let trusted = service.trustedProxies.trusts(remoteAddress)
        let originalHost = headers.first(name: "Host")
        if !trusted {
            headers.removeFields(whereName: { name in
                Self.hasNormalizedPrefix(name, "x-forwarded-")
                    || (name.count == 9 && Self.hasNormalizedPrefix(name, "forwarded"))
                    || (name.count == 9 && Self.hasNormalizedPrefix(name, "x-real-ip"))
            })
        }
        if let client = remoteAddress?.ipString {
            let previous = headers["X-Forwarded-For"].joined(separator: ", ")
            headers.replaceOrAdd(name: "X-Forwarded-For", value: previous.isEmpty ? client : "\(previous), \(client)")
        }
        if !headers.contains(name: "X-Forwarded-Host"), let originalHost {
            headers.add(name: "X-Forwarded-Host", value: originalHost)
        }
        if !headers.contains(name: "X-Forwarded-Proto") {
            headers.add(name: "X-Forwarded-Proto", value: isTLS ? "https" : "http")
        }
    }
}
