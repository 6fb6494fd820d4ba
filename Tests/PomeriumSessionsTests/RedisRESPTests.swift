import CHiredis
import PomeriumSessionsRedis
import PomeriumTestSupport
import Testing

@Suite struct RedisRESPTests {
    private func parseAll(_ text: String) throws -> [RESPValue] {
        var parser = RESPParser()
        parser.append(Array(text.utf8))
        var values: [RESPValue] = []
        while let value = try parser.next() { values.append(value) }
        return values
    }

    @Test func parsesEveryType() throws {
        let values = try parseAll("+OK\r\n-ERR bad\r\n:-42\r\n$3\r\na\0b\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n")
        #expect(
            values == [
                .simpleString("OK"), .error("ERR bad"), .integer(-42), .bulkString([97, 0, 98]), .null, .null,
                .array([.integer(1), .array([.bulkString([])])]),
            ])
    }

    @Test func waitsForIncompleteValues() throws {
        var parser = RESPParser()
        let bytes = Array("*2\r\n$5\r\nhello\r\n:7\r\n".utf8)
        for byte in bytes.dropLast() {
            parser.append([byte])
            #expect(try parser.next() == nil)
        }
        parser.append([bytes.last!])
        #expect(try parser.next() == .array([.bulkString(Array("hello".utf8)), .integer(7)]))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test(arguments: [
        "?x\r\n", ":12a\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n", "+line\nbreak\r\n", ":\r\n",
        ":99999999999999999999\r\n", "+a\rb\r\n",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: RESPError.self) { try parseAll(text) }
    }

    @Test func enforcesLimits() {
        var limits = RESPParser.Limits()
        limits.maximumBulkBytes = 10
        limits.maximumDepth = 2
        limits.maximumLineBytes = 8
        for text in ["$11\r\n", "*1\r\n*1\r\n*1\r\n:1\r\n", "+123456789"] {
            var parser = RESPParser(limits: limits)
            parser.append(Array(text.utf8))
            #expect(throws: RESPError.self) { try parser.next() }
        }
    }

    @Test func hugeClaimedArrayCostsNothingUpFront() throws {
        var parser = RESPParser()
        parser.append(Array("*1000000\r\n:1\r\n".utf8))
        #expect(try parser.next() == nil)
    }

    @Test func encodesCommandsAsBulkArrays() {
        let encoded = RESPEncoder.encodeCommand([Array("SET".utf8), [0, 13, 10]])
        #expect(encoded == Array("*2\r\n$3\r\nSET\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n".utf8))
    }

    /// Random values, encoded and fed in random pieces, parse back to themselves and to what
    /// hiredis's reply reader makes of the same bytes.
    @Test func randomValuesMatchHiredis() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let values = (0..<Int.random(in: 1...4, using: &generator)).map { _ in
                Self.randomValue(depth: 0, using: &generator)
            }
            var bytes: [UInt8] = []
            for value in values { RESPEncoder.encode(value, into: &bytes) }

            var parser = RESPParser()
            var parsed: [RESPValue] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + Int.random(in: 1...64, using: &generator))
                parser.append(bytes[offset..<end])
                while let value = try parser.next() { parsed.append(value) }
                offset = end
            }
            #expect(parsed == values)
            #expect(try HiredisReader.parse(bytes) == values)
        }
    }

    /// Random mutations of valid streams never crash the parser, and whatever both parsers accept
    /// they read the same way.
    @Test func mutatedStreamsAgreeWithHiredis() throws {
        var generator = SeededGenerator(seed: 11)
        var agreements = 0
        for _ in 0..<5000 {
            var bytes: [UInt8] = []
            RESPEncoder.encode(Self.randomValue(depth: 0, using: &generator), into: &bytes)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = Self.interestingBytes.randomElement(using: &generator)!
            }
            var parser = RESPParser()
            parser.append(bytes)
            let ours = try? parser.next()
            if let ours, let theirs = try? HiredisReader.parse(bytes).first {
                #expect(ours == theirs, "input \(bytes.prefix(64))")
                agreements += 1
            }
        }
        #expect(agreements > 100)
    }

    private static let interestingBytes: [UInt8] = Array("+-:$*\r\n0123456789-".utf8) + [0, 255]

    private static func randomValue(depth: Int, using generator: inout SeededGenerator) -> RESPValue {
        let choice = Int.random(in: 0..<(depth < 3 ? 6 : 5), using: &generator)
        switch choice {
        case 0: return .simpleString(randomText(using: &generator))
        case 1: return .error("ERR " + randomText(using: &generator))
        case 2: return .integer(Int64.random(in: Int64.min...Int64.max, using: &generator))
        case 3:
            let count = Int.random(in: 0...300, using: &generator)
            return .bulkString((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        case 4: return .null
        default:
            let count = Int.random(in: 0...5, using: &generator)
            return .array((0..<count).map { _ in randomValue(depth: depth + 1, using: &generator) })
        }
    }

    private static func randomText(using generator: inout SeededGenerator) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz ABC0123456789_-".utf8)
        let count = Int.random(in: 0...20, using: &generator)
        return String(decoding: (0..<count).map { _ in letters.randomElement(using: &generator)! }, as: UTF8.self)
    }
}

/// hiredis's reply reader (libhiredis), as a reference parser.
enum HiredisReader {
    struct Failure: Error {}

    static func parse(_ bytes: [UInt8]) throws -> [RESPValue] {
        guard let reader = redisReaderCreate() else { throw Failure() }
        defer { redisReaderFree(reader) }
        reader.pointee.maxbuf = 0
        let fed = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard fed == REDIS_OK else { throw Failure() }
        var values: [RESPValue] = []
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw Failure() }
            guard let reply else { break }
            defer { freeReplyObject(reply) }
            values.append(convert(reply.assumingMemoryBound(to: redisReply.self)))
        }
        return values
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let value = reply.pointee
        let bytes = { () -> [UInt8] in
            guard let text = value.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: text, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STATUS: return .simpleString(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_STRING: return .bulkString(bytes())
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { convert(value.element[$0]!) })
        default: return .error("unexpected hiredis reply type \(value.type)")
        }
    }
}
