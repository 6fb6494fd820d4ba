import Glibc

/// Limits that bound the memory one message can make a parser hold.
public struct HTTPParserLimits: Sendable, Hashable {
    /// The maximum length of the request line or status line in bytes, without CRLF. A longer
    /// request line gets 414.
    public var maxStartLineLength: Int
    /// The maximum number of header field lines, and separately of trailer field lines. More get 431.
    public var maxHeaderCount: Int
    /// The maximum size in bytes of the header section after the start line, CRLFs included, and
    /// separately of the trailer section. A larger section gets 431.
    public var maxHeaderSectionSize: Int
    /// The maximum length in bytes of a chunk-size line with its extensions, without CRLF.
    public var maxChunkLineLength: Int
    /// The maximum body size in bytes after transfer decoding, or nil for no limit. A larger body
    /// gets 413: at the head when `Content-Length` shows it, else when the chunk that crosses the
    /// limit arrives.
    public var maxBodySize: Int?

    public init(
        maxStartLineLength: Int = 8 * 1024, maxHeaderCount: Int = 100, maxHeaderSectionSize: Int = 64 * 1024,
        maxChunkLineLength: Int = 4 * 1024, maxBodySize: Int? = nil
    ) {
        self.maxStartLineLength = maxStartLineLength
        self.maxHeaderCount = maxHeaderCount
        self.maxHeaderSectionSize = maxHeaderSectionSize
        self.maxChunkLineLength = maxChunkLineLength
        self.maxBodySize = maxBodySize
    }
}

/// The maximum number of empty lines skipped before a start line. RFC 9112 §2.2 requires skipping at
/// least one, and a bound keeps a client from holding the parser with endless CRLFs.
private let maxLeadingEmptyLines = 8

/// Bytes received and not yet consumed. `readIndex` is the first unconsumed byte.
struct ParserBuffer {
    var bytes: [UInt8] = []
    var readIndex = 0

    var readableCount: Int { bytes.count - readIndex }

