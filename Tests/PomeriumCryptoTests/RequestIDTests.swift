import Testing

@testable import PomeriumCrypto

@Suite("Request id formatting")
struct RequestIDTests {
    /// Formats bytes the long way: each byte as two digits from a table, a dash before bytes 4, 6,
    /// 8 and 10.
    static func reference(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        for (offset, byte) in bytes.enumerated() {
            if offset == 4 || offset == 6 || offset == 8 || offset == 10 { text.append("-") }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return text
    }

    static func format(_ bytes: [UInt8]) -> String {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyBytes(from: bytes) }
        return RequestID.format(words)
    }

    @Test("format matches the per-byte table")
    func everyByteAtEveryPosition() {
        var mismatches: [String] = []
        for position in 0..<16 {
            for value in 0...255 {
                // The other bytes count up from the position, so neighbours differ too.
                var bytes = (0..<16).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ position) }
                bytes[position] = UInt8(value)
                let expected = Self.reference(bytes)
                let formatted = Self.format(bytes)
                if formatted != expected { mismatches.append("\(expected) became \(formatted)") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test("edge byte values")
    func edges() {
        #expect(Self.format([UInt8](repeating: 0, count: 16)) == "00000000-0000-0000-0000-000000000000")
        #expect(Self.format([UInt8](repeating: 0xFF, count: 16)) == "ffffffff-ffff-ffff-ffff-ffffffffffff")
        #expect(Self.format(Array(0..<16)) == "00010203-0405-0607-0809-0a0b0c0d0e0f")
        #expect(Self.format((0..<16).map { 0x90 &+ $0 }) == "90919293-9495-9697-9899-9a9b9c9d9e9f")
    }

    @Test("text in place matches format")
    func textInPlace() {
        let samples: [(UInt64, UInt64)] = [
            (0, 0), (UInt64.max, UInt64.max), (0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210),
            RequestID.makeBits(), RequestID.makeBits(),
        ]
        for bits in samples {
            let text = RequestID.withText(of: bits) { String(decoding: $0, as: UTF8.self) }
            #expect(text == RequestID.format(bits))
            #expect(text.utf8.count == RequestID.textByteCount)
        }
    }

    @Test("drawn bits differ")
    func drawnBitsDiffer() {
        let first = RequestID.makeBits()
        let second = RequestID.makeBits()
        #expect(first != second)
    }

    @Test("digit word order: high digit first")
    func digitWord() {
        let bytes: [UInt8] = [0x3C, 0x10, 0x5F, 0xA9]
        let word = RequestID.hexDigits(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        var digits = word.littleEndian
        let text = withUnsafeBytes(of: &digits) { String(decoding: $0, as: UTF8.self) }
        #expect(text == "3c105fa9")
    }
}
