/// Parses a Java-style properties file (the grammar of `java.util.Properties.load`, read as UTF-8)
/// into a `ConfigNode` tree. Dotted keys nest: `policy.0.from = https://a.example.com` puts `from`
/// into the first route of the `policy` list, `headers.X-Frame-Options = DENY` into the `headers`
/// map. A segment made only of digits is a list index; list items keep index order.
enum PropertiesReader {
    /// One `key = value` pair after escapes are decoded, with the line where its logical line starts.
    struct Pair: Equatable {
        var key: String
        var value: String
        var line: Int
    }

    static func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        let pairs = try pairs(bytes, path: path)
        var root = Tree.branch([:], line: 1)
        for pair in pairs {
            let segments = pair.key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !segments.contains(where: \.isEmpty) else {
                throw ConfigSyntaxError(
                    location: .file(path: path, line: pair.line),
                    reason: "key \"\(pair.key)\" has an empty segment between dots")
            }
            try root.insert(segments[...], value: pair.value, line: pair.line, path: path, fullKey: pair.key)
        }
        return root.node(path: path)
    }

    /// Splits the file into pairs, in order. A later pair with the same key replaces an earlier one,
    /// as in Java.
    static func pairs(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> [Pair] {
        var text = bytes
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text.removeFirst(3) }
        guard let decoded = String(validating: text, as: UTF8.self) else {
            throw ConfigSyntaxError(location: .file(path: path, line: nil), reason: "the file is not valid UTF-8")
        }
        let naturalLines = splitLines(Array(decoded.unicodeScalars))
        var result: [Pair] = []
        var index = 0
        while index < naturalLines.count {
            let startLine = index + 1
            var logical = Array(naturalLines[index].drop { isWhitespace($0) })
            index += 1
            if logical.isEmpty || logical[0] == "#" || logical[0] == "!" { continue }
            while endsWithContinuation(logical) {
                logical.removeLast()
                guard index < naturalLines.count else { break }
                logical.append(contentsOf: naturalLines[index].drop { isWhitespace($0) })
                index += 1
            }
            let pair = try split(logical, line: startLine, path: path)
            result.removeAll { $0.key == pair.key }
            result.append(pair)
        }
        return result
    }

    private static func splitLines(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var lines: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if scalar == "\n" || scalar == "\r" {
                if scalar == "\r", index < scalars.count, scalars[index] == "\n" { index += 1 }
                lines.append(current)
                current = []
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\u{0C}"
    }

    private static func endsWithContinuation(_ line: [Unicode.Scalar]) -> Bool {
        var count = 0
        for scalar in line.reversed() {
            guard scalar == "\\" else { break }
            count += 1
        }
        return count % 2 == 1
    }

    private static func split(_ line: [Unicode.Scalar], line number: Int, path: String) throws(ConfigSyntaxError)
        -> Pair
    {
        var keyEnd = 0
        var escaped = false
        while keyEnd < line.count {
            let scalar = line[keyEnd]
            if escaped {
                escaped = false
            } else if scalar == "\\" {
                escaped = true
            } else if scalar == "=" || scalar == ":" || isWhitespace(scalar) {
                break
            }
            keyEnd += 1
        }
        var valueStart = keyEnd
        while valueStart < line.count, isWhitespace(line[valueStart]) { valueStart += 1 }
        if valueStart < line.count, line[valueStart] == "=" || line[valueStart] == ":" {
            valueStart += 1
            while valueStart < line.count, isWhitespace(line[valueStart]) { valueStart += 1 }
        }
        let key = try unescape(line[..<keyEnd], line: number, path: path)
        let value = try unescape(line[valueStart...], line: number, path: path)
        return Pair(key: key, value: value, line: number)
    }

    private static func unescape(_ scalars: ArraySlice<Unicode.Scalar>, line: Int, path: String)
        throws(ConfigSyntaxError) -> String
    {
        var output = String.UnicodeScalarView()
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let scalar = scalars[index]
            index += 1
            guard scalar == "\\" else {
                output.append(scalar)
                continue
            }
            guard index < scalars.endIndex else { break }
            let escape = scalars[index]
            index += 1
            switch escape {
            case "t": output.append("\t")
            case "n": output.append("\n")
            case "r": output.append("\r")
            case "f": output.append("\u{0C}")
            case "u":
                let end = scalars.index(index, offsetBy: 4, limitedBy: scalars.endIndex) ?? scalars.endIndex
                let hex = String(String.UnicodeScalarView(scalars[index..<end]))
                guard hex.count == 4, let value = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(value) else {
                    throw ConfigSyntaxError(location: .file(path: path, line: line), reason: "malformed \\uXXXX escape")
                }
                output.append(decoded)
                index = end
            default: output.append(escape)
            }
        }
        return String(output)
    }

    /// The nesting built from dotted keys before it becomes a `ConfigNode`.
    private indirect enum Tree {
        case leaf(String, line: Int)
        case branch([String: (tree: Tree, order: Int)], line: Int)

        mutating func insert(
            _ segments: ArraySlice<String>, value: String, line: Int, path: String, fullKey: String
        ) throws(ConfigSyntaxError) {
            guard case .branch(var children, let branchLine) = self, let first = segments.first else {
                throw ConfigSyntaxError(
                    location: .file(path: path, line: line),
                    reason: "key \"\(fullKey)\" conflicts with a shorter key that already has a value")
            }
            let rest = segments.dropFirst()
            if rest.isEmpty {
                if case .branch = children[first]?.tree {
                    throw ConfigSyntaxError(
                        location: .file(path: path, line: line),
                        reason: "key \"\(fullKey)\" conflicts with longer keys under \"\(fullKey).\"")
                }
                children[first] = (.leaf(value, line: line), children[first]?.order ?? children.count)
            } else {
                var child = children[first]?.tree ?? .branch([:], line: line)
                try child.insert(rest, value: value, line: line, path: path, fullKey: fullKey)
                children[first] = (child, children[first]?.order ?? children.count)
            }
            self = .branch(children, line: branchLine)
        }

        func node(path: String) -> ConfigNode {
            switch self {
            case .leaf(let value, let line):
                return ConfigNode(.scalar(value), location: .file(path: path, line: line))
            case .branch(let children, let line):
                let location = SourceLocation.file(path: path, line: line)
                if !children.isEmpty, children.keys.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }) {
                    let ordered = children.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
                    return ConfigNode(.sequence(ordered.map { $0.value.tree.node(path: path) }), location: location)
                }
                let ordered = children.sorted { $0.value.order < $1.value.order }
                let entries = ordered.map { key, child in
                    let node = child.tree.node(path: path)
                    return ConfigEntry(key: key, keyLocation: node.location, value: node)
                }
                return ConfigNode(.mapping(entries), location: location)
            }
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
