import PomeriumHTTP

/// Why a redirect target was rejected. The reason is safe to show to the user and to log.
public struct RedirectRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String

    public var description: String { "invalid redirect target: \(reason)" }
}

/// The one check for every post-login, post-logout and programmatic redirect target.
///
/// A target is accepted only when it is an absolute `http` or `https` URL, written in plain ASCII
/// without whitespace, control characters or backslashes, without user information, whose host is
/// exactly one of the allowed hosts (configured route hosts, the authenticate host, the
/// forward-auth host; for programmatic login also `programmatic_redirect_domains`). The authority
/// is never percent-decoded, so an encoded host can only fail the exact match. The path is
/// percent-decoded repeatedly, and a path that then starts with `//` or holds a backslash or a
/// control character is rejected, because some upstreams decode and re-resolve it as a host.
/// Non-ASCII text is rejected outright rather than mapped through IDNA, so Unicode look-alikes of
/// an allowed host never match; browsers percent-encode non-ASCII paths before sending them.
public struct RedirectValidator: Sendable {
    /// The maximum length of an accepted target, in bytes.
    public static let maximumLength = 4096
    /// How many rounds of percent-decoding the path check applies.
    static let decodingRounds = 4

    private let allowedHosts: Set<String>
    private let programmaticHosts: Set<String>

    /// - Parameters:
    ///   - allowedHosts: host names (no port, no brackets around IPv6) of routes, the authenticate
    ///     service and the forward-auth service.
    ///   - programmaticHosts: extra host names allowed only for programmatic login.
    public init(allowedHosts: [String], programmaticHosts: [String] = []) {
        self.allowedHosts = Set(allowedHosts.map(Self.normalizedHost))
        self.programmaticHosts = Set(programmaticHosts.map(Self.normalizedHost))
    }

    private static func normalizedHost(_ host: String) -> String {
        var lower = host.lowercased()
        if lower.hasPrefix("["), lower.hasSuffix("]") { lower = String(lower.dropFirst().dropLast()) }
        return lower
    }

    /// Returns the parsed target when it is allowed, else throws the reason.
    public func validate(_ target: String, programmatic: Bool = false) throws(RedirectRejection) -> HTTPURL {
        let bytes = Array(target.utf8)
        guard !bytes.isEmpty else { throw RedirectRejection(reason: "the target is empty") }
        guard bytes.count <= Self.maximumLength else {
            throw RedirectRejection(reason: "the target is longer than \(Self.maximumLength) bytes")
        }
        for byte in bytes {
            guard byte >= 0x21, byte <= 0x7E else {
                throw RedirectRejection(reason: "the target contains whitespace, a control or a non-ASCII character")
            }
            guard byte != UInt8(ascii: "\\") else { throw RedirectRejection(reason: "the target contains a backslash") }
        }
        let url: HTTPURL
        do {
            url = try HTTPURL(parsing: target)
        } catch {
            throw RedirectRejection(reason: "the target is not an absolute URL")
        }
        guard url.scheme == "https" || url.scheme == "http" else {
            throw RedirectRejection(reason: "the target's scheme must be http or https")
        }
        guard url.userInfo == nil else { throw RedirectRejection(reason: "the target contains user information") }
        guard Self.isPlainHost(url.host) else { throw RedirectRejection(reason: "the target's host is invalid") }
        let allowed = allowedHosts.contains(url.host) || (programmatic && programmaticHosts.contains(url.host))
        guard allowed else { throw RedirectRejection(reason: "the target's host is not an allowed host") }
        try Self.checkPath(url.path)
        return url
    }

    /// Whether `host` is a DNS name of letters, digits, dots and hyphens, or an IPv6 literal of hex
    /// digits and colons.
    private static func isPlainHost(_ host: String) -> Bool {
        guard !host.isEmpty, !host.hasPrefix("."), !host.hasSuffix(".") else { return false }
        let isIPv6 = host.contains(":")
        return host.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "."), UInt8(ascii: "-"): !isIPv6 || byte == UInt8(ascii: ".")
            case UInt8(ascii: ":"): isIPv6
            default: false
            }
        }
    }

    /// Decodes the path repeatedly and rejects separator tricks at any layer.
    private static func checkPath(_ path: String) throws(RedirectRejection) {
        var layer = Array(path.utf8)
        for _ in 0...decodingRounds {
            if layer.starts(with: Array("//".utf8)) {
                throw RedirectRejection(reason: "the target's path starts with two slashes")
            }
            for byte in layer where byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") {
                throw RedirectRejection(reason: "the target's path decodes to a backslash or a control character")
            }
            guard layer.contains(UInt8(ascii: "%")) else { return }
            guard let decoded = percentDecode(layer), decoded != layer else { return }
            layer = decoded
        }
        throw RedirectRejection(reason: "the target's path is percent-encoded too many times")
    }

    /// Percent-decodes bytes; a `%` without two hex digits is kept as is. Returns nil when nothing changes.
    private static func percentDecode(_ bytes: [UInt8]) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
                changed = true
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return changed ? output : nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
