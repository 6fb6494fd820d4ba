import Foundation
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumIdentity
import PomeriumLogging
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Synchronization

@testable import PomeriumAuthenticate

/// The transport the tests give the provider: the real `ClientIdentityTransport`, plus a count of
/// requests per path and of refresh-token grants, and an optional forgery of the ID token.
final class CountingTransport: IdentityHTTPTransport {
    let inner: ClientIdentityTransport
    private let counts = Mutex<[String: Int]>([:])
    /// When set, the token endpoint's ID token is re-signed with a key the provider never published.
    let forgesIDToken = Atomic<Bool>(false)

    init(inner: ClientIdentityTransport) { self.inner = inner }

    func count(_ key: String) -> Int { counts.withLock { $0[key] ?? 0 } }

    func send(_ request: IdentityHTTPRequest) async throws -> IdentityHTTPResponse {
        let path = URLComponents(string: request.url)?.path ?? request.url
        let body = String(decoding: request.body, as: UTF8.self)
        counts.withLock { counts in
            counts[path, default: 0] += 1
            if body.contains("grant_type=refresh_token") { counts["refresh-grant", default: 0] += 1 }
            if body.contains("grant_type=authorization_code") { counts["code-grant", default: 0] += 1 }
        }
        var response = try await inner.send(request)
        if path.hasSuffix("/token"), forgesIDToken.load(ordering: .relaxed), response.status == 200 {
            response.body = try Self.forgeIDToken(in: response.body)
        }
        return response
    }

    /// Replaces `id_token` with the same header `kid` and claims, signed by a fresh RSA key.
    private static func forgeIDToken(in body: [UInt8]) throws -> [UInt8] {
        guard var document = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let idToken = document["id_token"] as? String
        else { throw FixtureError("the token response has no id_token") }
        let parts = idToken.split(separator: ".").map(String.init)
        guard parts.count == 3, let header = Base64.urlUnpadded.decode(parts[0]),
            let payload = Base64.urlUnpadded.decode(parts[1])
        else { throw FixtureError("the id_token is not a JWS") }
        let script = """
            import json, sys
            from jwcrypto import jwk, jws
            header = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
            data = json.loads(sys.stdin.read())
            key = jwk.JWK.generate(kty="RSA", size=2048)
            token = jws.JWS(data["payload"].encode())
            token.add_signature(key, None, protected=json.dumps({"alg": "RS256", "kid": data["kid"]}))
            print(token.serialize(compact=True))
            """
        let headerObject = try JSONSerialization.jsonObject(with: Data(header)) as? [String: Any]
        let input = try JSONSerialization.data(withJSONObject: [
            "payload": String(decoding: payload, as: UTF8.self), "kid": headerObject?["kid"] as? String ?? "",
        ])
        let forged = try PythonRunner.run(script, input: String(decoding: input, as: UTF8.self))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        document["id_token"] = forged
        return Array(try JSONSerialization.data(withJSONObject: document))
    }
}

/// Forwards to the discovered provider and records revocations; a revocation can be made to fail.
final class RecordingProvider: IdentityProvider {
    let inner: any IdentityProvider
    private let revoked = Mutex<[String]>([])
    let failsRevocation: Bool

    init(inner: any IdentityProvider, failsRevocation: Bool = false) {
        self.inner = inner
        self.failsRevocation = failsRevocation
    }

    var revocationHints: [String] { revoked.withLock { $0 } }

    func makeAuthorizationRequest(state: String, nonce: String, codeVerifier: String) throws(IdentityError)
        -> AuthorizationRequest
    {
        try inner.makeAuthorizationRequest(state: state, nonce: nonce, codeVerifier: codeVerifier)
    }

    func authenticate(code: String, codeVerifier: String?, nonce: String) async throws(IdentityError)
        -> AuthenticatedSession
    {
        try await inner.authenticate(code: code, codeVerifier: codeVerifier, nonce: nonce)
    }

    func refresh(refreshToken: String, subject: String?) async throws(IdentityError) -> RefreshedSession {
        try await inner.refresh(refreshToken: refreshToken, subject: subject)
    }

    func revoke(token: String, hint: TokenTypeHint) async throws(IdentityError) {
        revoked.withLock { $0.append(hint.rawValue) }
        if failsRevocation {
            throw .providerUnreachable(endpoint: "http://127.0.0.1:1/revoke", reason: "connection refused")
        }
        try await inner.revoke(token: token, hint: hint)
    }

    func endSessionURL(idTokenHint: String?, postLogoutRedirectURL: String?, state: String?) -> String? {
        inner.endSessionURL(idTokenHint: idTokenHint, postLogoutRedirectURL: postLogoutRedirectURL, state: state)
    }
}

/// One HTTP response as the test browser saw it.
struct BrowserResponse {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var location: String? { headers.first(name: "Location") }
    var text: String { String(decoding: body, as: UTF8.self) }
    var setCookies: [String] { headers["Set-Cookie"] }
}

