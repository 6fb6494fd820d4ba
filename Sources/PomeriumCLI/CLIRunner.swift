import Glibc
import PomeriumCore
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumLogging
import PomeriumNet

/// Runs one parsed command line and returns the process exit status.
public struct CLIRunner: Sendable {
    public static let jwtVariable = "POMERIUM_JWT"

    let options: CLIOptions
    let environment: [String: String]
    let logger: Logger

    public init(options: CLIOptions, environment: [String: String], logger: Logger) {
        self.options = options
        self.environment = environment
        self.logger = logger
    }

    public func run() async -> Int32 {
        let group: EventLoopGroup
        do {
            group = try EventLoopGroup(loopCount: 1, logger: logger)
        } catch {
            CLIOutput.standardError("pomerium-cli: cannot start the event loop: \(error)\n")
            return 1
        }
        defer { group.shutdown() }
        do {
            return try await run(group: group)
        } catch {
            CLIOutput.standardError("pomerium-cli: \(error.message)\n")
            return error.kind == .usage ? 2 : 1
        }
    }

    private func run(group: EventLoopGroup) async throws(CLIError) -> Int32 {
        let requestURL = try RouteOrigin.parseWebURL(options.url, role: "URL")
        let route = RouteOrigin(url: requestURL)
        var cache: TokenCache?
        if options.useCache {
            var directory = options.cacheDirectory
            if directory == nil { directory = try TokenCache.defaultDirectory(environment: environment) }
            cache = directory.map { TokenCache(directory: $0) }
        }
        if options.command == .logout {
            return try logout(route, cache: cache)
        }
        let http = try CLIHTTPClient(
            group: group,
            settings: ConnectionSettings(
                certificateAuthorityFile: options.certificateAuthorityFile,
                skipVerification: options.skipVerification, resolve: options.resolve,
                timeout: options.requestTimeout))
        let browser = BrowserLauncher(
            browser: environment["BROWSER"], openBrowser: options.openBrowser, write: CLIOutput.standardError)
        let backend = PomeriumBackend(
            http: http, group: group, loginTimeout: options.loginTimeout, browser: browser, logger: logger)
        let manager = CredentialManager(
            backend: backend, cache: cache, clock: SystemWallClock(), minimumValidity: options.minimumValidity,
            logger: logger)
        let credentials = try await manager.credentials(for: route)

        switch options.command {
        case .login:
            CLIOutput.standardOutput(credentials.jwt + "\n")
            return 0
        case .exec:
            var childEnvironment = ChildProcess.currentEnvironment().filter {
                !$0.hasPrefix(Self.jwtVariable + "=")
            }
            childEnvironment.append("\(Self.jwtVariable)=\(credentials.jwt)")
            let pid = try ChildProcess.spawn(options.execArguments, environment: childEnvironment)
            return ChildProcess.wait(pid)
        case .fetch:
            return try await fetch(requestURL, credentials: credentials, manager: manager, http: http)
        case .logout:
            return 0
        }
    }

    private func logout(_ route: RouteOrigin, cache: TokenCache?) throws(CLIError) -> Int32 {
        guard let cache else {
            throw CLIError(.usage, "logout deletes the cached token, so it cannot run with --no-cache")
        }
        if try cache.remove(route) {
            CLIOutput.standardError("Deleted the cached token of \(route).\n")
        } else {
            CLIOutput.standardError("No cached token for \(route).\n")
        }
        return 0
    }

    // MARK: fetch

    private func fetch(
        _ url: HTTPURL, credentials: RouteCredentials, manager: CredentialManager, http: CLIHTTPClient
    ) async throws(CLIError) -> Int32 {
        var response = try await send(url, credentials: credentials, http: http)
        if Self.isSessionRejection(response) {
            logger.info(
                "the route rejected the token; renewing it", metadata: ["route": .string(credentials.route.description)]
            )
            let renewed = try await manager.renew(credentials)
            response = try await send(url, credentials: renewed, http: http)
        }
        if options.includeResponseHead {
            var head = "HTTP/1.1 \(response.head.status) \(response.head.reason)\r\n"
            for field in response.head.headers { head += "\(field.name): \(field.value)\r\n" }
            CLIOutput.standardOutput(head + "\r\n")
        }
        CLIOutput.standardOutput(bytes: response.body)
        guard response.head.status < 400 else {
            CLIOutput.standardError(
                "pomerium-cli: \(RouteOrigin.redacted(options.url)) returned status \(response.head.status) \(response.head.reason)\n"
            )
            return 1
        }
        return 0
    }

    private func send(_ url: HTTPURL, credentials: RouteCredentials, http: CLIHTTPClient) async throws(CLIError)
        -> HTTPClientResponse
    {
        let scheme = options.bearer ? "Bearer" : "Pomerium"
        var headers: [(name: String, value: String)] = []
        for header in options.headers {
            guard let colon = header.firstIndex(of: ":") else { continue }
            let name = String(header[..<colon])
            guard name.lowercased() != "authorization" else {
                throw CLIError(.usage, "--header cannot set Authorization: fetch sends the route token there")
            }
            headers.append((name, String(header[header.index(after: colon)...]).trimmingWhitespace()))
        }
        headers.append(("Authorization", "\(scheme) \(credentials.jwt)"))
        let body = Array((options.body ?? "").utf8)
        let methodName = options.method ?? (options.body == nil ? "GET" : "POST")
        guard let method = HTTPMethod(methodName) else {
            throw CLIError(.usage, "unsupported request method \"\(methodName)\" given with -X")
        }
        return try await http.send(method: method, url: url, headers: headers, body: body)
    }

    /// Returns whether Pomerium itself, not the application, rejected the token: a 401, or the redirect to
    /// sign-in that the proxy sends clients that do not ask for JSON.
    static func isSessionRejection(_ response: HTTPClientResponse) -> Bool {
        let headers = response.head.headers
        guard headers.first(name: "X-Pomerium-Intercepted-Response")?.lowercased() == "true" else { return false }
        if response.head.status == 401 { return true }
        guard response.head.status == 302, let location = headers.first(name: "Location") else { return false }
        return location.contains("/.pomerium/sign_in?")
    }
}

/// Writes to the standard streams with write(2); the C `stdout` and `stderr` globals are not
/// usable under strict concurrency.
public enum CLIOutput {
    @Sendable public static func standardOutput(_ text: String) { write(1, Array(text.utf8)) }
    @Sendable public static func standardError(_ text: String) { write(2, Array(text.utf8)) }
    public static func standardOutput(bytes: [UInt8]) { write(1, bytes) }

    private static func write(_ descriptor: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
