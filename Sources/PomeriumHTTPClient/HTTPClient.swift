import Glibc
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import PomeriumNet
import Synchronization

/// The idle keep-alive connections of one loop, by upstream. Loop thread only.
final class HTTPConnectionPool {
    let loop: EventLoop
    let maxIdlePerUpstream: Int
    let idleTimeout: Double
    /// One stack per upstream, a class so that pushing and popping mutate it in place instead of
    /// copying the whole array out of the dictionary and back on every request.
    final class IdleStack {
        var connections: [HTTPClientConnection] = []
    }
    /// Empty stacks stay, so the dictionary holds one entry per upstream ever used on this loop.
    private var idle: [HTTPUpstream: IdleStack] = [:]
    /// The stack of the upstream used last. A proxy usually sends everything to one upstream, and
    /// comparing with it is cheaper than hashing the upstream's strings for the dictionary.
    private var lastUpstream: HTTPUpstream?
    private var lastStack: IdleStack?
    private var lastPort = 0
    private var lastScheme = HTTPUpstream.Scheme.http
    private var lastHost = ""
    private var lastHasTLS = false

    init(loop: EventLoop, maxIdlePerUpstream: Int, idleTimeout: Double) {
        self.loop = loop
        self.maxIdlePerUpstream = maxIdlePerUpstream
        self.idleTimeout = idleTimeout
    }

    private func stack(for upstream: HTTPUpstream, creating: Bool) -> IdleStack? {
        // A request's upstream is usually a copy of the one used last (one route, one upstream),
        // which sharing the storage shows without comparing fields.
        if let lastStack, let lastUpstream, lastUpstream.isSameStorage(as: upstream) { return lastStack }
        // Otherwise the fields of the last upstream are compared one by one.
        if let lastStack, upstream.port == lastPort, upstream.scheme == lastScheme,
            Self.sameBytes(upstream.host, lastHost)
        {
            // `case .none` reads the tag in place, where `== nil` copied the TLS settings.
            if case .none = upstream.tls, !lastHasTLS { return lastStack }
            if let lastUpstream, lastUpstream == upstream { return lastStack }
        }
        var stack = idle[upstream]
        if stack == nil && creating {
            stack = IdleStack()
            idle[upstream] = stack
        }
        if let stack {
            lastUpstream = upstream
            lastPort = upstream.port
            lastScheme = upstream.scheme
            lastHost = upstream.host
            lastHasTLS = upstream.tls != nil
            lastStack = stack
        }
        return stack
    }

    /// Whether two host strings have the same UTF-8 bytes: `String ==` measured 400 instructions
    /// per call here, for the Unicode-aware path. Without TLS settings on either side, scheme,
    /// host and port are all the fields of an upstream, so the synthesized `==`, which measured
    /// slower, runs only for TLS upstreams.
    @inline(__always)
    private static func sameBytes(_ left: String, _ right: String) -> Bool {
        var left = left
        var right = right
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in
                leftBytes.count == rightBytes.count
                    && (leftBytes.count == 0
                        || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, leftBytes.count) == 0)
            }
        }
    }

    /// The idle stack of the connection's upstream, found once per connection: the connection
    /// keeps it, so returning to the pool costs no lookup.
    func stack(for connection: HTTPClientConnection) -> IdleStack? {
        if let stack = connection.idleStack { return stack }
        let stack = stack(for: connection.upstream, creating: true)
        connection.idleStack = stack
        return stack
    }

    func takeIdle(for upstream: HTTPUpstream) -> HTTPClientConnection? {
        guard let stack = stack(for: upstream, creating: false) else { return nil }
        while let connection = stack.connections.popLast() {
            if !connection.isClosed { return connection }
        }
        return nil
    }

    func release(_ connection: HTTPClientConnection) {
        guard let stack = stack(for: connection),
            stack.connections.count < maxIdlePerUpstream
        else {
            connection.close()
            return
        }
        stack.connections.append(connection)
        connection.parkIdle(timeout: idleTimeout)
    }

    func discard(_ connection: HTTPClientConnection) {
        guard let stack = connection.idleStack ?? stack(for: connection.upstream, creating: false),
            let index = stack.connections.lastIndex(where: { $0 === connection })
        else {
            return
        }
        stack.connections.remove(at: index)
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.connections.count } }
}

/// The client's per-loop state: the pool and the way to open connections.
final class HTTPClientLoopState {
    let loop: EventLoop
    let pool: HTTPConnectionPool
    private let client: HTTPClient
    /// Connections opened, for tests and metrics.
    var connectionsOpened = 0

    init(loop: EventLoop, client: HTTPClient) {
        self.loop = loop
        self.client = client
        pool = HTTPConnectionPool(
            loop: loop, maxIdlePerUpstream: client.maxIdlePerUpstream, idleTimeout: client.idleTimeout)
    }

