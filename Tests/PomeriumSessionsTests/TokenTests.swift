import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import PomeriumTestSupport
import Testing

@testable import PomeriumSessions

@Suite("Route session tokens and loaders")
struct TokenTests {
    let clock = ManualWallClock(now: SessionFixtures.now)

    func codec(store: InMemoryLogHandler.Store = .init(), secret: [UInt8] = SessionFixtures.sharedSecret) throws
        -> RouteSessionTokenCodec
    {
        try RouteSessionTokenCodec(sharedSecret: secret, clock: clock, logger: .inMemory(store: store))
    }

    @Test("audience hosts keep non-default ports")
    func audienceHosts() {
        #expect(AudienceHost.format(host: "App.Example.Test", port: nil, scheme: "https") == "app.example.test")
        #expect(AudienceHost.format(host: "app.example.test", port: 443, scheme: "https") == "app.example.test")
        #expect(AudienceHost.format(host: "app.example.test", port: 8443, scheme: "https") == "app.example.test:8443")
        #expect(AudienceHost.format(host: "app.example.test", port: 80, scheme: "http") == "app.example.test")
        #expect(AudienceHost.format(host: "app.example.test", port: 443, scheme: "http") == "app.example.test:443")
        #expect(AudienceHost.format(host: "::1", port: 8443, scheme: "https") == "[::1]:8443")
    }

    @Test("token round trip without the OAuth token")
    func roundTrip() throws {
        let token = try codec().sign(SessionFixtures.sampleSession())
        #expect(token.hasPrefix("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."))
        let session = try codec().verify(Array(token.utf8), audienceHost: "app.example.test:8443")
        #expect(session == SessionFixtures.sampleSession().routeSession)
    }

