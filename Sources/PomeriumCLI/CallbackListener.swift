import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import Synchronization

/// The tokens that the proxy's programmatic callback delivers to the local listener.
public struct CallbackTokens: Sendable, Equatable {
    public var jwt: String
    public var refreshToken: String
}

/// A one-shot HTTP listener on 127.0.0.1 (an ephemeral port) that receives the browser at the end
/// of a programmatic login. The redirect URI carries a random `state` value, and only a callback
/// with that value counts, so another local program cannot hand the command tokens of its own.
public final class CallbackListener: Sendable {
    /// The query parameter that binds a callback to this login.
    static let stateParameter = "pomerium_cli_state"

    private let server: HTTPServer
    private let waiter: CallbackWaiter
    /// The URL the proxy sends the browser to: `http://127.0.0.1:PORT/?pomerium_cli_state=...`.
    public let redirectURI: String

    private init(server: HTTPServer, waiter: CallbackWaiter, redirectURI: String) {
        self.server = server
        self.waiter = waiter
        self.redirectURI = redirectURI
    }

    /// Starts listening on 127.0.0.1 with a port the kernel picks.
    public static func start(group: EventLoopGroup) async throws(CLIError) -> CallbackListener {
        let state: String
        do {
            state = Base64.urlUnpadded.encode(try SecureRandom.bytes(16))
        } catch {
            throw CLIError(.login, "cannot generate the login state: \(error)")
        }
        let waiter = CallbackWaiter(state: state)
        let server: HTTPServer
        do {
            let address = try SocketAddress(parsing: "127.0.0.1", defaultPort: 0)
            let configuration = HTTPServerConfiguration(
                address: address, readHeaderTimeout: 10, readTimeout: 10, writeTimeout: 10, idleTimeout: 10)
            server = try await HTTPServer(
                group: group, configuration: configuration, logger: Logger(label: "pomerium-cli.callback")
            ) { _ in CallbackHandler(waiter: waiter) }
        } catch {
            throw CLIError(.login, "cannot listen on 127.0.0.1 for the login callback: \(error)")
        }
        let redirect = "http://127.0.0.1:\(server.localAddress.port)/?\(stateParameter)=\(state)"
        return CallbackListener(server: server, waiter: waiter, redirectURI: redirect)
    }

    /// Waits until the browser delivers the tokens, a malformed callback arrives, or `timeout`
    /// seconds pass.
    public func waitForTokens(timeout: Double) async throws(CLIError) -> CallbackTokens {
        let waiter = self.waiter
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            waiter.finish(
                .failure(
                    CLIError(
                        .login,
                        "the browser login did not finish within \(Int(timeout)) s: open the sign-in URL again, or raise --login-timeout"
                    )))
        }
        defer { timer.cancel() }
        let result = await waiter.wait()
        return try result.get()
    }

    /// Stops listening. The reply page already went out when the tokens arrived.
    public func close() async {
        await server.shutdown(gracePeriod: 2)
    }
}

/// The first result of a login callback, and the task waiting for it.
final class CallbackWaiter: Sendable {
    let state: String
    private struct Pending {
        var result: Result<CallbackTokens, CLIError>?
        var continuation: CheckedContinuation<Result<CallbackTokens, CLIError>, Never>?
    }
    private let pending = Mutex(Pending())

    init(state: String) {
        self.state = state
    }

    /// Records the outcome; only the first one counts.
    func finish(_ result: Result<CallbackTokens, CLIError>) {
        let continuation = pending.withLock {
            pending -> CheckedContinuation<Result<CallbackTokens, CLIError>, Never>? in
            guard pending.result == nil else { return nil }
            pending.result = result
            let continuation = pending.continuation
            pending.continuation = nil
            return continuation
        }
        continuation?.resume(returning: result)
    }

    var isFinished: Bool { pending.withLock { $0.result != nil } }

    func wait() async -> Result<CallbackTokens, CLIError> {
        await withCheckedContinuation { continuation in
            let ready = pending.withLock { pending -> Result<CallbackTokens, CLIError>? in
                if let result = pending.result { return result }
                pending.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Checks one request to the listener and returns the status and page for the browser.
    func handle(method: HTTPMethod, path: String, query: String?) -> (status: Int, page: String) {
        guard path == "/" else {
            return (404, CallbackPage.html(title: "Not found", text: "This address only receives a login callback."))
        }
        guard method == .get || method == .head else {
            return (405, CallbackPage.html(title: "Method not allowed", text: "The login callback uses GET."))
        }
        guard !isFinished else {
            return (409, CallbackPage.html(title: "Login already handled", text: "Return to the terminal."))
        }
        let parameters = URLQuery(parsingLeniently: query ?? "")
        guard let presented = parameters.value(for: CallbackListener.stateParameter),
            ConstantTime.equals(Array(presented.utf8), Array(state.utf8))
        else {
            // Not this login's callback, perhaps a stale tab: keep waiting for the real one.
            return (
                400,
                CallbackPage.html(
                    title: "Unknown login", text: "This callback does not belong to the running login. Start it again.")
            )
        }
        let jwt = parameters.value(for: "pomerium_jwt") ?? ""
        let refreshToken = parameters.value(for: "pomerium_refresh_token") ?? ""
        guard RouteCredentials.isCompactJWS(jwt), !refreshToken.isEmpty else {
            var missing: [String] = []
            if !RouteCredentials.isCompactJWS(jwt) { missing.append("a pomerium_jwt in JWT form") }
            if refreshToken.isEmpty { missing.append("a pomerium_refresh_token") }
            let reason = missing.joined(separator: " and ")
            finish(
                .failure(
                    CLIError(
                        .login,
                        "the login callback is malformed: it has no \(reason); check that the proxy runs Pomerium with programmatic login"
                    )))
            return (400, CallbackPage.html(title: "Login failed", text: "The callback has no \(reason)."))
        }
        finish(.success(CallbackTokens(jwt: jwt, refreshToken: refreshToken)))
        return (
            200,
            CallbackPage.html(
                title: "Login complete", text: "You are signed in. Close this tab and return to the terminal.")
        )
    }
}

/// The small page the browser shows at the end of the login.
enum CallbackPage {
    static func html(title: String, text: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(title)</title></head>
        <body><h1>\(title)</h1><p>\(text)</p></body></html>

        """
    }
}

/// One request to the callback listener.
final class CallbackHandler: HTTPRequestHandler {
    private let waiter: CallbackWaiter

    init(waiter: CallbackWaiter) {
        self.waiter = waiter
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        let answer = waiter.handle(method: head.method, path: head.path, query: head.query)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        headers.add(name: "Content-Security-Policy", value: "default-src 'none'")
        headers.add(name: "Connection", value: "close")
        responder.respond(status: answer.status, headers: headers, body: Array(answer.page.utf8))
    }

    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}
}
