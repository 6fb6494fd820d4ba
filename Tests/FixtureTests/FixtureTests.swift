import Foundation
import PomeriumTestSupport
import Testing

/// The real servers that integration tests rely on start on a free loopback port, answer, and are
/// gone after the `with…` block, also when the block throws.
@Suite(.serialized) struct FixtureTests {
    @Test func redisStartsAnswersAndStops() async throws {
        var pid: Int32 = 0
        try await Fixtures.withRedis { server in
            pid = server.process.processIdentifier
            let connection = try LoopbackConnection(port: server.port)
            try connection.send("PING\r\n")
            #expect(connection.receive(until: { $0.hasSuffix("\r\n") }) == "+PONG\r\n")
        }
        #expect(!processExists(pid))
    }

    @Test func oidcProviderServesDiscovery() async throws {
        try await Fixtures.withOIDCProvider { server in
            let response = try LoopbackConnection.httpGet(port: server.port, path: "/.well-known/openid-configuration")
            #expect(response.hasPrefix("HTTP/1.1 200"))
            #expect(
                response.contains("\"issuer\": \"http://127.0.0.1:\(server.port)\"")
                    || response.contains("\"issuer\":\"http://127.0.0.1:\(server.port)\""))
            #expect(response.contains("authorization_endpoint"))
        }
    }

    @Test func nginxServesAConfiguredBlock() async throws {
        var pid: Int32 = 0
        try await Fixtures.withNginx(serverBlock: "location / { return 200 'nginx fixture on @PORT@'; }") { server in
            pid = server.process.processIdentifier
            let response = try LoopbackConnection.httpGet(port: server.port, path: "/")
            #expect(response.hasPrefix("HTTP/1.1 200"))
            #expect(response.hasSuffix("nginx fixture on \(server.port)"))
        }
        #expect(!processExists(pid))
    }

    @Test func echoUpstreamReturnsHeadersAsJSON() async throws {
        try await Fixtures.withEchoUpstream { server in
            let response = try LoopbackConnection.httpGet(
                port: server.port,
                path: "/a?b=1",
                headers: ["X-Test-Header": "seen"]
            )
            #expect(response.hasPrefix("HTTP/1.1 200"))
            let body = try #require(response.components(separatedBy: "\r\n\r\n").last)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(json["path"] as? String == "/a?b=1")
            let headers = try #require(json["headers"] as? [[String]])
            #expect(headers.contains(["X-Test-Header", "seen"]))
        }
    }

    @Test func webSocketEchoAcceptsAnUpgrade() async throws {
        try await Fixtures.withWebSocketEcho { server in
            let connection = try LoopbackConnection(port: server.port)
            try connection.send(
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            let response = connection.receive(until: { $0.contains("\r\n\r\n") })
            #expect(response.hasPrefix("HTTP/1.1 101"))
            // The accept value for this key is given in RFC 6455, section 1.3.
            #expect(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        }
    }

    @Test func serverStopsWhenTheBodyThrows() async throws {
        var pid: Int32 = 0
        await #expect(throws: FixtureError.self) {
            try await Fixtures.withRedis { server in
                pid = server.process.processIdentifier
                throw FixtureError("thrown on purpose")
            }
        }
        #expect(pid != 0)
        #expect(!processExists(pid))
    }

    private func processExists(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        // A reaped child no longer exists; kill with signal 0 only checks.
        return kill(pid, 0) == 0
    }
}