/// A browser with a cookie jar per host that sends every `*.example.test` request to the
/// authenticate server's loopback port and everything else to the URL's own loopback address.
final class TestBrowser: @unchecked Sendable {
    let client: HTTPClient
    let serverPort: Int
    private(set) var jar: [String: [String: String]] = [:]

    init(client: HTTPClient, serverPort: Int) {
        self.client = client
        self.serverPort = serverPort
    }

    func cookies(for host: String) -> [String: String] { jar[host] ?? [:] }

    func setCookie(host: String, name: String, value: String) { jar[host, default: [:]][name] = value }

    func request(
        _ urlText: String, method: HTTPMethod = .get, headers: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> BrowserResponse {
        let url = try HTTPURL(parsing: urlText)
        let upstream: HTTPUpstream =
            url.host.hasSuffix("example.test")
            ? HTTPUpstream(scheme: .http, host: "127.0.0.1", port: serverPort)
            : HTTPUpstream(scheme: .http, host: url.host, port: url.port)
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: url.hostAndPort)
        let jarCookies = cookies(for: url.host)
        if !jarCookies.isEmpty {
            fields.add(
                name: "Cookie",
                value: jarCookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
        }
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = try HTTPRequestHead(method: method, target: url.requestTarget, headers: fields)
        let response = try await client.send(
            head, body: body, to: upstream, timeouts: HTTPClientTimeouts(connect: 5, read: 20, write: 5))
        let result = BrowserResponse(status: response.head.status, headers: response.head.headers, body: response.body)
        for line in result.setCookies { store(setCookie: line, host: url.host) }
        return result
    }

    private func store(setCookie line: String, host: String) {
        let parts = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = parts.first, let equals = first.firstIndex(of: "=") else { return }
        let name = String(first[..<equals])
        let value = String(first[first.index(after: equals)...])
        let attributes = parts.dropFirst().map { $0.lowercased() }
        let expired = attributes.contains { $0.hasPrefix("max-age=") && (Int($0.dropFirst(8)) ?? 1) <= 0 }
        if value.isEmpty || expired {
            jar[host]?[name] = nil
        } else {
            jar[host, default: [:]][name] = value
        }
    }
}

/// A running authenticate service behind a real HTTP server, with the mock provider.
struct AuthenticateHarness {
    static let sharedSecret = [UInt8](repeating: 7, count: 32)
    static let cookieSecret = [UInt8](repeating: 9, count: 32)

    let idpPort: Int
    let port: Int
    let service: AuthenticateService
    let transport: CountingTransport
    let provider: RecordingProvider
    let store: MemoryStore
    let clock: ManualWallClock
    let client: HTTPClient
    let logs: InMemoryLogHandler.Store
    let options: Options

    var authenticateBase: String { "http://authn.example.test:\(port)" }
    var idpBase: String { "http://127.0.0.1:\(idpPort)" }

    func makeBrowser() -> TestBrowser { TestBrowser(client: client, serverPort: port) }

    var signer: URLSigner {
        get throws { try URLSigner(sharedSecret: Self.sharedSecret, clock: clock, logger: Logger(label: "test")) }
    }

    /// Returns a signed sign-in URL as the proxy builds it.
    func signInURL(
        redirect: String = "https://app.example.test/private?x=1", extra: [(String, String)] = []
    ) throws -> String {
        var query = URLQuery()
        query.append(name: "pomerium_redirect_uri", value: redirect)
        for (name, value) in extra { query.append(name: name, value: value) }
        return try signed(path: AuthenticateService.signInPath, query: query)
    }

    func signed(path: String, query: URLQuery) throws -> String {
        var url = try HTTPURL(parsing: authenticateBase + path)
        url.query = query.encodedSortedByName
        return try signer.sign(url).description
    }

    static func options(port: Int, idpPort: Int, extraYAML: String = "") throws -> Options {
        let yaml = """
            insecure_server: true
            authenticate_service_url: http://authn.example.test:\(port)
            authenticate_callback_path: /custom/callback
            forward_auth_url: https://fwd.example.test
            shared_secret: \(Data(sharedSecret).base64EncodedString())
            cookie_secret: \(Data(cookieSecret).base64EncodedString())
            cookie_secure: false
            idp_provider: oidc
            idp_provider_url: http://127.0.0.1:\(idpPort)
            idp_client_id: pomerium-test-client
            idp_client_secret: test-secret
            idp_scopes: [openid, email, profile, offline_access]
            administrators: [admin@example.test]
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:9
                allowed_domains: [example.test]
            \(extraYAML)
            """
        let result = ConfigLoader.load(text: yaml, format: .yaml)
        guard result.isValid else { throw FixtureError("invalid test config: \(result.errors)") }
        return result.options
    }

