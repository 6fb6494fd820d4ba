import Testing

@testable import PomeriumHTTP

/// Field names of letters, digits and hyphens are checked eight bytes at a time, and every other
/// name takes the byte loop. These tests compare both with the rules of RFC 9110 §5.6.2.
@Suite("Field name fast path")
struct FieldNameFastPathTests {
    /// Returns the marks of `test` for each byte of `word`, computed byte by byte.
    private func expectedMarks(_ word: UInt64, _ test: (UInt8) -> Bool) -> UInt64 {
        var marks: UInt64 = 0
        for index in 0..<8 where test(UInt8(truncatingIfNeeded: word >> UInt64(index * 8))) {
            marks |= 0x80 << UInt64(index * 8)
        }
        return marks
    }

    @Test("masks exact for every byte pair")
    func masksExact() {
        func isPlain(_ byte: UInt8) -> Bool { ASCII.isAlpha(byte) || ASCII.isDigit(byte) || byte == UInt8(ascii: "-") }
        var wrong: [UInt64] = []
        for byte in UInt8.min...UInt8.max {
            for other in UInt8.min...UInt8.max {
                for position in [0, 3, 7] {
                    var word = UInt64(other) &* 0x0101_0101_0101_0101
                    word &= ~(UInt64(0xFF) << UInt64(position * 8))
                    word |= UInt64(byte) << UInt64(position * 8)
                    if ByteMasks.plainNameBytes(word) != expectedMarks(word, isPlain) { wrong.append(word) }
                    if ByteMasks.bytes(word, in: ASCII.colon...ASCII.colon)
                        != expectedMarks(word, { $0 == ASCII.colon })
                    {
                        wrong.append(word)
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "wrong marks for \(wrong.prefix(8).map { String($0, radix: 16) })")
    }

    /// Returns the error the rules give for a field line that starts with `name`, or nil.
    private func expectedResult(_ name: [UInt8]) -> HTTPParseError.Kind? {
        if let first = name.first, ASCII.isWhitespace(first) { return .obsoleteLineFolding }
        for byte in name {
            if ASCII.isTokenCharacter(byte) { continue }
            if byte == ASCII.colon { break }
            return ASCII.isWhitespace(byte) ? .whitespaceBeforeColon : .invalidHeaderName
        }
        return name.first == ASCII.colon ? .invalidHeaderName : nil
    }

    @Test("every byte at every name position", arguments: [1, Int.max])
    func everyByte(sliceSize: Int) {
        let filler = Array("Content-Type-X1".utf8)
        for position in 0..<filler.count {
            for byte in UInt8.min...UInt8.max where byte != ASCII.cr && byte != ASCII.lf {
                var name = filler
                name[position] = byte
                let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8) + name + Array(": v\r\n\r\n".utf8)
                let events = parseRequests(bytes: bytes, sliceSize: sliceSize)
                let expected = expectedResult(name)
                #expect(firstError(events)?.kind == expected, "byte \(byte) at \(position)")
                if expected == nil {
                    let colon = name.firstIndex(of: ASCII.colon) ?? name.count
                    let field = heads(events).first?.headers.last
                    #expect(field.map { Array($0.name.utf8) } == Array(name[..<colon]), "byte \(byte) at \(position)")
                }
            }
        }
    }

    @Test("names of every length up to 40")
    func nameLengths() {
        for length in 1...40 {
            let name = String(repeating: "a", count: length)
            let head = heads(parseRequests("GET / HTTP/1.1\r\n\(name): v\r\nHost: h\r\n\r\n")).first
            #expect(head?.headers.first(name: name) == "v", "length \(length)")
            let spaced = parseRequests("GET / HTTP/1.1\r\n\(name) : v\r\nHost: h\r\n\r\n")
            #expect(firstError(spaced)?.kind == .whitespaceBeforeColon, "length \(length)")
            let missing = parseRequests("GET / HTTP/1.1\r\nHost: h\r\n\(name)\r\n\r\n")
            #expect(firstError(missing)?.kind == .invalidHeaderName, "length \(length)")
        }
    }
}