    mutating func append(_ data: some Sequence<UInt8>) {
        if readIndex == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex >= 4096 && readIndex * 2 >= bytes.count {
            bytes.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        bytes.append(contentsOf: data)
    }

    /// Appends a socket read in one copy; the generic `append` would copy a raw buffer byte by byte.
    mutating func append(_ data: UnsafeRawBufferPointer) {
        if readIndex == bytes.count {
            // Everything was consumed, so one replacement drops the old bytes and copies the new
            // ones, where emptying the array and appending to it were two generic calls.
            readIndex = 0
            bytes.replaceSubrange(0..<bytes.count, with: data.assumingMemoryBound(to: UInt8.self))
            return
        }
        if readIndex >= 4096 && readIndex * 2 >= bytes.count {
            bytes.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        bytes.append(contentsOf: data.assumingMemoryBound(to: UInt8.self))
    }

    /// Removes and returns up to `count` readable bytes.
    mutating func take(upTo count: Int) -> [UInt8] {
        let length = min(count, readableCount)
        let result = Array(bytes[readIndex..<(readIndex + length)])
        readIndex += length
        return result
    }

    mutating func takeAll() -> [UInt8] {
        take(upTo: readableCount)
    }
}

/// Finds the lines of a header or trailer section, CRLF by CRLF, resuming where the previous
/// call stopped so that feeding one byte at a time stays linear. Offsets are relative to the
/// buffer's `readIndex`, which does not move while a section is scanned.
///
/// The same pass notes whether the section contains a control byte other than its CRLFs (HTAB
/// included) or DEL. Without one, every byte of every field value is allowed, so
/// `FieldLineParser` skips checking the values. On a request head with a 400-byte cookie, that
/// check was about a third of the field-line parsing instructions.
struct SectionScanner {
    enum Result {
        case incomplete
        /// The section ends `length` bytes after `readIndex`, final empty line included.
        case complete(length: Int)
        case failed(HTTPParseError.Kind)
    }

    /// Whether the first line is a start line, which has its own limit and may follow empty lines.
    var hasStartLine: Bool { position.hasStartLine }
    /// Whether a byte below 0x20 other than a line's CRLF, or DEL, was seen. Field values may
    /// contain HTAB but no other such byte, so only a section with one needs its values checked.
    var hasControlBytes: Bool { position.hasControlBytes }
    /// The lines found so far, without their CRLFs.
    var lines: ArraySlice<Range<Int>> { table[..<position.lineCount] }
    /// The number of lines found so far.
    var lineCount: Int { position.lineCount }
    /// The storage of `lines`, whose elements from `lineCount` on are placeholders. A scan writes
    /// lines into it through a pointer, which checks that the storage is not shared once per call,
    /// where `append` checked it once per line, about 50 instructions with the call. The parsers
    /// pass the table itself to `FieldLineParser`, because building the `lines` slice retained it.
    private(set) var table: [Range<Int>]
    private var position: Position

    init(hasStartLine: Bool) {
        position = Position(hasStartLine: hasStartLine)
        table = Array(repeating: 0..<0, count: 16)
    }

    /// Starts over for the next section, keeping the storage of the lines, so that a parser
    /// allocates no array per message.
    mutating func reset() {
        position = Position(hasStartLine: position.hasStartLine)
    }

    /// Returns the index of the first byte below 0x20 or equal to 0x7F in `start..<end` of
    /// `storage`, or `end`. CR and LF are such bytes, so this finds line breaks too. It tests
    /// sixteen bytes per step with vector compares, then takes the position from the lowest marked
    /// byte of a word. Header lines are short, so two `memchr` calls per line, one for CR and one
    /// for LF, measured about twice the instructions in call overhead.
    @inline(__always)
    static func firstControlByte(_ storage: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        guard start < end, let base = storage.baseAddress else { return end }
        @inline(__always)
        func marks(at offset: Int) -> UInt64 {
            ByteMasks.controlBytes(UInt64(littleEndian: UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self)))
        }
        // Wrapping arithmetic: the offsets lie within one buffer and cannot overflow, and an
        // overflow check would cost a branch per word.
        var index = start
        // The vector compares take 12 instructions per 16 bytes where two words of `marks` took
        // 19. The bounds are vectors, not scalars: a compare with a scalar compiled to a loop
        // over the lanes.
        let spaces = SIMD16<UInt8>(repeating: 0x20)
        let deletes = SIMD16<UInt8>(repeating: 0x7F)
        while index &+ 16 <= end {
            let block = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            if any((block .< spaces) .| (block .== deletes)) {
                let first = marks(at: index)
                if first != 0 { return index &+ first.trailingZeroBitCount &>> 3 }
                return index &+ 8 &+ marks(at: index &+ 8).trailingZeroBitCount &>> 3
            }
            index &+= 16
        }
        if index &+ 8 <= end {
            let mask = marks(at: index)
            if mask != 0 { return index &+ mask.trailingZeroBitCount &>> 3 }
            index &+= 8
        }
        guard index < end else { return end }
        if end &- start >= 8 {
            // The last eight bytes overlap bytes already searched, which contain no control byte,
            // so the lowest marked byte is the first after them.
            let mask = marks(at: end &- 8)
            return mask == 0 ? end : end &- 8 &+ mask.trailingZeroBitCount &>> 3
        }
        while index < end {
            let byte = base[index]
            if byte < 0x20 || byte == 0x7F { return index }
            index += 1
        }
        return end
    }

    mutating func scan(_ buffer: ParserBuffer, limits: HTTPParserLimits) -> Result {
        let base = buffer.readIndex
        let end = buffer.bytes.count - base
        while true {
            // The table is moved out while the scan writes into it, so that the pointer's access
            // does not overlap the scan's access to the position.
            var lineTable: [Range<Int>] = []
            swap(&lineTable, &table)
            let result = lineTable.withUnsafeMutableBufferPointer { lineTable in
                buffer.bytes.withUnsafeBufferPointer { storage in
                    position.scan(storage, base: base, end: end, into: lineTable, limits: limits)
                }
            }
            swap(&lineTable, &table)
            if let result { return result }
            table.append(contentsOf: repeatElement(0..<0, count: table.count))
        }
    }

    /// The progress of a scan through its section.
    private struct Position {
        let hasStartLine: Bool
        var hasControlBytes = false
        var lineCount = 0
        var scanned = 0
        var lineStart = 0
        var sectionStart = 0
        var leadingEmptyLines = 0

        init(hasStartLine: Bool) {
            self.hasStartLine = hasStartLine
        }

        private var inStartLine: Bool { hasStartLine && lineCount == 0 }

        /// Scans `storage`, whose section starts at `base` and whose input ends at `base + end`, and
        /// writes the lines into `lineTable`. Returns nil when the table is full, stopped at the CR
        /// of the line that did not fit.
        @inline(__always)
        mutating func scan(
            _ storage: UnsafeBufferPointer<UInt8>, base: Int, end: Int,
            into lineTable: UnsafeMutableBufferPointer<Range<Int>>, limits: HTTPParserLimits
        ) -> Result? {
            var index = scanned
            // The length limits are checked at each stop of the scan (a control byte, a line break
            // or the end of the input) that follows a byte other than CR and LF. Bytes count from
            // the last line break or the start of this call. A length only grows within a line,
            // so the stops at control bytes, which the line-break search did not make, change no
            // result.
            var runStart = index
            while true {
                let probe =
                    index < end
                    ? SectionScanner.firstControlByte(storage, from: base + index, to: base + end) - base : end
                if probe > runStart {
                    if inStartLine {
                        if probe - lineStart > limits.maxStartLineLength { return .failed(.requestLineTooLong) }
                    } else if probe - sectionStart > limits.maxHeaderSectionSize {
                        return .failed(.headerSectionTooLarge)
                    }
                }
                index = probe
                if index == end { break }
                let byte = storage[base + index]
                if byte == ASCII.cr {
                    if index + 1 == end {
                        // The next byte decides whether this CR is part of a CRLF.
                        scanned = index
                        return .incomplete
                    }
                    guard storage[base + index + 1] == ASCII.lf else { return .failed(.bareCarriageReturn) }
                    let line = lineStart..<index
                    if !line.isEmpty && lineCount == lineTable.count {
                        // The next call starts at this CR, whose line's length was checked already.
                        scanned = index
                        return nil
                    }
                    index += 2
                    runStart = index
                    lineStart = index
                    if line.isEmpty {
                        if inStartLine {
                            leadingEmptyLines += 1
                            if leadingEmptyLines > maxLeadingEmptyLines { return .failed(.tooManyEmptyLines) }
                        } else {
                            return .complete(length: index)
                        }
                    } else {
                        if inStartLine { sectionStart = index }
                        lineTable[lineCount] = line
                        lineCount += 1
                        if lineCount - (hasStartLine ? 1 : 0) > limits.maxHeaderCount {
                            return .failed(.tooManyHeaders)
                        }
                    }
                } else if byte == ASCII.lf {
                    // Every LF after a CR went with it, so this one is bare.
                    return .failed(.bareLineFeed)
                } else {
                    hasControlBytes = true
                    index += 1
                }
            }
            scanned = index
            return .incomplete
        }
    }
}

/// Byte classes tested on eight bytes at once. Each function marks the bytes of a little-endian
/// word that belong to a class with their high bit, exactly: no sum carries from one byte into
/// the next, so the mark of every byte is right, not only the lowest.
enum ByteMasks {
    static let highBits: UInt64 = 0x8080_8080_8080_8080
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let lowBits: UInt64 = 0x7F7F_7F7F_7F7F_7F7F

