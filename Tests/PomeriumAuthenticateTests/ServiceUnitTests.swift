import Foundation
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumLogging
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumAuthenticate
@testable import PomeriumIdentity

/// A provider that never reaches the network: fixed authorization URLs and a refusing token endpoint.
final class StubProvider: IdentityProvider {
    func makeAuthorizationRequest(state: String, nonce: String, codeVerifier: String) throws(IdentityError)
        -> AuthorizationRequest
    {
        AuthorizationRequest(
            url: "https://idp.example.test/authorize?state=" + PercentEncoding.encode(state, as: .queryComponent),
            state: state, nonce: nonce, codeVerifier: codeVerifier)
    }

    func authenticate(code: String, codeVerifier: String?, nonce: String) async throws(IdentityError)
        -> AuthenticatedSession
    {
        throw .providerUnreachable(endpoint: "https://idp.example.test/token", reason: "stub")
    }

    func refresh(refreshToken: String, subject: String?) async throws(IdentityError) -> RefreshedSession {
        throw .providerUnreachable(endpoint: "https://idp.example.test/token", reason: "stub")
    }

    func revoke(token: String, hint: TokenTypeHint) async throws(IdentityError) { throw .revocationNotSupported }

    func endSessionURL(idTokenHint: String?, postLogoutRedirectURL: String?, state: String?) -> String? { nil }
}

/// A session store that cannot be reached, as Redis is while it restarts.
struct UnreachableStore: KeyValueStore {
    static let failure = StoreError(.unavailable, "connection refused")
    func get(_ key: String) async throws(StoreError) -> [UInt8]? { throw Self.failure }
    func set(_ key: String, value: [UInt8], ttl: Duration) async throws(StoreError) { throw Self.failure }
    func delete(_ key: String) async throws(StoreError) { throw Self.failure }
    func acquireLock(_ name: String, owner: LockOwner, ttl: Duration) async throws(StoreError) -> Bool {
        throw Self.failure
    }
    func releaseLock(_ name: String, owner: LockOwner) async throws(StoreError) -> Bool { throw Self.failure }
}

/// The service's endpoints called directly, without a server or a provider.
@Suite struct ServiceUnitTests {
    static func makeService(clock: ManualWallClock = ManualWallClock(now: 1_700_000_000)) throws -> AuthenticateService
    {
        let options = try AuthenticateHarness.options(port: 8443, idpPort: 9)
        return try AuthenticateService(
            options: options, provider: StubProvider(), store: try MemoryStore(clock: clock), clock: clock,
            logger: Logger.inMemory(store: InMemoryLogHandler.Store()))
    }

    static func request(
        _ target: String, method: HTTPMethod = .get, headers: [(String, String)] = []
    ) -> AuthenticateRequest {
        let parts = target.split(separator: "?", maxSplits: 1).map(String.init)
        var fields = HTTPHeaders()
        for (name, value) in headers { fields.add(name: name, value: value) }
        return AuthenticateRequest(
            method: method, scheme: "http", host: "authn.example.test:8443", path: parts[0],
            rawQuery: parts.count > 1 ? parts[1] : "", headers: fields)
    }

    static func signed(_ service: AuthenticateService, path: String, query: URLQuery, clock: ManualWallClock) throws
        -> String
    {
        let signer = try URLSigner(
            sharedSecret: AuthenticateHarness.sharedSecret, clock: clock, logger: Logger(label: "t"))
        var url = try HTTPURL(parsing: "http://authn.example.test:8443" + path)
        url.query = query.encodedSortedByName
        return try signer.sign(url).requestTarget
    }

