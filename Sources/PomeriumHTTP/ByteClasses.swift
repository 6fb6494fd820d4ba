/// Character classes from RFC 9110 §5.6 and RFC 3986 §2, tested on single bytes.
enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let comma: UInt8 = 0x2C
    static let equals: UInt8 = 0x3D
    static let quote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
    static let question: UInt8 = 0x3F
    static let hash: UInt8 = 0x23
    static let percent: UInt8 = 0x25
    static let dot: UInt8 = 0x2E
    static let at: UInt8 = 0x40
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let plus: UInt8 = 0x2B

    /// `tchar` of RFC 9110 §5.6.2, the bytes of a token such as a method or a field name, as two
    /// 64-bit masks over the bytes below 0x80: bit `b` is set when byte `b` is a `tchar`, that is
    /// a letter, a digit or one of ``!#$%&'*+-.^_`|~``. Every byte of every field name passes
    /// through this test, and a mask costs about a third of a `switch` over the ranges, which
    /// compiles to a chain of comparisons. A test checks the masks against the RFC's list.
    static let tokenMaskLow: UInt64 = 0x03FF_6CFA_0000_0000
    static let tokenMaskHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    @inline(__always)
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        let mask = byte < 64 ? tokenMaskLow : (byte < 128 ? tokenMaskHigh : 0)
        return (mask >> UInt64(byte & 63)) & 1 != 0
    }

    /// `field-vchar` plus SP and HTAB (RFC 9110 §5.5): every byte a field value may contain.
    /// Bytes 0x80 and above are `obs-text`, which the RFC still allows.
    @inline(__always)
    static func isFieldValueCharacter(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    @inline(__always)
    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    /// The value of a hexadecimal digit, or nil for any other byte.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        default: return nil
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `unreserved` of RFC 3986 §2.3.
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
    }

    /// `sub-delims` of RFC 3986 §2.2.
    @inline(__always)
    static func isSubDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// `pchar` of RFC 3986 §3.3 without the percent sign, which callers check as `pct-encoded`.
    @inline(__always)
    static func isPathCharacter(_ byte: UInt8) -> Bool {
        isUnreserved(byte) || isSubDelimiter(byte) || byte == colon || byte == at
    }

    static let hexDigitsUppercase: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Whether every byte of `bytes` passes `test`, reading 8 bytes per step: `mayFail` gets each
    /// 8-byte word and returns true when some byte in it might fail, and only such words are
    /// tested byte by byte. `mayFail` must never return false for a word with a failing byte.
    /// Header values and cookies are checked on every request, where a byte loop cost about 9
    /// instructions per byte.
    @inline(__always)
    static func allBytes(
        _ bytes: UnsafeBufferPointer<UInt8>, mayFail: (UInt64) -> Bool, _ test: (UInt8) -> Bool
    ) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var index = 0
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            if mayFail(word) {
                for offset in index..<(index + 8) where !test(base[offset]) { return false }
            }
            index += 8
        }
        while index < bytes.count {
            if !test(base[index]) { return false }
            index += 1
        }
        return true
    }

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Nonzero when some byte of `word` is below `limit` (at most 0x80); never zero when one is.
    @inline(__always)
    static func hasByte(_ word: UInt64, below limit: UInt8) -> Bool {
        (word &- ones &* UInt64(limit)) & ~word & highBits != 0
    }

    /// Whether some byte of `word` is at least 0x80 or above `limit` (below 0x80).
    @inline(__always)
    static func hasByte(_ word: UInt64, above limit: UInt8) -> Bool {
        ((word &+ ones &* UInt64(0x7F - limit)) | word) & highBits != 0
    }

    /// Returns the high bit of each zero byte of `word`, read as little-endian. The lowest set bit
    /// marks the first zero byte exactly. Bits above it may be false, set by the borrow.
    @inline(__always)
    static func zeroByteMask(_ word: UInt64) -> UInt64 {
        (word &- ones) & ~word & highBits
    }

    /// Returns `zeroByteMask` of `word` with `byte` as the zero, to search for `byte`.
    @inline(__always)
    static func byteMask(_ word: UInt64, equalTo byte: UInt8) -> UInt64 {
        zeroByteMask(word ^ (ones &* UInt64(byte)))
    }

    /// Whether some byte of `word` equals `byte`; never false when one does.
    @inline(__always)
    static func hasByte(_ word: UInt64, equalTo byte: UInt8) -> Bool {
        hasByte(word ^ (ones &* UInt64(byte)), below: 1)
    }

    /// Whether every byte may appear in a field value (`isFieldValueCharacter`).
    @inline(__always)
    static func allFieldValueCharacters(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        allBytes(bytes, mayFail: { hasByte($0, below: 0x20) || hasByte($0, equalTo: 0x7F) }, isFieldValueCharacter)
    }

    /// Compares two strings byte by byte with ASCII letters folded to lowercase.
    static func equalsIgnoringCase(_ lhs: String, _ rhs: String) -> Bool {
        // Header lookups call this on every request, so the cheap length check comes first. Then
        // `withUTF8` on copies reads the bytes in place, which measured cheaper than iterating the
        // UTF-8 views or `withContiguousStorageIfAvailable`.
        guard lhs.utf8.count == rhs.utf8.count else { return false }
        var left = lhs
        var right = rhs
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in equalsIgnoringCase(leftBytes, rightBytes) }
        }
    }

    /// Compares two byte sequences of equal length with ASCII letters folded to lowercase.
    @inline(__always)
    static func equalsIgnoringCase(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Bool {
        guard left.count == right.count else { return false }
        for index in 0..<left.count where left[index] != right[index] {
            if lowercased(left[index]) != lowercased(right[index]) { return false }
        }
        return true
    }

    static func lowercased(_ text: String) -> String {
        if !text.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) { return text }
        return String(decoding: text.utf8.map { lowercased($0) }, as: UTF8.self)
    }
}

extension ASCII {
    /// Returns whether `name` equals `lowercase` (lowercase ASCII) ignoring ASCII case. Only `A`-`Z` are
    /// folded, so no other byte can pass for a letter or a hyphen.
    @inline(__always)
    static func equalsLowercase(_ name: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        HTTPFieldName.matches(name, lowercase: lowercase)
    }
}