    /// Marks the bytes of `word` that are below 0x20 or equal to 0x7F with their high bit. A
    /// byte's low seven bits plus one, kept to seven bits, is below 0x21 exactly for those bytes,
    /// because DEL wraps to 0. Adding 0x5F then leaves the high bit clear only for them. No sum
    /// carries into the next byte, so every mark is exact. Bytes 0x80 and above are never marked.
    @inline(__always)
    static func controlBytes(_ word: UInt64) -> UInt64 {
        let shifted = ((word & lowBits) &+ ones) & lowBits
        return ~((shifted &+ ones &* 0x5F) | word) & highBits
    }

    /// Marks the bytes of `word` in `range`, which must lie below 0x80. Bytes 0x80 and above are
    /// never marked. Each byte's low seven bits plus `0x80 - lower` reach the high bit exactly
    /// when the byte is at least `lower`, and plus `0x7F - upper` exactly when it is above `upper`.
    @inline(__always)
    static func bytes(_ word: UInt64, in range: ClosedRange<UInt8>) -> UInt64 {
        let low = word & lowBits
        let atLeastLower = low &+ ones &* UInt64(0x80 &- range.lowerBound)
        let aboveUpper = low &+ ones &* UInt64(0x7F &- range.upperBound)
        return atLeastLower & ~aboveUpper & ~word & highBits
    }

    /// Returns `word` with its ASCII uppercase letters lowercased and every other byte unchanged:
    /// the mark of an uppercase letter, moved from bit 7 to bit 5, sets that letter's bit 5.
    @inline(__always)
    static func lowercased(_ word: UInt64) -> UInt64 {
        word | bytes(word, in: UInt8(ascii: "A")...UInt8(ascii: "Z")) &>> 2
    }

