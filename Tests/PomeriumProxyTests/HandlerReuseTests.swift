import Foundation
import PomeriumHTTP
import PomeriumTestSupport
import Testing

@testable import PomeriumProxy

/// A proxy handler serves the next request of its connection and builds the next upstream head
/// in the storage of the last one. Nothing of an earlier request may reach a later one.
@Suite("Proxy handler reuse on a keep-alive connection")
struct HandlerReuseTests {
    static func config(echo: String) -> String {
        """
        jwt_claims_headers: [email]
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test, bob@corp.test]
        """
    }

    /// Sends `request` on `connection` and decodes the echo upstream's response body.
    static func exchange(_ connection: RawConnection, _ request: String) async throws -> (String, EchoAnswer?) {
        let (head, body) = try await onThread {
            connection.send(request)
            let response = connection.readResponse()
            return (response.head, response.body)
        }
        return (head, try? JSONDecoder().decode(EchoAnswer.self, from: Data(body)))
    }

    /// Returns the decoded payload of a JWT.
    static func payload(_ token: String) -> String {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return "" }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The handler builds each response head in the storage of the previous one. Echo responses
    /// (JSON) alternate with `/size` responses (octet-stream) of other lengths, so a field or a
    /// byte of an earlier head would show in a later one.
    @Test("keep-alive responses carry own fields")
    func ownResponseFieldsPerRequest() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let alice = try proxy.cookieHeader(proxy.session("alice@corp.test", audience: ["app.example.test"]))
                let connection = try RawConnection(port: proxy.port)
                var requestIDs: [String] = []
                for path in ["/page", "/size/3", "/a-longer-page-path", "/size/12", "/page"] {
                    let request = "GET \(path) HTTP/1.1\r\nHost: app.example.test\r\nCookie: \(alice)\r\n\r\n"
                    let (head, body) = try await onThread {
                        connection.send(request)
                        let response = connection.readResponse()
                        return (response.head, response.body)
                    }
                    #expect(head.hasPrefix("HTTP/1.1 200"), "\(path): \(head)")
                    let lines = head.split(separator: "\r\n").dropFirst()
                    func values(_ name: String) -> [String] {
                        lines.compactMap { line in
                            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name else {
                                return nil
                            }
                            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                        }
                    }
                    let expectedType = path.hasPrefix("/size/") ? "application/octet-stream" : "application/json"
                    #expect(values("content-type") == [expectedType], "\(path): \(head)")
                    #expect(values("content-length") == [String(body.count)], "\(path): \(head)")
                    #expect(values("request-id").count == 1, "\(path): \(head)")
                    requestIDs += values("request-id")
                    #expect(lines.allSatisfy { $0.contains(":") }, "\(path): \(head)")
                }
                #expect(Set(requestIDs).count == 5, "\(requestIDs)")
            }
        }
    }

    /// The handler drops the request head once the response has ended, after the access log
    /// line, so each line must still name its own request's path and agent.
    @Test("keep-alive access log lines name own request")
    func ownAccessLogLines() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let alice = try proxy.cookieHeader(proxy.session("alice@corp.test", audience: ["app.example.test"]))
                let connection = try RawConnection(port: proxy.port)
                for (path, agent) in [("/first", "agent-one"), ("/second", "agent-two"), ("/third", "")] {
                    var request = "GET \(path) HTTP/1.1\r\nHost: app.example.test\r\nCookie: \(alice)\r\n"
                    if !agent.isEmpty { request += "User-Agent: \(agent)\r\n" }
                    let text = request + "\r\n"
                    let head = try await onThread {
                        connection.send(text)
                        return connection.readResponse().head
                    }
                    #expect(head.hasPrefix("HTTP/1.1 200"), "\(path): \(head)")
                    let line = try #require(proxy.logs.all.last { $0.message == "http-request" })
                    #expect(line.metadata["method"] == .string("GET"))
                    #expect(line.metadata["path"] == .string(path))
                    #expect(line.metadata["user_agent"] == (agent.isEmpty ? nil : .string(agent)), "\(path)")
                    #expect(line.metadata["email"] == .string("alice@corp.test"))
                }
            }
        }
    }

    @Test("keep-alive requests forward own fields")
    func ownFieldsPerRequest() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let alice = try proxy.cookieHeader(proxy.session("alice@corp.test", audience: ["app.example.test"]))
                let bob = try proxy.cookieHeader(proxy.session("bob@corp.test", audience: ["app.example.test"]))
                let connection = try RawConnection(port: proxy.port)
                // Four requests: the first has more and longer fields than the second, so stale
                // entries or bytes of a longer head would show in a shorter one.
                let requests: [(cookie: String, email: String, fields: [(String, String)])] = [
                    (alice, "alice@corp.test", [("X-First", String(repeating: "a", count: 300)), ("X-Extra", "1")]),
                    (bob, "bob@corp.test", [("X-Second", "b")]),
                    (alice, "alice@corp.test", []),
                    (bob, "bob@corp.test", [("Connection", "X-Dropped"), ("X-Dropped", "d"), ("X-Fourth", "4")]),
                ]
                for (index, request) in requests.enumerated() {
                    var text = "GET /page\(index) HTTP/1.1\r\nHost: app.example.test\r\nCookie: \(request.cookie)\r\n"
                    for (name, value) in request.fields { text += "\(name): \(value)\r\n" }
                    let (head, answer) = try await Self.exchange(connection, text + "\r\n")
                    #expect(head.hasPrefix("HTTP/1.1 200"), "request \(index): \(head)")
                    let echoed = try #require(answer, "request \(index) reached the upstream")
                    #expect(echoed.path == "/page\(index)")
                    #expect(echoed.values("X-Pomerium-Claim-Email") == [request.email])
                    let assertion = echoed.values("X-Pomerium-Jwt-Assertion")
                    #expect(assertion.count == 1)
                    #expect(assertion.first.map(Self.payload)?.contains("\"\(request.email)\"") == true)
                    let sent = Set(request.fields.map { $0.0.lowercased() }).subtracting(["connection", "x-dropped"])
                    let custom = Set(
                        echoed.names.map { $0.lowercased() }.filter {
                            $0.hasPrefix("x-") && !$0.hasPrefix("x-pomerium") && !$0.hasPrefix("x-forwarded")
                        })
                    #expect(custom == sent, "request \(index) forwarded \(custom)")
                    #expect(echoed.values("Host").count == 1)
                    #expect(echoed.values("X-Forwarded-For").count == 1)
                    for (name, value) in request.fields where name.hasPrefix("X-") && name != "X-Dropped" {
                        #expect(echoed.values(name) == [value])
                    }
                }
            }
        }
    }
}
