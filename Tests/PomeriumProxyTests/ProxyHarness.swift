import Foundation
import PomeriumConfig
import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Synchronization
import Testing

@testable import PomeriumProxy

/// A response as the test client received it.
struct ProxyTestResponse {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body decoded as the echo upstream's JSON, or nil when it is not.
    var echo: EchoAnswer? { try? JSONDecoder().decode(EchoAnswer.self, from: Data(body)) }

    /// The first 200 bytes of the body as text, for failure messages.
    var bodyPrefix: String { String(decoding: body.prefix(200), as: UTF8.self) }

    var location: String? { headers.first(name: "Location") }
}

/// The echo upstream's JSON response: the request it received.
struct EchoAnswer: Decodable {
    let method: String
    let path: String
    let headers: [[String]]

    /// Returns every value of the header `name`, compared case-insensitively.
    func values(_ name: String) -> [String] {
        headers.filter { $0.first?.lowercased() == name.lowercased() }.compactMap { $0.last }
    }

    /// Header names as the upstream received them.
    var names: [String] { headers.compactMap { $0.first } }
}

/// A route-session refresher for tests: records each call and returns what `answer` returns.
final class RecordingRefresher: RouteSessionRefresher {
    struct Call: Sendable, Equatable {
        let accessTokenID: String
        let audience: [String]
        let issuerHost: String
    }

    private let calls = Mutex<[Call]>([])
    private let answer: @Sendable (Call) throws -> String

    init(answer: @escaping @Sendable (Call) throws -> String) { self.answer = answer }

    /// Returns a refresher whose every call fails, as when the global session is gone.
    static func failing() -> RecordingRefresher {
        RecordingRefresher { _ in throw PomeriumError("refresh-failed", "the global session is not in the cache") }
    }

    var recorded: [Call] { calls.withLock { $0 } }

    func refreshRouteSession(accessTokenID: String, audience: [String], issuerHost: String) async throws -> String {
        let call = Call(accessTokenID: accessTokenID, audience: audience, issuerHost: issuerHost)
        calls.withLock { $0.append(call) }
        return try answer(call)
    }
}

/// A proxy service on a real server on 127.0.0.1, with the session codecs a test needs to mint
/// sessions the way the authenticate service would.
final class ProxyHarness: @unchecked Sendable {
    static let sharedSecretText = "aD9vAaNiZcd9W3tYNhUqOmkPu0TmPPaCfCOcqNDhZ/0="
    static let cookieSecretText = "KJZ6E0ZfEaX5zLwkBkdUCF+qtUwEMhcKNtXWjPgPUnA="
    static let authenticateHost = "authn.example.test"

    let service: ProxyService
    let server: HTTPServer
    let client: HTTPClient
    let clock: ManualWallClock
    /// The clock the sign-out check (`SessionLiveness`) measures its intervals with.
    let livenessClock: ManualIntervalClock
    let logs: InMemoryLogHandler.Store
    let tokens: RouteSessionTokenCodec
    let cookies: SessionCookieCodec
    let callbackCodec: CallbackPayloadCodec
    let urlSigner: URLSigner
    let signer: IdentityAssertionSigner

    var port: Int { server.localAddress.port }

    private init(
        service: ProxyService, server: HTTPServer, client: HTTPClient, clock: ManualWallClock,
        livenessClock: ManualIntervalClock, logs: InMemoryLogHandler.Store, signer: IdentityAssertionSigner
    ) throws {
        self.service = service
        self.server = server
        self.client = client
        self.clock = clock
        self.livenessClock = livenessClock
        self.logs = logs
        self.signer = signer
        let options = service.options
        let logger = Logger(label: "test")
        tokens = try RouteSessionTokenCodec(sharedSecret: options.sharedSecret, clock: clock, logger: logger)
        cookies = service.cookies
        callbackCodec = try CallbackPayloadCodec(sharedSecret: options.sharedSecret, logger: logger)
        urlSigner = try URLSigner(sharedSecret: options.sharedSecret, clock: clock, logger: logger)
    }