    /// Returns whether the `count` bytes at `text`, with their ASCII uppercase letters lowercased,
    /// equal the `count` bytes at `lowercase`. It compares eight bytes per step, and 4 to 7 bytes
    /// as the two overlapping halves of one word. A byte loop with a fold per byte took about 170
    /// instructions for `Content-Length`.
    @inline(__always)
    static func lowercasedEquals(_ text: UnsafePointer<UInt8>, _ lowercase: UnsafePointer<UInt8>, count: Int) -> Bool {
        let actual = UnsafeRawPointer(text)
        let expected = UnsafeRawPointer(lowercase)
        if count >= 8 {
            // The last word ends at the last byte and may overlap the one before it.
            var offset = 0
            while offset < count - 8 {
                guard
                    lowercased(actual.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                        == expected.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                else { return false }
                offset += 8
            }
            return lowercased(actual.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
                == expected.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        }
        if count >= 4 {
            @inline(__always)
            func halves(_ start: UnsafeRawPointer) -> UInt64 {
                UInt64(start.loadUnaligned(as: UInt32.self))
                    | UInt64(start.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)) << 32
            }
            return lowercased(halves(actual)) == halves(expected)
        }
        for index in 0..<count where ASCII.lowercased(text[index]) != lowercase[index] { return false }
        return true
    }

    /// Marks the ASCII letters, digits and hyphens of `word`: the bytes of nearly every field name.
    @inline(__always)
    static func plainNameBytes(_ word: UInt64) -> UInt64 {
        // Setting bit 5 maps each uppercase letter to its lowercase one and no other byte below
        // 0x80 into a to z.
        let letters = bytes(word | ones &* 0x20, in: UInt8(ascii: "a")...UInt8(ascii: "z"))
        let digits = bytes(word, in: UInt8(ascii: "0")...UInt8(ascii: "9"))
        let hyphens = bytes(word, in: UInt8(ascii: "-")...UInt8(ascii: "-"))
        return letters | digits | hyphens
    }
}

/// The fields that decide framing and routing, found while the field lines are parsed, so the
/// parsers need no further passes over the headers. Ranges index the parser buffer.
struct FramingFields {
    var hostCount = 0
    var hostValue: Range<Int> = 0..<0
    var contentLengthCount = 0
    var contentLengthValue: Range<Int> = 0..<0
    var hasTransferEncoding = false
    var hasUpgrade = false
}

/// Field-line parsing shared by header and trailer sections (RFC 9112 §5).
enum FieldLineParser {
    /// Parses the lines `lineTable[first..<end]` of `bytes` into fields. The table is passed whole
    /// with bounds because a slice of it cost a retain and a release per head. Rejects line
    /// folding, whitespace before the colon, names that are not tokens and values with control
    /// characters other than HTAB. When
    /// `checkValues` is false, the caller has found no byte below 0x20 and no DEL in the lines
    /// (`SectionScanner.hasControlBytes`), so every value passes and none is checked.
    static func parse(
        _ lineTable: [Range<Int>], from first: Int, to end: Int, in bytes: [UInt8], base: Int, checkValues: Bool
    ) throws(HTTPParseError) -> (headers: HTTPHeaders, framing: FramingFields) {
        var spare: HTTPHeaders?
        return try parse(
            lineTable, from: first, to: end, in: bytes, base: base, checkValues: checkValues, reusing: &spare)
    }

    /// `parse(_:from:to:in:base:checkValues:)` writing the fields into the storage of `spare`,
    /// which is left nil. A parser passes the headers of its previous head: once the receiver of that
    /// head has released it, nothing else references the storage, and the next head of the connection
    /// allocates nothing (2 mallocs per head, 4 per proxied request). Storage still held elsewhere
    /// is never written: the arrays are replaced by fresh ones, as copy on write would. The spare
    /// is optional so that taking it leaves no empty arrays behind to release.
    static func parse(
        _ lineTable: [Range<Int>], from first: Int, to end: Int, in bytes: [UInt8], base: Int, checkValues: Bool,
        reusing spare: inout HTTPHeaders?
    ) throws(HTTPParseError) -> (headers: HTTPHeaders, framing: FramingFields) {
        guard first < end else { return (HTTPHeaders(), FramingFields()) }
        let lineCount = end - first
        let firstLine = lineTable[first]
        let lastLine = lineTable[end - 1]
        // The section's bytes are copied once; the fields are ranges into the copy.
        let sectionStart = base + firstLine.lowerBound
        let sectionEnd = base + lastLine.upperBound
        var (sectionBytes, entries) = spare.take()?.takeStorage() ?? ([], [])
        // Too small a storage is dropped rather than emptied: emptying a shared array with its
        // capacity kept allocates a new one, which would then be grown.
        if entries.capacity < lineCount { entries = [] }
        entries.removeAll(keepingCapacity: true)
        entries.reserveCapacity(lineCount)
        if sectionBytes.capacity < sectionEnd - sectionStart { sectionBytes = [] }
        var framing = FramingFields()
        let result: HTTPParseError.Kind? = bytes.withUnsafeBufferPointer { storage in
            for lineIndex in first..<end {
                let line = lineTable[lineIndex]
                let start = base + line.lowerBound
                let end = base + line.upperBound
                if ASCII.isWhitespace(storage[start]) { return .obsoleteLineFolding }
                // Most names are letters, digits and hyphens, which `plainNameEnd` checks eight
                // bytes at a time. Any other name takes the byte loop, which decides its error.
                let colon: Int
                if let plainEnd = plainNameEnd(storage, from: start, to: end) {
                    colon = plainEnd
                } else {
                    switch nameEnd(storage, from: start, to: end) {
                    case .colon(let index): colon = index
                    case .failed(let kind): return kind
                    }
                }
                var valueStart = colon + 1
                var valueEnd = end
                while valueStart < valueEnd, ASCII.isWhitespace(storage[valueStart]) { valueStart += 1 }
                while valueEnd > valueStart, ASCII.isWhitespace(storage[valueEnd - 1]) { valueEnd -= 1 }
                guard
                    !checkValues
                        || ASCII.allFieldValueCharacters(UnsafeBufferPointer(rebasing: storage[valueStart..<valueEnd]))
                else {
                    return .invalidHeaderValue
                }
                let name = UnsafeBufferPointer(rebasing: storage[start..<colon])
                record(name: name, value: valueStart..<valueEnd, in: &framing)
                entries.append(
                    HTTPHeaders.Entry(
                        name: (start - sectionStart)..<(colon - sectionStart),
                        value: (valueStart - sectionStart)..<(valueEnd - sectionStart), isChecked: true))
            }
            // One replacement drops the last head's bytes and copies these, where emptying the array
            // and appending to it were two generic calls.
            sectionBytes.replaceSubrange(
                0..<sectionBytes.count, with: UnsafeBufferPointer(rebasing: storage[sectionStart..<sectionEnd]))
            return nil
        }
        if let result { throw HTTPParseError(result) }
        return (HTTPHeaders(checkedBytes: sectionBytes, entries: entries), framing)
    }

