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

    /// The deepest nesting a dotted key may have, the same limit as the other readers.
    static let maximumDepth = YAMLReader.maximumDepth

    static func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        let pairs = try pairs(bytes, path: path)
        let root = Tree(line: 1)
        for pair in pairs {
            let segments = pair.key.split(separator: ".", omittingEmptySubsequences: false)
            guard !segments.contains(where: \.isEmpty) else {
                throw ConfigSyntaxError(
                    location: .file(path: path, line: pair.line),
                    reason: "key \"\(ValueParsing.excerpt(pair.key))\" has an empty segment between dots")
            }
            guard segments.count <= maximumDepth else {
                throw ConfigSyntaxError(
                    location: .file(path: path, line: pair.line),
                    reason:
                        "key \"\(ValueParsing.excerpt(pair.key))\" has \(segments.count) dotted segments, nesting deeper than \(maximumDepth)"
                )
            }
            try root.insert(
                segments.map(String.init), value: pair.value, line: pair.line, path: path, fullKey: pair.key)
        }
        return try root.node(path: path)
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
        var result: [Pair?] = []
        var positions: [String: Int] = [:]
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
            if let earlier = positions[pair.key] { result[earlier] = nil }
            positions[pair.key] = result.count
            result.append(pair)
        }
        return result.compactMap { $0 }
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

    /// The nesting built from dotted keys before it becomes a `ConfigNode`. A reference type, so
    /// inserting a key walks down the existing nodes instead of copying each level.
    private final class Tree {
        let line: Int
        var value: String?
        var children: [String: Tree] = [:]
        /// Child names in the order they first appeared.
        var order: [String] = []
        /// For a digit-only child name, the index as first written (`00`), for messages.
        var writtenIndex: [String: String] = [:]

        init(line: Int, value: String? = nil) {
            self.line = line
            self.value = value
        }

        /// Adds `value` under `segments`, walking down iteratively so a long key cannot exhaust the
        /// stack. A digit-only segment is a list index compared by number, so `0` and `00` are the
        /// same item.
        func insert(_ segments: [String], value: String, line: Int, path: String, fullKey: String)
            throws(ConfigSyntaxError)
        {
            var current = self
            for (position, segment) in segments.enumerated() {
                guard current.value == nil else {
                    throw ConfigSyntaxError(
                        location: .file(path: path, line: line),
                        reason:
                            "key \"\(ValueParsing.excerpt(fullKey))\" conflicts with a shorter key that already has a value"
                    )
                }
                let name = Self.canonical(segment)
                let isLast = position == segments.count - 1
                if let existing = current.children[name] {
                    if isLast {
                        guard existing.children.isEmpty else {
                            throw ConfigSyntaxError(
                                location: .file(path: path, line: line),
                                reason:
                                    "key \"\(ValueParsing.excerpt(fullKey))\" conflicts with longer keys under \"\(ValueParsing.excerpt(fullKey)).\""
                            )
                        }
                        current.children[name] = Tree(line: line, value: value)
                    }
                    current = existing
                } else {
                    let child = isLast ? Tree(line: line, value: value) : Tree(line: line)
                    current.children[name] = child
                    current.order.append(name)
                    if name != segment { current.writtenIndex[name] = segment }
                    current = child
                }
            }
        }

        /// A digit-only segment without its leading zeros; other segments unchanged.
        static func canonical(_ segment: String) -> String {
            guard !segment.isEmpty, segment.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return segment }
            let trimmed = segment.drop { $0 == "0" }
            return trimmed.isEmpty ? "0" : String(trimmed)
        }

        /// Converts the tree into nodes. A branch whose names are all digits becomes a list; its
        /// indexes must run 0, 1, 2 without a gap. Recursive, which is safe because `parse` caps keys
        /// at `maximumDepth` segments.
        func node(path: String) throws(ConfigSyntaxError) -> ConfigNode {
            let names = ordered(self)
            var nodes: [ConfigNode] = []
            nodes.reserveCapacity(names.count)
            for name in names {
                guard let child = children[name] else { continue }
                if let value = child.value {
                    nodes.append(ConfigNode(.scalar(value), location: .file(path: path, line: child.line)))
                } else {
                    nodes.append(try child.node(path: path))
                }
            }
            return try Self.build(self, names: names, nodes: nodes, path: path)
        }

        private func ordered(_ tree: Tree) -> [String] {
            guard Self.isList(tree) else { return tree.order }
            return tree.order.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
        }

        private static func isList(_ tree: Tree) -> Bool {
            !tree.order.isEmpty && tree.order.allSatisfy { $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        }

        private static func build(_ tree: Tree, names: [String], nodes: [ConfigNode], path: String)
            throws(ConfigSyntaxError) -> ConfigNode
        {
            let location = SourceLocation.file(path: path, line: tree.line)
            if isList(tree) {
                for (expected, name) in names.enumerated() where name != String(expected) {
                    let child = tree.children[name]
                    let written = tree.writtenIndex[name] ?? name
                    throw ConfigSyntaxError(
                        location: .file(path: path, line: child?.line ?? tree.line),
                        reason:
                            "list index \(written) skips index \(expected); number the items 0, 1, 2 without gaps")
                }
                return ConfigNode(.sequence(nodes), location: location)
            }
            var entries: [ConfigEntry] = []
            entries.reserveCapacity(nodes.count)
            for (name, node) in zip(names, nodes) {
                entries.append(ConfigEntry(key: name, keyLocation: node.location, value: node))
            }
            return ConfigNode(.mapping(entries), location: location)
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
