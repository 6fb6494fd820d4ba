/// A request path that normalisation rejects; the caller answers 400. The message never repeats
/// the path.
public struct PathNormalizationError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case notAbsolute
        case invalidCharacter
        case invalidPercentEncoding
        case encodedSlash
        case encodedBackslash
        case encodedDotSegment
        case parameterOnDotSegment
        case nulByte
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .notAbsolute: return "path does not start with '/'"
        case .invalidCharacter: return "path contains a character that must be percent-encoded"
        case .invalidPercentEncoding: return "path has '%' without two hex digits after it"
        case .encodedSlash: return "path contains an encoded slash (%2F)"
        case .encodedBackslash: return "path contains an encoded backslash (%5C)"
        case .encodedDotSegment: return "path contains an encoded dot segment such as %2e%2e"
        case .parameterOnDotSegment: return "path contains an empty, '.' or '..' segment with ';' parameters"
        case .nulByte: return "path contains NUL"
        }
    }
}

/// The one path normalisation that routing, policy evaluation and the upstream request all use,
/// so the three see the same path.
///
/// Steps, on the percent-encoded path:
/// 1. Reject `%2F`, `%5C`, `%00` (any case), a raw backslash or control character, a malformed `%`,
///    a segment that is `.` or `..` only once encoded dots are decoded (`%2e`, `.%2E`, `%2e%2e`), and
///    a segment that is empty, `.` or `..` before a `;` (`/x/..;/admin`, `/;/admin`). Some servlet
///    containers remove `;` parameters before resolving dot segments and serve `/admin` for these,
///    while routing and policy here see another path (the Jakarta Servlet project's notes on URI
///    processing list `/..;/` as a cause of path traversal bugs behind reverse proxies).
/// 2. Decode escapes of unreserved characters (`%41` becomes `A`) and uppercase other escapes
///    (RFC 3986 §6.2.2).
/// 3. Collapse runs of slashes into one (unless `mergeSlashes` is false). Go's reverse proxy in
///    Pomerium v0.7 kept them, but a policy on `/admin` must not be bypassed with `//admin`.
/// 4. Remove `.` and `..` segments (RFC 3986 §5.2.4); `..` at the root stays at the root.
/// A trailing slash is kept. The query is not part of the input.
public enum PathNormalization {
    public static func normalize(_ path: String, mergeSlashes: Bool = true) throws(PathNormalizationError) -> String {
        if isAlreadyNormal(path) { return path }
        let bytes = Array(path.utf8)
        if bytes.isEmpty { return "/" }
        guard bytes[0] == ASCII.slash else { throw PathNormalizationError(.notAbsolute) }

        var segments: [[UInt8]] = []
        var trailingSlash = false
        var segmentStart = 1
        var index = 1
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == ASCII.slash {
                let isLast = index == bytes.count
                let segment = try decodeSegment(bytes[segmentStart..<index])
                apply(segment, isLast: isLast, mergeSlashes: mergeSlashes, to: &segments, trailingSlash: &trailingSlash)
                segmentStart = index + 1
            }
            index += 1
        }

