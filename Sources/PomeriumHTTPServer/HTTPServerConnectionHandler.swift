import PomeriumCrypto
import PomeriumHTTP
import PomeriumNet

/// Drives one client connection: feeds socket bytes to the sans-I/O `HTTPServerConnection`,
/// performs its actions, calls the request handler, and enforces the server timeouts.
final class HTTPServerConnectionHandler: StreamConnectionDelegate {
    let stream: StreamConnection
    /// The stream's loop, kept here so that reaching it does not go through the stream.
    let loop: EventLoop
    /// The responder of the latest exchange, reused for the next one when no handler kept it.
    /// It refers back to this connection, and closing the connection drops it, ending the cycle.
    private var spareResponder: HTTPResponder?
    /// The client's address as text, formatted on first use and kept for the connection's requests.
    private(set) lazy var remoteIPString: String? = stream.remoteAddress?.ipString
    private var machine: HTTPServerConnection
    private let configuration: HTTPServerConfiguration
    private let makeHandler: (EventLoop) -> any HTTPRequestHandler
    private weak var registry: LoopServerState?
    private var handler: (any HTTPRequestHandler)?
    /// The handler of the last finished response, offered the next request of this connection
    /// before `makeHandler` is called, so that a handler may avoid one allocation per request.
    private var spareHandler: (any HTTPRequestHandler)?
    private(set) var generation = 0
    private(set) var isClosed = false
    private(set) var isTunnel = false
    var handlerPausedReading = false
    private var machinePausedReading = false
    /// Set while the client does not read its responses and the stream's output is above its
    /// high-water mark. Without it, a client that pipelines requests the server responds to
    /// itself, and never reads, would grow the output buffer without bound.
    private var outputPausedReading = false
    private var draining = false
    private var headWritten = false

    private enum Phase {
        case idle
        case readingHead
        case readingBody
        case handling
    }
    private var phase = Phase.idle
    private var deadline: UInt64 = 0
    private var deadlineReason = DeadlineReason.idle
    /// The timeout that the deadline enforces. The raw value names it in `HTTPServerError.timeout`.
    private enum DeadlineReason: String {
        case idle
        case readHeader = "read header"
        case read
        case write
        case tunnelIdle = "tunnel idle"
    }
    private var timer: LoopTimer?
    /// An empty action array with capacity, lent to each machine call so that an event does not
    /// allocate an array. A nested call, such as a handler that responds inside `requestStarted`,
    /// finds it lent out and allocates its own.
    private var spareActions: [HTTPServerConnection.Action] = []

    init(
        stream: StreamConnection,
        configuration: HTTPServerConfiguration,
        registry: LoopServerState,
        makeHandler: @escaping (EventLoop) -> any HTTPRequestHandler
    ) {
        self.stream = stream
        loop = stream.loop
        self.configuration = configuration
        self.registry = registry
        self.makeHandler = makeHandler
        machine = HTTPServerConnection(configuration: configuration.connection)
        draining = registry.isDraining
    }

    var isIdle: Bool { machine.isIdle && handler == nil }

    // MARK: Stream events

    /// Bounds the TLS handshake by the read-header timeout, the idle timeout when that is off.
    /// `connectionDidOpen` comes only after the handshake, so without this a client that never
    /// finishes its ClientHello would hold the connection forever.
    func armHandshakeDeadline() {
        let seconds = configuration.readHeaderTimeout > 0 ? configuration.readHeaderTimeout : configuration.idleTimeout
        setDeadline(seconds, reason: .readHeader)
    }

    func connectionDidOpen(_ connection: StreamConnection) {
        setDeadline(configuration.idleTimeout, reason: .idle)
    }

