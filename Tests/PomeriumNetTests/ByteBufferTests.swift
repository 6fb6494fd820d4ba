import PomeriumNet
import Testing

@Suite("Byte buffer")
struct ByteBufferTests {
    @Test("append and consume")
    func appendConsume() {
        var buffer = ByteBuffer(string: "hello ")
        buffer.append(string: "world")
        #expect(buffer.readableBytes == 11)
        buffer.consume(6)
        #expect(Array(buffer.readableView) == Array("world".utf8))
        #expect(Array(buffer.read(upTo: 3)) == Array("wor".utf8))
        buffer.consume(2)
        #expect(buffer.isEmpty)
    }

    @Test("compaction keeps unread bytes")
    func compaction() {
        var buffer = ByteBuffer()
        buffer.append(Array(repeating: UInt8(1), count: 10_000))
        buffer.append(Array(repeating: UInt8(2), count: 100))
        buffer.consume(10_000)
        #expect(buffer.readerIndex == 0)
        #expect(buffer.readableBytes == 100)
        #expect(buffer.readableView.allSatisfy { $0 == 2 })
    }
}