    @Test func missingAuthenticateURLRejected() throws {
        let result = ConfigLoader.load(
            text: """
                insecure_server: true
                services: authenticate
                shared_secret: \(Data(AuthenticateHarness.sharedSecret).base64EncodedString())
                cookie_secret: \(Data(AuthenticateHarness.cookieSecret).base64EncodedString())
                """, format: .yaml)
        let clock = ManualWallClock()
        #expect(throws: PomeriumError.self) {
            try AuthenticateService(
                options: result.options, provider: StubProvider(), store: try MemoryStore(clock: clock), clock: clock,
                logger: Logger.inMemory(store: InMemoryLogHandler.Store()))
        }
    }

    @Test func providerConfigurationFromOptions() throws {
        let options = try AuthenticateHarness.options(port: 8443, idpPort: 9)
        let configuration = try AuthenticateService.providerConfiguration(from: options)
        #expect(configuration.redirectURL == "http://authn.example.test:8443/custom/callback")
        #expect(configuration.issuer == "http://127.0.0.1:9")
        #expect(configuration.clientID == "pomerium-test-client")
        #expect(configuration.scopes == ["openid", "email", "profile", "offline_access"])
    }

    @Test func authenticateHostFromOptions() throws {
        let service = try Self.makeService()
        #expect(service.authenticateHost == "authn.example.test")
        #expect(service.authenticateAudience == "authn.example.test:8443")
    }

    @Test func refreshMarginApplied() throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try Self.makeService(clock: clock)
        var session = SessionState()
        session.expiry = 1_700_000_000 + AuthenticateService.refreshMargin + 1
        #expect(service.needsRefresh(session) == false)
        clock.advance(by: 2)
        #expect(service.needsRefresh(session) == true)
        session.expiry = 1_800_000_000
        session.oauthToken = OAuthToken(accessToken: "a", expiry: 1_700_000_030)
        #expect(service.needsRefresh(session) == true)
    }

    @Test func loginStartSetsCSRFCookieAndState() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try Self.makeService(clock: clock)
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
        let target = try Self.signed(service, path: AuthenticateService.signInPath, query: query, clock: clock)
        let response = await service.handle(Self.request(target))
        #expect(response.status == 302)
        #expect(response.location?.hasPrefix("https://idp.example.test/authorize?state=") == true)
        let cookies = response.headers["Set-Cookie"]
        #expect(cookies.contains { $0.hasPrefix("_pomerium_csrf=v1.") })
        #expect(response.headers.first(name: "X-Pomerium-Intercepted-Response") == "true")
        #expect(response.headers.first(name: "Cache-Control") == "no-store")
    }

    @Test func signedRequestGetsCORSHeaders() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try Self.makeService(clock: clock)
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
        let target = try Self.signed(service, path: AuthenticateService.signInPath, query: query, clock: clock)
        let response = await service.handle(Self.request(target, headers: [("Origin", "https://app.example.test")]))
        #expect(response.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example.test")
        #expect(response.headers.first(name: "Access-Control-Allow-Credentials") == "true")
    }

    @Test func errorPageFormats() async throws {
        let service = try Self.makeService()
        let json = await service.handle(
            Self.request(
                "/.pomerium/sign_in?x=1", headers: [("Accept", "application/json"), ("X-Request-Id", "req-42")]))
        #expect(json.status == 400)
        #expect(json.headers.first(name: "Content-Type") == "application/json")
        let document = try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any]
        #expect(document?["Status"] as? Int == 400)
        #expect(document?["Error"] as? String == "Bad Request: the link is not signed")
        #expect(document?["RequestID"] as? String == "req-42")

        let html = await service.handle(Self.request("/.pomerium/sign_in?x=1"))
        #expect(html.headers.first(name: "Content-Type") == "text/html; charset=utf-8")
        let text = String(decoding: html.body, as: UTF8.self)
        #expect(text.contains("<title>400 - Bad Request</title>"))
        #expect(text.contains("Request ID: "))
        #expect(!text.contains("Try again"))
    }

    @Test func accessLineNamedLikeProxy() async throws {
        let logs = InMemoryLogHandler.Store()
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try AuthenticateService(
            options: try AuthenticateHarness.options(port: 8443, idpPort: 9), provider: StubProvider(),
            store: try MemoryStore(clock: clock), clock: clock, logger: Logger.inMemory(store: logs))
        _ = await service.handle(
            Self.request(
                "/.pomerium/sign_in?secret-query=1", headers: [("X-Request-Id", "req-7"), ("User-Agent", "agent")]))
        let line = try #require(logs.all.first { $0.message == "http-request" })
        #expect(line.metadata["req_id"] == "req-7")
        #expect(line.metadata["service"] == "authenticate")
        #expect(line.metadata["host"] == "authn.example.test:8443")
        #expect(line.metadata["path"] == "/.pomerium/sign_in")
        #expect(line.metadata["status"] == .stringConvertible(400))
        #expect(line.metadata["user_agent"] == "agent")
        #expect(!line.jsonLine.contains("secret-query"))
    }

    @Test func errorPageEscapesHTML() {
        #expect(
            AuthenticateService.escapeHTML("<a href=\"x\">'&'</a>")
                == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test func globalSessionCookieIsHostOnlyUnderCookieDomain() throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try AuthenticateService(
            options: try AuthenticateHarness.options(port: 8443, idpPort: 9, extraYAML: "cookie_domain: example.test"),
            provider: StubProvider(), store: try MemoryStore(clock: clock), clock: clock,
            logger: Logger.inMemory(store: InMemoryLogHandler.Store()))
        #expect(service.sessionCookies.settings.domain == nil)
        let cleared = try service.sessionCookies.clearingHeaders()
        #expect(!cleared.isEmpty)
        #expect(cleared.allSatisfy { !$0.lowercased().contains("domain=") })
    }

    @Test func unreachableStoreAnswers503() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try AuthenticateService(
            options: try AuthenticateHarness.options(port: 8443, idpPort: 9), provider: StubProvider(),
            store: UnreachableStore(), clock: clock, logger: Logger.inMemory(store: InMemoryLogHandler.Store()))
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
        query.append(name: "pomerium_session_access_token_id", value: "a-session")
        let target = try Self.signed(service, path: AuthenticateService.signOutPath, query: query, clock: clock)
        let response = await service.handle(Self.request(target))
        #expect(response.status == 503)
        #expect(response.headers.first(name: "Retry-After") == "5")
    }

    @Test func wrongMethodRejected() async throws {
        let service = try Self.makeService()
        let response = await service.handle(Self.request("/robots.txt", method: .post))
        #expect(response.status == 405)
    }

    @Test func refresherThrowsForUnknownSession() async throws {
        let service = try Self.makeService()
        await #expect(throws: AuthenticateError.sessionNotFound) {
            try await service.refreshRouteSession(
                accessTokenID: "missing", audience: ["app.example.test"], issuerHost: "authn.example.test")
        }
    }

    @Test func refresherFailsWhenProviderRefuses() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try Self.makeService(clock: clock)
        var session = SessionState()
        session.subject = "bob"
        session.accessTokenID = "abc"
        session.expiry = 1_700_000_010
        session.oauthToken = OAuthToken(accessToken: "a", refreshToken: "r", expiry: 1_700_000_010)
        try await service.saveStoredSession(session)
        await #expect(throws: AuthenticateError.refreshFailed("idp-unreachable")) {
            try await service.refreshRouteSession(
                accessTokenID: "abc", audience: ["app.example.test"], issuerHost: "authn.example.test")
        }
        session.oauthToken?.refreshToken = ""
        try await service.saveStoredSession(session)
        await #expect(throws: AuthenticateError.refreshFailed("the session has no refresh token")) {
            try await service.refreshRouteSession(
                accessTokenID: "abc", audience: ["app.example.test"], issuerHost: "authn.example.test")
        }
    }

    @Test func refreshTokenRoundTrip() throws {
        let sealer = try SessionSealer(cookieSecret: AuthenticateHarness.cookieSecret)
        var session = SessionState()
        session.subject = "bob"
        session.programmatic = true
        let token = try sealer.refreshToken(for: session)
        #expect(sealer.session(fromRefreshToken: token) == session)
        #expect(sealer.session(fromRefreshToken: token + "x") == nil)
        let other = try SessionSealer(cookieSecret: [UInt8](repeating: 1, count: 32))
        #expect(other.session(fromRefreshToken: token) == nil)
    }

    @Test func storeValueBoundToKey() throws {
        let sealer = try SessionSealer(cookieSecret: AuthenticateHarness.cookieSecret)
        var session = SessionState()
        session.subject = "bob"
        let sealed = try sealer.sealForStore(session, key: "session/a")
        #expect(sealer.openFromStore(sealed, key: "session/a") == session)
        #expect(sealer.openFromStore(sealed, key: "session/b") == nil)
    }

    @Test func pomeriumAuthorizationParsed() {
        #expect(AuthenticateService.pomeriumAuthorization(["Authorization": "Pomerium abc"]) == "abc")
        #expect(AuthenticateService.pomeriumAuthorization(["Authorization": "pomerium abc"]) == "abc")
        #expect(AuthenticateService.pomeriumAuthorization(["Authorization": "Bearer abc"]) == nil)
        #expect(AuthenticateService.pomeriumAuthorization(["Authorization": "Pomerium "]) == nil)
    }

    @Test func impersonationGroupsKeepInnerSpaces() {
        #expect(AuthenticateService.impersonationGroups("Team A, ops") == ["Team A", "ops"])
        #expect(AuthenticateService.impersonationGroups(" Domain Admins\t,, devs ") == ["Domain Admins", "devs"])
        #expect(AuthenticateService.impersonationGroups(" , ").isEmpty)
        #expect(AuthenticateService.impersonationGroups("").isEmpty)
    }

    @Test func transportErrorsMapped() {
        #expect(ClientIdentityTransport.map(.connectFailed("refused")) == .connectionFailed(reason: "refused"))
        #expect(ClientIdentityTransport.map(.resolveFailed("no")) == .connectionFailed(reason: "no"))
        #expect(ClientIdentityTransport.map(.connectTimeout) == .timedOut)
        #expect(ClientIdentityTransport.map(.readTimeout) == .timedOut)
        #expect(ClientIdentityTransport.map(.tlsFailed("bad")) == .tlsFailed(reason: "bad"))
        #expect(ClientIdentityTransport.map(.invalidResponse("x")) == .malformedResponse(reason: "x"))
        #expect(
            ClientIdentityTransport.map(.upstreamClosed)
                == .malformedResponse(reason: "the provider closed the connection early"))
        #expect(ClientIdentityTransport.map(.responseTooLarge(10)) == .responseTooLarge)
    }

    @Test(
        "a failing provider at the code exchange is a 502, a refused login a 401",
        arguments: [
            (503, "temporarily_unavailable", 502), (500, "invalid_grant", 502), (400, "server_error", 502),
            (400, "temporarily_unavailable", 502), (400, "invalid_grant", 401), (401, "invalid_client", 401),
        ])
    func codeExchangeFailuresMapped(status: Int, code: String, expected: Int) {
        let error = IdentityError.oauthError(
            OAuthErrorResponse(
                endpoint: "https://idp.test/token", status: status, code: OAuthErrorCode(code),
                errorDescription: nil))
        #expect(AuthenticateService.loginFailure(error).status == expected)
    }

    @Test func transportReportsRefusedConnection() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let transport = ClientIdentityTransport(client: HTTPClient(group: group))
        let port = try LoopbackPort.allocate()
        await #expect {
            _ = try await transport.send(
                IdentityHTTPRequest(
                    method: .get, url: "http://127.0.0.1:\(port)/.well-known/openid-configuration", timeout: 2,
                    maximumResponseBytes: 1024))
        } throws: { error in
            if case .connectionFailed = error as? IdentityTransportError { return true }
            return false
        }
    }

    @Test func transportEnforcesSizeLimit() async throws {
        try await Fixtures.withOIDCProvider { idp in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let transport = ClientIdentityTransport(client: HTTPClient(group: group))
            let ok = try await transport.send(
                IdentityHTTPRequest(
                    method: .get, url: idp.baseURL + "/.well-known/openid-configuration", timeout: 5,
                    maximumResponseBytes: 1 << 20))
            #expect(ok.status == 200)
            await #expect(throws: IdentityTransportError.responseTooLarge) {
                _ = try await transport.send(
                    IdentityHTTPRequest(
                        method: .get, url: idp.baseURL + "/.well-known/openid-configuration", timeout: 5,
                        maximumResponseBytes: 16))
            }
        }
    }
}

