import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumServer
import Synchronization
import Testing

/// A service stand-in that answers with its name, after `delay` seconds.
final class NamedHandler: HTTPRequestHandler {
    let name: String
    let delay: Double
    let started: (@Sendable () -> Void)?
    private var responder: HTTPResponder?

    init(name: String, delay: Double = 0, started: (@Sendable () -> Void)? = nil) {
        self.name = name
        self.delay = delay
        self.started = started
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
        started?()
    }

    func requestBody(_ bytes: [UInt8]) {}

    func requestEnded(trailers: HTTPHeaders) {
        guard let responder else { return }
        let body = Array(name.utf8)
        var headers = HTTPHeaders()
        headers.add(name: "X-Frame-Options", value: "DENY")
        if delay > 0 {
            _ = responder.loop.schedule(after: delay) { responder.respond(status: 200, headers: headers, body: body) }
        } else {
            responder.respond(status: 200, headers: headers, body: body)
        }
    }

    func requestFailed(_ error: HTTPServerError) {}
}

@Suite("Host dispatcher on a live listener")
struct HostDispatcherTests {
    static func services(
        generation: Int, proxyName: String = "proxy", delay: Double = 0, started: (@Sendable () -> Void)? = nil,
        headers: [String: String] = ["X-Frame-Options": "SAMEORIGIN", "X-Test": "on"]
    ) -> ServiceSet {
        ServiceSet(
            authenticateHost: AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: nil),
            authenticate: { _ in NamedHandler(name: "authenticate") },
            proxy: { _ in NamedHandler(name: "\(proxyName)-\(generation)", delay: delay, started: started) },
            responseHeaders: ServiceSet.responseHeaders(from: headers), generation: generation)
    }

    func withServer(
        _ dispatcher: HostDispatcher, _ body: (HTTPServer, HTTPClient) async throws -> Void
    ) async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await HTTPServer(
            group: group, configuration: HTTPServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
        ) { loop in dispatcher.makeHandler(loop: loop) }
        let client = HTTPClient(group: group)
        do {
            try await body(server, client)
        } catch {
            await server.shutdown(gracePeriod: 0)
            throw error
        }
        await server.shutdown(gracePeriod: 0)
    }

    func get(
        _ client: HTTPClient, _ server: HTTPServer, _ path: String, host: String, method: HTTPMethod = .get
    ) async throws -> HTTPClientResponse {
        let head = try HTTPRequestHead(method: method, target: path, headers: ["Host": host])
        return try await client.send(
            head, to: HTTPUpstream(scheme: .http, host: "127.0.0.1", port: server.localAddress.port))
    }

    @Test("absolute target host mismatch rejected")
    func absoluteTargetHostMismatch() async throws {
        let dispatcher = HostDispatcher(
            services: Self.services(generation: 1), userAgent: "pomerium/test", logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            // The target names the authenticate host, while the proxy would route by Host.
            let mismatch = try await get(
                client, server, "https://authenticate.example.test/.pomerium/sign_out", host: "app.example.test")
            #expect(mismatch.head.status == 400)
            #expect(!String(decoding: mismatch.body, as: UTF8.self).contains("authenticate"))
            let reverse = try await get(client, server, "https://app.example.test/", host: "authenticate.example.test")
            #expect(reverse.head.status == 400)
            let same = try await get(client, server, "https://app.example.test/", host: "app.example.test")
            #expect(String(decoding: same.body, as: UTF8.self) == "proxy-1")
        }
    }

    @Test("X-Forwarded-Uri sends a request to forward-auth only from a trusted peer", arguments: [false, true])
    func forwardedURINeedsTrustedPeer(trusted: Bool) async throws {
        let services = ServiceSet(
            authenticateHost: nil, authenticate: nil, proxy: { _ in NamedHandler(name: "proxy") },
            forwardAuthHost: AuthenticateHost(scheme: "http", host: "127.0.0.1", port: nil),
            forwardAuth: { _ in NamedHandler(name: "forward-auth") },
            trustsForwardedHeaders: { address in trusted && address != nil },
            responseHeaders: HTTPHeaders(), generation: 1)
        let dispatcher = HostDispatcher(
            services: services, userAgent: "pomerium/test", logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            let head = try HTTPRequestHead(
                method: .get, target: "/", headers: ["Host": "127.0.0.1", "X-Forwarded-Uri": "/x"])
            let response = try await client.send(
                head, to: HTTPUpstream(scheme: .http, host: "127.0.0.1", port: server.localAddress.port))
            #expect(String(decoding: response.body, as: UTF8.self) == (trusted ? "forward-auth" : "proxy"))
            // A `uri` parameter names the target itself and needs no trust.
            let query = try await get(client, server, "/?uri=http://app.example.test/", host: "127.0.0.1")
            #expect(String(decoding: query.body, as: UTF8.self) == "forward-auth")
        }
    }

    @Test("health, ping, authenticate and proxy requests reach the right place with the headers setting")
    func routesAndHeaders() async throws {
        let dispatcher = HostDispatcher(
            services: Self.services(generation: 1), userAgent: "pomerium/test", logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            let health = try await get(client, server, "/healthz", host: "app.example.test")
            #expect(health.head.status == 200)
            #expect(health.body == Array("OK\n".utf8))
            #expect(health.head.headers.first(name: "X-Test") == "on")

            let ping = try await get(client, server, "/ping", host: "authenticate.example.test")
            #expect(String(decoding: ping.body, as: UTF8.self) == "pomerium/test")

            let refused = try await get(client, server, "/healthz", host: "app.example.test", method: .post)
            #expect(refused.head.status == 405)
            #expect(refused.head.headers.first(name: "Allow") == "GET, HEAD")

            let authenticate = try await get(client, server, "/oauth2/callback", host: "authenticate.example.test")
            #expect(String(decoding: authenticate.body, as: UTF8.self) == "authenticate")

            let proxied = try await get(client, server, "/", host: "app.example.test")
            #expect(String(decoding: proxied.body, as: UTF8.self) == "proxy-1")
            // The headers setting wins over the service's own field of the same name.
            #expect(proxied.head.headers["X-Frame-Options"] == ["SAMEORIGIN"])
        }
    }

    @Test("every response carries a distinct UUID-shaped Request-Id")
    func requestIDs() async throws {
        let dispatcher = HostDispatcher(services: Self.services(generation: 1), logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            var seen = Set<String>()
            for path in ["/healthz", "/", "/nothing"] {
                let response = try await get(client, server, path, host: "app.example.test")
                let id = try #require(response.head.headers.first(name: "Request-Id"))
                #expect(id.count == 36)
                #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
                seen.insert(id)
            }
            #expect(seen.count == 3)
        }
    }

    @Test("a configured Request-Id gives way to the request's id")
    func configuredRequestID() async throws {
        let dispatcher = HostDispatcher(
            services: Self.services(generation: 1, headers: ["request-id": "fixed", "X-Test": "on"]),
            logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            let response = try await get(client, server, "/healthz", host: "app.example.test")
            let ids = response.head.headers["Request-Id"]
            #expect(ids.count == 1)
            #expect(ids.first?.count == 36)
            #expect(response.head.headers["X-Test"] == ["on"])
        }
    }

    @Test("a swap sends new requests to the new services while a running request finishes on the old ones")
    func swapKeepsInFlightRequests() async throws {
        let startedFirst = Mutex(false)
        let dispatcher = HostDispatcher(
            services: Self.services(generation: 1, delay: 0.3, started: { startedFirst.withLock { $0 = true } }),
            logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            async let slow = get(client, server, "/slow", host: "app.example.test")
            // Wait (bounded) until the slow request has reached the first generation's handler.
            for _ in 0..<200 where !startedFirst.withLock({ $0 }) {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(startedFirst.withLock { $0 })
            dispatcher.replaceServices(Self.services(generation: 2, headers: ["X-Test": "two"]))
            let fresh = try await get(client, server, "/", host: "app.example.test")
            #expect(String(decoding: fresh.body, as: UTF8.self) == "proxy-2")
            #expect(fresh.head.headers.first(name: "X-Test") == "two")
            let old = try await slow
            #expect(String(decoding: old.body, as: UTF8.self) == "proxy-1")
            #expect(old.head.headers.first(name: "X-Test") == "on")
        }
    }

    @Test("without a proxy, requests for other hosts get 404 with the headers setting")
    func authenticateOnly() async throws {
        let set = ServiceSet(
            authenticateHost: AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: nil),
            authenticate: { _ in NamedHandler(name: "authenticate") }, proxy: nil,
            responseHeaders: ServiceSet.responseHeaders(from: ["X-Test": "on"]), generation: 1)
        let dispatcher = HostDispatcher(services: set, logger: Logger.inMemory(store: .init()))
        try await withServer(dispatcher) { server, client in
            let response = try await get(client, server, "/", host: "app.example.test")
            #expect(response.head.status == 404)
            #expect(response.head.headers.first(name: "X-Test") == "on")
            let head = try await get(client, server, "/healthz", host: "app.example.test", method: .head)
            #expect(head.head.status == 200)
            #expect(head.body.isEmpty)
        }
    }
}

