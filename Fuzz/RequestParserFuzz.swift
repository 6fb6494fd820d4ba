import PomeriumHTTP

/// Runs the request parser over `slices`, then the end of input, and returns every event with
/// adjacent body events merged.
private func parseRequest(_ slices: [ArraySlice<UInt8>], limits: HTTPParserLimits) -> [HTTPRequestParser.Event] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPRequestParser.Event] = []
    func collect() {
        while let event = parser.next() {
            if case .body(let more) = event, case .body(let previous)? = events.last {
                events[events.count - 1] = .body(previous + more)
            } else {
                events.append(event)
            }
            if case .end = event, parser.isAwaitingUpgradeDecision { parser.resumeAfterDeclinedUpgrade() }
        }
    }
    for slice in slices {
        parser.feed(slice)
        collect()
    }
    parser.finish()
    collect()
    return events
}

/// Fuzzes the request parser. The first input byte picks a slicing pattern and the body limit. The
/// parser must give the same events for the whole input and for the sliced one. Every head it
/// accepts must encode and parse back to the same head.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let selector = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let limits = HTTPParserLimits(
        maxStartLineLength: 512, maxHeaderCount: 20, maxHeaderSectionSize: 2048, maxChunkLineLength: 128,
        maxBodySize: selector & 0x80 == 0 ? nil : 4096)
    let whole = parseRequest([bytes[...]], limits: limits)
    let pattern: [UInt8] = [selector & 0x07, (selector >> 3) & 0x0F, 1]
    let sliced = parseRequest(slices(of: bytes, pattern: pattern), limits: limits)
    if whole != sliced { invariantFailed("events depend on slicing") }

    for event in whole {
        guard case .head(let head) = event else { continue }
        var encoded: [UInt8] = []
        do {
            try HTTPEncoder.encode(head, into: &encoded)
        } catch {
            invariantFailed("a parsed head does not encode: \(error)")
        }
        var reparser = HTTPRequestParser(limits: HTTPParserLimits())
        reparser.feed(encoded)
        guard case .head(let again)? = reparser.next() else { invariantFailed("an encoded head does not parse") }
        if again != head { invariantFailed("an encoded head parses differently") }
    }
    return 0
}