    /// Loads the settings every test shares, followed by `extra` (more settings and the `policy` list).
    static func options(_ extra: String) throws -> Options {
        let text = """
            insecure_server: true
            address: 127.0.0.1:0
            shared_secret: \(sharedSecretText)
            cookie_secret: \(cookieSecretText)
            authenticate_service_url: https://\(authenticateHost)
            idp_provider: oidc
            idp_provider_url: https://idp.example.test
            idp_client_id: client
            idp_client_secret: secret
            \(extra)
            """
        let result = ConfigLoader.load(text: text, format: .yaml)
        guard result.isValid else {
            throw PomeriumError("test-config", "invalid test config: \(result.errors.map(\.description))")
        }
        return result.options
    }

    /// Runs `body` with a proxy for the settings in `config`; with `forwardAuth`, every request
    /// goes to the forward-auth handler instead.
    static func run<T>(
        config: String,
        refresher: any RouteSessionRefresher = RecordingRefresher.failing(),
        forwardAuth: Bool = false,
        livenessStore: (any KeyValueStore)? = nil,
        dispatchedRequestID: String? = nil,
        assignedRequestID: String? = nil,
        infoLogs: Bool = false,
        tunnelCheckInterval: Double = 2,
        _ body: (ProxyHarness) async throws -> T
    ) async throws -> T {
        let options = try options(config)
        let clock = ManualWallClock(now: SystemWallClock().now().rounded(.down))
        let livenessClock = ManualIntervalClock()
        let logs = InMemoryLogHandler.Store()
        var logger = Logger.inMemory(store: logs)
        logger.logLevel = infoLogs ? .info : .debug
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let client = HTTPClient(group: group)
        let signer = try IdentityAssertionSigner(signingKey: try ECPrivateKey.generate(curve: .p256), clock: clock)
        let shared = ProxySharedState(
            signer: signer, keySet: try AssertionKeySet(current: signer.publicKey), refresher: refresher,
            client: client, logger: logger, clock: clock,
            liveness: livenessStore.map { SessionLiveness(store: $0, clock: livenessClock, logger: logger) },
            tunnelCheckInterval: tunnelCheckInterval)
        let service = try ProxyService(options: options, shared: shared)
        shared.currentService.install(service)
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        ) { loop -> any HTTPRequestHandler in
            // With `assignedRequestID`, as the listener's dispatcher makes a proxy handler that writes
            // the response fields itself.
            let handler =
                forwardAuth
                ? service.makeForwardAuthHandler(loop: loop)
                : service.makeHandler(loop: loop, requestID: assignedRequestID)
            // A handler with a fixed id serves one request, as the dispatcher's handlers with an
            // id did: a reused one draws a new id for each further request.
            if assignedRequestID != nil { return SingleRequestHandler(inner: handler) }
            guard let dispatchedRequestID else { return handler }
            return RequestIDSetter(requestID: dispatchedRequestID, headers: service.responseHeaders, inner: handler)
        }
        let harness = try ProxyHarness(
            service: service, server: server, client: client, clock: clock, livenessClock: livenessClock, logs: logs,
            signer: signer)
        do {
            let result = try await body(harness)
            await server.shutdown(gracePeriod: 1)
            return result
        } catch {
            await server.shutdown(gracePeriod: 1)
            throw error
        }
    }

    /// Lets `seconds` of real time pass: the wall clock and the liveness clock both move.
    func elapse(_ seconds: Double) {
        clock.advance(by: seconds)
        livenessClock.advance(by: seconds)
    }

    // MARK: Sessions

    /// Builds a route session as the authenticate service mints it, valid for an hour from the test clock.
    func session(
        _ email: String, groups: [String] = [], audience: [String], expiresIn: Int64 = 3600,
        accessTokenID: String = "ati"
    ) -> SessionState {
        let now = clock.unixSeconds()
        var session = SessionState()
        session.issuer = Self.authenticateHost
        session.subject = "sub-" + email
        session.audience = [Self.authenticateHost] + audience
        session.expiry = now + expiresIn
        session.notBefore = now - 5
        session.issuedAt = now - 5
        session.email = email
        session.groups = groups
        session.accessTokenID = accessTokenID + "-" + email
        return session
    }

    func token(_ session: SessionState) throws -> String { try tokens.sign(session) }

    /// Returns the `Cookie` header value a browser sends after the proxy stored `session`.
    func cookieHeader(_ session: SessionState) throws -> String {
        try cookies.setCookieHeaders(for: session).compactMap(Self.cookiePair).joined(separator: "; ")
    }

    /// `name=value` of a `Set-Cookie` value, or nil when it clears the cookie.
    static func cookiePair(_ setCookie: String) -> String? {
        let pair = setCookie.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return pair.hasSuffix("=") ? nil : pair
    }

    // MARK: Requests

    /// Sends one request for `host` to the proxy.
    func request(
        _ method: HTTPMethod = .get,
        host: String,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8] = []
    ) async throws -> ProxyTestResponse {
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: host)
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = try HTTPRequestHead(method: method, target: path, headers: fields)
        let response = try await client.send(
            head, body: body, to: HTTPUpstream(scheme: .http, host: "127.0.0.1", port: port),
            timeouts: HTTPClientTimeouts(connect: 10, read: 30, write: 30))
        return ProxyTestResponse(status: response.head.status, headers: response.head.headers, body: response.body)
    }

    /// Returns the query parameters of an absolute URL.
    static func query(of url: String) throws -> URLQuery {
        URLQuery(parsingLeniently: try HTTPURL(parsing: url).query ?? "")
    }
}

