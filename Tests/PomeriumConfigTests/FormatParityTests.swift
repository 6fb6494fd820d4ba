import Foundation
import Testing

@testable import PomeriumConfig

/// The same settings written as YAML, JSON, TOML, properties and environment variables must give
/// equal options.
@Suite struct FormatParityTests {
    static let certificate = TestConfig.base64(TestMaterial.serverCertificate)
    static let key = TestConfig.base64(TestMaterial.serverKey)

    static let yaml = """
        services: all
        address: ":8443"
        certificate: \(certificate)
        certificate_key: \(key)
        shared_secret: \(TestConfig.sharedSecret)
        cookie_secret: \(TestConfig.cookieSecret)
        cookie_name: _pom
        cookie_expire: 1h30m
        cookie_secure: false
        cookie_samesite: Strict
        authenticate_service_url: https://authenticate.example.test
        idp_provider: oidc
        idp_provider_url: https://idp.example.test
        idp_client_id: client
        idp_client_secret: secret
        idp_scopes: [openid, email]
        administrators: [admin@example.test]
        jwt_claims_headers: [email, groups]
        headers:
          X-Frame-Options: DENY
          X-Test: "1"
        timeout_read: 45s
        default_upstream_timeout: 10s
        grpc_client_dns_roundrobin: false
        log_level: info
        policy:
          - from: https://app.example.test
            to: http://127.0.0.1:8080/base
            prefix: /api
            allowed_users: [a@example.test, b@example.test]
            allowed_domains: [example.test]
            timeout: 300ms
            set_request_headers:
              X-Upstream: one
            allow_websockets: true
          - from: https://public.example.test:8443
            to: http://127.0.0.1:8081
            allow_public_unauthenticated_access: true

        """

    static let json = """
        {
          "services": "all",
          "address": ":8443",
          "certificate": "\(certificate)",
          "certificate_key": "\(key)",
          "shared_secret": "\(TestConfig.sharedSecret)",
          "cookie_secret": "\(TestConfig.cookieSecret)",
          "cookie_name": "_pom",
          "cookie_expire": "1h30m",
          "cookie_secure": false,
          "cookie_samesite": "Strict",
          "authenticate_service_url": "https://authenticate.example.test",
          "idp_provider": "oidc",
          "idp_provider_url": "https://idp.example.test",
          "idp_client_id": "client",
          "idp_client_secret": "secret",
          "idp_scopes": ["openid", "email"],
          "administrators": ["admin@example.test"],
          "jwt_claims_headers": ["email", "groups"],
          "headers": {"X-Frame-Options": "DENY", "X-Test": "1"},
          "timeout_read": "45s",
          "default_upstream_timeout": "10s",
          "grpc_client_dns_roundrobin": false,
          "log_level": "info",
          "policy": [
            {
              "from": "https://app.example.test",
              "to": "http://127.0.0.1:8080/base",
              "prefix": "/api",
              "allowed_users": ["a@example.test", "b@example.test"],
              "allowed_domains": ["example.test"],
              "timeout": "300ms",
              "set_request_headers": {"X-Upstream": "one"},
              "allow_websockets": true
            },
            {
              "from": "https://public.example.test:8443",
              "to": "http://127.0.0.1:8081",
              "allow_public_unauthenticated_access": true
            }
          ]
        }

        """

