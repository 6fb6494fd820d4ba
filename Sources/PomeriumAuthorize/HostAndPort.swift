/// A host name or IP literal with an optional port, in the canonical form the router looks up.
///
/// The host is lower-cased in ASCII. An IPv6 literal keeps its brackets (`[::1]`). A trailing dot is kept, so
/// `app.example.test.` stays a different name from `app.example.test`: browsers give the two separate origins and
/// cookie jars, and a route never matches a name its `from` does not spell.
public struct HostAndPort: Hashable, Sendable, CustomStringConvertible {
    /// The lower-cased host name, IPv4 address or bracketed IPv6 address.
    public let host: String
    /// The port, or nil when the text had none.
    public let port: Int?

    init(host: String, port: Int?) {
        self.host = host
        self.port = port
    }

    /// Parses a `Host` header value or the authority of a URL: `host`, `host:port`, `[v6]` or `[v6]:port`.
    ///
    /// Returns nil for anything else, which the router treats as "no route". That covers an empty host, an empty
    /// port, a port with a leading zero and a port outside 1–65535. It also covers any character other than letters,
    /// digits, `-`, `.` and `_`, so user info, spaces, percent-encoding and non-ASCII names are rejected. An
    /// internationalised name must arrive in its `xn--` form.
    public init?(parsing text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { return nil }
        self = parsed
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> HostAndPort? {
        var hostEnd = bytes.count
        var portStart: Int?

        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            guard isIPv6Literal(bytes[1..<close]) else { return nil }
            hostEnd = close + 1
            if hostEnd < bytes.count {
                guard bytes[hostEnd] == UInt8(ascii: ":") else { return nil }
                portStart = hostEnd + 1
            }
        } else {
            if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
                hostEnd = colon
                portStart = colon + 1
            }
            guard hostEnd > 0, bytes[0..<hostEnd].allSatisfy(isHostNameByte) else { return nil }
        }

        var port: Int?
        if let portStart {
            guard let parsed = parsePort(bytes[portStart...]) else { return nil }
            port = parsed
        }
        let host = String(decoding: bytes[0..<hostEnd], as: UTF8.self).asciiLowercased
        return HostAndPort(host: host, port: port)
    }

    /// `host` or `host:port`.
    public var description: String {
        guard let port else { return host }
        return "\(host):\(port)"
    }

    private static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// Checks the characters between the brackets: hex digits, colons and dots (for an embedded IPv4 tail), with at
    /// least two colons. Zone identifiers (`%25eth0`) are rejected because a zone means nothing in a `Host` header.
    private static func isIPv6Literal(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard bytes.count >= 2, bytes.count <= 45 else { return false }
        var colons = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: ":"):
                colons += 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
                UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "."):
                continue
            default:
                return false
            }
        }
        return colons >= 2
    }

    /// Parses a decimal port of 1–65535 written without a leading zero.
    private static func parsePort(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 5, bytes.first != UInt8(ascii: "0") else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value <= 65_535 ? value : nil
    }
}
