import CLinux
import Glibc
import PomeriumCrypto

/// Callbacks from a `StreamConnection`, made on its loop's thread.
public protocol StreamConnectionDelegate: AnyObject {
    /// The connection is usable: a connect finished and, with TLS, so did the handshake.
    func connectionDidOpen(_ connection: StreamConnection)
    /// Bytes arrived. `bytes` points into the loop's scratch buffer and is valid only for this call.
    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer finished sending (EOF or TLS close_notify). Writing may still work.
    func connectionDidReadEOF(_ connection: StreamConnection)
    /// The output buffer drained below the low-water mark after having been above the high-water mark.
    func connectionDidDrain(_ connection: StreamConnection)
    /// The connection is closed; `error` is nil for an orderly close.
    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?)
}

/// A non-blocking TCP socket registered with one event loop, optionally wrapped in TLS. It keeps
/// an output buffer and reports when the buffer drains, so callers can apply backpressure: pause
/// reading the other side while `isWritable` is false.
public final class StreamConnection: EventHandler {
    public enum State {
        case connecting
        case handshaking
        case open
        case closed
    }

    public let descriptor: Int32
    /// Strong, because each read of an unowned reference retains and releases it (four times per
    /// proxied request). Closing unregisters the connection, which ends the cycle with the loop.
    public let loop: EventLoop
    /// The delegate, held strongly until the connection closes; the loop table keeps the connection.
    public var delegate: (any StreamConnectionDelegate)?
    public private(set) var state: State
    public let tls: TLSSession?
    /// The peer's address, when known.
    public let remoteAddress: SocketAddress?

    /// Output above this many buffered bytes makes `isWritable` false.
    public var highWaterMark = 256 * 1024
    /// `connectionDidDrain` fires when output falls to this many bytes.
    public var lowWaterMark = 64 * 1024

    private var output = ByteBuffer()
    private var readingPaused = false
    private var closeWhenFlushed = false
    private var registeredEvents: UInt32 = 0
    private var readBlockedOnWrite = false
    private var writeBlockedOnRead = false
    private var aboveHighWater = false
    private var readEOF = false

    /// Wraps an accepted or connecting socket and registers it with `loop`. Loop thread only.
    public init(
        descriptor: Int32,
        loop: EventLoop,
        tls: TLSSession?,
        connecting: Bool,
        remoteAddress: SocketAddress? = nil
    ) throws {
        self.descriptor = descriptor
        self.loop = loop
        self.tls = tls
        self.remoteAddress = remoteAddress
        if connecting {
            state = .connecting
        } else {
            state = tls == nil ? .open : .handshaking
        }
        let events = connecting ? UInt32(EPOLLOUT.rawValue) : UInt32(EPOLLIN.rawValue)
        registeredEvents = events
        try loop.register(descriptor, handler: self, events: events)
    }

    /// Reports the open state (plain accepted sockets) or drives the first handshake step.
    public func start() {
        switch state {
        case .open:
            delegate?.connectionDidOpen(self)
        case .handshaking:
            advanceHandshake()
        case .connecting, .closed:
            break
        }
    }

    /// Whether the output buffer is below the high-water mark.
    public var isWritable: Bool { !aboveHighWater && state != .closed }
    public var bufferedOutputBytes: Int { output.readableBytes }
    public var isReadingPaused: Bool { readingPaused }

    // MARK: Writing

    /// Queues `bytes` and tries to send them now.
    public func write(_ bytes: some Collection<UInt8>) {
        guard state != .closed, !closeWhenFlushed else { return }
        output.append(bytes)
        scheduleFlush()
    }

    /// Queues `bytes` as `write(_:)` does; the overload spares callers in other modules the generic
    /// path, which walks a collection it cannot see through.
    public func write(_ bytes: [UInt8]) {
        guard state != .closed, !closeWhenFlushed else { return }
        output.append(bytes)
        scheduleFlush()
    }

    /// Lets `body` append bytes to the output buffer in place, then sends them as `write(_:)` does,
    /// so an encoder writes a message head without building an array of its own. On a closed
    /// connection `body` still runs, on a scratch array that is dropped, so that state changes
    /// made with the encoding happen either way. `body` must only append.
    public func write(appending body: (inout [UInt8]) throws -> Void) rethrows {
        guard state != .closed, !closeWhenFlushed else {
            var dropped: [UInt8] = []
            try body(&dropped)
            return
        }
        try output.appendInPlace(body)
        scheduleFlush()
    }

