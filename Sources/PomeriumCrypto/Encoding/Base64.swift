/// Base64 (RFC 4648 section 4) and base64url (section 5) on bytes, with and without padding.
///
/// Decoding is strict so that every encoded string has one decoding and every decoding one string:
/// characters outside the alphabet, wrong or missing padding, a 1-character final group, and
/// non-zero unused bits in the last character all fail. Without strictness a flipped low bit in
/// the last character of a cookie would decode to the same bytes and pass a tamper check.
public struct Base64: Sendable, Equatable {
    /// The alphabet: standard (`+`, `/`) or URL-safe (`-`, `_`).
    public let urlSafe: Bool
    /// Whether the encoder writes `=` padding and the decoder requires it.
    public let padded: Bool

    /// Standard alphabet with padding, as Go's `base64.StdEncoding`.
    public static let standard = Base64(urlSafe: false, padded: true)
    /// Standard alphabet without padding, as Go's `base64.RawStdEncoding`.
    public static let standardUnpadded = Base64(urlSafe: false, padded: false)
    /// URL-safe alphabet with padding, as Go's `base64.URLEncoding`.
    public static let url = Base64(urlSafe: true, padded: true)
    /// URL-safe alphabet without padding, as JOSE and Go's `base64.RawURLEncoding` use.
    public static let urlUnpadded = Base64(urlSafe: true, padded: false)

    public init(urlSafe: Bool, padded: Bool) {
        self.urlSafe = urlSafe
        self.padded = padded
    }

    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    // 0xFF marks a byte outside the alphabet.
    private static func makeDecodeTable(_ alphabet: [UInt8]) -> [UInt8] {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }
    private static let standardDecodeTable = makeDecodeTable(standardAlphabet)
    private static let urlDecodeTable = makeDecodeTable(urlAlphabet)

    /// The length of the encoding of `count` bytes.
    public func encodedCount(_ count: Int) -> Int {
        padded ? (count + 2) / 3 * 4 : (count * 4 + 2) / 3
    }

    /// Encodes `bytes` to ASCII bytes.
    public func encodeToBytes(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let alphabet = urlSafe ? Base64.urlAlphabet : Base64.standardAlphabet
        let total = encodedCount(bytes.count)
        return withContiguousBytes(bytes) { input in
            [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
                alphabet.withUnsafeBufferPointer { table in
                    var read = 0
                    var written = 0
                    while read + 3 <= input.count {
                        let value = UInt32(input[read]) << 16 | UInt32(input[read + 1]) << 8 | UInt32(input[read + 2])
                        out[written] = table[Int(value >> 18)]
                        out[written + 1] = table[Int(value >> 12 & 0x3F)]
                        out[written + 2] = table[Int(value >> 6 & 0x3F)]
                        out[written + 3] = table[Int(value & 0x3F)]
                        read += 3
                        written += 4
                    }
                    let remaining = input.count - read
                    if remaining > 0 {
                        var value = UInt32(input[read]) << 16
                        if remaining == 2 { value |= UInt32(input[read + 1]) << 8 }
                        out[written] = table[Int(value >> 18)]
                        out[written + 1] = table[Int(value >> 12 & 0x3F)]
                        written += 2
                        if remaining == 2 {
                            out[written] = table[Int(value >> 6 & 0x3F)]
                            written += 1
                        }
                        if padded {
                            for _ in remaining..<3 {
                                out[written] = UInt8(ascii: "=")
                                written += 1
                            }
                        }
                    }
                    initialized = written
                }
            }
        }
    }

    /// Encodes `bytes` to a string.
    public func encode(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: encodeToBytes(bytes), as: UTF8.self)
    }

    /// Decodes ASCII bytes, or returns nil when they are not a canonical encoding in this variant.
    public func decode(bytes text: some Collection<UInt8>) -> [UInt8]? {
        let table = urlSafe ? Base64.urlDecodeTable : Base64.standardDecodeTable
        return withContiguousBytes(text) { input -> [UInt8]? in
            var length = input.count
            if padded {
                guard length % 4 == 0 else { return nil }
                if length >= 1 && input[length - 1] == UInt8(ascii: "=") { length -= 1 }
                if length >= 1 && input[length - 1] == UInt8(ascii: "=") { length -= 1 }
            }
            let tail = length % 4
            if tail == 1 { return nil }
            if padded && input.count - length != (tail == 0 ? 0 : 4 - tail) { return nil }
            let outputCount = length / 4 * 3 + (tail == 0 ? 0 : tail - 1)
            var failed = false
            let output = [UInt8](unsafeUninitializedCapacity: outputCount) { out, initialized in
                table.withUnsafeBufferPointer { decode in
                    var read = 0
                    var written = 0
                    while read + 4 <= length {
                        let a = decode[Int(input[read])]
                        let b = decode[Int(input[read + 1])]
                        let c = decode[Int(input[read + 2])]
                        let d = decode[Int(input[read + 3])]
                        if (a | b | c | d) & 0xC0 != 0 {
                            failed = true
                            break
                        }
                        let value = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                        out[written] = UInt8(value >> 16)
                        out[written + 1] = UInt8(value >> 8 & 0xFF)
                        out[written + 2] = UInt8(value & 0xFF)
                        read += 4
                        written += 3
                    }
                    if !failed && tail > 0 {
                        var value: UInt32 = 0
                        for offset in 0..<tail {
                            let sextet = decode[Int(input[read + offset])]
                            if sextet & 0xC0 != 0 { failed = true }
                            value |= UInt32(sextet & 0x3F) << (18 - 6 * offset)
                        }
                        // Unused low bits of the last character must be zero.
                        let unusedMask: UInt32 = tail == 2 ? 0xFFFF : 0xFF
                        if value & unusedMask != 0 { failed = true }
                        if !failed {
                            out[written] = UInt8(value >> 16)
                            written += 1
                            if tail == 3 {
                                out[written] = UInt8(value >> 8 & 0xFF)
                                written += 1
                            }
                        }
                    }
                    initialized = failed ? 0 : written
                }
            }
            return failed ? nil : output
        }
    }

    /// Decodes a string, or returns nil when it is not a canonical encoding in this variant.
    public func decode(_ text: some StringProtocol) -> [UInt8]? {
        var text = String(text)
        return text.withUTF8 { decode(bytes: $0) }
    }
}
