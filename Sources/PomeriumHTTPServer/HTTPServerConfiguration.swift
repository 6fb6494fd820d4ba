import PomeriumCrypto
import PomeriumHTTP
import PomeriumNet

/// Settings of an `HTTPServer`. Timeouts are in seconds; zero disables one.
public struct HTTPServerConfiguration: Sendable {
    /// Where to listen, for example `127.0.0.1:8443` or `[::1]:80`.
    public var address: SocketAddress
    public var tls: TLSServerContext?
    /// Time allowed from the first byte of a request to the end of its head.
    public var readHeaderTimeout: Double
    /// Time allowed without progress while reading a request body.
    public var readTimeout: Double
    /// Time allowed without progress while the response waits to be sent.
    public var writeTimeout: Double
    /// Time a keep-alive connection may wait for its next request, and time a tunnel (after a 101
    /// or a 2xx to `CONNECT`) may stay open without a byte moving in either direction.
    public var idleTimeout: Double
    public var connection: HTTPServerConnection.Configuration
    /// The `Server` header on responses the server makes itself, or nil for none.
    public var serverHeader: String?

    public init(
        address: SocketAddress,
        tls: TLSServerContext? = nil,
        readHeaderTimeout: Double = 10,
        readTimeout: Double = 30,
        writeTimeout: Double = 30,
        idleTimeout: Double = 300,
        connection: HTTPServerConnection.Configuration = HTTPServerConnection.Configuration(),
        serverHeader: String? = nil
    ) {
        self.address = address
        self.tls = tls
        self.readHeaderTimeout = readHeaderTimeout
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        self.idleTimeout = idleTimeout
        self.connection = connection
        self.serverHeader = serverHeader
    }
}
