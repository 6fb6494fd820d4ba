import PomeriumNet
import Testing

@Suite("Socket address")
struct SocketAddressTests {
    @Test("IPv4 text for every octet width", arguments: ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.199.100.9"])
    func ipv4Text(address: String) throws {
        let parsed = try SocketAddress(parsing: address, defaultPort: 80)
        #expect(parsed.ipString == address)
        #expect(parsed.description == "\(address):80")
    }

    @Test("IPv6 text")
    func ipv6Text() throws {
        let parsed = try SocketAddress(parsing: "[::1]:8443")
        #expect(parsed.ipString == "::1")
        #expect(parsed.description == "[::1]:8443")
    }
}