    /// Queues a copy of `bytes`, which may point into the loop's scratch buffer.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state != .closed, !closeWhenFlushed else { return }
        output.append(bytes)
        scheduleFlush()
    }

    /// Queues `chunk` framed as one chunk of a chunked body: the size in hex, CRLF, the bytes,
    /// CRLF. Nothing is queued for an empty chunk, which would end the body.
    public func writeChunk(_ chunk: UnsafeRawBufferPointer) {
        guard state != .closed, !closeWhenFlushed, !chunk.isEmpty else { return }
        var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let prefixLength = withUnsafeMutableBytes(of: &prefix) { digits -> Int in
            var length = 0
            var shift = (Int.bitWidth - chunk.count.leadingZeroBitCount + 3) / 4 * 4
            repeat {
                shift -= 4
                digits[length] = Self.hexDigits[(chunk.count >> shift) & 0x0F]
                length += 1
            } while shift > 0
            digits[length] = 0x0D
            digits[length + 1] = 0x0A
            return length + 2
        }
        withUnsafeBytes(of: &prefix) { output.append(UnsafeRawBufferPointer(rebasing: $0[0..<prefixLength])) }
        output.append(chunk)
        output.append(Self.lineEnd)
        scheduleFlush()
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
    private static let lineEnd: [UInt8] = [0x0D, 0x0A]

    public func write(_ buffer: ByteBuffer) {
        guard state != .closed, !closeWhenFlushed else { return }
        output.append(buffer)
        scheduleFlush()
    }

    /// Sends queued output at the end of the loop's current batch of events, so that a response
    /// head and body written separately leave in one system call. Large output goes at once.
    private func scheduleFlush() {
        guard state == .open, !writeBlockedOnRead else {
            noteOutputLevel()
            return
        }
        if output.readableBytes >= 64 * 1024 {
            flush()
            noteOutputLevel()
            return
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.scheduleFlush(self)
    }
    private var flushScheduled = false

    /// Sends the output queued by `scheduleFlush`; the loop calls it after its batch of events.
    func flushScheduledOutput() {
        flushScheduled = false
        guard state == .open, !writeBlockedOnRead else { return }
        flush()
        noteOutputLevel()
    }

    /// Closes once everything queued has been sent.
    public func closeAfterFlush() {
        guard state != .closed else { return }
        closeWhenFlushed = true
        if output.isEmpty && state == .open {
            close()
        } else if state == .open && !flushScheduled {
            flush()
        } else {
            updateInterest()
        }
    }

    /// Closes the socket now, dropping unsent output.
    public func close(error: (any Error)? = nil) {
        guard state != .closed else { return }
        if state == .open, let tls { tls.shutdown() }
        state = .closed
        loop.unregister(descriptor)
        Syscall.close(descriptor)
        output.clear()
        delegate?.connection(self, didCloseWith: error)
        delegate = nil
    }

    /// Sends FIN after queued output, for half-closed tunnels. Plain TCP only; TLS sends close_notify.
    public func shutdownOutputAfterFlush() {
        guard state == .open else { return }
        if output.isEmpty {
            if let tls { tls.shutdown() } else { Syscall.shutdownWrite(descriptor) }
        } else {
            pendingShutdownWrite = true
        }
    }
    private var pendingShutdownWrite = false

    // MARK: Reading control

    public func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    /// Resumes reading; bytes that TLS already decrypted are delivered on the next loop tick.
    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
        if tls?.hasBufferedPlaintext == true {
            loop.deferToNextTick { [weak self] in self?.performRead() }
        }
    }

    // MARK: Events

    public func handleEvents(_ events: UInt32) {
        switch state {
        case .connecting:
            finishConnect(events)
        case .handshaking:
            advanceHandshake()
        case .open:
            let readable = events & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            let writable = events & UInt32(EPOLLOUT.rawValue) != 0
            if writable || (readable && writeBlockedOnRead) {
                writeBlockedOnRead = false
                flush()
                noteOutputLevel()
            }
            if state == .open && ((readable && !readingPaused) || (writable && readBlockedOnWrite)) {
                readBlockedOnWrite = false
                performRead()
            }
            // epoll reports HUP and ERR even when they are not requested; with reading paused or
            // finished, no handler would consume them and the level-triggered loop would spin.
            let hangup = events & UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            if state == .open && hangup && (readingPaused || readEOF) {
                let code = (try? Syscall.getSocketError(descriptor)) ?? 0
                close(error: code == 0 ? nil : IOError(function: "epoll_wait", errno: code))
            }
        case .closed:
            break
        }
    }

    public func loopWillClose() {
        close()
    }

    private func finishConnect(_ events: UInt32) {
        let code = (try? Syscall.getSocketError(descriptor)) ?? EIO
        guard code == 0 else {
            close(error: IOError(function: "connect", errno: code))
            return
        }
        if tls == nil {
            state = .open
            updateInterest()
            delegate?.connectionDidOpen(self)
            if state == .open && !output.isEmpty { flush() }
        } else {
            state = .handshaking
            advanceHandshake()
        }
    }

    private func advanceHandshake() {
        guard let tls else { return }
        do {
            switch try tls.handshake() {
            case .done:
                state = .open
                updateInterest()
                delegate?.connectionDidOpen(self)
                if state == .open && !output.isEmpty { flush() }
                if state == .open && tls.hasBufferedPlaintext && !readingPaused {
                    loop.deferToNextTick { [weak self] in self?.performRead() }
                }
            case .wantRead:
                setEvents(UInt32(EPOLLIN.rawValue))
            case .wantWrite:
                setEvents(UInt32(EPOLLOUT.rawValue))
            case .closed:
                close(error: TLSError("the peer closed the connection during the TLS handshake"))
            }
        } catch {
            close(error: error)
        }
    }

    private func performRead() {
        guard state == .open, !readingPaused, !readEOF else { return }
        let buffer = loop.scratch
        var rounds = 0
        repeat {
            rounds += 1
            do {
                if let tls {
                    switch try tls.read(into: buffer) {
                    case .done(let count):
                        delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    case .wantRead:
                        return
                    case .wantWrite:
                        readBlockedOnWrite = true
                        updateInterest()
                        return
                    case .closed:
                        handleEOF()
                        return
                    }
                } else {
                    switch try Syscall.read(descriptor, buffer.baseAddress!, buffer.count) {
                    case .value(0):
                        handleEOF()
                        return
                    case .value(let count):
                        delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                        // A short read means the socket is drained; level-triggered epoll reports more.
                        if count < buffer.count { return }
                    case .wouldBlock:
                        return
                    }
                }
            } catch {
                close(error: error)
                return
            }
        } while state == .open && !readingPaused && (tls?.hasBufferedPlaintext ?? true) && rounds < 16
    }

    private func handleEOF() {
        readEOF = true
        updateInterest()
        delegate?.connectionDidReadEOF(self)
    }

    private func flush() {
        guard state == .open else { return }
        while !output.isEmpty {
            do {
                let sent: Int?
                if let tls {
                    let result = try output.withUnsafeReadableBytes {
                        try tls.write(UnsafeRawBufferPointer(rebasing: $0.prefix(256 * 1024)))
                    }
                    switch result {
                    case .done(let count): sent = count
                    case .wantWrite: sent = nil
                    case .wantRead:
                        writeBlockedOnRead = true
                        sent = nil
                    case .closed:
                        close(error: TLSError("the peer closed the TLS connection while we were writing"))
                        return
                    }
                } else {
                    let result = try output.withUnsafeReadableBytes {
                        try Syscall.write(descriptor, $0.baseAddress!, $0.count)
                    }
                    switch result {
                    case .value(let count): sent = count
                    case .wouldBlock: sent = nil
                    }
                }
                guard let sent else { break }
                output.consume(sent)
            } catch {
                close(error: error)
                return
            }
        }
        if output.isEmpty {
            if closeWhenFlushed {
                close()
                return
            }
            if pendingShutdownWrite {
                pendingShutdownWrite = false
                if let tls { tls.shutdown() } else { Syscall.shutdownWrite(descriptor) }
            }
        }
        updateInterest()
    }

    private func noteOutputLevel() {
        guard state != .closed else { return }
        if !aboveHighWater && output.readableBytes > highWaterMark {
            aboveHighWater = true
        } else if aboveHighWater && output.readableBytes <= lowWaterMark {
            aboveHighWater = false
            delegate?.connectionDidDrain(self)
        }
    }

    private func updateInterest() {
        guard state == .open else { return }
        var events: UInt32 = 0
        if (!readingPaused && !readEOF) || writeBlockedOnRead { events |= UInt32(EPOLLIN.rawValue) }
        if !output.isEmpty || readBlockedOnWrite { events |= UInt32(EPOLLOUT.rawValue) }
        setEvents(events)
    }

    private func setEvents(_ events: UInt32) {
        guard events != registeredEvents, state != .closed else { return }
        registeredEvents = events
        do {
            try loop.modify(descriptor, events: events)
        } catch {
            close(error: error)
        }
    }
}
