import PomeriumHTTPServer
import PomeriumNet
import PomeriumTestSupport
import Testing

@Suite("Listener address in use")
struct ListenerExclusiveTests {
    @Test("second server on same port fails")
    func secondServerFails() async throws {
        try await HTTPTesting.withServer(loops: 2, makeHandler: HTTPServerTests.hello) { server in
            let group = try EventLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let taken = try SocketAddress(parsing: "127.0.0.1:\(server.localAddress.port)")
            await #expect(throws: IOError.self) {
                _ = try await HTTPServer(
                    group: group, configuration: HTTPServerConfiguration(address: taken),
                    makeHandler: HTTPServerTests.hello)
            }
            // The first server still gets every connection.
            let connection = try LoopbackConnection(port: server.localAddress.port)
            try connection.send("GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(connection.receive().contains("hello /one 0"))
        }
    }

    @Test("probe passes for port zero")
    func portZeroPasses() throws {
        try Listener.checkUnused(try SocketAddress(parsing: "127.0.0.1:0"))
    }
}
