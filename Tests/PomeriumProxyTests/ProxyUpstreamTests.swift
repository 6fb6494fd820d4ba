import Foundation
import PomeriumCore
import PomeriumHTTP
import PomeriumNet
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

@Suite("Proxy upstream behaviour")
struct ProxyUpstreamTests {
    /// Sends a WebSocket handshake for `host` and, when it succeeds, one text message; returns
    /// the response head and the echoed frame.
    static func webSocketExchange(port: Int, host: String, cookie: String?) async throws -> (
        head: String, frame: [UInt8]
    ) {
        try await onThread {
            let connection = try RawConnection(port: port)
            var request = "GET /chat HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            if let cookie { request += "Cookie: \(cookie)\r\n" }
            connection.send(request + "\r\n")
            let response = connection.readResponse()
            guard response.head.hasPrefix("HTTP/1.1 101") else { return (response.head, []) }
            connection.send(RawConnection.textFrame("hello"))
            return (response.head, connection.read(count: 7))
        }
    }

    @Test("WebSocket upgrades need a session and allow_websockets")
    func webSockets() async throws {
        try await Fixtures.withWebSocketEcho { socket in
            let config = """
                policy:
                  - from: https://ws.example.test
                    to: \(socket.baseURL)
                    allowed_users: [alice@corp.test]
                    allow_websockets: true
                  - from: https://plain.example.test
                    to: \(socket.baseURL)
                    allowed_users: [alice@corp.test]
                """
            try await ProxyHarness.run(config: config) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["ws.example.test", "plain.example.test"])
                let cookie = try proxy.cookieHeader(session)
                let upgraded = try await Self.webSocketExchange(
                    port: proxy.port, host: "ws.example.test", cookie: cookie)
                #expect(upgraded.head.hasPrefix("HTTP/1.1 101"))
                #expect(upgraded.frame == [0x81, 5] + Array("hello".utf8))
                #expect(!upgraded.head.lowercased().contains("x-pomerium-jwt-assertion"))

                let anonymous = try await Self.webSocketExchange(port: proxy.port, host: "ws.example.test", cookie: nil)
                #expect(anonymous.head.hasPrefix("HTTP/1.1 302"))
                let refused = try await Self.webSocketExchange(
                    port: proxy.port, host: "plain.example.test", cookie: cookie)
                #expect(refused.head.hasPrefix("HTTP/1.1 400"))
            }
        }
    }

    static func tunnelConfig(socket: String, users: String) -> String {
        """
        policy:
          - from: https://ws.example.test
            to: \(socket)
            allowed_users: [\(users)]
            allow_websockets: true
        """
    }

    /// Opens a tunnel with `cookie`, echoes one message, runs `change` and returns whether the
    /// proxy closed the tunnel within a second. Meanwhile a message goes through every 100 ms,
    /// so an open tunnel has echoed across several checks.
    static func tunnelClosed(port: Int, cookie: String, change: @Sendable () async throws -> Void) async throws
        -> Bool
    {
        let connection = try await onThread {
            let connection = try RawConnection(port: port)
            connection.send(
                "GET /chat HTTP/1.1\r\nHost: ws.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    + "Cookie: \(cookie)\r\n\r\n")
            return connection
        }
        let opened = try await onThread { () -> Bool in
            guard connection.readResponse().head.hasPrefix("HTTP/1.1 101") else { return false }
            connection.send(RawConnection.textFrame("hello"))
            return connection.read(count: 7) == [0x81, 5] + Array("hello".utf8)
        }
        #expect(opened)
        try await change()
        return try await onThread {
            for _ in 0..<10 {
                usleep(100_000)
                connection.send(RawConnection.textFrame("again"))
                if connection.read(count: 7) != [0x81, 5] + Array("again".utf8) { return true }
            }
            return false
        }
    }

    @Test(
        "a reload closes an open tunnel only without the user's grant",
        arguments: [("bob@corp.test", true), ("alice@corp.test, bob@corp.test", false)])
    func tunnelAfterReload(users: String, expectClosed: Bool) async throws {
        try await Fixtures.withWebSocketEcho { socket in
            try await ProxyHarness.run(
                config: Self.tunnelConfig(socket: socket.baseURL, users: "alice@corp.test"), tunnelCheckInterval: 0.05
            ) { proxy in
                let cookie = try proxy.cookieHeader(proxy.session("alice@corp.test", audience: ["ws.example.test"]))
                let reloaded = try ProxyHarness.options(Self.tunnelConfig(socket: socket.baseURL, users: users))
                let next = try proxy.service.reconfigured(options: reloaded)
                let closed = try await Self.tunnelClosed(port: proxy.port, cookie: cookie) {
                    proxy.service.shared.currentService.install(next)
                }
                // `CurrentProxyService` keeps a weak reference. In the server the service set keeps
                // the service alive, so here the test does.
                withExtendedLifetime(next) {}
                #expect(closed == expectClosed)
                #expect(proxy.logs.all.contains { $0.message == "tunnel closed" } == expectClosed)
            }
        }
    }

    @Test("signing out closes the user's open tunnel")
    func tunnelEndsWithSignOut() async throws {
        try await Fixtures.withWebSocketEcho { socket in
            let store = try MemoryStore(clock: SystemWallClock())
            try await ProxyHarness.run(
                config: Self.tunnelConfig(socket: socket.baseURL, users: "alice@corp.test"), livenessStore: store,
                tunnelCheckInterval: 0.05
            ) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["ws.example.test"])
                try await store.set(
                    SessionLiveness.storeKey(accessTokenID: session.accessTokenID), value: [1], ttl: .seconds(3600))
                let closed = try await Self.tunnelClosed(port: proxy.port, cookie: try proxy.cookieHeader(session)) {
                    proxy.service.shared.liveness?.markSignedOut(session.accessTokenID)
                }
                #expect(closed)
            }
        }
    }

    @Test("an upstream that declines the upgrade keeps HTTP")
    func declinedUpgrade() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://ws.example.test
                    to: \(echo.baseURL)
                    allow_public_unauthenticated_access: true
                    allow_websockets: true
                """
            try await ProxyHarness.run(config: config) { proxy in
                let port = proxy.port
                let (first, second) = try await onThread {
                    let connection = try RawConnection(port: port)
                    connection.send(
                        "GET /first HTTP/1.1\r\nHost: ws.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                    let first = connection.readResponse()
                    connection.send("GET /second HTTP/1.1\r\nHost: ws.example.test\r\n\r\n")
                    let second = connection.readResponse()
                    return (first, second)
                }
                #expect(first.head.hasPrefix("HTTP/1.1 200"))
                #expect(second.head.hasPrefix("HTTP/1.1 200"))
                let answer = try JSONDecoder().decode(EchoAnswer.self, from: Data(second.body))
                #expect(answer.path == "/second")
            }
        }
    }

    @Test("an h2c upgrade without allow_websockets goes on as HTTP/1.1")
    func ignoredH2CUpgrade() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://plain.example.test
                    to: \(echo.baseURL)
                    allow_public_unauthenticated_access: true
                """
            try await ProxyHarness.run(config: config) { proxy in
                let port = proxy.port
                let (first, second, refused) = try await onThread {
                    let connection = try RawConnection(port: port)
                    connection.send(
                        "GET /first HTTP/1.1\r\nHost: plain.example.test\r\nUpgrade: h2c\r\n"
                            + "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
                    let first = connection.readResponse()
                    connection.send("GET /second HTTP/1.1\r\nHost: plain.example.test\r\n\r\n")
                    let second = connection.readResponse()
                    let other = try RawConnection(port: port)
                    other.send(
                        "GET /third HTTP/1.1\r\nHost: plain.example.test\r\nUpgrade: h2c, websocket\r\n"
                            + "Connection: Upgrade\r\n\r\n")
                    return (first, second, other.readResponse())
                }
                #expect(first.head.hasPrefix("HTTP/1.1 200"))
                let forwarded = try JSONDecoder().decode(EchoAnswer.self, from: Data(first.body))
                #expect(forwarded.path == "/first")
                #expect(forwarded.values("Upgrade").isEmpty)
                #expect(forwarded.values("HTTP2-Settings").isEmpty)
                #expect(second.head.hasPrefix("HTTP/1.1 200"))
                #expect(refused.head.hasPrefix("HTTP/1.1 400"))
            }
        }
    }

    @Test("unrequested upstream 101 opens no tunnel")
    func unsolicitedSwitch() async throws {
        // The route rejects upgrades, so the proxy forwards a plain request. A 101 from the upstream
        // must not open a tunnel, because the request offered no protocol (RFC 9110 section 15.2.2).
        let upstream = try SwitchingUpstream()
        upstream.start()
        let config = """
            policy:
              - from: https://plain.example.test
                to: http://127.0.0.1:\(upstream.port)
                allow_public_unauthenticated_access: true
            """
        try await ProxyHarness.run(config: config) { proxy in
            let port = proxy.port
            let response = try await onThread {
                let connection = try RawConnection(port: port)
                connection.send(
                    "GET /first HTTP/1.1\r\nHost: plain.example.test\r\nUpgrade: h2c\r\n"
                        + "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
                return connection.readResponse()
            }
            #expect(response.head.hasPrefix("HTTP/1.1 502"))
            #expect(upstream.requestHeads().first?.lowercased().contains("upgrade: h2c") == false)
        }
    }

    @Test("expired session with failing refresh forwards nothing")
    func failedRefresh() async throws {
        try await CountingUpstream.with { port, count in
            let config = """
                policy:
                  - from: https://app.example.test
                    to: http://127.0.0.1:\(port)
                    allowed_users: [alice@corp.test]
                """
            let refresher = RecordingRefresher.failing()
            try await ProxyHarness.run(config: config, refresher: refresher) { proxy in
                let fresh = proxy.session("alice@corp.test", audience: ["app.example.test"])
                let ok = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(fresh))])
                #expect(ok.status == 200)
                #expect(count() == 1)

                let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
                let response = try await proxy.request(
                    .post, host: "app.example.test", path: "/submit",
                    headers: [("Cookie", try proxy.cookieHeader(expired)), ("Content-Type", "text/plain")],
                    body: Array("payload".utf8))
                #expect(response.status == 302)
                #expect(response.location?.hasPrefix("https://authn.example.test/.pomerium/sign_in?") == true)
                #expect(response.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
                #expect(count() == 1, "the upstream saw nothing of the refused request")
                #expect(
                    refresher.recorded == [
                        .init(
                            accessTokenID: expired.accessTokenID, audience: expired.audience,
                            issuerHost: "authn.example.test")
                    ])
            }
        }
    }

    @Test("expired session is refreshed and the cookie replaced")
    func successfulRefresh() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://app.example.test
                    to: \(echo.baseURL)
                    allowed_users: [alice@corp.test]
                """
            let minted = MintedToken()
            let refresher = RecordingRefresher { _ in minted.value }
            try await ProxyHarness.run(config: config, refresher: refresher) { proxy in
                let renewed = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 7200)
                minted.value = try proxy.token(renewed)
                let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
                let response = try await proxy.request(
                    host: "app.example.test", path: "/after", headers: [("Cookie", try proxy.cookieHeader(expired))])
                #expect(response.status == 200)
                #expect(response.echo?.path == "/after")
                let stored = response.headers["Set-Cookie"].compactMap(ProxyHarness.cookiePair)
                #expect(stored.count == 1)
                #expect(refresher.recorded.count == 1)
                let again = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", stored.joined(separator: "; "))])
                #expect(again.status == 200)
                #expect(refresher.recorded.count == 1, "the stored session needs no refresh")
            }
        }
    }

    @Test("expired header token is refreshed without a cookie", arguments: ["Pomerium", "Bearer"])
    func headerTokenRefresh(_ scheme: String) async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://app.example.test
                    to: \(echo.baseURL)
                    allowed_users: [alice@corp.test]
                """
            let minted = MintedToken()
            let refresher = RecordingRefresher { _ in minted.value }
            try await ProxyHarness.run(config: config, refresher: refresher) { proxy in
                minted.value = try proxy.token(
                    proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 7200))
                let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
                let token = try proxy.token(expired)
                let response = try await proxy.request(
                    host: "app.example.test", path: "/script", headers: [("Authorization", "\(scheme) \(token)")])
                #expect(response.status == 200)
                #expect(response.echo?.path == "/script")
                #expect(response.echo?.values("Authorization") == [], "the upstream never sees the token")
                #expect(response.headers["Set-Cookie"].isEmpty, "a script keeps its own token")
                #expect(refresher.recorded.map(\.accessTokenID) == [expired.accessTokenID])
            }
        }
    }

    @Test("expired header token with failing refresh is refused")
    func headerTokenRefreshFails() async throws {
        try await CountingUpstream.with { port, count in
            let config = """
                policy:
                  - from: https://app.example.test
                    to: http://127.0.0.1:\(port)
                    allowed_users: [alice@corp.test]
                """
            let refresher = RecordingRefresher.failing()
            try await ProxyHarness.run(config: config, refresher: refresher) { proxy in
                let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
                let response = try await proxy.request(
                    host: "app.example.test", path: "/",
                    headers: [
                        ("Authorization", "Pomerium \(try proxy.token(expired))"), ("Accept", "application/json"),
                    ])
                #expect(response.status == 401)
                #expect(response.headers["Set-Cookie"].isEmpty)
                #expect(refresher.recorded.count == 1)
                #expect(count() == 0)
            }
        }
    }

    @Test("refreshed session for the wrong user is still denied")
    func refreshedSessionAuthorized() async throws {
        try await CountingUpstream.with { port, count in
            let config = """
                policy:
                  - from: https://app.example.test
                    to: http://127.0.0.1:\(port)
                    allowed_users: [alice@corp.test]
                """
            let minted = MintedToken()
            try await ProxyHarness.run(config: config, refresher: RecordingRefresher { _ in minted.value }) { proxy in
                minted.value = try proxy.token(proxy.session("eve@corp.test", audience: ["app.example.test"]))
                let expired = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: -10)
                let response = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", try proxy.cookieHeader(expired))])
                #expect(response.status == 403)
                #expect(count() == 0)
            }
        }
    }

    @Test("route timeout answers 504")
    func routeTimeout() async throws {
        try await Fixtures.withEchoUpstream { echo in
            let config = """
                policy:
                  - from: https://slow.example.test
                    to: \(echo.baseURL)
                    allow_public_unauthenticated_access: true
                    timeout: 300ms
                """
            try await ProxyHarness.run(config: config) { proxy in
                // The upstream responds with 200 after 20 s, so a 504 well before that can only
                // come from the route's timeout. The bound is loose: a loaded machine once took 4.5 s.
                let started = Date()
                let response = try await proxy.request(host: "slow.example.test", path: "/slow/20")
                #expect(response.status == 504)
                #expect(Date().timeIntervalSince(started) < 15)
                #expect(response.headers.first(name: "X-Pomerium-Intercepted-Response") == "true")
                let fast = try await proxy.request(host: "slow.example.test", path: "/size/200000")
                #expect(fast.status == 200)
                #expect(fast.body.count == 200_000)
            }
        }
    }

    @Test("unreachable upstream answers 502")
    func unreachableUpstream() async throws {
        let config = """
            policy:
              - from: https://down.example.test
                to: http://127.0.0.1:9
                allow_public_unauthenticated_access: true
            """
        try await ProxyHarness.run(config: config) { proxy in
            let response = try await proxy.request(host: "down.example.test", path: "/")
            #expect(response.status == 502)
        }
    }

    @Test(
        "the route timeout bounds connecting to 1-10 s, and no limit connects with 10 s",
        arguments: [("0", 10.0), ("500ms", 1.0), ("3s", 3.0), ("30s", 10.0)])
    func connectTimeouts(timeout: String, connect: Double) throws {
        let options = try ProxyHarness.options(
            """
            policy:
              - from: https://app.example.test
                to: http://127.0.0.1:9
                timeout: \(timeout)
                allow_public_unauthenticated_access: true
            """)
        let table = try ProxyRouteTable(policy: options.policy)
        #expect(table.upstreams["policy[0]"]?.timeouts.connect == connect)
    }

    @Test("reconfigured service keeps the shared signer")
    func reconfigure() async throws {
        try await ProxyHarness.run(config: "policy: []") { proxy in
            let next = try proxy.service.reconfigured(
                options: try ProxyHarness.options(
                    """
                    policy:
                      - from: https://new.example.test
                        to: http://127.0.0.1:9
                        allow_public_unauthenticated_access: true
                    """))
            #expect(next.shared.signer === proxy.service.shared.signer)
            #expect(next.shared.client === proxy.service.shared.client)
            #expect(next.table.isRouteHost("new.example.test"))
            #expect(!proxy.service.table.isRouteHost("new.example.test"))
        }
    }
}

/// A token that a test sets after building its sessions and a refresher returns.
final class MintedToken: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = ""

    var value: String {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