@Suite struct LoginFlowStoreTests {
    @Test func loginFlowTakenOnce() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try ServiceUnitTests.makeService(clock: clock)
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
        let target = try ServiceUnitTests.signed(
            service, path: AuthenticateService.signInPath, query: query, clock: clock)
        let response = await service.handle(ServiceUnitTests.request(target))
        let location = try HTTPURL(parsing: try #require(response.location))
        let state = try #require(URLQuery(parsingLeniently: location.query ?? "").value(for: "state"))

        let started = try service.authorizationRequest(state: state)
        let first = try await service.takeLoginFlow(state: state)
        #expect(first?.nonce == started.nonce)
        #expect(first?.codeVerifier == started.codeVerifier)
        #expect(first?.nonce.utf8.count == 43)
        let second = try await service.takeLoginFlow(state: state)
        #expect(second == nil)
    }
}

/// Tests that starting a login stores nothing, and that the lock a completed login leaves goes to
/// the login store, so that logins cannot evict the sessions of signed-in users.
@Suite struct SeparateLoginStoreTests {
    static func service(sessions: MemoryStore, logins: MemoryStore, clock: ManualWallClock) throws
        -> AuthenticateService
    {
        try AuthenticateService(
            options: try AuthenticateHarness.options(port: 8443, idpPort: 9), provider: StubProvider(), store: sessions,
            clock: clock,
            logger: Logger.inMemory(store: InMemoryLogHandler.Store()), loginFlowStore: logins)
    }