    static let toml = """
        services = "all"
        address = ":8443"
        certificate = "\(certificate)"
        certificate_key = "\(key)"
        shared_secret = "\(TestConfig.sharedSecret)"
        cookie_secret = "\(TestConfig.cookieSecret)"
        cookie_name = "_pom"
        cookie_expire = "1h30m"
        cookie_secure = false
        cookie_samesite = "Strict"
        authenticate_service_url = "https://authenticate.example.test"
        idp_provider = "oidc"
        idp_provider_url = "https://idp.example.test"
        idp_client_id = "client"
        idp_client_secret = 'secret'
        idp_scopes = ["openid", "email"]
        administrators = ["admin@example.test"]
        jwt_claims_headers = [
          "email",
          "groups",  # trailing comma and comment
        ]
        headers = { X-Frame-Options = "DENY", X-Test = "1" }
        timeout_read = "45s"
        default_upstream_timeout = "10s"
        grpc_client_dns_roundrobin = false
        log_level = "info"

        [[policy]]
        from = "https://app.example.test"
        to = "http://127.0.0.1:8080/base"
        prefix = "/api"
        allowed_users = ["a@example.test", "b@example.test"]
        allowed_domains = ["example.test"]
        timeout = "300ms"
        allow_websockets = true

        [policy.set_request_headers]
        X-Upstream = "one"

        [[policy]]
        from = "https://public.example.test:8443"
        to = "http://127.0.0.1:8081"
        allow_public_unauthenticated_access = true

        """

    static let properties = """
        # The same settings as Java properties.
        services = all
        address = :8443
        certificate = \(certificate)
        certificate_key = \(key)
        shared_secret = \(TestConfig.sharedSecret)
        cookie_secret: \(TestConfig.cookieSecret)
        cookie_name _pom
        cookie_expire = 1h30m
        cookie_secure = false
        cookie_samesite = Strict
        authenticate_service_url = https://authenticate.example.test
        idp_provider = oidc
        idp_provider_url = https://idp.example.test
        idp_client_id = client
        idp_client_secret = secret
        idp_scopes = openid, email
        administrators = admin@example.test
        jwt_claims_headers = email, \\
            groups
        headers.X-Frame-Options = DENY
        headers.X-Test = 1
        timeout_read = 45s
        default_upstream_timeout = 10s
        grpc_client_dns_roundrobin = false
        log_level = info
        policy.0.from = https://app.example.test
        policy.0.to = http://127.0.0.1:8080/base
        policy.0.prefix = /api
        policy.0.allowed_users = a@example.test, b@example.test
        policy.0.allowed_domains = example.test
        policy.0.timeout = 300ms
        policy.0.set_request_headers.X-Upstream = one
        policy.0.allow_websockets = true
        policy.1.from = https://public.example.test:8443
        policy.1.to = http://127.0.0.1:8081
        policy.1.allow_public_unauthenticated_access = true

        """

    static let policyYAML = """
        - from: https://app.example.test
          to: http://127.0.0.1:8080/base
          prefix: /api
          allowed_users: [a@example.test, b@example.test]
          allowed_domains: [example.test]
          timeout: 300ms
          set_request_headers: {X-Upstream: one}
          allow_websockets: true
        - from: https://public.example.test:8443
          to: http://127.0.0.1:8081
          allow_public_unauthenticated_access: true
        """

    static let environment: [String: String] = [
        "SERVICES": "all",
        "ADDRESS": ":8443",
        "CERTIFICATE": certificate,
        "CERTIFICATE_KEY": key,
        "SHARED_SECRET": TestConfig.sharedSecret,
        "COOKIE_SECRET": TestConfig.cookieSecret,
        "COOKIE_NAME": "_pom",
        "COOKIE_EXPIRE": "1h30m",
        "COOKIE_SECURE": "FALSE",
        "COOKIE_SAMESITE": "Strict",
        "AUTHENTICATE_SERVICE_URL": "https://authenticate.example.test",
        "IDP_PROVIDER": "oidc",
        "IDP_PROVIDER_URL": "https://idp.example.test",
        "IDP_CLIENT_ID": "client",
        "IDP_CLIENT_SECRET": "secret",
        "IDP_SCOPES": "openid,email",
        "ADMINISTRATORS": "admin@example.test",
        "JWT_CLAIMS_HEADERS": "email,groups",
        "HEADERS": "X-Frame-Options:DENY,X-Test:1",
        "TIMEOUT_READ": "45s",
        "DEFAULT_UPSTREAM_TIMEOUT": "10s",
        "GRPC_CLIENT_DNS_ROUNDROBIN": "f",
        "LOG_LEVEL": "info",
        "POLICY": TestConfig.base64(policyYAML),
    ]