    /// Returns `headers` for a parser to keep for its next head, or an empty list when their bytes
    /// take more than 16 KiB, which an idle connection would otherwise keep allocated.
    static func spare(from headers: HTTPHeaders) -> HTTPHeaders {
        headers.storageCapacity <= 16 * 1024 ? headers : HTTPHeaders()
    }

    /// Returns the index of the colon that ends the field name starting at `start`, checking the
    /// name byte by byte. A byte that is neither a token character nor the colon, a missing colon
    /// and an empty name each give their error instead.
    private static func nameEnd(_ storage: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> NameEnd {
        var colon = start
        while colon < end {
            let byte = storage[colon]
            if ASCII.isTokenCharacter(byte) {
                colon += 1
                continue
            }
            if byte == ASCII.colon { break }
            return .failed(ASCII.isWhitespace(byte) ? .whitespaceBeforeColon : .invalidHeaderName)
        }
        guard colon < end, colon > start else { return .failed(.invalidHeaderName) }
        return .colon(colon)
    }

    private enum NameEnd {
        case colon(Int)
        case failed(HTTPParseError.Kind)
    }

    /// Returns the index of the colon that ends the field name starting at `start`, when the name
    /// is not empty and has only ASCII letters, digits and hyphens, and the colon comes before
    /// `end`. Otherwise it returns nil. The byte-by-byte token test cost about 13 instructions per
    /// name byte, 1,070 per proxied request, and this one 740. It is not inlined because inside
    /// the field-line loop its constants did not stay in registers.
    @inline(never)
    static func plainNameEnd(_ storage: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int? {
        guard let base = storage.baseAddress else { return nil }
        var index = start
        // Each word is read whole, so the search stops where fewer than eight bytes remain.
        while index &+ 8 <= storage.count && index < end {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            let others = ~ByteMasks.plainNameBytes(word) & ByteMasks.highBits
            if others != 0 {
                // The marks are exact, so the lowest is the first byte that is not plain.
                let stop = index &+ others.trailingZeroBitCount &>> 3
                return stop > start && stop < end && base[stop] == ASCII.colon ? stop : nil
            }
            index &+= 8
        }
        return nil
    }

    /// Notes the framing fields. Most names are none of them, so the length and the first byte
    /// decide before any full comparison.
    @inline(__always)
    private static func record(name: UnsafeBufferPointer<UInt8>, value: Range<Int>, in framing: inout FramingFields) {
        switch (name.count, name[0] | 0x20) {
        case (4, UInt8(ascii: "h")) where matches(name, "host"):
            framing.hostCount += 1
            framing.hostValue = value
        case (7, UInt8(ascii: "u")) where matches(name, "upgrade"):
            framing.hasUpgrade = true
        case (14, UInt8(ascii: "c")) where matches(name, "content-length"):
            framing.contentLengthCount += 1
            framing.contentLengthValue = value
        case (17, UInt8(ascii: "t")) where matches(name, "transfer-encoding"):
            framing.hasTransferEncoding = true
        default:
            break
        }
    }

    /// Returns whether `name`, a token, equals `lowercaseName`, which has only lowercase letters
    /// and hyphens, ignoring ASCII case. Setting bit 5 of a byte lowercases a letter and keeps a
    /// hyphen, and turns no other token byte into either, so whole words are compared at once.
    /// Against the byte loop with a fold per byte, that cut 180 instructions per proxied request.
    @inline(__always)
    private static func matches(_ name: UnsafeBufferPointer<UInt8>, _ lowercaseName: StaticString) -> Bool {
        let count = lowercaseName.utf8CodeUnitCount
        guard name.count == count, let nameStart = name.baseAddress else { return false }
        let actual = UnsafeRawPointer(nameStart)
        let expected = UnsafeRawPointer(lowercaseName.utf8Start)
        if count >= 8 {
            let caseBits: UInt64 = 0x2020_2020_2020_2020
            // The last word ends at the last byte and may overlap the one before it.
            var offset = 0
            while offset < count - 8 {
                guard
                    actual.loadUnaligned(fromByteOffset: offset, as: UInt64.self) | caseBits
                        == expected.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                else { return false }
                offset += 8
            }
            return actual.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) | caseBits
                == expected.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        }
        if count >= 4 {
            let caseBits: UInt32 = 0x2020_2020
            return actual.loadUnaligned(as: UInt32.self) | caseBits == expected.loadUnaligned(as: UInt32.self)
                && actual.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self) | caseBits
                    == expected.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
        }
        for index in 0..<count where nameStart[index] | 0x20 != lowercaseName.utf8Start[index] { return false }
        return true
    }
}

/// The delimiting of a message body (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case fixed(Int)
    case chunked
    case closeDelimited
}

/// Framing rules that request and response parsing share.
enum FramingRules {
    /// Checks `Transfer-Encoding`: every list element must be a bare token, the only coding
    /// accepted is `chunked`, and it must appear exactly once, last.
    static func checkTransferEncoding(_ headers: HTTPHeaders) throws(HTTPParseError) {
        var codings: [ArraySlice<UInt8>] = []
        for field in headers where field.hasName("Transfer-Encoding") {
            for element in Array(field.value.utf8).split(separator: ASCII.comma) {
                var trimmed = element[...]
                while let first = trimmed.first, ASCII.isWhitespace(first) { trimmed = trimmed.dropFirst() }
                while let last = trimmed.last, ASCII.isWhitespace(last) { trimmed = trimmed.dropLast() }
                if trimmed.isEmpty { continue }
                guard trimmed.allSatisfy(ASCII.isTokenCharacter) else {
                    throw HTTPParseError(.invalidTransferEncoding)
                }
                codings.append(trimmed)
            }
        }
        guard !codings.isEmpty else { throw HTTPParseError(.invalidTransferEncoding) }
        let isChunked: (ArraySlice<UInt8>) -> Bool = {
            $0.count == 7 && $0.map(ASCII.lowercased).elementsEqual("chunked".utf8)
        }
        if codings.contains(where: { !isChunked($0) }) { throw HTTPParseError(.unsupportedTransferCoding) }
        guard codings.count == 1 else { throw HTTPParseError(.invalidTransferEncoding) }
    }

