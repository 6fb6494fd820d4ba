import Glibc
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumNet

/// Settings for reaching Pomerium: TLS trust, `--resolve` overrides and the request timeout.
public struct ConnectionSettings: Sendable {
    public var certificateAuthorityFile: String?
    public var skipVerification: Bool
    public var resolve: [ResolveOverride]
    /// Seconds allowed for each request.
    public var timeout: Double

    public init(
        certificateAuthorityFile: String? = nil, skipVerification: Bool = false, resolve: [ResolveOverride] = [],
        timeout: Double = 30
    ) {
        self.certificateAuthorityFile = certificateAuthorityFile
        self.skipVerification = skipVerification
        self.resolve = resolve
        self.timeout = timeout
    }
}

/// Requests to Pomerium over the product's own HTTP client, with errors that name what failed and
/// which option fixes it.
public final class CLIHTTPClient: Sendable {
    private let client: HTTPClient
    private let settings: ConnectionSettings
    /// The largest response body read; a larger response fails.
    public let maximumResponseSize: Int

    public init(group: EventLoopGroup, settings: ConnectionSettings, maximumResponseSize: Int = 64 * 1024 * 1024)
        throws(CLIError)
    {
        if let file = settings.certificateAuthorityFile {
            var status = stat()
            guard stat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG, access(file, R_OK) == 0 else {
                throw CLIError(
                    .invalidInput,
                    "cannot read the CA file \(file) given with --cacert: \(TokenCache.errorText(errno)); give a PEM file"
                )
            }
        }
        client = HTTPClient(group: group, maxIdlePerUpstream: 4, idleTimeout: 30)
        self.settings = settings
        self.maximumResponseSize = maximumResponseSize
    }

    /// Sends one request and returns the complete response.
    public func send(
        method: HTTPMethod, url: HTTPURL, headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) async throws(CLIError) -> HTTPClientResponse {
        let target = "\(url.scheme)://\(url.hostAndPort)"
        var tls: TLSClientConfiguration?
        if url.scheme == "https" {
            tls = TLSClientConfiguration(
                trustRoots: settings.certificateAuthorityFile.map { .file($0) } ?? .system,
                skipVerification: settings.skipVerification)
        }

        var connectHost = url.host
        let port = url.effectivePort ?? 443
        if let override = settings.resolve.first(where: { $0.host == url.host && $0.port == port }) {
            connectHost = override.address
            tls?.serverNameOverride = url.host
        } else if Self.isLocalhostSubdomain(url.host) {
            // RFC 6761 section 6.3 reserves localhost names for loopback. getaddrinfo would ask the DNS
            // server for them, while curl and browsers map them to loopback themselves.
            connectHost = "127.0.0.1"
            tls?.serverNameOverride = url.host
        }
        let upstream = HTTPUpstream(
            scheme: url.scheme == "https" ? .https : .http, host: connectHost, port: port, tls: tls)

        var requestHeaders = HTTPHeaders()
        requestHeaders.add(name: "Host", value: url.hostAndPort)
        requestHeaders.add(name: "User-Agent", value: "pomerium-cli")
        for header in headers { requestHeaders.add(name: header.name, value: header.value) }
        let head: HTTPRequestHead
        do {
            head = try HTTPRequestHead(method: method, target: url.requestTarget, headers: requestHeaders)
        } catch {
            throw CLIError(.invalidInput, "cannot build a request for \(target): \(error)")
        }

        let timeout = settings.timeout
        let timeouts = HTTPClientTimeouts(connect: timeout, read: timeout, write: timeout)
        do {
            return try await client.send(
                head, body: body, to: upstream, timeouts: timeouts, maxResponseSize: maximumResponseSize)
        } catch let error as HTTPClientError {
            throw Self.describe(error, target: target, timeout: timeout)
        } catch {
            throw CLIError(.connection, "the request to \(target) failed: \(error)")
        }
    }

    /// Returns whether `host` is a name under `localhost.`, such as `app.localhost`.
    static func isLocalhostSubdomain(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name.hasSuffix(".localhost") && name.count > ".localhost".count
    }

    /// Turns a client error into a message that names the target and the fix.
    static func describe(_ error: HTTPClientError, target: String, timeout: Double) -> CLIError {
        switch error {
        case .resolveFailed(let reason):
            return CLIError(
                .connection,
                "cannot resolve the host of \(target) (\(reason)): check the URL, or map the name with --resolve HOST:PORT:ADDRESS"
            )
        case .connectFailed(let reason):
            return CLIError(
                .connection,
                "cannot connect to \(target) (\(reason)): check the URL and that Pomerium is running and reachable")
        case .connectTimeout, .readTimeout, .writeTimeout:
            return CLIError(
                .connection,
                "\(target) did not respond within \(timeout) s: check that Pomerium is running, or raise --timeout")
        case .tlsFailed(let reason):
            return CLIError(
                .connection,
                "the TLS handshake with \(target) failed (\(reason)): pass --cacert FILE with the CA that signed the server certificate, or --insecure for a self-signed demo"
            )
        case .responseTooLarge(let limit):
            return CLIError(.rejected, "the response from \(target) is larger than \(limit) bytes")
        case .invalidResponse(let reason):
            return CLIError(.rejected, "\(target) sent an invalid HTTP response (\(reason)): is this an HTTP server?")
        case .upstreamClosed:
            return CLIError(
                .connection,
                "\(target) closed the connection without an answer: check the scheme (https or http) and the port")
        case .invalidUpstream(let reason):
            return CLIError(.invalidInput, "invalid target \(target): \(reason)")
        case .cancelled:
            return CLIError(.connection, "the request to \(target) was cancelled")
        case .invalidRequestBody(let reason):
            return CLIError(.invalidInput, "the request to \(target) was not sent: \(reason)")
        }
    }
}

extension HTTPClientResponse {
    /// The body as text.
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The `Error` text of a Pomerium JSON error body, else the start of the body, for messages.
    var errorSummary: String {
        if let object = try? JSONParser.parseObject(body), let message = object["Error"]?.stringValue {
            return message
        }
        let trimmed = text.prefix(200).filter { $0 != "\r" && $0 != "\n" }
        return trimmed.isEmpty ? "no details" : String(trimmed)
    }
}
