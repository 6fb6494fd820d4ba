import PomeriumHTTP

/// Feeds `text` to a fresh request parser in slices of `sliceSize` bytes and collects every event.
func parseRequests(
    _ text: String, sliceSize: Int = .max, limits: HTTPParserLimits = HTTPParserLimits(), finish: Bool = false
) -> [HTTPRequestParser.Event] {
    parseRequests(bytes: Array(text.utf8), sliceSize: sliceSize, limits: limits, finish: finish)
}

func parseRequests(
    bytes: [UInt8], sliceSize: Int = .max, limits: HTTPParserLimits = HTTPParserLimits(), finish: Bool = false
) -> [HTTPRequestParser.Event] {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPRequestParser.Event] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + min(sliceSize, bytes.count - offset))
        parser.feed(bytes[offset..<end])
        offset = end
        while let event = parser.next() { events.append(event) }
    }
    if finish {
        parser.finish()
        while let event = parser.next() { events.append(event) }
    }
    return coalesceBodies(events)
}

/// Merges adjacent body events, so results do not depend on how the input was sliced.
func coalesceBodies(_ events: [HTTPRequestParser.Event]) -> [HTTPRequestParser.Event] {
    var result: [HTTPRequestParser.Event] = []
    for event in events {
        if case .body(let bytes) = event, case .body(let previous)? = result.last {
            result[result.count - 1] = .body(previous + bytes)
        } else {
            result.append(event)
        }
    }
    return result
}

/// The error kind of the first error event, if any.
func firstError(_ events: [HTTPRequestParser.Event]) -> HTTPParseError? {
    for event in events {
        if case .error(let error) = event { return error }
    }
    return nil
}

func heads(_ events: [HTTPRequestParser.Event]) -> [HTTPRequestHead] {
    events.compactMap {
        if case .head(let head) = $0 { return head }
        return nil
    }
}