    /// Parses the single `Content-Length` field, returning nil when there is none. Rejects repeated
    /// fields and any value that is not plain digits, including a comma list of equal values.
    static func contentLength(_ framing: FramingFields, in bytes: [UInt8]) throws(HTTPParseError) -> Int? {
        guard framing.contentLengthCount > 0 else { return nil }
        guard framing.contentLengthCount == 1 else { throw HTTPParseError(.multipleContentLength) }
        return try parseContentLength(bytes[framing.contentLengthValue])
    }

    /// Parses the single `Content-Length` field of a head built in code, such as a handler's response.
    static func contentLength(_ headers: HTTPHeaders) throws(HTTPParseError) -> Int? {
        // The values are read in place: returning the first as an array slice retained the storage.
        var count = 0
        var first: Result<Int, HTTPParseError> = .failure(HTTPParseError(.invalidContentLength))
        headers.forEachValue(ofFieldsNamed: contentLengthName) { value in
            count += 1
            if count == 1 { first = Result { () throws(HTTPParseError) in try parseContentLength(value) } }
        }
        guard count > 0 else { return nil }
        guard count == 1 else { throw HTTPParseError(.multipleContentLength) }
        return try first.get()
    }

    private static let contentLengthName = Array("content-length".utf8)

    /// Parses a `Content-Length` value: 1 to 18 digits, so the arithmetic cannot overflow Int64.
    static func parseContentLength(_ digits: some Collection<UInt8>) throws(HTTPParseError) -> Int {
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy(ASCII.isDigit) else {
            throw HTTPParseError(.invalidContentLength)
        }
        return digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
    }
}

/// Decodes a message body by its framing, producing body bytes and the end with trailers.
struct BodyDecoder {
    enum Step {
        case body([UInt8])
        case end(HTTPHeaders)
        case needMore
        case failed(HTTPParseError.Kind)
    }