/// A proxy stand-in that writes the response fields itself. It responds with the id it was given
/// and the number of additional headers the responder contains.
final class AssignableHandler: HTTPRequestHandler {
    private let assigned: String?
    private var responder: HTTPResponder?

    init(requestID: String? = nil) { assigned = requestID }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) { self.responder = responder }

    func requestBody(_ bytes: [UInt8]) {}

    func requestEnded(trailers: HTTPHeaders) {
        guard let responder else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Request-Id", value: assigned ?? "none")
        let body = Array("additional=\(responder.additionalHeaders.count)".utf8)
        responder.respond(status: 200, headers: headers, body: body)
    }

    func requestFailed(_ error: HTTPServerError) {}
}

@Suite("Host dispatcher and handlers that write their own response fields")
struct HostDispatcherAssignedIDTests {
    @Test("assignable proxy handler gets the request id")
    func assignedRequestID() async throws {
        let services = ServiceSet(
            authenticateHost: AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: nil),
            authenticate: { _ in AssignableHandler() },
            proxyHandler: .identified { _, requestID in AssignableHandler(requestID: requestID) },
            responseHeaders: ServiceSet.responseHeaders(from: ["X-Test": "on"]), generation: 1)
        let dispatcher = HostDispatcher(
            services: services, userAgent: "pomerium/test", logger: Logger.inMemory(store: .init()))
        try await HostDispatcherTests().withServer(dispatcher) { server, client in
            let proxied = try await HostDispatcherTests().get(client, server, "/", host: "app.example.test")
            let id = try #require(proxied.head.headers.first(name: "Request-Id"))
            #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
            #expect(proxied.head.headers["Request-Id"].count == 1)
            #expect(String(decoding: proxied.body, as: UTF8.self) == "additional=0")
            #expect(proxied.head.headers.first(name: "X-Test") == nil)
            // The authenticate service is not handed the id, so it reads it from the responder.
            let authenticate = try await HostDispatcherTests().get(
                client, server, "/", host: "authenticate.example.test")
            #expect(String(decoding: authenticate.body, as: UTF8.self) == "additional=2")
            #expect(authenticate.head.headers.first(name: "X-Test") == "on")
            #expect(authenticate.head.headers.first(name: "Request-Id") != "none")
            let health = try await HostDispatcherTests().get(client, server, "/healthz", host: "app.example.test")
            #expect(health.head.headers.first(name: "X-Test") == "on")
            #expect(health.head.headers.first(name: "Request-Id")?.count == 36)
        }
    }
}

