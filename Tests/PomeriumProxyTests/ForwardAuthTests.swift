import Foundation
import PomeriumCrypto
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Forward-auth target")
struct ForwardAuthTargetTests {
    @Test("raw uri keeps the target's whole query")
    func rawURI() throws {
        let target = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https://app.example.test/a?b=1&c=2", headers: [:], trustsForwardedHeaders: false)
        #expect(target.description == "https://app.example.test/a?b=1&c=2")
    }

    @Test("encoded uri is decoded exactly once")
    func encodedURI() throws {
        let target = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https%3A%2F%2Fapp.example.test%2Fa%3Fb%3D1%26c%3D2&auth_status=200", headers: [:],
            trustsForwardedHeaders: false)
        #expect(target.description == "https://app.example.test/a?b=1&c=2")
        let doubly = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https%3A%2F%2Fapp.example.test%2Fa%3Fq%3D%2525", headers: [:], trustsForwardedHeaders: false)
        #expect(doubly.query == "q=%25", "a percent-encoded value inside the target stays encoded")
    }

    @Test("parameters before a raw uri are read")
    func parametersBeforeRawURI() {
        let split = ForwardAuthTarget.split(rawQuery: "auth_status=403&uri=https://app.example.test/?auth_status=200")
        #expect(split.others.value(for: "auth_status") == "403")
        #expect(split.uri == "https://app.example.test/?auth_status=200")
    }

    @Test(
        "invalid targets are rejected",
        arguments: [
            "uri=", "uri=app.example.test/a", "uri=ftp://app.example.test/", "uri=https://user@app.example.test/",
            "uri=https://app.example.test/%zz", "uri=https://", "other=1", "uri=https%3A%2F%2Fbad%20host%2F",
        ])
    func invalidTargets(query: String) {
        #expect(throws: ForwardAuthTarget.Failure.self) {
            try ForwardAuthTarget.resolve(rawQuery: query, headers: [:], trustsForwardedHeaders: false)
        }
    }

    @Test("forwarded headers count only from a trusted peer")
    func forwardedHeaders() throws {
        let headers: HTTPHeaders = [
            "X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example.test:8080", "X-Forwarded-Uri": "/a?b=1&c=2",
        ]
        let trusted = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https://app.example.test/", headers: headers, trustsForwardedHeaders: true)
        #expect(trusted.description == "http://app.example.test:8080/a?b=1&c=2")
        let untrusted = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https://app.example.test/", headers: headers, trustsForwardedHeaders: false)
        #expect(untrusted.description == "https://app.example.test/")
        #expect(throws: ForwardAuthTarget.Failure.self) {
            try ForwardAuthTarget.resolve(rawQuery: nil, headers: headers, trustsForwardedHeaders: false)
        }
        let hostFromURI = try ForwardAuthTarget.resolve(
            rawQuery: "uri=https://app.example.test", headers: ["X-Forwarded-Uri": "/x"], trustsForwardedHeaders: true)
        #expect(hostFromURI.description == "https://app.example.test/x")
    }

    @Test("audience matches host names on any port")
    func audienceHostNames() {
        #expect(ForwardAuthHandler.audience(["app.example.test:8443"], namesHostOf: "app.example.test:9443"))
        #expect(ForwardAuthHandler.audience(["app.example.test"], namesHostOf: "app.example.test:9443"))
        #expect(!ForwardAuthHandler.audience(["app.example.test.evil"], namesHostOf: "app.example.test"))
        #expect(!ForwardAuthHandler.audience(["other.example.test"], namesHostOf: "app.example.test"))
        #expect(ForwardAuthHandler.audience(["[::1]:8443"], namesHostOf: "[::1]:9443"))
        #expect(!ForwardAuthHandler.audience(["[::2]"], namesHostOf: "[::1]"))
    }
}

@Suite("Forward-auth endpoints")
struct ForwardAuthEndpointTests {
    static let forwardHost = "fwdauth.example.test"
    static let config = """
        forward_auth_url: https://fwdauth.example.test
        jwt_claims_headers: [email, groups]
        policy:
          - from: https://app.example.test
            to: http://127.0.0.1:9
            allowed_users: [alice@corp.test]
          - from: https://app.example.test:9443
            to: http://127.0.0.1:9
            allowed_users: [alice@corp.test]
          - from: https://public.example.test
            to: http://127.0.0.1:9
            allow_public_unauthenticated_access: true
        """

