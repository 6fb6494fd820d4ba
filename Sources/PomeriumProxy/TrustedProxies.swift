import PomeriumNet

/// The `trusted_proxies` setting: the address ranges whose `X-Forwarded-*` headers the proxy
/// keeps. A request from any other address has those headers replaced.
struct TrustedProxies: Sendable {
    private struct Range: Sendable {
        let bytes: [UInt8]
        let prefixLength: Int
    }

    private let ranges: [Range]

    /// Parses each entry as an IP address or `address/prefix-length`.
    ///
    /// - Throws: `ProxyConfigurationError` naming the first entry that is neither.
    init(_ entries: [String]) throws {
        var ranges: [Range] = []
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.addressBytes(String(parts[0])) else {
                throw ProxyConfigurationError(
                    "trusted_proxies entry \(entry) is not an IP address or CIDR range; write it as 10.0.0.0/8 or 192.0.2.1"
                )
            }
            var prefixLength = bytes.count * 8
            if parts.count == 2 {
                guard let parsed = Int(parts[1]), (0...bytes.count * 8).contains(parsed) else {
                    throw ProxyConfigurationError(
                        "trusted_proxies entry \(entry) has an invalid prefix length; use 0 to \(bytes.count * 8)")
                }
                prefixLength = parsed
            }
            ranges.append(Range(bytes: bytes, prefixLength: prefixLength))
        }
        self.ranges = ranges
    }

    /// Returns whether the connection's peer address lies in a trusted range.
    func trusts(_ address: SocketAddress?) -> Bool {
        guard let address, !ranges.isEmpty else { return false }
        let bytes: [UInt8]
        switch address.host {
        case .ipv4(let networkOrder):
            let value = UInt32(bigEndian: networkOrder)
            bytes = [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        case .ipv6(let raw):
            bytes = Self.unmappingIPv4(raw)
        }
        return ranges.contains { Self.range($0, contains: bytes) }
    }

    private static func range(_ range: Range, contains bytes: [UInt8]) -> Bool {
        guard range.bytes.count == bytes.count else { return false }
        var remaining = range.prefixLength
        for index in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard bytes[index] & mask == range.bytes[index] & mask else { return false }
            remaining -= bits
        }
        return true
    }

    /// Returns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its four IPv4 bytes and any other
    /// address unchanged.
    private static func unmappingIPv4(_ raw: [UInt8]) -> [UInt8] {
        guard raw.count == 16, raw[0..<10].allSatisfy({ $0 == 0 }), raw[10] == 0xFF, raw[11] == 0xFF else { return raw }
        return Array(raw[12..<16])
    }

    private static func addressBytes(_ text: String) -> [UInt8]? {
        guard let address = try? SocketAddress(parsing: text, defaultPort: 0) else { return nil }
        switch address.host {
        case .ipv4(let networkOrder):
            let value = UInt32(bigEndian: networkOrder)
            return [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        case .ipv6(let raw):
            return unmappingIPv4(raw)
        }
    }
}