    static func startTarget(_ service: AuthenticateService, clock: ManualWallClock) throws -> String {
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: "https://app.example.test/")
        return try ServiceUnitTests.signed(service, path: AuthenticateService.signInPath, query: query, clock: clock)
    }

    @Test("login start stores nothing")
    func loginStartStoresNothing() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let sessions = try MemoryStore(clock: clock)
        let logins = try MemoryStore(clock: clock)
        let service = try Self.service(sessions: sessions, logins: logins, clock: clock)
        let target = try Self.startTarget(service, clock: clock)
        for _ in 0..<3 {
            let response = await service.handle(ServiceUnitTests.request(target))
            #expect(response.status == 302)
        }
        #expect(sessions.statistics.entryCount == 0)
        #expect(logins.statistics.entryCount == 0)
    }

    @Test("completed login locks the login store")
    func completedLoginLocksLoginStore() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let sessions = try MemoryStore(clock: clock)
        let logins = try MemoryStore(clock: clock)
        let service = try Self.service(sessions: sessions, logins: logins, clock: clock)
        let response = await service.handle(ServiceUnitTests.request(try Self.startTarget(service, clock: clock)))
        let location = try HTTPURL(parsing: try #require(response.location))
        let state = try #require(URLQuery(parsingLeniently: location.query ?? "").value(for: "state"))
        #expect(try await service.takeLoginFlow(state: state) != nil)
        // Another instance that shares only the session store still accepts the state once, and
        // one that shares the login store does not.
        let sharingSessions = try Self.service(sessions: sessions, logins: try MemoryStore(clock: clock), clock: clock)
        #expect(try await sharingSessions.takeLoginFlow(state: state) != nil)
        let sharingLogins = try Self.service(sessions: try MemoryStore(clock: clock), logins: logins, clock: clock)
        #expect(try await sharingLogins.takeLoginFlow(state: state) == nil)
    }

    @Test("without login locks the store stays untouched")
    func withoutLoginLocks() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let sessions = try MemoryStore(clock: clock)
        let service = try AuthenticateService(
            options: try AuthenticateHarness.options(port: 8443, idpPort: 9), provider: StubProvider(),
            store: sessions, clock: clock, logger: Logger.inMemory(store: InMemoryLogHandler.Store()),
            locksLogins: false)
        let response = await service.handle(ServiceUnitTests.request(try Self.startTarget(service, clock: clock)))
        let location = try HTTPURL(parsing: try #require(response.location))
        let state = try #require(URLQuery(parsingLeniently: location.query ?? "").value(for: "state"))
        // The callback's replay guard, which runs before this, is what rejects a second use.
        #expect(try await service.takeLoginFlow(state: state) != nil)
        #expect(try await service.takeLoginFlow(state: state) != nil)
        let locking = try Self.service(sessions: sessions, logins: sessions, clock: clock)
        #expect(try await locking.takeLoginFlow(state: state) != nil)
    }

    @Test("login secrets are keyed per state")
    func loginSecretsKeyedPerState() throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let service = try Self.service(
            sessions: try MemoryStore(clock: clock), logins: try MemoryStore(clock: clock), clock: clock)
        let first = try service.authorizationRequest(state: "state-one")
        let again = try service.authorizationRequest(state: "state-one")
        let second = try service.authorizationRequest(state: "state-two")
        #expect(first.nonce == again.nonce)
        #expect(first.codeVerifier == again.codeVerifier)
        #expect(first.nonce != second.nonce)
        #expect(first.codeVerifier != second.codeVerifier)
        #expect(first.nonce != first.codeVerifier)
        // The values are HMACs under the cookie secret, which the browser and provider never see.
        let key = try HMACKey(key: AuthenticateHarness.cookieSecret, digest: .sha256)
        let nonce = try key.authenticate(Array("pomerium-login-nonce\nstate-one".utf8))
        #expect(first.nonce == Base64.urlUnpadded.encode(nonce))
    }

    @Test("login flood keeps a stored session")
    func loginFloodKeepsSession() async throws {
        let clock = ManualWallClock(now: 1_700_000_000)
        let sessions = try MemoryStore(byteBudget: 16 * 1024, clock: clock)
        let service = try Self.service(sessions: sessions, logins: sessions, clock: clock)
        var session = SessionState()
        session.subject = "bob"
        session.accessTokenID = "bob-session"
        session.oauthToken = OAuthToken(accessToken: "a", expiry: 1_800_000_000)
        try await service.saveStoredSession(session)
        let target = try Self.startTarget(service, clock: clock)
        // 200 stored logins of about 400 bytes each would overflow the 16 KiB budget several times.
        for _ in 0..<200 {
            let response = await service.handle(ServiceUnitTests.request(target))
            #expect(response.status == 302)
        }
        #expect(sessions.statistics.evictionCount == 0)
        let stored = try await service.loadStoredSession(accessTokenID: "bob-session")
        #expect(stored?.subject == "bob")
    }
}