    @Test("PyJWT verifies the token with the decoded shared secret", .enabled(if: PythonRunner.isAvailable))
    func pythonVerifies() throws {
        let token = try codec().sign(SessionFixtures.sampleSession())
        let output = try PythonRunner.run(
            """
            import sys, jwt
            claims = jwt.decode(sys.stdin.read().strip(), bytes([0x22] * 32), algorithms=["HS256"],
                audience="app.example.test:8443", options={"verify_exp": False})
            print(claims["email"], "act" in claims)
            """, input: token)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "user@example.test False")
    }

    func expectRejected(
        _ token: String, host: String = "app.example.test:8443", reason: RejectionReason,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let store = InMemoryLogHandler.Store()
        #expect(throws: SessionRejection("route-session-token", reason), sourceLocation: sourceLocation) {
            try codec(store: store).verify(Array(token.utf8), audienceHost: host)
        }
        expectLoggedOnce(
            store, artefact: "route-session-token", reason: reason, without: [token, "access-secret-value"],
            sourceLocation: sourceLocation)
    }

    @Test("attacks on the token are rejected and logged once")
    func rejections() throws {
        let session = SessionFixtures.sampleSession()
        let token = try codec().sign(session)
        let parts = token.split(separator: ".").map(String.init)
        let payload = Base64.urlUnpadded.encode(session.routeSession.jsonBytes())
        // alg none.
        let none = Base64.urlUnpadded.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        try expectRejected("\(none).\(payload).", reason: .algorithmNotAllowed)
        // ES256 signed with a key of the attacker's choosing.
        let attacker = try ECPrivateKey.generate()
        try expectRejected(
            try JWS.sign(payload: session.routeSession.jsonBytes(), with: .ecdsa(attacker)),
            reason: .algorithmNotAllowed)
        // Wrong key.
        try expectRejected(try codec(secret: [UInt8](repeating: 5, count: 32)).sign(session), reason: .badSignature)
        // Truncated signature, payload swapped, missing part.
        try expectRejected(String(token.dropLast(3)), reason: .badSignature)
        try expectRejected(String(token.dropLast(2)), reason: .malformed)
        var other = session
        other.email = "admin@example.test"
        try expectRejected(
            "\(parts[0]).\(Base64.urlUnpadded.encode(other.routeSession.jsonBytes())).\(parts[2])",
            reason: .badSignature)
        try expectRejected("\(parts[0]).\(parts[1])", reason: .malformed)
        // Expired, not yet valid, wrong audience, missing exp.
        clock.set(Double(session.expiry!))
        try expectRejected(token, reason: .expired)
        clock.set(Double(session.notBefore! - 1))
        try expectRejected(token, reason: .notYetValid)
        clock.set(SessionFixtures.now)
        try expectRejected(token, host: "app.example.test", reason: .wrongAudience)
        try expectRejected(token, host: "evil.example.test:8443", reason: .wrongAudience)
        var noExpiry = session
        noExpiry.expiry = nil
        try expectRejected(try codec().sign(noExpiry), reason: .invalidClaims)
        // A token that smuggles the OAuth token in.
        let withAct = try JWS.sign(
            payload: session.jsonBytes(), with: .hs256(HMACKey(key: SessionFixtures.sharedSecret, digest: .sha256)))
        try expectRejected(withAct, reason: .invalidClaims)
    }

    @Test("loader order: cookie, Pomerium, Bearer, query")
    func loaderOrder() throws {
        let cookies = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(), clock: clock,
            logger: .inMemory(store: .init()))
        let loader = SessionLoader(cookies: cookies, tokens: try codec())
        let session = SessionFixtures.sampleSession()
        let cookieValue = try cookies.setCookieHeaders(for: session)[0].split(separator: ";")[0]
            .split(separator: "=", maxSplits: 1)[1]
        let token = try codec().sign(session)
        let host = "app.example.test:8443"

        let fromCookie = loader.load(
            SessionRequest(
                cookies: [("_pomerium", String(cookieValue))], authorization: "Pomerium \(token)", audienceHost: host))
        #expect(fromCookie?.source == .cookie)
        #expect(fromCookie?.session == session)
        #expect(
            loader.load(SessionRequest(cookies: [], authorization: "Pomerium \(token)", audienceHost: host))?.source
                == .authorizationPomerium)
        #expect(
            loader.load(SessionRequest(cookies: [], authorization: "pomerium \(token)", audienceHost: host))?.source
                == .authorizationPomerium)
        #expect(
            loader.load(SessionRequest(cookies: [], authorization: "Bearer \(token)", audienceHost: host))?.source
                == .authorizationBearer)
        #expect(
            loader.load(SessionRequest(cookies: [], sessionQueryParameter: token, audienceHost: host))?.source
                == .queryParameter)
        #expect(loader.load(SessionRequest(cookies: [], authorization: "Basic abc", audienceHost: host)) == nil)
        // The first source present decides: a broken cookie is no session even with a valid header.
        #expect(
            loader.load(
                SessionRequest(
                    cookies: [("_pomerium", "v1.AAAA")], authorization: "Pomerium \(token)", audienceHost: host)) == nil
        )
        #expect(
            loader.load(
                SessionRequest(
                    cookies: [], authorization: "Pomerium garbage", sessionQueryParameter: token, audienceHost: host))
                == nil)
        #expect(
            loader.load(
                SessionRequest(cookies: [], authorization: "Pomerium \(token)", audienceHost: "other.example.test"))
                == nil)
    }

    @Test("loader returns expired tokens for renewal")
    func loaderKeepsExpiredTokens() throws {
        let cookies = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(), clock: clock,
            logger: .inMemory(store: .init()))
        let loader = SessionLoader(cookies: cookies, tokens: try codec())
        let session = SessionFixtures.sampleSession()
        let token = try codec().sign(session)
        let host = "app.example.test:8443"
        clock.set(Double(session.expiry! + 10))
        defer { clock.set(SessionFixtures.now) }
        for request in [
            SessionRequest(cookies: [], authorization: "Pomerium \(token)", audienceHost: host),
            SessionRequest(cookies: [], authorization: "Bearer \(token)", audienceHost: host),
            SessionRequest(cookies: [], sessionQueryParameter: token, audienceHost: host),
        ] {
            #expect(loader.load(request)?.session == session.routeSession)
        }
        #expect(throws: SessionRejection.self) { try codec().verify(Array(token.utf8), audienceHost: host) }
        let forged = String(token.dropLast(3)) + "AAA"
        #expect(
            loader.load(SessionRequest(cookies: [], authorization: "Pomerium \(forged)", audienceHost: host)) == nil,
            "an expired token still needs a valid signature")
    }

    @Test("authorization scheme parsing")
    func credentialParsing() {
        #expect(SessionLoader.credential("Pomerium abc", scheme: "pomerium").map { Array($0) } == Array("abc".utf8))
        #expect(SessionLoader.credential("POMERIUM abc", scheme: "pomerium") != nil)
        #expect(SessionLoader.credential("Pomerium", scheme: "pomerium") == nil)
        #expect(SessionLoader.credential("Pomeriumabc", scheme: "pomerium") == nil)
        #expect(SessionLoader.credential("Bearer x", scheme: "pomerium") == nil)
    }
}

@Suite("Callback payload and OAuth state")
struct TokenCallbackAndStateTests {
    let clock = ManualWallClock(now: SessionFixtures.now)

