import PomeriumCore
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
        keepUpgrade: Bool = true,
        applySetHeaders: Bool,
        removeBearer: Bool = false,
        cookies: [HTTPCookie]? = nil,
        keptCookieHeader knownKeptCookieHeader: String?? = nil,
        remoteAddress: SocketAddress?,
        clientAddress: String? = nil,
        isTLS: Bool
    ) throws -> HTTPRequestHead {
        var headers = HTTPHeaders()
        return try build(
            incoming: incoming, path: path, route: route, session: session, keepUpgrade: keepUpgrade,
            applySetHeaders: applySetHeaders, removeBearer: removeBearer, cookies: cookies,
            keptCookieHeader: knownKeptCookieHeader, remoteAddress: remoteAddress, clientAddress: clientAddress,
            isTLS: isTLS, buildingFieldsIn: &headers)
    }

    /// Builds the upstream request like `build`, writing the fields into `headers`. Their storage
    /// is reused when no other list references it, so a handler that keeps the fields of its last
    /// upstream head builds the next one without allocating. `facts` are `session`'s, derived
    /// here when the caller passes none.
    func build(
        incoming: HTTPRequestHead,
        path: String,
        route: UpstreamRoute,
        session: SessionState?,
        facts: SessionFacts? = nil,
        keepUpgrade: Bool = true,
        applySetHeaders: Bool,
        removeBearer: Bool = false,
        cookies: [HTTPCookie]? = nil,
        keptCookieHeader knownKeptCookieHeader: String?? = nil,
        remoteAddress: SocketAddress?,
        clientAddress: String? = nil,
        isTLS: Bool,
        buildingFieldsIn headers: inout HTTPHeaders
    ) throws -> HTTPRequestHead {
        var identity: IdentityHeaders?
        if let session {
            // The id is read only when the session's memo has no headers for this route.
            identity = try service.shared.signer.identityHeaders(
                for: session, sessionID: session.hasAccessTokenID ? session.accessTokenID : session.subject,
                route: route.id,
                claimHeaders: service.claimHeaders.isEmpty ? nil : service.claimHeaders,
                memo: (facts ?? session.derived(SessionFacts.init)).identityHeaders)
        }
        let source = incoming.headers
        // One pass over the names finds the fields that need work. Most requests have none of
        // them, so the later steps for those fields are skipped.
        var present = FieldKinds()
        source.forEachName { present.note($0) }
        let chunkedBody = present.transferEncoding && source.containsToken("chunked", name: "Transfer-Encoding")
        let mayUpgrade = present.upgrade && (present.connection || incoming.method == .connect)
        let upgrade =
            keepUpgrade && mayUpgrade && incoming.isUpgradeRequest ? source.firstValue(name: "Upgrade") : nil
        let connectionNamed = present.connection ? Self.connectionNamedFields(source) : []
        let trusted = service.trustedProxies.trusts(remoteAddress)
        // A `Cookie` field that `Connection` names goes with the other hop-by-hop fields.
        let cookieIsHopByHop = !connectionNamed.isEmpty && connectionNamed.contains(Self.cookieName)
        let rewrittenCookie =
            present.cookie && !cookieIsHopByHop
            ? (knownKeptCookieHeader ?? keptCookieHeader(source, parsed: cookies)) : nil
        let removeForwarded = present.forwarded && !trusted
        // The copy of the client's fields gets room for the fields added below, so it is made
        // once and the added bytes do not regrow it.
        let addedFields = 8 + route.setRequestHeaders.count + (identity?.fields.count ?? 0)
        let addedBytes =
            256 + route.hostHeader.utf8.count + route.setRequestHeadersByteCount + (identity?.fields.byteCount ?? 0)
        if present.hopByHop || present.identity || removeForwarded || rewrittenCookie != nil || !connectionNamed.isEmpty
        {
            // The copy leaves out the removed fields, in the same pass that copies the kept ones.
            let removeCookie = rewrittenCookie != nil
            headers.replaceFields(withFieldsOf: source, reservingFields: addedFields, bytes: addedBytes) { name in
                if Self.isHopByHopName(name) || Self.isIdentityHeaderName(name) { return false }
                if removeForwarded && Self.isForwardingHeaderName(name) { return false }
                // A constant string, not `cookieName`: reading that global cost a `swift_once` per field.
                if removeCookie && Self.equalsLowercase(name, "cookie") { return false }
                for candidate in connectionNamed where HTTPFieldName.matches(name, lowercase: candidate) {
                    return false
                }
                return true
            }
        } else {
            // Every field is kept. Copying them into `headers` reuses its storage, where editing a
            // copy of the client's list would copy it.
            headers.replaceFields(withFieldsOf: source, reservingFields: addedFields, bytes: addedBytes) { _ in true }
        }
        // Fields added with `validatedName` have constant names and values the code built from
        // checked bytes or checked once per configuration, so the encoder skips them.
        if chunkedBody { headers.add(validatedName: "Transfer-Encoding", value: "chunked") }
        if let upgrade {
            headers.add(validatedName: "Connection", value: "Upgrade")
            Self.add(&headers, name: "Upgrade", value: upgrade.value, isValidated: upgrade.isValidated)
        }
        if let rewrittenCookie, !rewrittenCookie.isEmpty { headers.add(name: "Cookie", value: rewrittenCookie) }
        if present.authorization { removeProductAuthorization(&headers, removeBearer: removeBearer) }
        setForwardingHeaders(
            &headers, trusted: trusted, client: clientAddress ?? remoteAddress?.ipString, isTLS: isTLS)
        if !route.preserveHostHeader {
            if route.fieldsAreValid {
                headers.replaceOrAdd(validatedName: "Host", value: route.hostHeader)
            } else {
                headers.replaceOrAdd(name: "Host", value: route.hostHeader)
            }
        }
        if applySetHeaders {
            for header in route.setRequestHeaders {
                if route.fieldsAreValid {
                    headers.replaceOrAdd(validatedName: header.name, value: header.value)
                } else {
                    headers.replaceOrAdd(name: header.name, value: header.value)
                }
            }
        }
        // Moved out of the optional, which nothing reads afterwards: unwrapping a copy retained and
        // released the headers object.
        if let identity = consume identity {
            // The assertion and claim headers come last, so no client header or setting overrides
            // them. The client's identity headers went above; a setting may have added one back.
            if applySetHeaders && route.setsIdentityHeader { Self.removeIdentityHeaders(&headers) }
            // The assertion, then the claim headers, checked once when the signer built them.
            headers.append(identity)
        }
        let query = incoming.query.flatMap(Self.removingSessionParameter)
        let joinedPath = Self.joinedPath(base: route.to.path, path)
        let joinedQuery = Self.mergedQuery(base: route.to.query, query)
        // A normalised path and a parsed query are valid already. A byte loop checks them anyway
        // instead of trusting the callers, and a target that fails goes through the parser.
        if FieldValidity.isOriginPath(joinedPath) && (joinedQuery.map(FieldValidity.isQuery) ?? true) {
            // Most routes forward the client's origin-form path and query unchanged. The upstream
            // head then shares the client's target instead of allocating another: about 290
            // instructions and an allocation fewer per request.
            if case .origin(let incomingPath, let incomingQuery) = incoming.targetForm, incomingPath == joinedPath,
                incomingQuery == joinedQuery
            {
                return incoming.forwarding(version: .http1_1, headers: headers)
            }
            return HTTPRequestHead(
                method: incoming.method, validatedPath: joinedPath, query: joinedQuery, version: .http1_1,
                headers: headers)
        }
        let target = joinedQuery.map { joinedPath + "?" + $0 } ?? joinedPath
        return try HTTPRequestHead(method: incoming.method, target: target, version: .http1_1, headers: headers)
    }

    /// Returns `UpstreamTarget.joinPaths(base, path)`. Most routes' `to` URL has the path "" or
    /// "/", which joins a path that starts with "/" to itself, so that path is returned as it is:
    /// building the joined string measured about 400 instructions per request.
    static func joinedPath(base: String, _ path: String) -> String {
        let baseBytes = base.utf8
        if baseBytes.isEmpty || (baseBytes.count == 1 && baseBytes.first == UInt8(ascii: "/")),
            path.utf8.first == UInt8(ascii: "/")
        {
            return path
        }
        return UpstreamTarget.joinPaths(base, path)
    }

    /// Returns `UpstreamTarget.mergeQueries(base, query)`, without building a string when the
    /// route's `to` URL has no query, as most do.
    static func mergedQuery(base: String?, _ query: String?) -> String? {
        guard let base, !base.isEmpty else { return query?.isEmpty == false ? query : nil }
        return UpstreamTarget.mergeQueries(base, query)
    }

    /// Adds a field whose name is a constant token, as validated when `isValidated` is true: its value
    /// was checked (a parsed field, or a value the proxy built).
    private static func add(_ headers: inout HTTPHeaders, name: String, value: String, isValidated: Bool) {
        if isValidated {
            headers.add(validatedName: name, value: value)
        } else {
            headers.add(name: name, value: value)
        }
    }

    /// The kinds of field a request has, found from its field names alone.
    struct FieldKinds {
        var hopByHop = false
        var connection = false
        var transferEncoding = false
        var upgrade = false
        var identity = false
        var forwarded = false
        var cookie = false
        var authorization = false

        mutating func note(_ name: UnsafeBufferPointer<UInt8>) {
            if UpstreamRequestBuilder.isHopByHopName(name) {
                hopByHop = true
                switch name.count {
                case 10: connection = connection || UpstreamRequestBuilder.equalsLowercase(name, "connection")
                case 17:
                    transferEncoding =
                        transferEncoding || UpstreamRequestBuilder.equalsLowercase(name, "transfer-encoding")
                case 7: upgrade = upgrade || UpstreamRequestBuilder.equalsLowercase(name, "upgrade")
                default: break
                }
                return
            }
            switch name.count {
            case 6: cookie = cookie || UpstreamRequestBuilder.equalsLowercase(name, "cookie")
            case 13: authorization = authorization || UpstreamRequestBuilder.equalsLowercase(name, "authorization")
            default: break
            }
            identity = identity || UpstreamRequestBuilder.isIdentityHeaderName(name)
            forwarded = forwarded || UpstreamRequestBuilder.isForwardingHeaderName(name)
        }
    }

    static let cookieName = Array("cookie".utf8)

    /// Returns the lowercase names that the `Connection` fields list, which are hop-by-hop too
    /// (RFC 9110 section 7.6.1), leaving out names of the fixed hop-by-hop list.
    static func connectionNamedFields(_ headers: HTTPHeaders) -> [[UInt8]] {
        // The values are read as bytes in place, without the token list `tokens(name:)` builds.
        var names: [[UInt8]] = []
        headers.forEachValueBytes(name: "Connection") { appendConnectionNames(of: $0, to: &names) }
        return names
    }

    /// Appends the names one `Connection` value lists, leaving out names of the fixed hop-by-hop list
    /// and `Host` and `Content-Length`. Removing those two would forward a request without the Host
    /// that RFC 9112 section 3.2 requires (a virtual-host upstream then serves its default site),
    /// or send the head without the body the client sent with it.
    static func appendConnectionNames(of bytes: UnsafeBufferPointer<UInt8>, to names: inout [[UInt8]]) {
        // The comma-separated elements, trimmed of spaces and tabs, empty ones skipped
        // (RFC 9110 section 5.6.1), lowercased.
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var lower = start
            var upper = end
            while lower < upper, bytes[lower] == 0x20 || bytes[lower] == 0x09 { lower += 1 }
            while upper > lower, bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09 { upper -= 1 }
            let element = UnsafeBufferPointer(rebasing: bytes[lower..<upper])
            if !element.isEmpty && !isHopByHopName(element) && !equalsLowercase(element, "host")
                && !equalsLowercase(element, "content-length")
            {
                names.append(element.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
            }
            start = end + 1
        }
    }

    /// Returns whether `name` is one of `HTTPHeaders.hopByHopFieldNames`, compared case-insensitively.
    /// The names are spelled out by length: this runs for every field of every request and response,
    /// and looping over the list measured over a thousand instructions per request.
    static func isHopByHopName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        switch name.count {
        case 2: return equalsLowercase(name, "te")
        case 7: return equalsLowercase(name, "trailer") || equalsLowercase(name, "upgrade")
        case 10: return equalsLowercase(name, "connection") || equalsLowercase(name, "keep-alive")
        case 16: return equalsLowercase(name, "proxy-connection")
        case 17: return equalsLowercase(name, "transfer-encoding")
        case 18: return equalsLowercase(name, "proxy-authenticate")
        case 19: return equalsLowercase(name, "proxy-authorization")
        default: return false
        }
    }

    /// Returns whether `name`, with ASCII letters lowercased, is exactly `lowercase`.
    @inline(__always)
    static func equalsLowercase(_ name: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<name.count {
            let byte = name[index]
            if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != expected[index] { return false }
        }
        return true
    }

    /// Returns whether `name` is `X-Forwarded-*`, `Forwarded`, `X-Real-Ip`, `X-Client-IP`,
    /// `True-Client-IP`, `X-Original-URL` or `X-Rewrite-URL`, in any letter case and with `_` for
    /// `-`. Only a trusted hop may send these fields.
    static func isForwardingHeaderName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        if hasNormalizedPrefix(name, "x-forwarded-") { return true }
        switch name.count {
        case 9: return hasNormalizedPrefix(name, "forwarded") || hasNormalizedPrefix(name, "x-real-ip")
        case 11: return hasNormalizedPrefix(name, "x-client-ip")
        // `X-Original-URL` and `X-Rewrite-URL` replace the request path in frameworks that honour
        // them (Symfony, IIS URL Rewrite), so a client's copy could reach a path other than the
        // one authorized.
        case 13: return hasNormalizedPrefix(name, "x-rewrite-url")
        case 14: return hasNormalizedPrefix(name, "x-original-url") || hasNormalizedPrefix(name, "true-client-ip")
        default: return false
        }
    }

    /// Removes every copy of the identity headers: `X-Pomerium-Jwt-Assertion`, `X-Pomerium-Claim-*`
    /// and v0.6's `X-Pomerium-Authenticated-User-*`, in any letter case and with `_` for `-`,
    /// because some servers treat the two as the same header.
    static func removeIdentityHeaders(_ headers: inout HTTPHeaders) {
        // Name bytes in place: building each field's strings measured thousands of instructions
        // per request, and this runs three times per proxied request.
        headers.removeFields(whereName: isIdentityHeaderName)
    }

    /// Removes the request trailer fields an upstream could take for the proxy's own: identity,
    /// forwarding and hop-by-hop fields, `Host`, `Content-Length`, `Cookie`, `Authorization`, and
    /// the names the route's `set_request_headers` sets (`settingNames`). Servers that merge
    /// trailers into the header section would otherwise see an identity, a client address, a
    /// credential or a setting's value that the client wrote.
    static func removeTrustedFields(fromTrailers trailers: inout HTTPHeaders, settingNames: [String] = []) {
        guard !trailers.isEmpty else { return }
        trailers.removeFields(whereName: { name in
            if isIdentityHeaderName(name) || isForwardingHeaderName(name) || isHopByHopName(name) { return true }
            if equalsLowercase(name, "host") || equalsLowercase(name, "content-length")
                || equalsLowercase(name, "cookie") || equalsLowercase(name, "authorization")
            {
                return true
            }
            // Setting names are tokens, so `lowercased()` changes only ASCII letters.
            return settingNames.contains { HTTPFieldName.matches(name, lowercase: Array($0.lowercased().utf8)) }
        })
    }

    static func isIdentityHeaderName(_ name: String) -> Bool {
        name.withUTF8Bytes { isIdentityHeaderName($0) }
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

    /// The `Cookie` value the upstream gets when the request carries a product cookie: the
    /// request's other cookies, or "" when none remain. Nil when no product cookie is present, so
    /// the header stays as it is. Product cookies are the session cookie, its chunks `<name>_1`,
    /// `<name>_2`, ..., the CSRF cookie `<name>_csrf` and the sign-in cookie `<name>_signin`,
    /// matched by exact name. Other cookies, such as `<name>_app`, stay.
    /// `parsed` is the request's cookies when the caller has parsed them already.
    private func keptCookieHeader(_ headers: HTTPHeaders, parsed: [HTTPCookie]?) -> String? {
        Self.keptCookieHeader(parsed ?? CookieParser.parse(headers: headers), cookieName: service.options.cookieName)
    }

    /// Returns the `Cookie` value the upstream gets for a request with `cookies`, as
    /// `keptCookieHeader` describes.
    static func keptCookieHeader(_ cookies: [HTTPCookie], cookieName name: String) -> String? {
        guard cookies.contains(where: { isProductCookie($0.name, cookieName: name) }) else { return nil }
        let kept = cookies.filter { !isProductCookie($0.name, cookieName: name) }
        return kept.isEmpty ? "" : CookieParser.headerValue(kept)
    }

    /// Returns whether `candidate` names a product cookie of `cookieName`, compared byte for byte
    /// without building strings.
    static func isProductCookie(_ candidate: String, cookieName: String) -> Bool {
        candidate.withUTF8Bytes { name in cookieName.withUTF8Bytes { isProductCookie(name, cookieName: $0) } }
    }

    static func isProductCookie(_ name: UnsafeBufferPointer<UInt8>, cookieName: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count >= cookieName.count else { return false }
        for index in 0..<cookieName.count where name[index] != cookieName[index] { return false }
        if name.count == cookieName.count { return true }
        guard name[cookieName.count] == UInt8(ascii: "_") else { return false }
        let suffix = UnsafeBufferPointer(rebasing: name[(cookieName.count + 1)...])
        if suffix.elementsEqual("csrf".utf8) || suffix.elementsEqual("signin".utf8) { return true }
        guard let first = suffix.first, first != UInt8(ascii: "0") else { return false }
        return suffix.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Returns whether a `Set-Cookie` value sets a product cookie of `cookieName`. Browsers take
    /// the cookie's name from before the first `=` and trim spaces and tabs. A value without `=`
    /// sets a cookie with an empty name.
    static func setsProductCookie(_ value: UnsafeBufferPointer<UInt8>, cookieName: UnsafeBufferPointer<UInt8>) -> Bool {
        guard var end = value.firstIndex(of: UInt8(ascii: "=")) else { return false }
        var start = 0
        while start < end, value[start] == UInt8(ascii: " ") || value[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, value[end - 1] == UInt8(ascii: " ") || value[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return isProductCookie(UnsafeBufferPointer(rebasing: value[start..<end]), cookieName: cookieName)
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

    /// `X-Forwarded-Proto` for each scheme, encoded once.
    private static let forwardedHTTP = HTTPHeaders.FieldBlock([("X-Forwarded-Proto", "http")])
    private static let forwardedHTTPS = HTTPHeaders.FieldBlock([("X-Forwarded-Proto", "https")])

    /// Keeps a trusted hop's `X-Forwarded-*` and appends the client to `X-Forwarded-For`. For any
    /// other client, every `X-Forwarded-*`, `Forwarded` and `X-Real-Ip` header (also spelled with
    /// `_`) is already gone, and the proxy's own view of the connection replaces them.
    /// `client` is the peer's address as `SocketAddress.ipString` writes it.
    private func setForwardingHeaders(_ headers: inout HTTPHeaders, trusted: Bool, client: String?, isTLS: Bool) {
        // `client` contains only the digits, hex letters, dots and colons of an IP address, so it
        // is added as validated without a check per request (which measured 164 instructions).
        // A parsed `Host` is valid already, and its copy keeps its check.
        guard trusted else {
            if let client { headers.add(validatedName: "X-Forwarded-For", value: client) }
            headers.add(validatedName: "X-Forwarded-Host", valueOfFirstFieldNamed: "Host")
            // Each branch passes its constant as it is: the conditional expression copied the chosen
            // block, which retained and released both of its arrays.
            if isTLS {
                headers.append(Self.forwardedHTTPS)
            } else {
                headers.append(Self.forwardedHTTP)
            }
            return
        }
        let originalHost = headers.firstValue(name: "Host")
        if let client {
            let previous = headers["X-Forwarded-For"].joined(separator: ", ")
            headers.replaceOrAdd(name: "X-Forwarded-For", value: previous.isEmpty ? client : "\(previous), \(client)")
        }
        if !headers.contains(name: "X-Forwarded-Host"), let originalHost {
            Self.add(
                &headers, name: "X-Forwarded-Host", value: originalHost.value, isValidated: originalHost.isValidated)
        }
        if !headers.contains(name: "X-Forwarded-Proto") {
            headers.add(validatedName: "X-Forwarded-Proto", value: isTLS ? "https" : "http")
        }
    }
}
