import COpenSSL
import PomeriumCore

/// A failed OpenSSL call: the function that failed and the reason strings from OpenSSL's error
/// queue, which this type drains so a later call does not report a stale error.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    /// The OpenSSL function or operation that failed, for example `EVP_DigestSignInit`.
    public let operation: String
    /// The queued OpenSSL reasons, oldest first; empty when OpenSSL queued none.
    public let reasons: [String]

    /// Captures and clears the calling thread's OpenSSL error queue.
    public init(_ operation: String) {
        self.operation = operation
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.reasons = reasons
    }

    public var description: String {
        reasons.isEmpty ? "\(operation) failed" : "\(operation) failed: \(reasons.joined(separator: "; "))"
    }
}