        var output: [UInt8] = [ASCII.slash]
        for (position, segment) in segments.enumerated() {
            if position > 0 { output.append(ASCII.slash) }
            output.append(contentsOf: segment)
        }
        if trailingSlash && !segments.isEmpty { output.append(ASCII.slash) }
        return String(decoding: output, as: UTF8.self)
    }

    /// Whether `path` comes out of `normalize` unchanged, found with one pass over its bytes and no
    /// allocation: it starts with `/`, contains only path characters and slashes (no `%`, so no escape
    /// to decode or reject), has no empty segment but a final one (no `//`), and no segment that is
    /// `.` or `..` or starts with `;`, `.;` or `..;`. Names that merely start with a dot, such as
    /// `/.well-known`, pass. Anything else takes the full steps, which give the same answer for
    /// these paths.
    static func isAlreadyNormal(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.first == ASCII.slash else { return false }
            var segmentStart = 1
            var index = 1
            while index <= bytes.count {
                if index == bytes.count || bytes[index] == ASCII.slash {
                    let length = index - segmentStart
                    // An empty segment is fine only at the end (a trailing slash or the root).
                    if length == 0 && index != bytes.count { return false }
                    if length > 0 {
                        let first = bytes[segmentStart]
                        if first == ASCII.semicolon { return false }
                        if first == ASCII.dot {
                            if length == 1 { return false }
                            let second = bytes[segmentStart + 1]
                            if second == ASCII.semicolon { return false }
                            if second == ASCII.dot
                                && (length == 2 || bytes[segmentStart + 2] == ASCII.semicolon)
                            {
                                return false
                            }
                        }
                    }
                    segmentStart = index + 1
                } else if !ASCII.isPathCharacter(bytes[index]) {
                    return false
                }
                index += 1
            }
            return true
        }
    }

    /// Returns `path` without the `;` parameters of its segments, or nil when it has none:
    /// `/admin;v=1/page` becomes `/admin/page`, the path a servlet container such as Tomcat maps.
    /// For a normalised path the result is normalised too, because `normalize` rejects an empty,
    /// `.` or `..` segment before `;`.
    public static func removingParameters(_ path: String) -> String? {
        guard path.utf8.contains(ASCII.semicolon) else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(path.utf8.count)
        var inParameters = false
        for byte in path.utf8 {
            if byte == ASCII.slash {
                inParameters = false
            } else if byte == ASCII.semicolon {
                inParameters = true
            }
            if !inParameters { output.append(byte) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func apply(
        _ segment: [UInt8], isLast: Bool, mergeSlashes: Bool, to segments: inout [[UInt8]], trailingSlash: inout Bool
    ) {
        if segment == [ASCII.dot] || (segment.isEmpty && mergeSlashes) {
            if isLast { trailingSlash = true }
        } else if segment == [ASCII.dot, ASCII.dot] {
            if !segments.isEmpty { segments.removeLast() }
            if isLast { trailingSlash = true }
        } else {
            segments.append(segment)
            trailingSlash = false
        }
    }

    /// Checks one segment and returns it with unreserved escapes decoded and hex uppercased.
    private static func decodeSegment(_ raw: ArraySlice<UInt8>) throws(PathNormalizationError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var hadEncodedDot = false
        var index = raw.startIndex
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == ASCII.percent {
                guard index + 2 < raw.endIndex, let high = ASCII.hexValue(raw[index + 1]),
                    let low = ASCII.hexValue(raw[index + 2])
                else { throw PathNormalizationError(.invalidPercentEncoding) }
                let decoded = high << 4 | low
                switch decoded {
                case ASCII.slash: throw PathNormalizationError(.encodedSlash)
                case ASCII.backslash: throw PathNormalizationError(.encodedBackslash)
                case 0: throw PathNormalizationError(.nulByte)
                default: break
                }
                if ASCII.isUnreserved(decoded) {
                    if decoded == ASCII.dot { hadEncodedDot = true }
                    output.append(decoded)
                } else {
                    output.append(ASCII.percent)
                    output.append(ASCII.hexDigitsUppercase[Int(high)])
                    output.append(ASCII.hexDigitsUppercase[Int(low)])
                }
                index += 3
            } else {
                if byte == 0 { throw PathNormalizationError(.nulByte) }
                guard ASCII.isPathCharacter(byte) else { throw PathNormalizationError(.invalidCharacter) }
                output.append(byte)
                index += 1
            }
        }
        if hadEncodedDot && (output == [ASCII.dot] || output == [ASCII.dot, ASCII.dot]) {
            throw PathNormalizationError(.encodedDotSegment)
        }
        // Parameters on a named segment (`/admin;x/page`) are kept. A container that removes them
        // serves `/admin/page`, so the proxy rejects such a path when `removingParameters` gives it another route.
        if let semicolon = output.firstIndex(of: ASCII.semicolon) {
            let name = output[..<semicolon]
            if name.isEmpty || name.elementsEqual([ASCII.dot]) || name.elementsEqual([ASCII.dot, ASCII.dot]) {
                throw PathNormalizationError(.parameterOnDotSegment)
            }
        }
        return output
    }
}
