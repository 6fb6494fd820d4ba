import PomeriumHTTP

/// Stops the run with a message libFuzzer records next to the crashing input. Fuzz targets call it
/// when an invariant fails, which is a bug in the parser, never a property of the input.
func invariantFailed(_ message: String) -> Never {
    fatalError("invariant failed: \(message)")
}

/// Splits `bytes` into slices whose lengths cycle through `pattern`, so one input also exercises
/// incremental feeding. Lengths of zero count as one.
func slices(of bytes: [UInt8], pattern: [UInt8]) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var start = 0
    var step = 0
    while start < bytes.count {
        let length = pattern.isEmpty ? bytes.count : max(1, Int(pattern[step % pattern.count]))
        let end = min(bytes.count, start + length)
        result.append(bytes[start..<end])
        start = end
        step += 1
    }
    return result
}

/// Copies libFuzzer's input into an array.
func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}
