import PomeriumCrypto
import Testing

@testable import PomeriumIdentity

@Suite struct ConfigurationTests {
    private func configuration(
        kind: ProviderKind = .oidc,
        providerURL: String = "https://idp.example.test",
        clientID: String = "client",
        clientSecret: String = "secret",
        scopes: [String] = []
    ) -> ProviderConfiguration {
        ProviderConfiguration(
            kind: kind,
            providerURL: providerURL,
            clientID: clientID,
            clientSecret: clientSecret,
            redirectURL: "https://authenticate.example.test/oauth2/callback",
            scopes: scopes
        )
    }

    @Test func providerDefaultsTable() {
        #expect(ProviderKind.oidc.defaults.providerURL == nil)
        #expect(ProviderKind.oidc.defaults.scopes == ["openid", "profile", "email", "offline_access"])
        #expect(ProviderKind.google.defaults.providerURL == "https://accounts.google.com")
        #expect(ProviderKind.google.defaults.scopes == ["openid", "profile", "email"])
        #expect(
            ProviderKind.google.defaults.authorizationParameters.map(\.value) == ["offline", "select_account consent"])
        #expect(ProviderKind.azure.defaults.scopes.contains("Group.Read.All"))
        #expect(ProviderKind.azure.defaults.authorizationParameters.map(\.value) == ["offline", "select_account"])
        #expect(ProviderKind.okta.defaults.providerURL == nil)
        #expect(ProviderKind.onelogin.defaults.providerURL == "https://openid-connect.onelogin.com/oidc")
        #expect(ProviderKind.gitlab.defaults.scopes == ["openid", "api", "read_user", "profile", "email"])
        #expect(ProviderKind.gitlab.defaults.groupSource == .gitlabAPI)
        for kind in ProviderKind.allCases {
            #expect(kind.defaults.kind == kind)
            #expect(kind.defaults.authorizationParameters.first?.name == "access_type")
        }
    }

    @Test func providerKindRejectsUnknownName() throws {
        #expect(try ProviderKind(setting: "azure") == .azure)
        #expect(throws: IdentityError.self) { try ProviderKind(setting: "github") }
        do {
            _ = try ProviderKind(setting: "Google")
            Issue.record("a differently cased name was accepted")
        } catch {
            #expect(error.description.contains("\"Google\""))
            #expect(error.description.contains("google"))
        }
    }

    @Test func defaultURLAndScopesApply() throws {
        let google = configuration(kind: .google, providerURL: "")
        #expect(google.issuer == "https://accounts.google.com")
        #expect(google.effectiveScopes == ["openid", "profile", "email"])
        try google.validate()
        let custom = configuration(scopes: ["openid", "groups"])
        #expect(custom.effectiveScopes == ["openid", "groups"])
    }

    @Test func validationCollectsEveryProblem() {
        let broken = configuration(providerURL: "", clientID: "", clientSecret: "", scopes: ["profile"])
        do {
            try broken.validate()
            Issue.record("an invalid configuration passed validation")
        } catch {
            let message = error.description
            #expect(message.contains("idp_provider_url is required"))
            #expect(message.contains("idp_client_id is required"))
            #expect(message.contains("idp_client_secret is required"))
            #expect(message.contains("must contain \"openid\""))
        }
    }

    @Test func plainHTTPOnlyForLoopback() throws {
        #expect(throws: IdentityError.self) { try configuration(providerURL: "http://idp.example.test").validate() }
        try configuration(providerURL: "http://127.0.0.1:9400").validate()
        try configuration(providerURL: "http://localhost:9400").validate()
        var allowed = configuration(providerURL: "http://idp.internal.test")
        allowed.allowsPlainHTTP = true
        try allowed.validate()
    }

    @Test func providerURLRejectsUserInfoAndFragment() throws {
        #expect(ProviderURL.parse("https://user:pw@idp.example.test") == nil)
        #expect(ProviderURL.parse("https://idp.example.test/#x") == nil)
        #expect(ProviderURL.parse("ftp://idp.example.test") == nil)
        #expect(ProviderURL.parse("https://idp.example.test:99999") == nil)
        #expect(ProviderURL.parse("https://[::1]:8443/a?b=c")?.port == 8443)
        #expect(ProviderURL.isLoopback(host: try #require(ProviderURL.parse("http://[::1]:80")).host))
        #expect(ProviderURL.parse("https://IdP.Example.Test")?.host == "idp.example.test")
    }

    @Test func formEncodingEscapesReservedBytes() {
        #expect(FormEncoding.escape("a b+c&d=e/f:g") == "a+b%2Bc%26d%3De%2Ff%3Ag")
        #expect(FormEncoding.escape("AZaz09-._~") == "AZaz09-._~")
        #expect(FormEncoding.escape("é") == "%C3%A9")
        #expect(FormEncoding.encode([("a", "1 2"), ("b", "x")]) == "a=1+2&b=x")
    }

    @Test func queryAppendsToExistingQuery() {
        #expect(ProviderURL.appendingQuery("https://a.test/auth", [("x", "1")]) == "https://a.test/auth?x=1")
        #expect(ProviderURL.appendingQuery("https://a.test/auth?t=a", [("x", "1")]) == "https://a.test/auth?t=a&x=1")
        #expect(ProviderURL.appendingQuery("https://a.test/auth?", [("x", "1")]) == "https://a.test/auth?x=1")
    }

    @Test func basicAuthorizationFormEncodesBothParts() throws {
        let header = TokenEndpointClient.basicAuthorization(clientID: "id:with colon", clientSecret: "p@ss+w/rd")
        #expect(header.hasPrefix("Basic "))
        let decoded = try #require(Base64.standard.decode(header.dropFirst("Basic ".count)))
        #expect(String(decoding: decoded, as: UTF8.self) == "id%3Awith+colon:p%40ss%2Bw%2Frd")
    }

    @Test func authenticationMethodChoice() {
        #expect(TokenEndpointClient.chooseMethod(configured: nil, supported: []) == .clientSecretBasic)
        #expect(
            TokenEndpointClient.chooseMethod(configured: nil, supported: ["client_secret_post", "client_secret_basic"])
                == .clientSecretBasic)
        #expect(
            TokenEndpointClient.chooseMethod(configured: nil, supported: ["client_secret_post"]) == .clientSecretPost)
        #expect(
            TokenEndpointClient.chooseMethod(configured: .clientSecretPost, supported: ["client_secret_basic"])
                == .clientSecretPost)
    }
}
