import Testing

@testable import PomeriumCLI

@Suite("command line")
struct CLIOptionsTests {
    @Test(
        "the help lists every short option the parser accepts", arguments: ["-k", "-v", "-h", "-X", "-H", "-d", "-i"])
    func helpListsShortOption(option: String) {
        #expect(CLIOptions.usage.contains("  \(option), --"))
    }

    @Test("login with every connection option")
    func loginOptions() throws {
        let options = try CLIOptions.parse([
            "login", "--cacert", "ca.pem", "--insecure", "--resolve", "app.example.test:8443:127.0.0.1",
            "--login-timeout=12", "--timeout", "3.5", "--min-validity", "90", "--no-browser", "--cache-dir", "/c",
            "--verbose", "https://app.example.test:8443",
        ])
        #expect(options.command == .login)
        #expect(options.url == "https://app.example.test:8443")
        #expect(options.certificateAuthorityFile == "ca.pem")
        #expect(options.skipVerification)
        #expect(options.resolve.map(\.address) == ["127.0.0.1"])
        #expect(options.resolve.first?.port == 8443)
        #expect(options.loginTimeout == 12)
        #expect(options.requestTimeout == 3.5)
        #expect(options.minimumValidity == 90)
        #expect(!options.openBrowser)
        #expect(options.cacheDirectory == "/c")
        #expect(options.verbose)
    }

    @Test("exec takes the command after the separator")
    func execCommand() throws {
        let options = try CLIOptions.parse(["exec", "https://a.example.test", "--", "curl", "-H", "x"])
        #expect(options.command == .exec)
        #expect(options.execArguments == ["curl", "-H", "x"])
    }

    @Test("fetch options")
    func fetchOptions() throws {
        let options = try CLIOptions.parse([
            "fetch", "-X", "put", "-H", "A: b", "-d", "body", "--bearer", "-i", "https://a.example.test/x",
        ])
        #expect(options.method == "PUT")
        #expect(options.headers == ["A: b"])
        #expect(options.body == "body")
        #expect(options.bearer)
        #expect(options.includeResponseHead)
    }

    static let rejected: [(arguments: [String], fragment: String)] = [
        ([], "a command is missing"),
        (["sign-in", "https://a.example.test"], "unknown command \"sign-in\""),
        (["login"], "login needs a URL"),
        (["login", "https://a.example.test", "extra"], "unexpected argument \"extra\""),
        (["exec", "https://a.example.test", "curl"], "put the command after --"),
        (["exec", "https://a.example.test"], "exec needs a command after --"),
        (["login", "https://a.example.test", "--", "x"], "only exec takes a command"),
        (["login", "--bearer", "https://a.example.test"], "apply to fetch only"),
        (["login", "--frobnicate", "https://a.example.test"], "unknown option \"--frobnicate\""),
        (["login", "--cacert"], "option --cacert needs a value"),
        (["login", "--resolve", "a.example.test:443", "https://a"], "expected HOST:PORT:ADDRESS"),
        (["login", "--resolve", "a.example.test:http:127.0.0.1", "https://a"], "invalid port \"http\""),
        (["login", "--resolve", "a.example.test:443:localhost", "https://a"], "invalid address \"localhost\""),
        (["login", "--login-timeout", "0", "https://a"], "--login-timeout takes a number of seconds"),
        (["login", "--timeout", "abc", "https://a"], "--timeout takes a number of seconds"),
        (["login", "--min-validity", "-1", "https://a"], "--min-validity takes whole seconds"),
        (["fetch", "-H", "no-colon", "https://a"], "expected 'NAME: VALUE'"),
    ]

    @Test("invalid command lines name the problem", arguments: rejected)
    func invalid(_ testCase: (arguments: [String], fragment: String)) {
        #expect(throws: CLIError.self) { try CLIOptions.parse(testCase.arguments) }
        do {
            _ = try CLIOptions.parse(testCase.arguments)
        } catch {
            #expect(error.kind == .usage)
            #expect(error.message.contains(testCase.fragment), "\(error.message)")
        }
    }

    @Test("help and version need no command")
    func helpAndVersion() throws {
        #expect(try CLIOptions.parse(["--help"]).showHelp)
        #expect(try CLIOptions.parse(["-h"]).showHelp)
        #expect(try CLIOptions.parse(["--version"]).showVersion)
    }

    @Test("resolve accepts a bracketed IPv6 address")
    func resolveIPv6() throws {
        let entry = try ResolveOverride(parsing: "App.example.test:443:[::1]")
        #expect(entry.host == "app.example.test")
        #expect(entry.address == "::1")
    }
}

@Suite("route URLs")
struct RouteOriginTests {
    @Test("origin drops the default port and the path")
    func origin() throws {
        #expect(try RouteOrigin(parsing: "https://App.example.test/x?y=1").description == "https://app.example.test")
        #expect(try RouteOrigin(parsing: "https://app.example.test:443/").description == "https://app.example.test")
        #expect(try RouteOrigin(parsing: "http://app.example.test:8080").description == "http://app.example.test:8080")
        #expect(try RouteOrigin(parsing: "https://[::1]:8443").description == "https://[::1]:8443")
        let route = try RouteOrigin(parsing: "https://app.example.test:8443")
        #expect(route.url(path: "/a", query: "b=c").description == "https://app.example.test:8443/a?b=c")
    }

    static let rejected: [(text: String, fragment: String)] = [
        ("", "the route URL is empty"),
        ("app.example.test", "add the scheme, for example https://app.example.test"),
        ("ftp://app.example.test", "the scheme must be https or http, not ftp"),
        ("https://user:pw@app.example.test", "remove the user name and password"),
        ("https://app.example.test:99999", "invalid URL port"),
    ]

    @Test("invalid route URLs name the fix", arguments: rejected)
    func invalid(_ testCase: (text: String, fragment: String)) {
        do {
            _ = try RouteOrigin(parsing: testCase.text)
            Issue.record("\(testCase.text) was accepted")
        } catch {
            #expect(error.kind == .invalidInput)
            #expect(error.message.contains(testCase.fragment), "\(error.message)")
            #expect(!error.message.contains("pw@"), "the password is not repeated")
        }
    }

    @Test("redaction hides the query")
    func redaction() {
        #expect(RouteOrigin.redacted("https://a.example.test/x?pomerium_jwt=secret") == "https://a.example.test/x?...")
        #expect(RouteOrigin.redacted("https://a.example.test/x") == "https://a.example.test/x")
    }
}

@Suite("route URL redaction")
struct RedactionTests {
    @Test("user information is hidden")
    func userInformation() {
        #expect(RouteOrigin.redacted("https://user:pw@a.example.test:1/x") == "https://...@a.example.test:1/x")
    }
}
