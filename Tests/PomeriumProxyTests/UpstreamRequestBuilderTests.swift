import PomeriumHTTP
import PomeriumNet
import Testing

@testable import PomeriumProxy

@Suite("Upstream request builder name checks")
struct UpstreamRequestBuilderNameTests {
    @Test(
        "product cookies are matched by exact name",
        arguments: [
            ("_pomerium", true), ("_pomerium_1", true), ("_pomerium_12", true), ("_pomerium_csrf", true),
            ("_pomerium_signin", true), ("_pomerium_", false), ("_pomerium_0", false), ("_pomerium_01", false),
            ("_pomerium_1a", false), ("_pomerium_app", false), ("_pomerium_csrfx", false), ("_pomeriumx", false),
            ("_pomeriu", false), ("x_pomerium", false), ("_POMERIUM", false), ("", false),
        ])
    func productCookies(name: String, expected: Bool) {
        #expect(UpstreamRequestBuilder.isProductCookie(name, cookieName: "_pomerium") == expected)
    }

    @Test(
        "a Set-Cookie value names a product cookie by what comes before its first equals sign",
        arguments: [
            ("_pomerium=x; Domain=example.test; Path=/", true), (" \t_pomerium_2 =x", true), ("_pomerium_csrf=", true),
            ("_pomerium_signin=a=b", true), ("_pomerium_app=x", false), ("app=_pomerium", false), ("_pomerium", false),
            ("=_pomerium", false), ("_Pomerium=x", false), ("", false), ("_pomerium x=y", false),
        ])
    func productSetCookies(value: String, expected: Bool) {
        let matched = value.withUTF8Bytes { value in
            "_pomerium".withUTF8Bytes { UpstreamRequestBuilder.setsProductCookie(value, cookieName: $0) }
        }
        #expect(matched == expected)
    }

    @Test("every hop-by-hop name in any letter case, and nothing else")
    func hopByHopNames() {
        for name in HTTPHeaders.hopByHopFieldNames {
            #expect(Self.check(name, UpstreamRequestBuilder.isHopByHopName))
            #expect(Self.check(name.uppercased(), UpstreamRequestBuilder.isHopByHopName))
            #expect(!Self.check(name + "x", UpstreamRequestBuilder.isHopByHopName))
        }
        // Names as long as a hop-by-hop name, which only a byte comparison distinguishes.
        for name in [
            "Host", "Cookie", "Te-", "Upgrades", "Connectio", "X-Connection", "TF", "Tf", "User-Agent", "Keep_Alive",
            "Connectior", "Trailed", "Upgradf", "Proxy_Connection", "Transfer-Encodinf", "Proxy-Authenticatf",
            "Proxy-Authorizatioo",
        ] {
            #expect(!Self.check(name, UpstreamRequestBuilder.isHopByHopName), "\(name)")
        }
    }

    @Test("forwarding names in any letter case and with underscores")
    func forwardingNames() {
        let names = [
            "X-Forwarded-For", "x_forwarded_host", "X-FORWARDED-PROTO", "Forwarded", "X-Real-Ip", "x_real_ip",
            "X-Original-URL", "x_rewrite_url", "True-Client-IP", "X-Client-IP",
        ]
        for name in names {
            #expect(Self.check(name, UpstreamRequestBuilder.isForwardingHeaderName), "\(name)")
        }
        for name in ["X-Forwarded", "Forwarded-For", "X-Real-Ips", "X-Real", "Host", "X-Original-URLs", "X-Client-IPs"]
        {
            #expect(!Self.check(name, UpstreamRequestBuilder.isForwardingHeaderName), "\(name)")
        }
    }

    @Test("one scan of the names finds the kinds of field present")
    func fieldKinds() {
        var kinds = UpstreamRequestBuilder.FieldKinds()
        for name in ["Host", "Accept", "COOKIE", "connection", "X-Pomerium-Claim-Email", "x_forwarded_for"] {
            Self.withBytes(name) { kinds.note($0) }
        }
        #expect(kinds.cookie)
        #expect(kinds.connection)
        #expect(kinds.hopByHop)
        #expect(kinds.identity)
        #expect(kinds.forwarded)
        #expect(!kinds.authorization)
        #expect(!kinds.transferEncoding)
        #expect(!kinds.upgrade)
        var others = UpstreamRequestBuilder.FieldKinds()
        for name in ["Authorization", "Transfer-Encoding", "Upgrade"] {
            Self.withBytes(name) { others.note($0) }
        }
        #expect(others.authorization)
        #expect(others.transferEncoding)
        #expect(others.upgrade)
        #expect(others.hopByHop)
        #expect(!others.cookie)
        #expect(!others.connection)
        #expect(!others.identity)
        #expect(!others.forwarded)
    }

