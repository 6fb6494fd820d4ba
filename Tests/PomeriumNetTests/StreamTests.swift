import Glibc
import PomeriumCrypto
import PomeriumNet
import Synchronization
import Testing

/// Echoes every byte back and closes when the peer does.
final class EchoDelegate: StreamConnectionDelegate {
    var connection: StreamConnection?
    var tlsInfo: ((TLSSession) -> Void)?

    func connectionDidOpen(_ connection: StreamConnection) {
        if let tls = connection.tls { tlsInfo?(tls) }
        if let subject = connection.tls?.peerCertificateSubject { connection.write(Array("client=\(subject)\n".utf8)) }
    }
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(Array(bytes))
    }
    func connectionDidReadEOF(_ connection: StreamConnection) { connection.closeAfterFlush() }
    func connectionDidDrain(_ connection: StreamConnection) {}
    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?) { self.connection = nil }
}

/// Sends a message, collects the reply until `expected` bytes arrived, and reports the outcome.
final class ProbeDelegate: StreamConnectionDelegate {
    let message: [UInt8]
    let expected: Int
    var received: [UInt8] = []
    var finish: ((Result<(String, String?), any Error>) -> Void)?
    var connection: StreamConnection?

    init(message: String, expected: Int, finish: @escaping (Result<(String, String?), any Error>) -> Void) {
        self.message = Array(message.utf8)
        self.expected = expected
        self.finish = finish
    }

    func connectionDidOpen(_ connection: StreamConnection) { connection.write(message) }
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        received.append(contentsOf: bytes)
        if received.count >= expected {
            let text = String(decoding: received, as: UTF8.self)
            finish?(.success((text, connection.tls?.applicationProtocol)))
            finish = nil
            connection.close()
        }
    }
    func connectionDidReadEOF(_ connection: StreamConnection) { connection.close() }
    func connectionDidDrain(_ connection: StreamConnection) {}
    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?) {
        finish?(.failure(error ?? IOError(function: "read", errno: ECONNRESET)))
        finish = nil
        self.connection = nil
    }
}

/// An echo server on one loop, optionally behind TLS.
final class EchoServer: @unchecked Sendable {
    let group: EventLoopGroup
    let port: Int
    private let listener: LoopBound<Listener>

    init(group: EventLoopGroup, address: String = "127.0.0.1:0", tls: TLSServerContext? = nil) async throws {
        self.group = group
        let loop = group.loops[0]
        let names = SharedValue<String?>(nil)
        let listener = try await loop.run {
            LoopBound(
                try Listener(address: try SocketAddress(parsing: address), loop: loop) { descriptor, peer in
                    do {
                        let session = try tls.map { try TLSSession(server: $0, descriptor: descriptor) }
                        let connection = try StreamConnection(
                            descriptor: descriptor, loop: loop, tls: session, connecting: false, remoteAddress: peer)
                        let delegate = EchoDelegate()
                        delegate.connection = connection
                        delegate.tlsInfo = { session in names.set(session.serverName) }
                        connection.delegate = delegate
                        connection.start()
                    } catch {
                        Syscall.close(descriptor)
                    }
                }, loop: loop)
        }
        self.listener = listener
        port = try await loop.run { listener.value.address.port }
        serverNames = names
    }
    private let serverNames: SharedValue<String?>
    /// The SNI name of the latest TLS connection.
    var serverName: String? { serverNames.get() }

    /// Connects from loop 0, sends `message`, and returns the reply and the ALPN protocol.
    func probe(
        address: String? = nil,
        message: String,
        expected: Int? = nil,
        tls: TLSClientContext? = nil,
        host: String = "127.0.0.1"
    ) async throws -> (String, String?) {
        let loop = group.loops[0]
        let target = try SocketAddress(parsing: address ?? "127.0.0.1:\(port)")
        let expectedCount = expected ?? message.utf8.count
        return try await withCheckedThrowingContinuation { continuation in
            loop.execute {
                let delegate = ProbeDelegate(message: message, expected: expectedCount) {
                    continuation.resume(with: $0)
                }
                do {
                    let connection = try StreamConnection.connect(
                        to: target, loop: loop, tls: tls, host: host, delegate: delegate)
                    delegate.connection = connection
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func close() async {
        let listener = self.listener
        _ = try? await group.loops[0].run { listener.value.close() }
    }
}

@Suite("Stream connections")
struct StreamTests {
    @Test("echo over IPv4 loopback")
    func echoIPv4() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group)
        let (reply, _) = try await server.probe(message: "ping over ipv4")
        #expect(reply == "ping over ipv4")
        await server.close()
    }

    @Test("echo over IPv6 loopback")
    func echoIPv6() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group, address: "[::1]:0")
        let (reply, _) = try await server.probe(address: "[::1]:\(server.port)", message: "ping over ipv6")
        #expect(reply == "ping over ipv6")
        await server.close()
    }

    @Test("large echo passes through buffering")
    func largeEcho() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group)
        let message = String(repeating: "0123456789abcdef", count: 200_000)
        let (reply, _) = try await server.probe(message: message)
        #expect(reply.utf8.count == message.utf8.count)
        #expect(reply == message)
        await server.close()
    }

    @Test("connect to a closed port fails")
    func connectRefused() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let server = try await EchoServer(group: group)
        await server.close()
        await #expect(throws: IOError.self) {
            _ = try await server.probe(message: "nobody listens")
        }
    }
}

/// A value shared between a test and its loops.
final class SharedValue<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func get() -> Value { storage.withLock { $0 } }
    func set(_ value: Value) { storage.withLock { $0 = value } }
    func update(_ body: (inout Value) -> Void) { storage.withLock { body(&$0) } }
}