/// An upstream in the test process that counts requests and answers 200 `ok`.
final class CountingUpstream: HTTPRequestHandler {
    static let count = Mutex<[Int: Int]>([:])
    let port: Int

    init(port: Int) { self.port = port }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        Self.count.withLock { $0[port, default: 0] += 1 }
        responder.respond(status: 200, headers: ["Content-Type": "text/plain"], body: Array("ok".utf8))
    }

    func requestBody(_ bytes: [UInt8]) {}
    func requestEnded(trailers: HTTPHeaders) {}
    func requestFailed(_ error: HTTPServerError) {}

    /// Runs `body` with a counting upstream on its own loop; `body` gets the port and a way to
    /// read the count.
    static func with<T>(_ body: (Int, @escaping @Sendable () -> Int) async throws -> T) async throws -> T {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let portBox = Mutex(0)
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        ) { _ in
            CountingUpstream(port: portBox.withLock { $0 })
        }
        let port = server.localAddress.port
        portBox.withLock { $0 = port }
        do {
            let result = try await body(port) { Self.count.withLock { $0[port] ?? 0 } }
            await server.shutdown(gracePeriod: 1)
            return result
        } catch {
            await server.shutdown(gracePeriod: 1)
            throw error
        }
    }
}

/// A blocking loopback TCP client for byte-level exchanges (WebSocket frames, several requests
/// on one connection), run on its own thread so it never blocks the test's executor.
final class RawConnection: @unchecked Sendable {
    private let descriptor: Int32
    private var buffered: [UInt8] = []

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        // A throwing initializer of a fully initialised class still runs deinit, which closes the
        // socket, so closing it here too could close another thread's new descriptor.
        guard connected == 0 else { throw PomeriumError("test-connect", "connect to 127.0.0.1:\(port) failed") }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a write after the proxy closed the connection fails instead of
            // raising SIGPIPE in the test process.
            let written = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { return }
            offset += written
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads until `count` bytes are buffered or the peer closes; returns and consumes them.
    func read(count: Int) -> [UInt8] {
        fill { $0.count >= count }
        let taken = Array(buffered.prefix(count))
        buffered.removeFirst(taken.count)
        return taken
    }

    /// Reads one HTTP/1.1 response head and its `Content-Length` body.
    func readResponse() -> (head: String, body: [UInt8]) {
        let terminator = Array("\r\n\r\n".utf8)
        fill { Self.find(terminator, in: $0) != nil }
        guard let end = Self.find(terminator, in: buffered) else { return ("", []) }
        let head = String(decoding: buffered[..<end], as: UTF8.self)
        buffered.removeFirst(end + 4)
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return (head, read(count: length))
    }

