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
        return format(bytes)
    }

    /// Formats 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, in one allocation and without
    /// bounds checks: this runs for every request.
    static func format(_ bytes: (UInt64, UInt64)) -> String {
        var bytes = bytes
        return withUnsafeBytes(of: &bytes) { input in
            String(unsafeUninitializedCapacity: 36) { output in
                guard let source = input.baseAddress, var target = output.baseAddress else { return 0 }
                let digits = hexDigits.utf8Start
                for offset in 0..<16 {
                    if offset == 4 || offset == 6 || offset == 8 || offset == 10 {
                        target.pointee = UInt8(ascii: "-")
                        target += 1
                    }
                    let byte = source.load(fromByteOffset: offset, as: UInt8.self)
                    target[0] = digits[Int(byte >> 4)]
                    target[1] = digits[Int(byte & 0x0F)]
                    target += 2
                }
                return 36
            }
        }
    }

    private static let hexDigits: StaticString = "0123456789abcdef"
}

/// A service handler that writes the `headers` setting and `Request-Id` on each of its responses
/// itself. The listener's dispatcher hands it the request's id with `assignRequestID(_:)` before
/// the request starts, instead of putting both into the responder's additional headers, which the
/// handler would only read back and clear.
public protocol RequestIDAssignable: AnyObject {
    func assignRequestID(_ id: String)
}
