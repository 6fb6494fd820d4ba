import PomeriumCrypto
import PomeriumHTTP
import PomeriumNet

/// One upstream connection: a stream plus a response parser. It carries one request at a time
/// and returns to its loop's pool when a response ends with keep-alive.
final class HTTPClientConnection: StreamConnectionDelegate {
    let upstream: HTTPUpstream
    let pool: HTTPConnectionPool
    var stream: StreamConnection?
    /// The pool's loop, which is also the stream's. A constant, unlike the optional it replaced,
    /// is read without a retain and release, twice per request in `setDeadline`.
    private let loop: EventLoop
    /// The pool's idle stack for `upstream`, cached by the pool on the first release.
    var idleStack: HTTPConnectionPool.IdleStack?
    private var parser = HTTPResponseParser()
    private(set) var request: HTTPClientRequest?
    private(set) var isOpen = false
    private(set) var isClosed = false
    private(set) var isTunnel = false
    /// Whether this connection carried an earlier request, so a failure may be a stale keep-alive.
    private(set) var wasReused = false
    /// The one timer of this connection, for the idle timeout while pooled and for the attached
    /// request's timeouts. It is re-armed lazily: moving `deadline` later leaves it in place, and
    /// when it fires early it arms itself again for the current deadline. So a busy keep-alive
    /// connection schedules a timer about once per timeout period instead of once per request.
    private var timer: LoopTimer?
    private var deadline: UInt64 = 0

    init(upstream: HTTPUpstream, pool: HTTPConnectionPool) {
        self.upstream = upstream
        self.pool = pool
        loop = pool.loop
    }

    func attach(_ request: HTTPClientRequest, reused: Bool) {
        deadline = 0
        self.request = request
        wasReused = reused
        parser.expectResponse(to: request.head.method)
    }

    func write(_ bytes: [UInt8]) { stream?.write(bytes) }

    /// Lets `body` append to the stream's output buffer in place (see `StreamConnection.write(appending:)`).
    func writeEncoding(_ body: (inout [UInt8]) throws -> Void) throws {
        guard let stream else {
            var dropped: [UInt8] = []
            try body(&dropped)
            return
        }
        try stream.write(appending: body)
    }

    func close() {
        guard !isClosed else { return }
        stream?.close()
        isClosed = true
        cancelTimer()
    }

    /// Waits in the pool; the peer closing or sending anything ends it.
    func parkIdle(timeout: Double) {
        request = nil
        setDeadline(seconds: timeout)
    }

    // MARK: Timeouts

    /// Sets the time at which the attached request times out or, with no request, the idle
    /// connection closes. Zero or less seconds clears it.
    func setDeadline(seconds: Double) {
        guard seconds > 0 else {
            deadline = 0
            return
        }
        deadline = loop.now &+ UInt64(seconds * 1_000_000_000)
        if let pending = timer, pending.deadline > deadline {
            pending.cancel()
            timer = nil
        }
        if timer == nil { armTimer() }
    }

    func clearDeadline() { deadline = 0 }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        deadline = 0
    }

    private func armTimer() {
        guard !isClosed else { return }
        let now = MonotonicClock.nanoseconds()
        // The closure holds the connection strongly. The cycle (connection, timer, closure) ends
        // when the timer fires, because the loop drops the body before calling it, or when
        // `cancelTimer` runs, which every close path does.
        timer = loop.schedule(afterNanoseconds: deadline > now ? deadline - now : 0) { [self] in
            timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard !isClosed, deadline != 0 else { return }
        if MonotonicClock.nanoseconds() < deadline {
            armTimer()
            return
        }
        deadline = 0
        if let request {
            request.deadlinePassed()
        } else {
            pool.discard(self)
            close()
        }
    }

    var isWritable: Bool { stream?.isWritable ?? false }

    // MARK: StreamConnectionDelegate

    func connectionDidOpen(_ connection: StreamConnection) {
        isOpen = true
        request?.connectionOpened()
    }

    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        guard let request else {
            // Bytes on an idle connection: the upstream broke the protocol or is closing.
            pool.discard(self)
            close()
            return
        }
        if isTunnel {
            request.tunnelReceived(Array(bytes))
            return
        }
        request.noteResponseProgress()
        parser.feed(bytes)
        pump(request)
    }

    private func pump() {
        guard let request else { return }
        pump(request)
    }

    /// Delivers the parser's events to `request`, the attached request. Passing it in saves the
    /// retain and release of a property read on every pass; the loop ends once it is detached.
    private func pump(_ request: HTTPClientRequest) {
        while self.request === request, !isClosed, !isTunnel {
            // Body bytes go to the request in place when they can, without an array per read.
            if parser.nextBodyBytes({ request.receivedBody(in: $0) }) { continue }
            guard let event = parser.next() else { return }
            // Consumed, so the response head is handed on without a copy.
            switch consume event {
            case .informational:
                continue
            case .head(let head):
                request.receivedHead(consume head)
            case .body(let bytes):
                request.receivedBody(bytes)
            case .end(let trailers):
                // Bytes after the response were not requested: pooled, the connection would hand
                // them to the next request as the start of its response.
                let reusable = request.responseReusable && !parser.isCloseDelimited && !parser.hasUnreadBytes
                self.request = nil
                request.receivedEnd(trailers: trailers)
                if reusable && request.requestComplete && !isClosed {
                    pool.release(self)
                } else {
                    close()
                }
                return
            case .upgrade(let head):
                // A server may switch only to a protocol that the request's Upgrade field offered
                // (RFC 9110 section 15.2.2). Relaying another switch would open a tunnel the caller rejected.
                guard request.head.isUpgradeRequest else {
                    self.request = nil
                    request.fail(.invalidResponse("the upstream switched protocols without an Upgrade request"))
                    close()
                    return
                }
                isTunnel = true
                request.receivedUpgrade(head, initialBytes: parser.takeRemainingBytes())
                return
            case .error(let error):
                self.request = nil
                request.fail(.invalidResponse(error.reason))
                close()
                return
            }
        }
    }

    func connectionDidReadEOF(_ connection: StreamConnection) {
        if isTunnel {
            request?.tunnelUpstreamFinished()
            return
        }
        if let request, !request.receivedAnyResponseByte {
            // Closed before any response byte: the request may be retried on a fresh connection.
            self.request = nil
            request.connectionLost(beforeResponse: true, reused: wasReused)
            close()
            return
        }
        parser.finish()
        pump()
        if !isClosed {
            if let request {
                self.request = nil
                request.connectionLost(beforeResponse: !request.receivedAnyResponseByte, reused: wasReused)
            } else {
                pool.discard(self)
            }
            close()
        }
    }

    func connectionDidDrain(_ connection: StreamConnection) {
        request?.bodyWritable()
    }

    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?) {
        isClosed = true
        cancelTimer()
        pool.discard(self)
        guard let request else { return }
        self.request = nil
        if isTunnel {
            request.tunnelUpstreamClosed()
            request.tunnelClosed()
            return
        }
        if !isOpen {
            if let tlsError = error as? TLSError {
                request.fail(.tlsFailed(tlsError.reason))
            } else {
                request.fail(.connectFailed(error.map { "\($0)" } ?? "closed"))
            }
            return
        }
        if let tlsError = error as? TLSError, !request.receivedAnyResponseByte {
            request.fail(.tlsFailed(tlsError.reason))
            return
        }
        request.connectionLost(beforeResponse: !request.receivedAnyResponseByte, reused: wasReused)
    }
}