    func connection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        if isTunnel {
            noteTunnelActivity()
            handler?.tunnelReceived(Array(bytes))
            return
        }
        if phase == .idle {
            phase = .readingHead
            setDeadline(configuration.readHeaderTimeout, reason: .readHeader)
        } else if phase == .readingBody {
            setDeadline(configuration.readTimeout, reason: .read)
        }
        var actions = borrowActions()
        machine.bytesReceived(bytes, into: &actions)
        perform(moving: &actions)
        giveBack(&actions)
        if !stream.isWritable && !isClosed && !outputPausedReading {
            outputPausedReading = true
            updateReading()
        }
    }

    func connectionDidReadEOF(_ connection: StreamConnection) {
        if isTunnel {
            handler?.tunnelClientFinished()
            return
        }
        if phase == .handling, let handler {
            // EOF while the response is pending: treat the client as gone, as Go's net/http and
            // nginx do, so the handler can cancel upstream work. A client that half-closes after
            // its request loses its response.
            self.handler = nil
            handler.requestFailed(.clientDisconnected)
            stream.close()
            return
        }
        perform(machine.peerClosed())
    }

    func connectionDidDrain(_ connection: StreamConnection) {
        if outputPausedReading {
            outputPausedReading = false
            updateReading()
        }
        if isTunnel {
            noteTunnelActivity()
        } else if phase == .handling && headWritten {
            setDeadline(configuration.writeTimeout, reason: .write)
        }
        handler?.responseWritable()
    }

    func connection(_ connection: StreamConnection, didCloseWith error: (any Error)?) {
        isClosed = true
        spareResponder = nil
        spareHandler = nil
        timer?.cancel()
        timer = nil
        if let handler {
            self.handler = nil
            handler.requestFailed(.clientDisconnected)
        }
        registry?.remove(self)
    }

    // MARK: Actions

    private func borrowActions() -> [HTTPServerConnection.Action] {
        var actions: [HTTPServerConnection.Action] = []
        swap(&actions, &spareActions)
        return actions
    }

    private func giveBack(_ actions: inout [HTTPServerConnection.Action]) {
        // A call usually returns a few actions. Removing them one by one keeps the capacity without
        // the generic `replaceSubrange` behind `removeAll(keepingCapacity:)`, which measured about
        // 80 instructions even for an empty array and 200 for a request's actions.
        while !actions.isEmpty { actions.removeLast() }
        if spareActions.capacity == 0 { swap(&actions, &spareActions) }
    }

    private func perform(_ actions: [HTTPServerConnection.Action]) {
        var actions = actions
        perform(moving: &actions)
    }

    /// Performs `actions` in order, moving each out of the array instead of copying it, because a
    /// copied `startRequest` retains and releases every buffer of the request head. The array is
    /// left with placeholders for `giveBack` to remove.
    ///
    /// Body and end actions belong to the exchange that was current when they were produced. A
    /// handler that responds before it has been given its whole request (a redirect sent from
    /// `requestStarted`, say) makes the machine start a pipelined request inside that call. The
    /// rest of the earlier request's actions in this array are then dropped, never handed to the
    /// next request's handler, which would forward another client's body and trailers upstream.
    private func perform(moving actions: inout [HTTPServerConnection.Action]) {
        var exchange = generation
        for index in actions.indices {
            guard !isClosed else { return }
            var action = HTTPServerConnection.Action.resumeReading
            swap(&action, &actions[index])
            switch consume action {
            case .startRequest(let head):
                generation += 1
                exchange = generation
                headWritten = false
                phase = .readingBody
                setDeadline(configuration.readTimeout, reason: .read)
                let handler = takeSpareHandler() ?? makeHandler(loop)
                self.handler = handler
                handler.requestStarted(head, responder: makeResponder())
            case .requestBody(let bytes):
                guard exchange == generation else { break }
                handler?.requestBody(bytes)
            case .requestEnd(let trailers):
                // A handler that finished its response in requestStarted left the connection idle
                // with the idle deadline set; moving to handling would clear it for good.
                guard exchange == generation, let handler else { break }
                phase = .handling
                clearDeadlineUnlessWriting()
                handler.requestEnded(trailers: trailers)
            case .requestFailed(let error):
                let failed = handler
                handler = nil
                failed?.requestFailed(.malformedRequest(error))
            case .write(let bytes):
                stream.write(bytes)
            case .pauseReading, .resumeReading:
                // The machine's flag, not the action's direction: a response finished in a
                // nested call may have resumed reading after this action was produced, and
                // pausing again then would stall the connection with requests still waiting.
                machinePausedReading = machine.isReadingPaused
                updateReading()
            case .close:
                timer?.cancel()
                stream.closeAfterFlush()
            case .startTunnel(let initialBytes):
                // A tunnel closes once no byte has moved either way for the idle timeout, so a
                // silent WebSocket whose peers vanished does not hold the connection forever.
                isTunnel = true
                setDeadline(configuration.idleTimeout, reason: .tunnelIdle)
                if !initialBytes.isEmpty { handler?.tunnelReceived(initialBytes) }
            }
        }
    }

    /// Returns the spare handler when it reset itself for another request. It is asked here, not
    /// when its response finished, because it may still be in the call that finished it then.
    private func takeSpareHandler() -> (any HTTPRequestHandler)? {
        // Moved out with `take()`, which neither retains nor releases it, unlike a read and a reset.
        guard let spare = spareHandler.take() else { return nil }
        return spare.prepareForNextRequest() ? spare : nil
    }

    /// The responder for a new exchange: the previous one when no handler keeps a reference to it,
    /// which saves an object per request on a keep-alive connection, else a new one.
    private func makeResponder() -> HTTPResponder {
        if isKnownUniquelyReferenced(&spareResponder), let responder = spareResponder {
            responder.reuse(generation: generation)
            return responder
        }
        let responder = HTTPResponder(connection: self, generation: generation)
        spareResponder = responder
        return responder
    }

    func updateReading() {
        if handlerPausedReading || machinePausedReading || outputPausedReading {
            stream.pauseReading()
        } else {
            stream.resumeReading()
        }
    }

    // MARK: Handler calls

    func writeHead(_ head: consuming HTTPResponseHead) {
        let isInformational = head.isInformational
        let status = head.status
        if draining && !isInformational && status != 101 {
            head.headers.replaceOrAdd(validatedName: "Connection", value: "close")
        }
        var actions = borrowActions()
        defer { giveBack(&actions) }
        do {
            // The head is encoded straight into the stream's output buffer, and edited in place
            // rather than copied into the closure.
            var head = head
            try stream.write(appending: { buffer in
                try machine.writeHead(editing: &head, encodingInto: &buffer, actions: &actions)
            })
            if !isInformational || status == 101 { headWritten = true }
            perform(moving: &actions)
            if headWritten && !isTunnel { setDeadline(configuration.writeTimeout, reason: .write) }
        } catch {
            registry?.logger.error("response head rejected", metadata: ["error": "\(error)"])
            abort()
        }
    }

    /// Writes response body bytes straight to the stream, framed as the machine decides, instead of
    /// through a `write` action, which would copy them once more.
    func writeBody(_ bytes: UnsafeRawBufferPointer) {
        let mode: HTTPServerConnection.BodyWrite
        do {
            mode = try machine.prepareBodyWrite(count: bytes.count)
        } catch {
            registry?.logger.error("response body rejected", metadata: ["error": "\(error)"])
            abort()
            return
        }
        switch mode {
        case .drop: return
        case .raw: stream.write(bytes)
        case .chunked: stream.writeChunk(bytes)
        }
    }

    func writeBody(_ bytes: some Collection<UInt8>) {
        let written: Void? = bytes.withContiguousStorageIfAvailable { writeBody(UnsafeRawBufferPointer($0)) }
        if written == nil { Array(bytes).withUnsafeBytes { writeBody($0) } }
    }

    func finishResponse(trailers: HTTPHeaders) {
        let finished = handler.take()
        var actions = borrowActions()
        // The finished handler becomes the spare only after the actions ran. A pipelined request
        // that they start runs inside the call that finished this response, and reusing the
        // handler there would reset it while its own code still runs after that call returns.
        // A handler that finished inside `perform` below has returned by then and is kept instead.
        // A closed connection keeps none: the handler refers back to it through its responder.
        defer { if spareHandler == nil && !isClosed { spareHandler = finished } }
        defer { giveBack(&actions) }
        do {
            try machine.finishResponse(trailers: trailers, into: &actions)
            phase = .idle
            setDeadline(configuration.idleTimeout, reason: .idle)
            handlerPausedReading = false
            updateReading()
            if draining && machine.isIdle && !isClosed {
                stream.closeAfterFlush()
            }
            perform(moving: &actions)
        } catch {
            registry?.logger.error("response end rejected", metadata: ["error": "\(error)"])
            abort()
        }
    }

    func handlerReadsBody() {
        // Usually there is nothing to do: no `Expect: 100-continue`, so no action to perform.
        let actions = machine.handlerReadsBody()
        if !actions.isEmpty { perform(actions) }
    }

    func abort() {
        handler = nil
        _ = machine.abort()
        stream.close()
    }

    func tunnelFinishedByHandler() {
        stream.shutdownOutputAfterFlush()
    }

    // MARK: Shutdown and timeouts

    /// Stops keep-alive: idle connections close now, busy ones after their response.
    func beginDraining() {
        draining = true
        if isIdle && !isTunnel { stream.close() }
    }

    func forceClose() {
        if let handler {
            self.handler = nil
            handler.requestFailed(.shutdown)
        }
        stream.close()
    }

    /// Moves the tunnel's idle deadline on after bytes moved in either direction. Only the
    /// deadline changes; the pending timer finds it later and arms itself again.
    func noteTunnelActivity() {
        guard isTunnel, deadline != 0, configuration.idleTimeout > 0 else { return }
        deadline = loop.now &+ UInt64(configuration.idleTimeout * 1_000_000_000)
    }

    private func clearDeadlineUnlessWriting() {
        deadline = 0
    }

    private func setDeadline(_ seconds: Double, reason: DeadlineReason) {
        guard seconds > 0 else {
            deadline = 0
            return
        }
        deadline = loop.now &+ UInt64(seconds * 1_000_000_000)
        deadlineReason = reason
        // The pending timer may be later than the new deadline; only then is it replaced.
        if let pending = timer, pending.deadline > deadline {
            pending.cancel()
            timer = nil
        }
        if timer == nil { armTimer(at: deadline) }
    }

    private func armTimer(at when: UInt64) {
        let now = MonotonicClock.nanoseconds()
        // The closure holds the handler strongly, not weakly, to keep the handler free of a side
        // table (see `HTTPResponder`). The cycle ends when the timer fires, because the loop drops
        // the body before calling it, or when it is cancelled, which closing the connection does.
        timer = loop.schedule(afterNanoseconds: when > now ? when - now : 0) { [self] in
            timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        guard !isClosed, deadline != 0 else { return }
        let now = MonotonicClock.nanoseconds()
        if now < deadline {
            armTimer(at: deadline)
            return
        }
        if isTunnel {
            if let handler {
                self.handler = nil
                handler.requestFailed(.timeout(DeadlineReason.tunnelIdle.rawValue))
            }
            stream.close()
            return
        }
        // A handler waiting on its upstream is not bound by the client-side read timeout.
        if phase == .handling && !headWritten { return }
        if deadlineReason == .idle || deadlineReason == .readHeader {
            stream.close()
            return
        }
        if let handler {
            self.handler = nil
            handler.requestFailed(.timeout(deadlineReason.rawValue))
        }
        if phase == .readingBody && !headWritten {
            writeTimeoutResponse()
        } else {
            stream.close()
        }
    }

    private func writeTimeoutResponse() {
        let body = Array("request timeout\n".utf8)
        let head = HTTPResponseHead(
            status: 408,
            headers: [
                "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(body.count),
                "Connection": "close",
            ])
        var bytes: [UInt8] = []
        try? HTTPEncoder.encode(head, into: &bytes)
        stream.write(bytes + body)
        stream.closeAfterFlush()
    }
}
