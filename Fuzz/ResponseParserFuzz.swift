import PomeriumHTTP

private func parseResponse(_ slices: [ArraySlice<UInt8>], methods: [HTTPMethod]) -> [HTTPResponseParser.Event] {
    var parser = HTTPResponseParser(limits: HTTPParserLimits(maxHeaderCount: 20, maxBodySize: 8192))
    for method in methods { parser.expectResponse(to: method) }
    var events: [HTTPResponseParser.Event] = []
    func collect() {
        while let event = parser.next() {
            if case .body(let more) = event, case .body(let previous)? = events.last {
                events[events.count - 1] = .body(previous + more)
            } else {
                events.append(event)
            }
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

/// Fuzzes the response parser. The first byte picks the request methods and the slicing; whole and
/// sliced input must give the same events.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let selector = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let choices: [HTTPMethod] = [.get, .head, .connect, .post]
    let methods = [choices[Int(selector & 0x03)], choices[Int((selector >> 2) & 0x03)], .get]
    let whole = parseResponse([bytes[...]], methods: methods)
    let sliced = parseResponse(slices(of: bytes, pattern: [selector >> 4, 1, 3]), methods: methods)
    if whole != sliced { invariantFailed("events depend on slicing") }
    return 0
}