    private func fill(until done: ([UInt8]) -> Bool) {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while !done(buffered) {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count <= 0 { return }
            buffered.append(contentsOf: chunk[0..<count])
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }

    /// Builds a masked client text frame (RFC 6455 section 5.2) for payloads under 126 bytes.
    static func textFrame(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var frame: [UInt8] = [0x81, 0x80 | UInt8(payload.count)] + mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
        return frame
    }
}

/// Runs blocking work on a new thread and returns its result.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Sets the `headers` setting and a `Request-Id` in the responder's additional headers before the
/// proxy's handler starts, as the listener's dispatcher does.
final class RequestIDSetter: HTTPRequestHandler {
    let requestID: String
    let headers: [(name: String, value: String)]
    let inner: any HTTPRequestHandler

    init(requestID: String, headers: [(name: String, value: String)], inner: any HTTPRequestHandler) {
        self.requestID = requestID
        self.headers = headers
        self.inner = inner
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        for header in headers { responder.additionalHeaders.replaceOrAdd(name: header.name, value: header.value) }
        responder.additionalHeaders.replaceOrAdd(name: "Request-Id", value: requestID)
        inner.requestStarted(head, responder: responder)
    }

    func requestBody(_ bytes: [UInt8]) { inner.requestBody(bytes) }
    func requestEnded(trailers: HTTPHeaders) { inner.requestEnded(trailers: trailers) }
    func requestFailed(_ error: HTTPServerError) { inner.requestFailed(error) }
    func responseWritable() { inner.responseWritable() }
    func tunnelReceived(_ bytes: [UInt8]) { inner.tunnelReceived(bytes) }
    func tunnelClientFinished() { inner.tunnelClientFinished() }
}

/// Passes every event to `inner` and is never reused, so the server makes a new handler for each
/// request.
final class SingleRequestHandler: HTTPRequestHandler {
    let inner: any HTTPRequestHandler

    init(inner: any HTTPRequestHandler) { self.inner = inner }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        inner.requestStarted(head, responder: responder)
    }

    func requestBody(_ bytes: [UInt8]) { inner.requestBody(bytes) }
    func requestEnded(trailers: HTTPHeaders) { inner.requestEnded(trailers: trailers) }
    func requestFailed(_ error: HTTPServerError) { inner.requestFailed(error) }
    func responseWritable() { inner.responseWritable() }
    func tunnelReceived(_ bytes: [UInt8]) { inner.tunnelReceived(bytes) }
    func tunnelClientFinished() { inner.tunnelClientFinished() }
}

/// A loopback upstream that responds to every request with `101 Switching Protocols` and a few raw
/// bytes, whatever the request offered, as a broken upstream might. It serves at most three
/// connections and stops after a minute without a new connection: with ten seconds, a loaded
/// machine once took longer to start the proxy and the upstream had stopped before the request.
final class SwitchingUpstream: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let heads = Mutex<[String]>([])

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        // On Linux the receive timeout bounds `accept` too, so the serving thread always ends.
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && listen(descriptor, 4) == 0
                    && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw PomeriumError("test-listen", "listening on 127.0.0.1 failed")
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(listener) }

    /// Returns the request heads received so far, in order.
    func requestHeads() -> [String] { heads.withLock { $0 } }

    /// Serves on a thread of its own.
    func start() {
        Thread { [self] in
            for _ in 0..<3 {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                serve(client)
                close(client)
            }
        }.start()
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator = Array("\r\n\r\n".utf8)
        while received.count < 65_536 {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(client, $0.baseAddress!, $0.count) }
            if count <= 0 { return }
            received.append(contentsOf: chunk[0..<count])
            if received.count >= 4,
                received.indices.dropLast(3).contains(where: {
                    received[$0..<$0 + 4].elementsEqual(terminator)
                })
            {
                break
            }
        }
        heads.withLock { $0.append(String(decoding: received, as: UTF8.self)) }
        let answer = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nraw".utf8)
        _ = answer.withUnsafeBytes { write(client, $0.baseAddress!, $0.count) }
        // Waits for the proxy to close its side, or for the timeout.
        while chunk.withUnsafeMutableBytes({ Glibc.read(client, $0.baseAddress!, $0.count) }) > 0 {}
    }
}
