import PomeriumHTTP
import PomeriumNet
import PomeriumTestSupport
import Testing

@testable import PomeriumCLI
@testable import PomeriumHTTPClient

@Suite("login callback")
struct CallbackListenerTests {
    let jwt = makeJWT(#"{"exp":2000000000}"#)

    @Test("only the callback with this login's state counts")
    func stateChecked() async throws {
        let waiter = CallbackWaiter(state: "s3cret")
        #expect(waiter.handle(method: .get, path: "/favicon.ico", query: nil).status == 404)
        #expect(waiter.handle(method: .post, path: "/", query: nil).status == 405)
        let foreign = waiter.handle(
            method: .get, path: "/", query: "pomerium_cli_state=other&pomerium_jwt=\(jwt)&pomerium_refresh_token=r")
        #expect(foreign.status == 400)
        #expect(!waiter.isFinished, "a foreign callback does not end the login")
        let good = waiter.handle(
            method: .get, path: "/", query: "pomerium_cli_state=s3cret&pomerium_jwt=\(jwt)&pomerium_refresh_token=r")
        #expect(good.status == 200)
        #expect(good.page.contains("Login complete"))
        #expect(!good.page.contains(jwt), "the page does not echo the token")
        #expect(try await waiter.wait().get() == CallbackTokens(jwt: jwt, refreshToken: "r"))
        #expect(waiter.handle(method: .get, path: "/", query: "pomerium_cli_state=s3cret").status == 409)
    }

    @Test("a callback without tokens fails the login")
    func malformed() async throws {
        let waiter = CallbackWaiter(state: "s")
        let answer = waiter.handle(method: .get, path: "/", query: "pomerium_cli_state=s&pomerium_jwt=nope")
        #expect(answer.status == 400)
        let result = await waiter.wait()
        guard case .failure(let error) = result else {
            Issue.record("the login succeeded")
            return
        }
        #expect(error.message.contains("a pomerium_jwt in JWT form and a pomerium_refresh_token"))
    }

    @Test("listener receives tokens over loopback")
    func loopback() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try await CallbackListener.start(group: group)
        let redirect = try HTTPURL(parsing: listener.redirectURI)
        #expect(redirect.host == "127.0.0.1")
        #expect(redirect.path == "/")
        let port = try #require(redirect.port)
        let target = "/?\(redirect.query ?? "")&pomerium_jwt=\(jwt)&pomerium_refresh_token=refresh"
        let response = try await Task.detached { try LoopbackConnection.httpGet(port: port, path: target) }.value
        #expect(response.hasPrefix("HTTP/1.1 200"))
        #expect(response.contains("Content-Security-Policy: default-src 'none'"))
        let tokens = try await listener.waitForTokens(timeout: 10)
        #expect(tokens.refreshToken == "refresh")
        await listener.close()
    }

    @Test("waiting ends after the timeout")
    func timeout() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let listener = try await CallbackListener.start(group: group)
        do {
            _ = try await listener.waitForTokens(timeout: 0.05)
            Issue.record("no timeout")
        } catch {
            #expect(error.kind == .login)
            #expect(error.message.contains("--login-timeout"))
        }
        await listener.close()
    }
}

@Suite("browser and responses")
struct BrowserAndResponseTests {
    @Test("BROWSER commands take the URL")
    func browserCommands() {
        let url = "https://authn.example.test/.pomerium/sign_in?a=b"
        #expect(BrowserLauncher.commands(browser: "firefox", url: url) == [["firefox", url]])
        #expect(
            BrowserLauncher.commands(browser: "open -a 'x' %s:lynx", url: url) == [
                ["open", "-a", "'x'", url], ["lynx", url],
            ])
        #expect(BrowserLauncher.commands(browser: "::", url: url).isEmpty)
    }

    @Test("only Pomerium's own 401 or sign-in redirect counts as a rejected token")
    func sessionRejection() throws {
        func response(_ status: Int, _ headers: [(String, String)]) -> HTTPClientResponse {
            var fields = HTTPHeaders()
            for (name, value) in headers { fields.add(name: name, value: value) }
            return HTTPClientResponse(head: HTTPResponseHead(status: status, headers: fields), body: [])
        }
        let intercepted = ("X-Pomerium-Intercepted-Response", "true")
        #expect(CLIRunner.isSessionRejection(response(401, [intercepted])))
        #expect(!CLIRunner.isSessionRejection(response(401, [])), "the application's own 401")
        #expect(
            CLIRunner.isSessionRejection(
                response(302, [intercepted, ("Location", "https://authn.example.test/.pomerium/sign_in?x=1")])))
        #expect(!CLIRunner.isSessionRejection(response(302, [intercepted, ("Location", "/elsewhere")])))
        #expect(!CLIRunner.isSessionRejection(response(403, [intercepted])))
    }

    @Test("connection errors name the fix")
    func connectionErrors() {
        let target = "https://app.example.test"
        let tls = CLIHTTPClient.describe(.tlsFailed("certificate verify failed"), target: target, timeout: 30)
        #expect(tls.message.contains("--cacert FILE"))
        #expect(tls.message.contains("--insecure"))
        let resolve = CLIHTTPClient.describe(.resolveFailed("unknown"), target: target, timeout: 30)
        #expect(resolve.message.contains("--resolve HOST:PORT:ADDRESS"))
        let timeout = CLIHTTPClient.describe(.readTimeout, target: target, timeout: 5)
        #expect(timeout.message.contains("within 5.0 s"))
        #expect(timeout.message.contains("--timeout"))
        let refused = CLIHTTPClient.describe(.connectFailed("refused"), target: target, timeout: 5)
        #expect(refused.message.hasPrefix("cannot connect to https://app.example.test"))
    }

    @Test("a missing CA file is named")
    func missingCertificateAuthority() throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        do {
            _ = try CLIHTTPClient(
                group: group, settings: ConnectionSettings(certificateAuthorityFile: "/nonexistent/ca.pem"))
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("/nonexistent/ca.pem given with --cacert"))
        }
    }
}