    func start(_ request: HTTPClientRequest) {
        if let connection = pool.takeIdle(for: request.upstream) {
            request.start(on: connection, reused: true)
            return
        }
        connectFresh(for: request)
    }

    func connectFresh(for request: HTTPClientRequest) {
        let upstream = request.upstream
        if let address = Self.literalAddress(upstream.host, port: upstream.port) {
            open(request, address: address)
            return
        }
        let host = upstream.host
        let port = upstream.port
        let resolver = client.resolver
        // The lookup may wait seconds on DNS, so it runs on a blocking-work thread, and the
        // request's connect timeout bounds it together with the connect that follows.
        request.lookupStarted()
        loop.submitBlocking(
            on: client.lookupWorkers,
            { try resolver(host, port) },
            completion: { [weak self] result in
                guard let self, !request.isFinished else { return }
                switch result {
                case .success(let address): self.open(request, address: address)
                case .failure(let error as HTTPClientError): request.fail(error)
                case .failure(let error): request.fail(.resolveFailed("\(error)"))
                }
            })
    }

    private func open(_ request: HTTPClientRequest, address: SocketAddress) {
        let upstream = request.upstream
        let connection = HTTPClientConnection(upstream: upstream, pool: pool)
        do {
            let tls = try upstream.tls.map { try client.tlsContext(for: $0) }
            let stream = try StreamConnection.connect(
                to: address, loop: loop, tls: tls, host: upstream.host, delegate: connection)
            connection.stream = stream
            connectionsOpened += 1
        } catch let error as TLSError {
            request.fail(.tlsFailed(error.reason))
            return
        } catch {
            request.fail(.connectFailed("\(error)"))
            return
        }
        request.start(on: connection, reused: false)
    }

    static func literalAddress(_ host: String, port: Int) -> SocketAddress? {
        if host == "localhost" { return try? SocketAddress(parsing: "127.0.0.1", defaultPort: port) }
        return try? SocketAddress(parsing: host, defaultPort: port)
    }
}

/// The client state of one loop of the client's group. `state` is read and written only on
/// `loop`'s thread, which is what makes the unchecked `Sendable` sound.
final class LoopStateSlot: @unchecked Sendable {
    let loop: EventLoop
    var state: HTTPClientLoopState?

    init(loop: EventLoop) {
        self.loop = loop
    }
}

/// An HTTP/1.1 client with a keep-alive pool per event loop and upstream. Start requests on a
/// loop with `execute`; slow callers can use the async `send`.
public final class HTTPClient: Sendable {
    public let group: EventLoopGroup
    let maxIdlePerUpstream: Int
    let idleTimeout: Double
    /// One slot per loop of `group`, each touched only on its loop's thread, so finding a loop's
    /// state takes no lock. Loops of other groups use `otherStates`.
    private let slots: [LoopStateSlot]
    private let otherStates: Mutex<[ObjectIdentifier: LoopBound<HTTPClientLoopState>]> = Mutex([:])
    private let tlsContexts = Mutex<[TLSClientConfiguration: TLSClientContext]>([:])
    /// Turns an upstream host name and port into an address. It may block.
    public typealias Resolver = @Sendable (_ host: String, _ port: Int) throws -> SocketAddress
    let resolver: Resolver
    let lookupWorkers: BlockingWorkers

    /// `resolver` looks up host names that are not IP literals, on a thread of `lookupWorkers`:
    /// getaddrinfo by default, a stand-in in tests.
    public init(
        group: EventLoopGroup, maxIdlePerUpstream: Int = 256, idleTimeout: Double = 90,
        resolver: @escaping Resolver = { host, port in try HTTPClient.resolve(host: host, port: port) },
        lookupWorkers: BlockingWorkers = .shared
    ) {
        self.group = group
        self.maxIdlePerUpstream = maxIdlePerUpstream
        self.idleTimeout = idleTimeout
        self.resolver = resolver
        self.lookupWorkers = lookupWorkers
        slots = group.loops.map { LoopStateSlot(loop: $0) }
    }

    func state(for loop: EventLoop) -> HTTPClientLoopState {
        if loop.index < slots.count {
            let slot = slots[loop.index]
            if slot.loop === loop {
                if let state = slot.state { return state }
                let state = HTTPClientLoopState(loop: loop, client: self)
                slot.state = state
                return state
            }
        }
        let key = ObjectIdentifier(loop)
        if let existing = otherStates.withLock({ $0[key] }) { return existing.value }
        let state = HTTPClientLoopState(loop: loop, client: self)
        otherStates.withLock { $0[key] = LoopBound(state, loop: loop) }
        return state
    }