    private enum State {
        case fixed(remaining: Int)
        case chunkSizeLine(scanned: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(SectionScanner)
        case closeDelimited
        case done
    }

    private var state: State
    private var received = 0

    init(framing: BodyFraming) {
        switch framing {
        case .none: state = .fixed(remaining: 0)
        case .fixed(let length): state = .fixed(remaining: length)
        case .chunked: state = .chunkSizeLine(scanned: 0)
        case .closeDelimited: state = .closeDelimited
        }
    }

    /// Consumes and returns the range of `buffer.bytes` that `step` would next return as `.body`.
    /// That works for a fixed-length body, chunk data, and a close-delimited body within the size
    /// limit. In every other case it returns nil and consumes nothing, so `step` decides.
    /// The range is valid until the buffer next changes.
    mutating func takeBodyRun(_ buffer: inout ParserBuffer, limits: HTTPParserLimits) -> Range<Int>? {
        let readable = buffer.readableCount
        guard readable > 0 else { return nil }
        let length: Int
        switch state {
        case .fixed(let remaining) where remaining > 0:
            length = Swift.min(remaining, readable)
            state = .fixed(remaining: remaining - length)
        case .chunkData(let remaining):
            length = Swift.min(remaining, readable)
            state = remaining == length ? .chunkDataEnd : .chunkData(remaining: remaining - length)
        case .closeDelimited:
            if let max = limits.maxBodySize, received + readable > max { return nil }
            length = readable
            received += length
        default:
            return nil
        }
        let start = buffer.readIndex
        buffer.readIndex += length
        return start..<(start + length)
    }

    /// Advances by what `buffer` holds. `inputClosed` is set once the peer has closed its side.
    mutating func step(_ buffer: inout ParserBuffer, limits: HTTPParserLimits, inputClosed: Bool) -> Step {
        while true {
            switch state {
            case .done:
                return .needMore
            case .fixed(let remaining):
                if remaining == 0 {
                    state = .done
                    return .end(HTTPHeaders())
                }
                if buffer.readableCount == 0 { return inputClosed ? .failed(.incompleteMessage) : .needMore }
                let bytes = buffer.take(upTo: remaining)
                state = .fixed(remaining: remaining - bytes.count)
                return .body(bytes)
            case .closeDelimited:
                if buffer.readableCount > 0 {
                    let bytes = buffer.takeAll()
                    received += bytes.count
                    if let max = limits.maxBodySize, received > max { return .failed(.bodyTooLarge) }
                    return .body(bytes)
                }
                guard inputClosed else { return .needMore }
                state = .done
                return .end(HTTPHeaders())
            case .chunkSizeLine(let scanned):
                switch scanChunkSizeLine(buffer, scanned: scanned, limits: limits) {
                case .needMore(let newScanned):
                    state = .chunkSizeLine(scanned: newScanned)
                    return inputClosed ? .failed(.incompleteMessage) : .needMore
                case .failed(let kind):
                    return .failed(kind)
                case .size(let size, let lineLength):
                    buffer.readIndex += lineLength
                    if size == 0 {
                        state = .trailers(SectionScanner(hasStartLine: false))
                    } else {
                        received += size
                        if let max = limits.maxBodySize, received > max { return .failed(.bodyTooLarge) }
                        state = .chunkData(remaining: size)
                    }
                }
            case .chunkData(let remaining):
                if buffer.readableCount == 0 { return inputClosed ? .failed(.incompleteMessage) : .needMore }
                let bytes = buffer.take(upTo: remaining)
                state = remaining == bytes.count ? .chunkDataEnd : .chunkData(remaining: remaining - bytes.count)
                return .body(bytes)
            case .chunkDataEnd:
                if buffer.readableCount < 2 {
                    if buffer.readableCount == 1 && buffer.bytes[buffer.readIndex] != ASCII.cr {
                        return .failed(.missingChunkTerminator)
                    }
                    return inputClosed ? .failed(.incompleteMessage) : .needMore
                }
                guard buffer.bytes[buffer.readIndex] == ASCII.cr, buffer.bytes[buffer.readIndex + 1] == ASCII.lf else {
                    return .failed(.missingChunkTerminator)
                }
                buffer.readIndex += 2
                state = .chunkSizeLine(scanned: 0)
            case .trailers(var scanner):
                let result = scanner.scan(buffer, limits: limits)
                switch result {
                case .incomplete:
                    state = .trailers(scanner)
                    return inputClosed ? .failed(.incompleteMessage) : .needMore
                case .failed(let kind):
                    return .failed(kind)
                case .complete(let length):
                    let trailers: HTTPHeaders
                    do {
                        trailers = try FieldLineParser.parse(
                            scanner.table, from: 0, to: scanner.lineCount, in: buffer.bytes, base: buffer.readIndex,
                            checkValues: scanner.hasControlBytes
                        ).headers
                    } catch {
                        return .failed(error.kind)
                    }
                    buffer.readIndex += length
                    state = .done
                    return .end(trailers)
                }
            }
        }
    }