    /// Runs `body` with the mock provider, the service and its server.
    static func run<T>(
        failsRevocation: Bool = false,
        mockArguments: [String] = [],
        _ body: (AuthenticateHarness) async throws -> T
    ) async throws -> T {
        try await Fixtures.withOIDCProvider(extraArguments: mockArguments) { idp in
            try await run(idpPort: idp.port, failsRevocation: failsRevocation, body)
        }
    }

    static func run<T>(
        idpPort: Int,
        failsRevocation: Bool = false,
        _ body: (AuthenticateHarness) async throws -> T
    ) async throws -> T {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let client = HTTPClient(group: group)
        let port = try LoopbackPort.allocate()
        let options = try options(port: port, idpPort: idpPort)
        let clock = ManualWallClock(now: SystemWallClock().now())
        let logs = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: logs)
        let transport = CountingTransport(inner: ClientIdentityTransport(client: client))
        let discovered = try await AuthenticateService.discoverProvider(
            options: options, transport: transport, clock: SystemWallClock(), logger: logger)
        let provider = RecordingProvider(inner: discovered, failsRevocation: failsRevocation)
        let store = try MemoryStore(clock: clock)
        let keySet = try AssertionKeySet(current: try ECPrivateKey.generate().publicKey)
        let service = try AuthenticateService(
            options: options, provider: provider, store: store, keySet: keySet, clock: clock, logger: logger,
            singleFlight: SingleFlight(store: store, pollInterval: .milliseconds(20)))
        let server = try await HTTPServer(
            group: group,
            configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:\(port)"))
        ) { loop in service.makeHandler(loop: loop) }
        let harness = AuthenticateHarness(
            idpPort: idpPort, port: port, service: service, transport: transport, provider: provider,
            store: store, clock: clock, client: client, logs: logs, options: options)
        do {
            let result = try await body(harness)
            await server.shutdown(gracePeriod: 1)
            return result
        } catch {
            await server.shutdown(gracePeriod: 1)
            throw error
        }
    }

    /// Stores claims for `subject` at the mock (`PUT /users/<sub>`).
    func presetUser(_ subject: String, claims: [String: Any]) async throws {
        let body = Array(try JSONSerialization.data(withJSONObject: claims))
        let head = try HTTPRequestHead(
            method: .put, target: "/users/\(subject)",
            headers: ["Host": "127.0.0.1:\(idpPort)", "Content-Type": "application/json"])
        let response = try await client.send(
            head, body: body, to: HTTPUpstream(scheme: .http, host: "127.0.0.1", port: idpPort))
        guard response.head.status == 204 else { throw FixtureError("PUT /users failed: \(response.head.status)") }
    }

    /// Logs in at the mock's form as `subject` from the IdP authorization URL and returns the
    /// redirect to the authenticate callback.
    func submitLogin(_ browser: TestBrowser, authorizationURL: String, subject: String) async throws -> BrowserResponse
    {
        let form = try await browser.request(authorizationURL)
        guard form.status == 200 else { throw FixtureError("the mock's login page returned \(form.status)") }
        return try await browser.request(
            authorizationURL, method: .post, headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Array("sub=\(subject)".utf8))
    }

    /// Runs the whole browser login for `subject` and returns the final redirect to the route's
    /// callback.
    func login(
        _ browser: TestBrowser, subject: String, redirect: String = "https://app.example.test/private?x=1",
        extra: [(String, String)] = []
    ) async throws -> BrowserResponse {
        let start = try await browser.request(try signInURL(redirect: redirect, extra: extra))
        guard start.status == 302, let idpURL = start.location, idpURL.hasPrefix(idpBase) else {
            throw FixtureError("sign-in did not redirect to the provider: \(start.status) \(start.text.prefix(200))")
        }
        let back = try await submitLogin(browser, authorizationURL: idpURL, subject: subject)
        guard back.status == 302, let callback = back.location else {
            throw FixtureError("the mock did not redirect back: \(back.status)")
        }
        let afterCallback = try await browser.request(callback)
        guard afterCallback.status == 302, let signIn = afterCallback.location else {
            throw FixtureError("the callback failed: \(afterCallback.status) \(afterCallback.text.prefix(300))")
        }
        return try await browser.request(signIn)
    }

    /// Opens the route session that a redirect to the proxy's callback carries.
    func routeSession(from location: String, audienceHost: String = "app.example.test") throws -> (
        SessionState, URLQuery
    ) {
        let url = try HTTPURL(parsing: location)
        try signer.validate(url)
        let query = URLQuery(parsingLeniently: url.query ?? "")
        let payload = try CallbackPayloadCodec(sharedSecret: Self.sharedSecret, logger: Logger(label: "test"))
        let token = try payload.open(query.value(for: "pomerium_session_encrypted") ?? "")
        let codec = try RouteSessionTokenCodec(
            sharedSecret: Self.sharedSecret, clock: clock, logger: Logger(label: "test"))
        return (try codec.verify(Array(token.utf8), audienceHost: audienceHost), query)
    }

    /// Every log line as JSON text.
    var logText: String { logs.all.map(\.jsonLine).joined(separator: "\n") }
}