    @Test(
        "client address text is a valid field value",
        arguments: [
            "0.0.0.0:1", "255.255.255.255:65535", "[::1]:80", "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:443",
            "[::ffff:192.0.2.1]:80", "[fe80::1]:8080",
        ])
    func clientAddressText(_ address: String) throws {
        // `X-Forwarded-For` adds this text as validated, without the encoder's check.
        let text = try SocketAddress(parsing: address).ipString
        let allowed = Set("0123456789abcdef.:".utf8)
        #expect(text.utf8.allSatisfy(allowed.contains), "\(text)")
        #expect(FieldValidity.isValue(text))
    }

    @Test("request trailers lose the fields the proxy decides in the head")
    func trailerFields() {
        var trailers = HTTPHeaders([
            ("X-Pomerium-Jwt-Assertion", "forged"), ("x_forwarded_for", "203.0.113.1"), ("TE", "trailers"),
            ("Host", "evil.example.test"), ("content-length", "99"), ("Cookie", "_pomerium=v1.x"),
            ("Authorization", "Pomerium token"), ("X-Tenant", "other"), ("x-tenant", "other"), ("X-Checksum", "abc"),
        ])
        UpstreamRequestBuilder.removeTrustedFields(fromTrailers: &trailers, settingNames: ["X-Tenant"])
        #expect(trailers.map(\.name) == ["X-Checksum"])
        var kept = HTTPHeaders([("X-Tenant", "other")])
        UpstreamRequestBuilder.removeTrustedFields(fromTrailers: &kept)
        #expect(kept.map(\.name) == ["X-Tenant"], "a field no setting names stays")
    }

    static func check(_ name: String, _ predicate: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        withBytes(name, predicate)
    }

    static func withBytes<Result>(_ name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        Array(name.utf8).withUnsafeBufferPointer(body)
    }
}

@Suite("Response header policy")
struct ResponseHeaderPolicyTests {
    @Test("replaces configured fields in any letter case and sets the request id last")
    func apply() {
        let policy = ResponseHeaderPolicy([
            ("X-Frame-Options", "SAMEORIGIN"), ("x-frame-options", "DENY"), ("Request-Id", "configured"),
            ("X-Test", "on"),
        ])
        #expect(policy.fields.map(\.name) == ["X-Frame-Options", "X-Test"])
        #expect(policy.fields.map(\.value) == ["DENY", "on"])
        var headers: HTTPHeaders = ["Content-Type": "text/plain"]
        headers.add(name: "x-frame-options", value: "ALLOW")
        headers.add(name: "REQUEST-ID", value: "upstream")
        headers.add(name: "X-Tests", value: "kept")
        policy.apply(to: &headers, requestID: "id-1")
        #expect(headers.map(\.name) == ["Content-Type", "X-Tests", "X-Frame-Options", "X-Test", "Request-Id"])
        #expect(headers["X-Frame-Options"] == ["DENY"])
        #expect(headers["Request-Id"] == ["id-1"])
    }

    @Test("an empty setting adds only the request id")
    func emptySetting() {
        let policy = ResponseHeaderPolicy([])
        var headers: HTTPHeaders = ["Request-Id": "old", "Server": "up"]
        policy.apply(to: &headers, requestID: "id-2")
        #expect(headers.map(\.name) == ["Server", "Request-Id"])
        #expect(headers["Request-Id"] == ["id-2"])
    }
}

@Suite("Fields named by Connection")
struct ConnectionNamedFieldTests {
    static func names(_ fields: [(String, String)]) -> [String] {
        var headers = HTTPHeaders()
        for (name, value) in fields { headers.add(name: name, value: value) }
        return UpstreamRequestBuilder.connectionNamedFields(headers).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("elements are trimmed, lowercased and without the fixed hop-by-hop names")
    func oneField() {
        #expect(Self.names([("Connection", " X-Secret ,\tkeep-alive,, Upgrade ,Cookie")]) == ["x-secret", "cookie"])
        #expect(Self.names([("Connection", "keep-alive")]).isEmpty)
        #expect(Self.names([("Connection", "")]).isEmpty)
        #expect(Self.names([("Host", "a")]).isEmpty)
    }

    @Test("every Connection field counts")
    func repeatedFields() {
        #expect(Self.names([("Connection", "a"), ("Host", "h"), ("connection", "B, close")]) == ["a", "b", "close"])
    }
}

@Suite("Upstream target shortcuts")
struct UpstreamTargetShortcutTests {
    @Test("joined path matches joinPaths")
    func joinedPath() {
        for base in ["", "/", "/api", "/api/", "//"] {
            for path in ["/", "/x", "/x/", "x", "", "//x"] {
                #expect(
                    UpstreamRequestBuilder.joinedPath(base: base, path) == UpstreamTarget.joinPaths(base, path),
                    "base \(base), path \(path)")
            }
        }
    }

    @Test("merged query matches mergeQueries")
    func mergedQuery() {
        let values: [String?] = [nil, "", "a=1", "b=2&c"]
        for base in values {
            for query in values {
                #expect(
                    UpstreamRequestBuilder.mergedQuery(base: base, query) == UpstreamTarget.mergeQueries(base, query),
                    "base \(base ?? "nil"), query \(query ?? "nil")")
            }
        }
    }
}
