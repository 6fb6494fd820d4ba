import PomeriumNet

/// Turns a listen setting such as `:443`, `127.0.0.1:8443`, `localhost:80` or `[::1]:443` into a
/// socket address. An empty host means every IPv4 interface, as in Go's `net.Listen`.
public enum ListenAddress {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func parse(_ text: String, key: String) throws(Problem) -> SocketAddress {
        var value = text
        if value.hasPrefix(":") {
            value = "0.0.0.0" + value
        } else if value.lowercased().hasPrefix("localhost:") {
            value = "127.0.0.1" + value.dropFirst("localhost".count)
        }
        do {
            return try SocketAddress(parsing: value)
        } catch {
            throw Problem(
                description:
                    "\(key) \"\(text)\" is not a listen address (\(error)); write HOST:PORT with an IP address, "
                    + "localhost, or an empty host for every interface, such as :443 or 127.0.0.1:8443")
        }
    }
}