    /// Returns the TLS context for `configuration`, building it once and sharing it across loops.
    public func tlsContext(for configuration: TLSClientConfiguration) throws -> TLSClientContext {
        if let context = tlsContexts.withLock({ $0[configuration] }) { return context }
        let context = try TLSClientContext(configuration: configuration)
        tlsContexts.withLock { $0[configuration] = context }
        return context
    }

    /// Starts `head` toward `upstream` on `loop`, the caller's loop. A body follows through the
    /// returned request when the head has `Content-Length` or `Transfer-Encoding: chunked`.
    /// Loop thread only.
    @discardableResult
    public func execute(
        _ head: consuming HTTPRequestHead,
        to upstream: HTTPUpstream,
        on loop: EventLoop,
        timeouts: HTTPClientTimeouts = HTTPClientTimeouts(),
        delegate: any HTTPClientDelegate
    ) -> HTTPClientRequest {
        let state = state(for: loop)
        let request = HTTPClientRequest(
            head: head, upstream: upstream, loop: loop, timeouts: timeouts, client: state, delegate: delegate)
        state.start(request)
        return request
    }

    /// Returns the number of connections `loop` opened, for tests of pool reuse.
    public func connectionsOpened(on loop: EventLoop) async -> Int {
        (try? await loop.run { [self] in state(for: loop).connectionsOpened }) ?? 0
    }

    /// Sends a request with a complete body and collects the response, up to `maxResponseSize`
    /// bytes. For control-plane calls (identity providers), not for proxying.
    public func send(
        _ head: HTTPRequestHead,
        body: [UInt8] = [],
        to upstream: HTTPUpstream,
        timeouts: HTTPClientTimeouts = HTTPClientTimeouts(),
        maxResponseSize: Int = 8 * 1024 * 1024
    ) async throws -> HTTPClientResponse {
        let loop = group.next()
        var head = head
        if !body.isEmpty || [HTTPMethod.post, .put, .patch].contains(head.method) {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        }
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: upstream.authority) }
        let prepared = head
        return try await withCheckedThrowingContinuation { continuation in
            loop.execute { [self] in
                let collector = ResponseCollector(limit: maxResponseSize) { continuation.resume(with: $0) }
                let request = execute(prepared, to: upstream, on: loop, timeouts: timeouts, delegate: collector)
                if !body.isEmpty { request.writeBody(body) }
                request.endBody()
            }
        }
    }

    /// Resolves `host` with getaddrinfo, preferring IPv4. It blocks, so the client calls it on a
    /// blocking-work thread.
    public static func resolve(host: String, port: Int) throws -> SocketAddress {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw HTTPClientError.resolveFailed("'\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var candidates: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) {
                    $0.copyMemory(
                        from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen)))
                }
                if let parsed = try? SocketAddress(parsing: Self.numericHost(storage), defaultPort: port) {
                    candidates.append(parsed)
                }
            }
            cursor = entry.pointee.ai_next
        }
        guard let chosen = candidates.first(where: { $0.family == AF_INET }) ?? candidates.first else {
            throw HTTPClientError.resolveFailed("'\(host)' has no address")
        }
        return chosen
    }

    private static func numericHost(_ storage: sockaddr_storage) -> String {
        var storage = storage
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        _ = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, socklen_t(MemoryLayout<sockaddr_storage>.size), &buffer, socklen_t(buffer.count), nil, 0,
                    NI_NUMERICHOST)
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A complete response from `HTTPClient.send`.
public struct HTTPClientResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]
}

final class ResponseCollector: HTTPClientDelegate {
    private let limit: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var completion: ((Result<HTTPClientResponse, any Error>) -> Void)?

    init(limit: Int, completion: @escaping (Result<HTTPClientResponse, any Error>) -> Void) {
        self.limit = limit
        self.completion = completion
    }

    func responseHead(_ head: HTTPResponseHead, request: HTTPClientRequest) { self.head = head }

    func responseBody(_ bytes: [UInt8], request: HTTPClientRequest) {
        guard body.count + bytes.count <= limit else {
            request.cancel()
            finish(.failure(HTTPClientError.responseTooLarge(limit)))
            return
        }
        body.append(contentsOf: bytes)
    }

    func responseEnded(trailers: HTTPHeaders, request: HTTPClientRequest) {
        guard let head else { return finish(.failure(HTTPClientError.upstreamClosed)) }
        finish(.success(HTTPClientResponse(head: head, body: body)))
    }

    func requestFailed(_ error: HTTPClientError, request: HTTPClientRequest) { finish(.failure(error)) }

    private func finish(_ result: Result<HTTPClientResponse, any Error>) {
        completion?(result)
        completion = nil
    }
}