    static func expectSample(_ result: ConfigLoadResult) {
        #expect(result.isValid, "\(result.summary)")
        let options = result.options
        #expect(options.address == ":8443")
        #expect(options.tlsCertificates.count == 1)
        #expect(options.cookieName == "_pom")
        #expect(options.cookieExpire == .seconds(5400))
        #expect(options.cookieSameSite == .strict)
        #expect(options.idpScopes == ["openid", "email"])
        #expect(options.headers == ["X-Frame-Options": "DENY", "X-Test": "1"])
        #expect(options.policy.count == 2)
        #expect(options.policy.first?.timeout == .milliseconds(300))
        #expect(options.policy.first?.setRequestHeaders == ["X-Upstream": "one"])
        #expect(options.policy.last?.from.port == 8443)
        #expect(options.policy.last?.timeout == .seconds(10))
    }

    @Test func yamlSampleDecodes() throws {
        Self.expectSample(try TestConfig.load(Self.yaml, name: "config.yaml"))
    }

    static let files: [String: String] = [
        "config.json": json, "config.toml": toml, "config.properties": properties, "config.yml": yaml,
        "config.props": properties, "config.prop": properties,
    ]

    @Test(arguments: ["config.json", "config.toml", "config.properties", "config.yml", "config.props", "config.prop"])
    func formatMatchesYAML(name: String) throws {
        let text = try #require(Self.files[name])
        let reference = try TestConfig.load(Self.yaml, name: "config.yaml")
        let result = try TestConfig.load(text, name: name)
        Self.expectSample(result)
        #expect(result.options == reference.options)
        #expect(result.problems == [])
    }

    @Test func environmentMatchesYAML() throws {
        let reference = try TestConfig.load(Self.yaml, name: "config.yaml")
        let result = TestConfig.loadEnvironment(Self.environment)
        Self.expectSample(result)
        #expect(result.options == reference.options)
        #expect(result.problems == [])
    }

    @Test func policyEnvironmentAcceptsJSON() throws {
        let json = """
            [{"from": "https://app.example.test", "to": "http://127.0.0.1:8080/base", "prefix": "/api",
              "allowed_users": ["a@example.test", "b@example.test"], "allowed_domains": ["example.test"],
              "timeout": "300ms", "set_request_headers": {"X-Upstream": "one"}, "allow_websockets": true},
             {"from": "https://public.example.test:8443", "to": "http://127.0.0.1:8081",
              "allow_public_unauthenticated_access": true}]
            """
        var environment = Self.environment
        environment["POLICY"] = TestConfig.base64(json)
        environment["HEADERS"] = #"{"X-Frame-Options": "DENY", "X-Test": "1"}"#
        let reference = try TestConfig.load(Self.yaml, name: "config.yaml")
        let result = TestConfig.loadEnvironment(environment)
        #expect(result.options == reference.options, "\(result.summary)")
    }

    @Test func environmentOverridesFile() throws {
        let result = try TestConfig.load(
            Self.yaml,
            environment: [
                "COOKIE_NAME": "_from_env",
                "POLICY": TestConfig.base64(
                    "- from: https://env.example.test\n  to: http://127.0.0.1:9\n  allowed_users: [x@example.test]"),
            ])
        #expect(result.options.cookieName == "_from_env")
        #expect(result.options.policy.count == 1)
        #expect(result.options.policy.first?.from.host == "env.example.test")
        // A key the environment leaves out keeps the file's value.
        #expect(result.options.address == ":8443")
    }

    @Test func emptyEnvironmentValueIsUnset() throws {
        let result = try TestConfig.load(Self.yaml, environment: ["COOKIE_NAME": ""])
        #expect(result.options.cookieName == "_pom")
    }
}