    static func verify(
        _ proxy: ProxyHarness, _ target: String, cookie: String? = nil, path: String = "/verify",
        headers: [(String, String)] = []
    ) async throws -> ProxyTestResponse {
        var fields = headers
        if let cookie { fields.append(("Cookie", cookie)) }
        return try await proxy.request(host: forwardHost, path: "\(path)?uri=\(target)", headers: fields)
    }

    /// The signed callback URL the authenticate service sends the browser to after sign-in.
    static func callbackURL(
        _ proxy: ProxyHarness, token: String, redirect: String, origin: String, boundTo cookieValue: String? = nil
    ) throws -> String {
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: redirect)
        query.append(name: "pomerium_session_encrypted", value: try proxy.callbackCodec.seal(routeToken: token))
        if let cookieValue {
            query.append(name: SignInBinding.parameter, value: try SignInBinding.binding(for: cookieValue))
        }
        let url = try HTTPURL(parsing: "\(origin)/.pomerium/callback/?" + query.encoded)
        return try proxy.urlSigner.sign(url).description
    }

    static func claims(of assertion: String, _ proxy: ProxyHarness) throws -> JSONObject {
        let verifier = JWSVerifier(publicKey: .ec(proxy.signer.publicKey), allowedAlgorithms: [.es256])
        return try JSONParser.parseObject(try verifier.verify(compact: Array(assertion.utf8)).payload)
    }

    @Test("verify answers 401, 200 with identity, or 403")
    func verifyStatuses() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let target = "https://app.example.test/a?b=1&c=2"
            let anonymous = try await Self.verify(proxy, target)
            #expect(anonymous.status == 401)
            #expect(anonymous.location == nil)

            let alice = proxy.session("alice@corp.test", groups: ["devs", "ops"], audience: ["app.example.test"])
            let allowed = try await Self.verify(proxy, target, cookie: try proxy.cookieHeader(alice))
            #expect(allowed.status == 200)
            #expect(allowed.text == "Access to app.example.test is allowed.")
            #expect(allowed.headers.first(name: "X-Pomerium-Claim-Email") == "alice@corp.test")
            #expect(allowed.headers.first(name: "X-Pomerium-Claim-Groups") == "devs,ops")
            let assertion = try #require(allowed.headers.first(name: "X-Pomerium-Jwt-Assertion"))
            let claims = try Self.claims(of: assertion, proxy)
            #expect(claims["email"]?.stringValue == "alice@corp.test")

            let bob = proxy.session("bob@corp.test", audience: ["app.example.test"])
            let denied = try await Self.verify(proxy, target, cookie: try proxy.cookieHeader(bob))
            #expect(denied.status == 403)
            #expect(denied.location == nil)

            let withStatus = try await proxy.request(
                host: Self.forwardHost, path: "/verify?auth_status=403&uri=\(target)",
                headers: [("Cookie", try proxy.cookieHeader(alice))])
            #expect(withStatus.status == 403)

            let publicRoute = try await Self.verify(proxy, "https://public.example.test/")
            #expect(publicRoute.status == 200)
            #expect(publicRoute.headers.first(name: "X-Pomerium-Jwt-Assertion") == nil)
        }
    }

    @Test("invalid or unknown targets never pass")
    func invalidTargets() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let alice = try proxy.cookieHeader(proxy.session("alice@corp.test", audience: ["app.example.test"]))
            for path in ["/verify", "/"] {
                let unparseable = try await Self.verify(proxy, "app.example.test/a", cookie: alice, path: path)
                #expect(unparseable.status == 400)
                let missing = try await proxy.request(host: Self.forwardHost, path: path + "?uri=")
                #expect(missing.status == 400)
            }
            let unknownVerify = try await Self.verify(proxy, "https://unknown.example.test/", cookie: alice)
            #expect(unknownVerify.status == 403)
            let unknownSignIn = try await Self.verify(proxy, "https://unknown.example.test/", cookie: alice, path: "/")
            #expect(unknownSignIn.status == 404)
        }
    }

    @Test("sign-in redirect returns to the exact target")
    func signInRedirect() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let response = try await Self.verify(proxy, "https://app.example.test/a?b=1&c=2", path: "/")
            #expect(response.status == 302)
            let location = try #require(response.location)
            #expect(location.hasPrefix("https://authn.example.test/.pomerium/sign_in?"))
            let query = try ProxyHarness.query(of: location)
            #expect(query.value(for: "pomerium_redirect_uri") == "https://app.example.test/a?b=1&c=2")
            #expect(query.value(for: "pomerium_callback_uri") == "https://app.example.test/.pomerium/callback/")
            #expect(query.value(for: "pomerium_forward_auth") == "fwdauth.example.test")
            try proxy.urlSigner.validate(try HTTPURL(parsing: location))

            let encoded = try await proxy.request(
                host: Self.forwardHost, path: "/?uri=https%3A%2F%2Fapp.example.test%2Fa%3Fb%3D1%26c%3D2")
            let encodedQuery = try ProxyHarness.query(of: try #require(encoded.location))
            #expect(encodedQuery.value(for: "pomerium_redirect_uri") == "https://app.example.test/a?b=1&c=2")

            let script = try await Self.verify(
                proxy, "https://app.example.test/", path: "/", headers: [("X-Requested-With", "XMLHttpRequest")])
            #expect(script.status == 401)
        }
    }

    @Test("callback through verify and sign-in stores the session")
    func callback() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let session = proxy.session("alice@corp.test", audience: ["app.example.test", Self.forwardHost])
            let callback = try Self.callbackURL(
                proxy, token: try proxy.token(session), redirect: "https://app.example.test/a?b=1&c=2",
                origin: "https://app.example.test")

            let throughVerify = try await Self.verify(proxy, callback)
            #expect(throughVerify.status == 401)
            let stored = throughVerify.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair)
            #expect(stored.count == 1)
            let after = try await Self.verify(
                proxy, "https://app.example.test/a?b=1&c=2", cookie: stored.joined(separator: "; "))
            #expect(after.status == 200)

            let throughSignIn = try await Self.verify(proxy, callback, path: "/")
            #expect(throughSignIn.status == 302)
            #expect(throughSignIn.location == "https://app.example.test/a?b=1&c=2")
            #expect(throughSignIn.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair).count == 1)

            let encoded = try await proxy.request(
                host: Self.forwardHost, path: "/?uri=" + URLQuery([("u", callback)]).encoded.dropFirst(2))
            #expect(encoded.status == 302)
            #expect(encoded.location == "https://app.example.test/a?b=1&c=2")
        }
    }

    @Test("a bound callback needs the browser's sign-in cookie for the route host")
    func boundCallback() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let session = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let value = "\(proxy.clock.unixSeconds()).routeHostNonce" + String(repeating: "A", count: 18)
            let callback = try Self.callbackURL(
                proxy, token: try proxy.token(session), redirect: "https://app.example.test/a",
                origin: "https://app.example.test", boundTo: value)
            for cookie in [nil, "_pomerium_signin=\(proxy.clock.unixSeconds()).another-browser"] {
                let refused = try await Self.verify(proxy, callback, cookie: cookie, path: "/")
                #expect(refused.status == 400)
                #expect(refused.headers["Set-Cookie"].isEmpty)
            }
            let accepted = try await Self.verify(proxy, callback, cookie: "_pomerium_signin=\(value)", path: "/")
            #expect(accepted.status == 302)
            #expect(
                accepted.headers["Set-Cookie"].first?.hasPrefix("_pomerium=v1") == true, "nginx passes only the first")
            #expect(accepted.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium_signin=;") })

            // Another tab's pending sign-in stays in the cookie.
            let otherTab = "\(proxy.clock.unixSeconds()).otherTab" + String(repeating: "B", count: 24)
            let withOtherTab = try await Self.verify(
                proxy, callback, cookie: "_pomerium_signin=\(otherTab)~\(value)", path: "/")
            #expect(withOtherTab.status == 302)
            let signIn = withOtherTab.headers["Set-Cookie"].first { $0.hasPrefix("_pomerium_signin=") }
            #expect(signIn.flatMap(ProxyHarness.cookiePair) == "_pomerium_signin=\(otherTab)")
        }
    }

    @Test("callback signature is checked")
    func callbackSignature() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let token = try proxy.token(proxy.session("alice@corp.test", audience: ["app.example.test"]))
            let valid = try Self.callbackURL(
                proxy, token: token, redirect: "https://app.example.test/", origin: "https://app.example.test")
            let tampered = valid.replacingOccurrences(of: "pomerium_redirect_uri=", with: "pomerium_redirect_uri=x")
            let unsigned = try HTTPURL(parsing: valid)
            var stripped = URLQuery(parsingLeniently: unsigned.query ?? "")
            stripped.remove(name: URLSigner.signatureParameter)
            let withoutSignature = "https://app.example.test/.pomerium/callback/?" + stripped.encoded
            let otherHost = try Self.callbackURL(
                proxy, token: token, redirect: "https://app.example.test/", origin: "https://app.example.test:9443")
            let foreignRedirect = try Self.callbackURL(
                proxy, token: token, redirect: "https://public.example.test/", origin: "https://app.example.test")
            for bad in [tampered, withoutSignature, otherHost, foreignRedirect] {
                let verify = try await Self.verify(proxy, bad)
                #expect(verify.status == 401, "\(bad)")
                #expect(verify.headers["Set-Cookie"].isEmpty)
                let signIn = try await Self.verify(proxy, bad, path: "/")
                #expect(signIn.status == 400, "\(bad)")
                #expect(signIn.headers["Set-Cookie"].isEmpty)
            }
            proxy.clock.advance(by: 400)
            let expired = try await Self.verify(proxy, valid, path: "/")
            #expect(expired.status == 400)
        }
    }

    @Test("cross-port session obeys the target route")
    func crossPortSession() async throws {
        try await ProxyHarness.run(config: Self.config, forwardAuth: true) { proxy in
            let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
            let response = try await Self.verify(
                proxy, "https://app.example.test:9443/x", cookie: try proxy.cookieHeader(alice))
            #expect(response.status == 200)
            let claims = try Self.claims(
                of: try #require(response.headers.first(name: "X-Pomerium-Jwt-Assertion")), proxy)
            let audience = claims["aud"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(audience.contains("app.example.test:9443"))

            let bob = proxy.session("bob@corp.test", audience: ["app.example.test"])
            let denied = try await Self.verify(
                proxy, "https://app.example.test:9443/x", cookie: try proxy.cookieHeader(bob))
            #expect(denied.status == 403)

            let elsewhere = proxy.session("alice@corp.test", audience: ["other.example.test"])
            let foreign = try await Self.verify(
                proxy, "https://app.example.test/", cookie: try proxy.cookieHeader(elsewhere))
            #expect(foreign.status == 401)
        }
    }

    @Test("failed refresh answers once, without the allowed text")
    func failedRefresh() async throws {
        let refresher = RecordingRefresher.failing()
        try await ProxyHarness.run(config: Self.config, refresher: refresher, forwardAuth: true) { proxy in
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
            let cookie = try proxy.cookieHeader(expired)
            let signIn = try await Self.verify(proxy, "https://app.example.test/a", cookie: cookie, path: "/")
            #expect(signIn.status == 302)
            #expect(signIn.location?.hasPrefix("https://authn.example.test/.pomerium/sign_in?") == true)
            #expect(!signIn.text.contains("allowed"))
            #expect(signIn.body.isEmpty)
            #expect(signIn.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })

            let verify = try await Self.verify(proxy, "https://app.example.test/a", cookie: cookie)
            #expect(verify.status == 401)
            #expect(!verify.text.contains("is allowed"))
            #expect(refresher.recorded.count == 2)
        }
    }

    @Test("expired session is refreshed and stored")
    func successfulRefresh() async throws {
        let minted = MintedToken()
        try await ProxyHarness.run(
            config: Self.config, refresher: RecordingRefresher { _ in minted.value }, forwardAuth: true
        ) {
            proxy in
            minted.value = try proxy.token(
                proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 7200))
            let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
            let response = try await Self.verify(
                proxy, "https://app.example.test/", cookie: try proxy.cookieHeader(expired))
            #expect(response.status == 200)
            #expect(response.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair).count == 1)
        }
    }
}
