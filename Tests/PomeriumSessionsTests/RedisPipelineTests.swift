import PomeriumSessions
import PomeriumSessionsRedis
import Testing

@Suite struct RedisPipelineTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func handshakeComesFirstThenPipelinedReplies() throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: 6379, database: 2, password: "pw")
        configuration.username = "app"
        var pipeline = RedisPipeline<Int>(configuration: configuration)
        #expect(!pipeline.isReady)
        pipeline.submit(RESPEncoder.encodeCommand([bytes("GET"), bytes("a")]), tag: 1)
        pipeline.submit(RESPEncoder.encodeCommand([bytes("GET"), bytes("b")]), tag: 2)
        let expected =
            "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
            + "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
        #expect(pipeline.outbound == bytes(expected))
        pipeline.consumeOutbound(pipeline.outbound.count)
        #expect(pipeline.pendingCount == 4)
        #expect(pipeline.oldestTag == 1)

        let completed = try pipeline.receive(bytes("+OK\r\n+OK\r\n$1\r\nx\r\n$-"))
        #expect(pipeline.isReady)
        #expect(completed.map(\.0) == [1])
        #expect(completed.map(\.1) == [.bulkString(bytes("x"))])
        let rest = try pipeline.receive(bytes("1\r\n"))
        #expect(rest.map(\.0) == [2])
        #expect(rest.map(\.1) == [.null])
        #expect(pipeline.pendingCount == 0)
    }

    @Test func wrongPasswordFailsWithoutEchoingIt() {
        var pipeline = RedisPipeline<Int>(configuration: RedisConfiguration(host: "h", password: "hunter2"))
        pipeline.submit(RESPEncoder.encodeCommand([bytes("PING")]), tag: 1)
        let error = #expect(throws: StoreError.self) {
            try pipeline.receive(bytes("-WRONGPASS invalid username-password pair or user is disabled.\r\n"))
        }
        #expect(error?.kind == .authenticationFailed)
        #expect(error?.message.contains("cache_store_password") == true)
        #expect(error?.message.contains("hunter2") == false)
        #expect(pipeline.removeAllTags() == [1])
    }

    @Test func replyWithoutCommandIsAProtocolError() {
        var pipeline = RedisPipeline<Int>(configuration: RedisConfiguration(host: "h"))
        #expect(pipeline.isReady)
        let error = #expect(throws: StoreError.self) { try pipeline.receive(bytes("+OK\r\n")) }
        #expect(error?.kind == .protocolError)
    }

    @Test func invalidBytesAreAProtocolError() {
        var pipeline = RedisPipeline<Int>(configuration: RedisConfiguration(host: "h"))
        pipeline.submit(RESPEncoder.encodeCommand([bytes("PING")]), tag: 1)
        let error = #expect(throws: StoreError.self) { try pipeline.receive(bytes("HTTP/1.1 400\r\n")) }
        #expect(error?.kind == .protocolError)
        #expect(error?.message.contains("invalid reply") == true)
    }
}