    @Test("callback payload round trip and tampering")
    func callbackPayload() throws {
        let store = InMemoryLogHandler.Store()
        let codec = try CallbackPayloadCodec(
            sharedSecret: SessionFixtures.sharedSecret, logger: .inMemory(store: store))
        let token = "header.payload.signature-secret"
        let sealed = try codec.seal(routeToken: token)
        #expect(sealed.hasSuffix("=") || sealed.utf8.count % 4 == 0)
        #expect(try codec.open(sealed) == token)
        #expect(store.all.isEmpty)

        var mutations = [String(sealed.dropLast(4)), sealed + "AAAA", "not base64!", ""]
        var flipped = Array(sealed.utf8)
        flipped[10] = flipped[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        mutations.append(String(decoding: flipped, as: UTF8.self))
        let other = try CallbackPayloadCodec(
            sharedSecret: [UInt8](repeating: 1, count: 32), logger: .inMemory(store: .init()))
        mutations.append(try other.seal(routeToken: token))
        for mutation in mutations {
            let local = InMemoryLogHandler.Store()
            let checker = try CallbackPayloadCodec(
                sharedSecret: SessionFixtures.sharedSecret, logger: .inMemory(store: local))
            #expect(throws: SessionRejection.self) { try checker.open(mutation) }
            #expect(local.all.count == 1)
            #expect(
                !local.all.contains {
                    $0.jsonLine.contains("signature-secret")
                        || (!mutation.isEmpty && $0.jsonLine.contains(mutation.prefix(20)))
                })
        }
        #expect(throws: SessionRejection("callback-payload", .tooLarge)) {
            try codec.open(String(repeating: "A", count: 70_000))
        }
    }

    func stateCodec(store: InMemoryLogHandler.Store = .init(), guardStore: (any StateReplayGuard)? = nil) throws
        -> OAuthStateCodec
    {
        try OAuthStateCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(), clock: clock,
            replayGuard: guardStore ?? InMemoryStateReplayGuard(clock: clock), logger: .inMemory(store: store))
    }

    func csrfCookie(_ header: String) -> (name: String, value: String) {
        let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
        return (String(pair[0]), String(pair[1]))
    }

    @Test("state opens once with its browser's CSRF cookie")
    func stateRoundTrip() throws {
        let codec = try stateCodec()
        let (secret, setCookie) = try codec.csrfSecret(fromCookies: [])
        let header = try #require(setCookie)
        #expect(header.hasPrefix("_pomerium_csrf=v1."))
        #expect(header.contains("Max-Age=43200"))
        #expect(header.contains("HttpOnly"))
        #expect(header.contains("SameSite=Lax"))
        let cookie = csrfCookie(header)
        let again = try codec.csrfSecret(fromCookies: [cookie])
        #expect(again.secret == secret)
        #expect(again.setCookie == nil)

        let returnURL = "https://authn.example.test/.pomerium/sign_in?pomerium_redirect_uri=x"
        let state = try codec.makeState(returnURL: returnURL, secret: secret)
        #expect(!state.contains("authn.example.test"))
        #expect(try codec.openState(state, cookies: [cookie]) == returnURL)
        #expect(throws: SessionRejection("oauth-state", .replayed)) { try codec.openState(state, cookies: [cookie]) }
    }

    @Test("strict SameSite is relaxed to Lax for the CSRF cookie")
    func strictCSRF() throws {
        let codec = try OAuthStateCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(sameSite: .strict), clock: clock,
            replayGuard: InMemoryStateReplayGuard(clock: clock), logger: .inMemory(store: .init()))
        let header = try #require(try codec.csrfSecret(fromCookies: []).setCookie)
        #expect(header.contains("SameSite=Lax"))
    }

    func expectStateRejected(
        _ state: String, cookies: [(name: String, value: String)], reason: RejectionReason, codec: OAuthStateCodec,
        store: InMemoryLogHandler.Store, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(throws: SessionRejection("oauth-state", reason), sourceLocation: sourceLocation) {
            try codec.openState(state, cookies: cookies)
        }
        expectLoggedOnce(
            store, artefact: "oauth-state", reason: reason, without: [state] + cookies.map(\.value),
            sourceLocation: sourceLocation)
    }

    @Test("tampered, foreign, expired and future states are rejected")
    func stateRejections() throws {
        let setup = try stateCodec()
        let (secret, setCookie) = try setup.csrfSecret(fromCookies: [])
        let cookie = csrfCookie(try #require(setCookie))
        let state = try setup.makeState(returnURL: "https://authn.example.test/x", secret: secret)

        func check(_ state: String, _ cookies: [(name: String, value: String)], _ reason: RejectionReason) throws {
            let store = InMemoryLogHandler.Store()
            expectStateRejected(
                state, cookies: cookies, reason: reason, codec: try stateCodec(store: store), store: store)
        }
        // Tampered ciphertext.
        var bytes = Base64.url.decode(state)!
        bytes[bytes.count - 1] ^= 1
        try check(Base64.url.encode(bytes), [cookie], .decryptionFailed)
        // Timestamp rewritten.
        let text = String(decoding: Base64.url.decode(state)!, as: UTF8.self)
        let fields = text.split(separator: "|", maxSplits: 2)
        let rewritten =
            Array("\(fields[0])|\(Int64(SessionFixtures.now) + 1)|".utf8)
            + Array(Base64.url.decode(state)!.dropFirst(fields[0].utf8.count + fields[1].utf8.count + 2))
        try check(Base64.url.encode(rewritten), [cookie], .decryptionFailed)
        // Another browser's CSRF cookie, and none at all.
        let (_, otherCookieHeader) = try setup.csrfSecret(fromCookies: [])
        try check(state, [csrfCookie(otherCookieHeader!)], .decryptionFailed)
        try check(state, [], .csrfMismatch)
        // Garbage.
        try check("!!!", [cookie], .malformed)
        try check(Base64.url.encode(Array("a|b|c".utf8)), [cookie], .malformed)
        // Expired and future, just outside 5 minutes.
        clock.advance(by: 301)
        try check(state, [cookie], .expired)
        clock.set(SessionFixtures.now - 301)
        try check(state, [cookie], .issuedInFuture)
        clock.set(SessionFixtures.now + 300)
        #expect(try setup.openState(state, cookies: [cookie]) == "https://authn.example.test/x")
    }

    @Test("a relative return URL is rejected")
    func relativeReturn() throws {
        let store = InMemoryLogHandler.Store()
        let codec = try stateCodec(store: store)
        let (secret, setCookie) = try codec.csrfSecret(fromCookies: [])
        let state = try codec.makeState(returnURL: "/relative", secret: secret)
        expectStateRejected(
            state, cookies: [csrfCookie(setCookie!)], reason: .malformed, codec: codec, store: store)
    }

    @Test("the replay guard stays bounded and forgets expired nonces")
    func replayGuard() {
        let guardStore = InMemoryStateReplayGuard(capacity: 2, clock: clock)
        #expect(guardStore.markUsed("a", expiresAt: Int64(SessionFixtures.now) + 10))
        #expect(!guardStore.markUsed("a", expiresAt: Int64(SessionFixtures.now) + 10))
        #expect(guardStore.markUsed("b", expiresAt: Int64(SessionFixtures.now) + 10))
        #expect(guardStore.markUsed("c", expiresAt: Int64(SessionFixtures.now) + 10))
        clock.advance(by: 11)
        #expect(guardStore.markUsed("a", expiresAt: Int64(SessionFixtures.now) + 100))
    }

    @Test("a full replay guard drops the oldest nonce first")
    func replayGuardDropsOldest() {
        let guardStore = InMemoryStateReplayGuard(capacity: 2, clock: clock)
        let expiry = Int64(SessionFixtures.now) + 60
        #expect(guardStore.markUsed("first", expiresAt: expiry))
        #expect(guardStore.markUsed("second", expiresAt: expiry))
        #expect(guardStore.markUsed("third", expiresAt: expiry))
        #expect(!guardStore.markUsed("second", expiresAt: expiry))
        #expect(!guardStore.markUsed("third", expiresAt: expiry))
        #expect(guardStore.count == 2)
    }

    @Test("the replay guard keeps every live nonce until it expires")
    func replayGuardKeepsLiveNonces() {
        let guardStore = InMemoryStateReplayGuard(clock: clock)
        let now = Int64(SessionFixtures.now)
        for index in 0..<5000 {
            #expect(guardStore.markUsed("short-\(index)", expiresAt: now + 10))
        }
        for index in 0..<100 {
            #expect(guardStore.markUsed("long-\(index)", expiresAt: now + 600))
        }
        #expect(!guardStore.markUsed("short-0", expiresAt: now + 10))
        #expect(!guardStore.markUsed("short-4999", expiresAt: now + 10))
        #expect(guardStore.count == 5100)

        // Once the first 5,000 expire, the next call drops them and shrinks the storage, and the
        // 100 live nonces are still rejected.
        clock.advance(by: 11)
        #expect(guardStore.markUsed("after", expiresAt: now + 600))
        #expect(guardStore.count == 101)
        for index in 0..<100 {
            #expect(!guardStore.markUsed("long-\(index)", expiresAt: now + 600))
        }
        #expect(guardStore.markUsed("short-0", expiresAt: now + 600))
    }

    @Test("an expired nonce behind a live one is accepted again")
    func replayGuardExpiryOutOfOrder() {
        let guardStore = InMemoryStateReplayGuard(clock: clock)
        let now = Int64(SessionFixtures.now)
        #expect(guardStore.markUsed("late", expiresAt: now + 100))
        #expect(guardStore.markUsed("early", expiresAt: now + 10))
        clock.advance(by: 11)
        #expect(guardStore.markUsed("early", expiresAt: now + 100))
        #expect(!guardStore.markUsed("early", expiresAt: now + 100))
        #expect(!guardStore.markUsed("late", expiresAt: now + 100))
    }
}