    private enum ChunkLine {
        case needMore(scanned: Int)
        case failed(HTTPParseError.Kind)
        /// The chunk size and the length of the line including CRLF.
        case size(Int, lineLength: Int)
    }

    private func scanChunkSizeLine(_ buffer: ParserBuffer, scanned: Int, limits: HTTPParserLimits) -> ChunkLine {
        let bytes = buffer.bytes
        let base = buffer.readIndex
        var index = base + scanned
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.lf {
                guard index > base, bytes[index - 1] == ASCII.cr else { return .failed(.bareLineFeed) }
                return parseChunkSizeLine(bytes[base..<(index - 1)], lineLength: index + 1 - base)
            }
            if byte == ASCII.cr {
                if index + 1 == bytes.count { return .needMore(scanned: index - base) }
                if bytes[index + 1] != ASCII.lf { return .failed(.bareCarriageReturn) }
            }
            if index - base >= limits.maxChunkLineLength { return .failed(.chunkLineTooLong) }
            index += 1
        }
        return .needMore(scanned: index - base)
    }

    /// Parses `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): hex digits, then any number of
    /// `BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ]`. Extensions are checked and dropped.
    private func parseChunkSizeLine(_ line: ArraySlice<UInt8>, lineLength: Int) -> ChunkLine {
        var index = line.startIndex
        var size = 0
        while index < line.endIndex, let digit = ASCII.hexValue(line[index]) {
            // Beyond 2^59 the next shift could overflow; no real chunk is that large.
            guard size < 1 << 59 else { return .failed(.invalidChunkSize) }
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > line.startIndex else { return .failed(.invalidChunkSize) }
        var sawExtension = false
        while index < line.endIndex {
            let whitespaceStart = index
            while index < line.endIndex, ASCII.isWhitespace(line[index]) { index += 1 }
            guard index < line.endIndex else {
                return index == whitespaceStart ? .size(size, lineLength: lineLength) : .failed(.invalidChunkExtension)
            }
            guard line[index] == ASCII.semicolon else {
                return .failed(sawExtension || index != whitespaceStart ? .invalidChunkExtension : .invalidChunkSize)
            }
            sawExtension = true
            index += 1
            while index < line.endIndex, ASCII.isWhitespace(line[index]) { index += 1 }
            let nameStart = index
            while index < line.endIndex, ASCII.isTokenCharacter(line[index]) { index += 1 }
            guard index > nameStart else { return .failed(.invalidChunkExtension) }
            var lookahead = index
            while lookahead < line.endIndex, ASCII.isWhitespace(line[lookahead]) { lookahead += 1 }
            guard lookahead < line.endIndex, line[lookahead] == ASCII.equals else { continue }
            index = lookahead + 1
            while index < line.endIndex, ASCII.isWhitespace(line[index]) { index += 1 }
            guard let valueEnd = QuotedStringSyntax.endOfTokenOrQuotedString(line, from: index) else {
                return .failed(.invalidChunkExtension)
            }
            index = valueEnd
        }
        return .size(size, lineLength: lineLength)
    }
}

/// `quoted-string` of RFC 9110 §5.6.4.
enum QuotedStringSyntax {
    /// Finds the index after a token or quoted string starting at `start`, or returns nil when
    /// neither starts there.
    static func endOfTokenOrQuotedString(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        guard start < bytes.endIndex else { return nil }
        if bytes[start] != ASCII.quote {
            var index = start
            while index < bytes.endIndex, ASCII.isTokenCharacter(bytes[index]) { index += 1 }
            return index > start ? index : nil
        }
        var index = start + 1
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case ASCII.quote:
                return index + 1
            case ASCII.backslash:
                guard index + 1 < bytes.endIndex, ASCII.isFieldValueCharacter(bytes[index + 1]) else { return nil }
                index += 2
            default:
                guard ASCII.isFieldValueCharacter(byte) else { return nil }
                index += 1
            }
        }
        return nil
    }
}