/// A proxy handler that serves further requests of its connection, drawing a new id each time,
/// as the proxy's handler does.
final class ReusableHandler: HTTPRequestHandler {
    private var requestID: String
    private var responder: HTTPResponder?
    let serial: Int

    init(requestID: String, serial: Int) {
        self.requestID = requestID
        self.serial = serial
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) { self.responder = responder }

    func requestBody(_ bytes: [UInt8]) {}

    func requestEnded(trailers: HTTPHeaders) {
        guard let responder else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Request-Id", value: requestID)
        responder.respond(status: 200, headers: headers, body: Array("handler=\(serial)".utf8))
    }

    func requestFailed(_ error: HTTPServerError) {}

    func prepareForNextRequest() -> Bool {
        responder = nil
        requestID = RequestID.make()
        return true
    }
}

@Suite("Host dispatcher reuse of the proxy handler")
struct HostDispatcherReuseTests {
    /// A counter of the handlers that the proxy factory created.
    final class HandlerCounter: Sendable {
        let count = Mutex(0)
    }

    static func services(counter: HandlerCounter, generation: Int) -> ServiceSet {
        ServiceSet(
            authenticateHost: AuthenticateHost(scheme: "https", host: "authenticate.example.test", port: nil),
            authenticate: { _ in AssignableHandler() },
            proxyHandler: .identified { _, requestID in
                ReusableHandler(
                    requestID: requestID,
                    serial: counter.count.withLock {
                        $0 += 1
                        return $0
                    })
            },
            responseHeaders: ServiceSet.responseHeaders(from: [:]), generation: generation)
    }

    @Test("proxy handler reused per connection")
    func reusesProxyHandler() async throws {
        let counter = HandlerCounter()
        let dispatcher = HostDispatcher(
            services: Self.services(counter: counter, generation: 1), userAgent: "pomerium/test",
            logger: Logger.inMemory(store: .init()))
        try await HostDispatcherTests().withServer(dispatcher) { server, client in
            var ids: [String] = []
            func proxied() async throws -> String {
                let response = try await HostDispatcherTests().get(client, server, "/", host: "app.example.test")
                ids.append(response.head.headers.first(name: "Request-Id") ?? "")
                return String(decoding: response.body, as: UTF8.self)
            }
            #expect(try await proxied() == "handler=1")
            #expect(try await proxied() == "handler=1", "the spare handler served the second request")
            // Another service's request drops the spare, and the next proxy request gets a new one.
            let health = try await HostDispatcherTests().get(client, server, "/healthz", host: "app.example.test")
            #expect(health.head.status == 200)
            #expect(try await proxied() == "handler=2")
            // A reload's services make their own handlers.
            dispatcher.replaceServices(Self.services(counter: counter, generation: 2))
            #expect(try await proxied() == "handler=3")
            #expect(try await proxied() == "handler=3")
            #expect(Set(ids).count == ids.count, "every request has its own id: \(ids)")
            #expect(ids.allSatisfy { $0.count == 36 })
        }
    }
}
