import Testing

@testable import PomeriumHTTP

@Suite("Path normalisation fast path")
struct PathFastPathTests {
    @Test(
        "normal paths returned unchanged",
        arguments: [
            "/", "/bench", "/a/b/", "/.well-known/acme", "/a/.b", "/a/..b", "/a/b.", "/a/...", "/a;x/b", "/a/b;c",
        ])
    func alreadyNormal(_ path: String) throws {
        #expect(PathNormalization.isAlreadyNormal(path))
        #expect(try PathNormalization.normalize(path) == path)
    }

    @Test(
        "changed paths take full steps",
        arguments: [
            ("/a//b", "/a/b"), ("//a", "/a"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/a/.", "/a/"), ("/a/..", "/"),
            ("/%41", "/A"), ("/a%2db", "/a-b"), ("/a%3fb", "/a%3Fb"), ("/a%3Fb", "/a%3Fb"), ("/.", "/"), ("/..", "/"),
        ])
    func changed(_ path: String, _ expected: String) throws {
        #expect(!PathNormalization.isAlreadyNormal(path))
        #expect(try PathNormalization.normalize(path) == expected)
    }

    @Test(
        "rejected paths miss fast path",
        arguments: [
            ("/a/.;x/b", PathNormalizationError.Kind.parameterOnDotSegment), ("/a/..;x", .parameterOnDotSegment),
            ("/;x/admin", .parameterOnDotSegment), ("/a/b\\c", .invalidCharacter), ("/a b", .invalidCharacter),
            ("/a\u{0}b", .nulByte), ("/caf\u{E9}", .invalidCharacter), ("/a%", .invalidPercentEncoding),
            ("/a%2F", .encodedSlash), ("/%2e%2e/x", .encodedDotSegment), ("bench", .notAbsolute),
        ])
    func rejected(_ path: String, _ kind: PathNormalizationError.Kind) {
        #expect(!PathNormalization.isAlreadyNormal(path))
        #expect(throws: PathNormalizationError(kind)) { try PathNormalization.normalize(path) }
    }

    @Test("kept duplicate slashes take full steps")
    func keptSlashes() throws {
        #expect(!PathNormalization.isAlreadyNormal("/a//b"))
        #expect(try PathNormalization.normalize("/a//b", mergeSlashes: false) == "/a//b")
    }
}

@Suite("Cookie value word test")
struct CookieWordTests {
    /// Each byte value in each of the 8 positions of a word of otherwise valid bytes.
    @Test("word test misses no rejected byte")
    func noMissedByte() {
        for byte in 0...255 {
            let value = UInt8(byte)
            // A `;` ends a pair, so it never reaches a value and the word test need not find it.
            let isAllowed =
                CookieSyntax.isCookieOctet(value) || value == 0x20 || value == UInt8(ascii: ",")
                || value == UInt8(ascii: ";")
            for position in 0..<8 {
                var word: UInt64 = 0x6161_6161_6161_6161
                word &= ~(UInt64(0xFF) << UInt64(position * 8))
                word |= UInt64(value) << UInt64(position * 8)
                if !isAllowed { #expect(CookieParser.mayHoldInvalidValueByte(word), "byte \(byte) at \(position)") }
            }
        }
        #expect(!CookieParser.mayHoldInvalidValueByte(0x6161_6161_6161_6161))
    }

    @Test("late rejected byte drops pair")
    func rejectedLateByte() {
        let cookies = CookieParser.parse(
            "a=0123456789abcdef\u{7F}x; b=0123456789abcdef\"x; c=0123456789abcdef\\x; d=ok")
        #expect(cookies.map(\.name) == ["d"])
    }
}

@Suite("Control byte search")
struct ControlByteSearchTests {
    /// Returns the first byte below 0x20 or equal to 0x7F at or after `start`, searched byte by
    /// byte, for comparison.
    private func expected(_ bytes: [UInt8], from start: Int) -> Int {
        bytes[start...].firstIndex { $0 < 0x20 || $0 == 0x7F } ?? bytes.count
    }

    @Test("first control byte at every position")
    func everyPosition() {
        // Several marked bytes per run exercise the bits a borrow may set above the first one. The
        // filler bytes sit next to the marked ones in value (0x20, 0x7E, 0x80) or are obs-text.
        // Lengths up to 40 cover the two-word steps, the single word and the byte loop.
        let fillers: [UInt8] = [0x20, 0x7E, 0x80, 0xFF, 0x61]
        var wrong: [String] = []
        for length in 1...40 {
            for first in 0...length {
                for second in [first + 1, first + 2, first + 9, length] where second <= length {
                    for (firstByte, secondByte) in [
                        (ASCII.cr, ASCII.lf), (ASCII.lf, ASCII.cr), (ASCII.tab, 0x7F), (0x7F, 0x00), (0x1F, 0x1F),
                    ] {
                        var bytes = [UInt8](repeating: fillers[length % fillers.count], count: length)
                        for index in stride(from: 0, to: length, by: 3) {
                            bytes[index] = fillers[index % fillers.count]
                        }
                        if first < length { bytes[first] = firstByte }
                        if second < length { bytes[second] = secondByte }
                        for start in 0..<length {
                            let found = bytes.withUnsafeBufferPointer {
                                SectionScanner.firstControlByte($0, from: start, to: length)
                            }
                            if found != expected(bytes, from: start) {
                                wrong.append("\(length), \(first), from \(start)")
                            }
                        }
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "length, first mark, start: \(wrong.prefix(8))")
    }

    @Test("every byte value in every word position")
    func everyByteValue() {
        // Each mark must be exact, not only the lowest: the word's other bytes take every value
        // in turn, so a borrow or carry between bytes would show.
        func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }
        var wrong: [UInt64] = []
        for byte in UInt8.min...UInt8.max {
            for other in UInt8.min...UInt8.max {
                for position in 0..<8 {
                    var word = UInt64(other) &* 0x0101_0101_0101_0101
                    word &= ~(UInt64(0xFF) << UInt64(position * 8))
                    word |= UInt64(byte) << UInt64(position * 8)
                    var expected: UInt64 = 0
                    for index in 0..<8 where isControl(UInt8(truncatingIfNeeded: word >> UInt64(index * 8))) {
                        expected |= 0x80 << UInt64(index * 8)
                    }
                    if ByteMasks.controlBytes(word) != expected { wrong.append(word) }
                }
            }
        }
        #expect(wrong.isEmpty, "wrong marks for \(wrong.prefix(8).map { String($0, radix: 16) })")
    }
}
