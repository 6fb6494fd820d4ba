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

@testable import PomeriumProxy

/// The proxy builds signed authenticate URLs in one buffer (`URLSigner.sign(base:parameters:)`).
/// They must be the URLs the general builder (`URLQuery`, `HTTPURL`, `URLSigner.sign(_:)`) gives.
@Suite("Signed authenticate URLs")
struct SignInURLTests {
    static let authenticateURLs = [
        "https://authn.example.test", "http://localhost:48140", "https://Authn.Example.TEST:8443",
        "https://authn.example.test:443", "http://127.0.0.1:80", "http://[::1]:9000",
    ]

    /// Return addresses as routes give them: ports, paths and queries of every shape.
    static let redirectURIs = [
        "http://127.0.0.1:48140/", "https://app.example.test/x?y=1",
        "https://app.example.test:8443/a%20b/c?x=1&y=%2F+z&empty=",
        "http://[2001:db8::1]:8080/p;q?r=s=t", "https://ünï.example.test/päth?q=✓ space",
        "https://app.example.test/?pomerium_signature=forged&pomerium_issued=1",
    ]

    static func withService(authenticateURL: String, _ body: (ProxyService) throws -> Void) throws {
        let text = """
            insecure_server: true
            address: 127.0.0.1:0
            shared_secret: \(ProxyHarness.sharedSecretText)
            cookie_secret: \(ProxyHarness.cookieSecretText)
            authenticate_service_url: \(authenticateURL)
            idp_provider: oidc
            idp_provider_url: https://idp.example.test
            idp_client_id: client
            idp_client_secret: secret
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:9
                allowed_domains: [example.test]
            """
        let result = ConfigLoader.load(text: text, format: .yaml)
        #expect(result.isValid, "\(result.errors.map(\.description))")
        let clock = ManualWallClock(now: 1_700_000_000)
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let signer = try IdentityAssertionSigner(signingKey: try ECPrivateKey.generate(curve: .p256), clock: clock)
        let shared = ProxySharedState(
            signer: signer, keySet: try AssertionKeySet(current: signer.publicKey),
            refresher: RecordingRefresher.failing(), client: HTTPClient(group: group),
            logger: Logger(label: "test"), clock: clock)
        try body(try ProxyService(options: result.options, shared: shared))
    }

    @Test("URLs equal the general builder")
    func sameAsGeneral() throws {
        for authenticateURL in Self.authenticateURLs {
            try Self.withService(authenticateURL: authenticateURL) { service in
                #expect(service.signInURLBase != nil, "\(authenticateURL)")
                for path in [ProxyService.signInPath, "/.pomerium/sign_out", "/other/path"] {
                    for redirect in Self.redirectURIs {
                        let parameters = [
                            (name: "pomerium_redirect_uri", value: redirect),
                            (name: SignInBinding.parameter, value: "EmiNz7LQymrAewVmHW9uEvgKfCAkI7TgeOISGe2gj-E"),
                        ]
                        let fast = try service.signedAuthenticateURL(path: path, parameters: parameters)
                        let general = try service.generalSignedAuthenticateURL(path: path, parameters: parameters)
                        #expect(fast == general, "\(authenticateURL)\(path) with \(redirect)")
                    }
                }
            }
        }
    }

    @Test("path with a query falls back")
    func pathWithQuery() throws {
        try Self.withService(authenticateURL: "https://authn.example.test") { service in
            let parameters = [(name: "a", value: "1")]
            let path = "/.pomerium/sign_in?kept=yes"
            let url = try service.signedAuthenticateURL(path: path, parameters: parameters)
            #expect(url == (try service.generalSignedAuthenticateURL(path: path, parameters: parameters)))
            #expect(url.contains("kept=yes"))
        }
    }

    @Test("redirect carries the general URL")
    func redirectMatchesGeneral() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://users.example.test
                    to: \(echo.baseURL)
                    allowed_domains: [example.test]
                  - from: https://ports.example.test:8443
                    to: \(echo.baseURL)
                    allowed_domains: [example.test]
                """
            try await ProxyHarness.run(config: config) { proxy in
                for (host, path) in [
                    ("users.example.test", "/x?y=1&z=a%20b"), ("ports.example.test:8443", "/deep/path/"),
                    ("users.example.test", "/"),
                ] {
                    let response = try await proxy.request(host: host, path: path)
                    #expect(response.status == 302)
                    let location = try #require(response.location)
                    let query = try ProxyHarness.query(of: location)
                    let parameters = [
                        (name: "pomerium_redirect_uri", value: try #require(query.value(for: "pomerium_redirect_uri"))),
                        (name: SignInBinding.parameter, value: try #require(query.value(for: SignInBinding.parameter))),
                    ]
                    let general = try proxy.service.generalSignedAuthenticateURL(
                        path: ProxyService.signInPath, parameters: parameters)
                    #expect(location == general, "\(host)\(path)")
                    try proxy.urlSigner.validate(try HTTPURL(parsing: location))
                }
            }
        }
    }
}
