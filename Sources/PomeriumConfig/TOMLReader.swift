/// Parses TOML 1.0 into a `ConfigNode` tree with 1-based line numbers. Integers become decimal
/// text, floats their written text without underscores, date-times their written text.
enum TOMLReader {
    /// A parsed TOML value with its type, before it becomes a `ConfigNode`; tests compare it with
    /// Python's `tomllib`.
    indirect enum Value: Equatable {
        case string(String)
        case integer(Int64)
        case float(Double, text: String)
        case boolean(Bool)
        /// An offset date-time, local date-time, local date or local time, as written.
        case dateTime(String)
        case array([Value])
        case table([(key: String, value: Value)])

        static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.string(let a), .string(let b)): a == b
            case (.integer(let a), .integer(let b)): a == b
            case (.float(let a, _), .float(let b, _)): a == b || (a.isNaN && b.isNaN)
            case (.boolean(let a), .boolean(let b)): a == b
            case (.dateTime(let a), .dateTime(let b)): a == b
            case (.array(let a), .array(let b)): a == b
            case (.table(let a), .table(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: false
            }
        }
    }

    static func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        let root = try parseTable(bytes, path: path)
        return root.node(path: path)
    }

    static func parseValue(_ bytes: [UInt8]) throws(ConfigSyntaxError) -> Value {
        try parseTable(bytes, path: "<toml>").typedValue
    }

    private static func parseTable(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> Table {
        var parser = Parser(bytes: bytes, path: path)
        return try parser.parseDocument()
    }

    // MARK: Tables under construction

    final class Table {
        enum Kind { case implicit, header, dotted, inline, arrayElement }
        var kind: Kind
        let line: Int
        var keys: [String] = []
        var items: [String: Item] = [:]

        init(kind: Kind, line: Int) {
            self.kind = kind
            self.line = line
        }

        enum Item {
            case value(Leaf)
            case table(Table)
            case arrayOfTables([Table], line: Int)
        }

        func set(_ key: String, _ item: Item) {
            if items[key] == nil { keys.append(key) }
            items[key] = item
        }

        var typedValue: Value {
            .table(
                keys.compactMap { key in
                    guard let item = items[key] else { return nil }
                    switch item {
                    case .value(let leaf): return (key, leaf.typed)
                    case .table(let table): return (key, table.typedValue)
                    case .arrayOfTables(let tables, _): return (key, .array(tables.map(\.typedValue)))
                    }
                }
            )
        }

        func node(path: String) -> ConfigNode {
            var entries: [ConfigEntry] = []
            for key in keys {
                guard let item = items[key] else { continue }
                let child: ConfigNode
                switch item {
                case .value(let leaf): child = leaf.node(path: path)
                case .table(let table): child = table.node(path: path)
                case .arrayOfTables(let tables, let line):
                    child = ConfigNode(
                        .sequence(tables.map { $0.node(path: path) }), location: .file(path: path, line: line))
                }
                entries.append(ConfigEntry(key: key, keyLocation: child.location, value: child))
            }
            return ConfigNode(.mapping(entries), location: .file(path: path, line: line))
        }
    }

    /// A value written inline (scalar, array or inline table), with the line where it starts.
    struct Leaf {
        var typed: Value
        var line: Int
        var children: [Leaf] = []
        var tableKeys: [String] = []

        func node(path: String) -> ConfigNode {
            let location = SourceLocation.file(path: path, line: line)
            switch typed {
            case .string(let text): return ConfigNode(.scalar(text), location: location)
            case .integer(let value): return ConfigNode(.scalar(String(value)), location: location)
            case .float(_, let text): return ConfigNode(.scalar(text), location: location)
            case .boolean(let value): return ConfigNode(.scalar(value ? "true" : "false"), location: location)
            case .dateTime(let text): return ConfigNode(.scalar(text), location: location)
            case .array: return ConfigNode(.sequence(children.map { $0.node(path: path) }), location: location)
            case .table:
                let entries = zip(tableKeys, children).map { key, child in
                    let node = child.node(path: path)
                    return ConfigEntry(key: key, keyLocation: node.location, value: node)
                }
                return ConfigNode(.mapping(entries), location: location)
            }
        }
    }

    // MARK: Parser

    private struct Parser {
        let bytes: [UInt8]
        let path: String
        var index = 0
        var line = 1
        /// The key whose value is being read, for messages that must not quote the value itself.
        var valueKey = ""

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }

        func error(_ reason: String) -> ConfigSyntaxError {
            ConfigSyntaxError(location: .file(path: path, line: line), reason: reason)
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

        mutating func parseDocument() throws(ConfigSyntaxError) -> Table {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
            let root = Table(kind: .header, line: 1)
            var table = root
            while true {
                skipBlank()
                guard let byte = current else { break }
                if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    try newline()
                    continue
                }
                if byte == UInt8(ascii: "#") {
                    try comment()
                    continue
                }
                if byte == UInt8(ascii: "[") {
                    table = try header(root: root)
                } else {
                    try keyValue(into: table)
                }
                skipBlank()
                if current == UInt8(ascii: "#") { try comment() }
                guard current == nil || current == UInt8(ascii: "\n") || current == UInt8(ascii: "\r") else {
                    throw error("expected the end of the line")
                }
            }
            return root
        }

        private mutating func header(root: Table) throws(ConfigSyntaxError) -> Table {
            let isArray = peek(1) == UInt8(ascii: "[")
            index += isArray ? 2 : 1
            skipBlank()
            let keys = try dottedKey()
            skipBlank()
            guard current == UInt8(ascii: "]"), !isArray || peek(1) == UInt8(ascii: "]") else {
                throw error(
                    isArray ? "expected ]] to close the array-of-tables header" : "expected ] to close the table header"
                )
            }
            index += isArray ? 2 : 1

            var table = root
            for key in keys.dropLast() {
                table = try descend(table, key, forHeader: true)
            }
            guard let last = keys.last else { throw error("empty table name") }

            if isArray {
                let element = Table(kind: .arrayElement, line: line)
                switch table.items[last] {
                case nil:
                    table.set(last, .arrayOfTables([element], line: line))
                case .arrayOfTables(let tables, let arrayLine):
                    table.set(last, .arrayOfTables(tables + [element], line: arrayLine))
                default:
                    throw error("\"\(last)\" is already defined and is not an array of tables")
                }
                return element
            }
            switch table.items[last] {
            case nil:
                let created = Table(kind: .header, line: line)
                table.set(last, .table(created))
                return created
            case .table(let existing) where existing.kind == .implicit:
                existing.kind = .header
                return existing
            default:
                throw error("table [\(keys.joined(separator: "."))] is defined twice")
            }
        }

        /// Walks into the sub-table `key` of `table`, creating an implicit one when missing.
        private mutating func descend(_ table: Table, _ key: String, forHeader: Bool) throws(ConfigSyntaxError) -> Table
        {
            switch table.items[key] {
            case nil:
                let created = Table(kind: forHeader ? .implicit : .dotted, line: line)
                table.set(key, .table(created))
                return created
            case .table(let existing):
                if existing.kind == .inline { throw error("inline table \"\(key)\" cannot be extended") }
                if !forHeader, existing.kind == .header || existing.kind == .implicit {
                    throw error("table \"\(key)\" cannot be extended with dotted keys after its header")
                }
                return existing
            case .arrayOfTables(let tables, _):
                guard forHeader, let last = tables.last else {
                    throw error("\"\(key)\" is an array of tables and cannot take dotted keys")
                }
                return last
            case .value:
                throw error("\"\(key)\" is already a value, not a table")
            }
        }

        private mutating func keyValue(into table: Table) throws(ConfigSyntaxError) {
            let keys = try dottedKey()
            skipBlank()
            guard current == UInt8(ascii: "=") else { throw error("expected = after the key") }
            index += 1
            skipBlank()
            var target = table
            for key in keys.dropLast() {
                target = try descend(target, key, forHeader: false)
            }
            guard let last = keys.last else { throw error("empty key") }
            guard target.items[last] == nil else {
                throw error("key \"\(keys.joined(separator: "."))\" is defined twice")
            }
            valueKey = keys.joined(separator: ".")
            let leaf = try value(depth: 0)
            target.set(last, .value(leaf))
        }

        private mutating func dottedKey() throws(ConfigSyntaxError) -> [String] {
            var keys = [try simpleKey()]
            while true {
                skipBlank()
                guard current == UInt8(ascii: ".") else { return keys }
                index += 1
                skipBlank()
                keys.append(try simpleKey())
            }
        }

        private mutating func simpleKey() throws(ConfigSyntaxError) -> String {
            if current == UInt8(ascii: "\"") {
                if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                    throw error("a key cannot be multi-line")
                }
                return try basicString()
            }
            if current == UInt8(ascii: "'") {
                if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                    throw error("a key cannot be multi-line")
                }
                return try literalString()
            }
            let start = index
            while let byte = current, Self.isBareKeyByte(byte) { index += 1 }
            guard index > start else { throw error("expected a key") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        static func isBareKeyByte(_ byte: UInt8) -> Bool {
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }

        // MARK: Values

        private mutating func value(depth: Int) throws(ConfigSyntaxError) -> Leaf {
            guard depth < YAMLReader.maximumDepth else { throw error("nesting deeper than \(YAMLReader.maximumDepth)") }
            let startLine = line
            guard let byte = current else { throw error("expected a value") }
            switch byte {
            case UInt8(ascii: "\""):
                if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                    return Leaf(typed: .string(try multilineBasicString()), line: startLine)
                }
                return Leaf(typed: .string(try basicString()), line: startLine)
            case UInt8(ascii: "'"):
                if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                    return Leaf(typed: .string(try multilineLiteralString()), line: startLine)
                }
                return Leaf(typed: .string(try literalString()), line: startLine)
            case UInt8(ascii: "["):
                return try array(depth: depth, line: startLine)
            case UInt8(ascii: "{"):
                return try inlineTable(depth: depth, line: startLine)
            default:
                return Leaf(typed: try bareValue(), line: startLine)
            }
        }

        private mutating func array(depth: Int, line startLine: Int) throws(ConfigSyntaxError) -> Leaf {
            index += 1
            var children: [Leaf] = []
            while true {
                try skipWhitespaceCommentsAndNewlines()
                if current == UInt8(ascii: "]") {
                    index += 1
                    break
                }
                children.append(try value(depth: depth + 1))
                try skipWhitespaceCommentsAndNewlines()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard current == UInt8(ascii: "]") else { throw error("expected , or ] in an array") }
                index += 1
                break
            }
            return Leaf(typed: .array(children.map(\.typed)), line: startLine, children: children)
        }

        private mutating func inlineTable(depth: Int, line startLine: Int) throws(ConfigSyntaxError) -> Leaf {
            index += 1
            let table = Table(kind: .inline, line: startLine)
            skipBlank()
            if current == UInt8(ascii: "}") {
                index += 1
                return Leaf(typed: .table([]), line: startLine)
            }
            while true {
                skipBlank()
                let keys = try dottedKey()
                skipBlank()
                guard current == UInt8(ascii: "=") else { throw error("expected = after the key") }
                index += 1
                skipBlank()
                var target = table
                for key in keys.dropLast() {
                    switch target.items[key] {
                    case nil:
                        let created = Table(kind: .dotted, line: line)
                        target.set(key, .table(created))
                        target = created
                    case .table(let existing) where existing.kind == .dotted:
                        target = existing
                    default:
                        throw error("key \"\(key)\" is defined twice in an inline table")
                    }
                }
                guard let last = keys.last, target.items[last] == nil else {
                    throw error("key \"\(keys.joined(separator: "."))\" is defined twice in an inline table")
                }
                valueKey = keys.joined(separator: ".")
                target.set(last, .value(try value(depth: depth + 1)))
                skipBlank()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard current == UInt8(ascii: "}") else { throw error("expected , or } in an inline table") }
                index += 1
                break
            }
            return Self.leaf(of: table)
        }

        private static func leaf(of table: Table) -> Leaf {
            var leaf = Leaf(typed: .table([]), line: table.line)
            var typed: [(key: String, value: Value)] = []
            for key in table.keys {
                guard let item = table.items[key] else { continue }
                let child: Leaf
                switch item {
                case .value(let value): child = value
                case .table(let nested): child = Self.leaf(of: nested)
                case .arrayOfTables: continue
                }
                leaf.tableKeys.append(key)
                leaf.children.append(child)
                typed.append((key, child.typed))
            }
            leaf.typed = .table(typed)
            return leaf
        }

        private mutating func bareValue() throws(ConfigSyntaxError) -> Value {
            let start = index
            while let byte = current {
                let isValueByte =
                    Self.isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: ":")
                    || (byte == UInt8(ascii: " ") && Self.isDateSpace(bytes, index, start: start))
                guard isValueByte else { break }
                index += 1
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard !text.isEmpty else { throw error("expected a value") }
            switch text {
            case "true": return .boolean(true)
            case "false": return .boolean(false)
            case "inf", "+inf": return .float(.infinity, text: text)
            case "-inf": return .float(-.infinity, text: text)
            case "nan", "+nan", "-nan": return .float(.nan, text: text)
            default: break
            }
            if TOMLScalars.isDateTime(text) { return .dateTime(text) }
            if let integer = TOMLScalars.integer(text) { return .integer(integer) }
            if let float = TOMLScalars.float(text) { return .float(float, text: text.replacingUnderscores()) }
            // The text is not echoed: an unquoted secret (cookie_secret = Q09P...) lands here.
            throw error(
                "the value of \"\(ValueParsing.excerpt(valueKey))\" is not a TOML value; put text in quotes: \(ValueParsing.excerpt(valueKey)) = \"...\""
            )
        }

        /// Returns whether the space at `position` separates a date from a time (`1979-05-27 07:32:00`).
        private static func isDateSpace(_ bytes: [UInt8], _ position: Int, start: Int) -> Bool {
            guard position - start == 10, position + 1 < bytes.count else { return false }
            let next = bytes[position + 1]
            return next >= 0x30 && next <= 0x39 && bytes[start + 4] == UInt8(ascii: "-")
        }

        // MARK: Strings

        private mutating func basicString() throws(ConfigSyntaxError) -> String {
            index += 1
            var output: [UInt8] = []
            while true {
                guard let byte = current, byte != UInt8(ascii: "\n") else { throw error("unterminated string") }
                index += 1
                if byte == UInt8(ascii: "\"") { return try decoded(output) }
                if byte == UInt8(ascii: "\\") {
                    try escape(into: &output)
                } else {
                    try checkControl(byte)
                    output.append(byte)
                }
            }
        }

        private mutating func multilineBasicString() throws(ConfigSyntaxError) -> String {
            index += 3
            try skipFirstNewline()
            var output: [UInt8] = []
            while true {
                guard let byte = current else { throw error("unterminated multi-line string") }
                if byte == UInt8(ascii: "\""), peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                    index += 3
                    var extra = 0
                    while current == UInt8(ascii: "\""), extra < 2 {
                        output.append(byte)
                        index += 1
                        extra += 1
                    }
                    return try decoded(output)
                }
                index += 1
                if byte == UInt8(ascii: "\\") {
                    if try lineEndingBackslash() { continue }
                    try escape(into: &output)
                } else if byte == UInt8(ascii: "\n") {
                    line += 1
                    output.append(byte)
                } else if byte == UInt8(ascii: "\r") {
                    guard current == UInt8(ascii: "\n") else { throw error("bare carriage return in a string") }
                } else {
                    try checkControl(byte)
                    output.append(byte)
                }
            }
        }

        /// After a backslash in a multi-line string: if only whitespace follows to the end of the
        /// line, skips it and all whitespace and newlines after it and returns true.
        private mutating func lineEndingBackslash() throws(ConfigSyntaxError) -> Bool {
            var probe = index
            while probe < bytes.count, bytes[probe] == UInt8(ascii: " ") || bytes[probe] == UInt8(ascii: "\t") {
                probe += 1
            }
            guard probe < bytes.count, bytes[probe] == UInt8(ascii: "\n") || bytes[probe] == UInt8(ascii: "\r") else {
                return false
            }
            index = probe
            while let byte = current {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                } else if byte == UInt8(ascii: "\r") {
                    guard peek(1) == UInt8(ascii: "\n") else { throw error("bare carriage return in a string") }
                } else if byte != UInt8(ascii: " "), byte != UInt8(ascii: "\t") {
                    break
                }
                index += 1
            }
            return true
        }

        private mutating func literalString() throws(ConfigSyntaxError) -> String {
            index += 1
            let start = index
            while true {
                guard let byte = current, byte != UInt8(ascii: "\n") else { throw error("unterminated string") }
                if byte == UInt8(ascii: "'") { break }
                if byte != UInt8(ascii: "\t") { try checkControl(byte) }
                index += 1
            }
            let text = Array(bytes[start..<index])
            index += 1
            return try decoded(text)
        }

        private mutating func multilineLiteralString() throws(ConfigSyntaxError) -> String {
            index += 3
            try skipFirstNewline()
            var output: [UInt8] = []
            while true {
                guard let byte = current else { throw error("unterminated multi-line string") }
                if byte == UInt8(ascii: "'"), peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                    index += 3
                    var extra = 0
                    while current == UInt8(ascii: "'"), extra < 2 {
                        output.append(byte)
                        index += 1
                        extra += 1
                    }
                    return try decoded(output)
                }
                index += 1
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    output.append(byte)
                } else if byte == UInt8(ascii: "\r") {
                    guard current == UInt8(ascii: "\n") else { throw error("bare carriage return in a string") }
                } else {
                    if byte != UInt8(ascii: "\t") { try checkControl(byte) }
                    output.append(byte)
                }
            }
        }

        private mutating func skipFirstNewline() throws(ConfigSyntaxError) {
            if current == UInt8(ascii: "\n") {
                index += 1
                line += 1
            } else if current == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") {
                index += 2
                line += 1
            }
        }

        private func checkControl(_ byte: UInt8) throws(ConfigSyntaxError) {
            if (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                throw error("control character inside a string")
            }
        }

        private func decoded(_ output: [UInt8]) throws(ConfigSyntaxError) -> String {
            guard let text = String(validating: output, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
            return text
        }

        private mutating func escape(into output: inout [UInt8]) throws(ConfigSyntaxError) {
            guard let escape = current else { throw error("unterminated string") }
            index += 1
            switch escape {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "\""): output.append(escape)
            case UInt8(ascii: "\\"): output.append(escape)
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let width = escape == UInt8(ascii: "u") ? 4 : 8
                guard index + width <= bytes.count,
                    let value = UInt32(String(decoding: bytes[index..<index + width], as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(value)
                else { throw error("invalid unicode escape") }
                index += width
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw error("invalid escape \\\(Character(Unicode.Scalar(escape)))")
            }
        }

        // MARK: Whitespace and comments

        private mutating func skipBlank() {
            while current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") { index += 1 }
        }

        private mutating func newline() throws(ConfigSyntaxError) {
            if current == UInt8(ascii: "\r") {
                guard peek(1) == UInt8(ascii: "\n") else { throw error("bare carriage return") }
                index += 1
            }
            index += 1
            line += 1
        }

        private mutating func comment() throws(ConfigSyntaxError) {
            while let byte = current, byte != UInt8(ascii: "\n") {
                if byte == UInt8(ascii: "\r") {
                    guard peek(1) == UInt8(ascii: "\n") else { throw error("bare carriage return") }
                    break
                }
                if (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                    throw error("control character in a comment")
                }
                index += 1
            }
        }

        private mutating func skipWhitespaceCommentsAndNewlines() throws(ConfigSyntaxError) {
            while let byte = current {
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    index += 1
                } else if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    try newline()
                } else if byte == UInt8(ascii: "#") {
                    try comment()
                } else {
                    return
                }
            }
        }
    }
}

/// The number and date-time grammars of TOML 1.0.
enum TOMLScalars {
    static func integer(_ text: String) -> Int64? {
        var body = Substring(text)
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = body.dropFirst()
            if body.hasPrefix("0x") || body.hasPrefix("0o") || body.hasPrefix("0b") { return nil }
        }
        var radix = 10
        if body.hasPrefix("0x") {
            radix = 16
        } else if body.hasPrefix("0o") {
            radix = 8
        } else if body.hasPrefix("0b") {
            radix = 2
        }
        if radix != 10 { body = body.dropFirst(2) }
        guard validUnderscores(body), !body.isEmpty else { return nil }
        let digits = body.replacingUnderscores()
        if radix == 10, digits.count > 1, digits.first == "0" { return nil }
        guard digits.allSatisfy({ $0.isHexDigit }), let magnitude = UInt64(digits, radix: radix) else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    static func float(_ text: String) -> Double? {
        var body = Substring(text)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        let exponentSplit = body.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false)
            .flatMap { $0.split(separator: "E", maxSplits: 1, omittingEmptySubsequences: false) }
        guard exponentSplit.count <= 2, let mantissa = exponentSplit.first else { return nil }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.count == 2 || exponentSplit.count == 2 else { return nil }
        let whole = parts[0]
        guard isDecimalDigits(whole), !(whole.replacingUnderscores().count > 1 && whole.first == "0") else {
            return nil
        }
        if parts.count == 2, !isDecimalDigits(parts[1]) { return nil }
        if exponentSplit.count == 2 {
            var exponent = exponentSplit[1]
            if exponent.first == "+" || exponent.first == "-" { exponent = exponent.dropFirst() }
            guard isDecimalDigits(exponent) else { return nil }
        }
        return Double(text.replacingUnderscores())
    }

    private static func isDecimalDigits(_ text: Substring) -> Bool {
        !text.isEmpty && validUnderscores(text) && text.allSatisfy { $0 == "_" || ("0"..."9").contains($0) }
    }

    private static func validUnderscores(_ text: Substring) -> Bool {
        guard text.first != "_", text.last != "_" else { return false }
        return !text.contains("__")
    }

    /// Returns whether `text` is a TOML offset date-time, local date-time, local date or local time.
    static func isDateTime(_ text: String) -> Bool {
        let characters = Array(text.utf8)
        var position = 0
        func digits(_ count: Int) -> Bool {
            guard position + count <= characters.count else { return false }
            for offset in 0..<count where !(48...57).contains(characters[position + offset]) { return false }
            position += count
            return true
        }
        func literal(_ byte: UInt8) -> Bool {
            guard position < characters.count, characters[position] == byte else { return false }
            position += 1
            return true
        }
        func time() -> Bool {
            guard digits(2), literal(UInt8(ascii: ":")), digits(2), literal(UInt8(ascii: ":")), digits(2) else {
                return false
            }
            if literal(UInt8(ascii: ".")) {
                let start = position
                while position < characters.count, (48...57).contains(characters[position]) { position += 1 }
                if position == start { return false }
            }
            return true
        }
        if characters.count >= 10, characters[4] == UInt8(ascii: "-") {
            guard digits(4), literal(UInt8(ascii: "-")), digits(2), literal(UInt8(ascii: "-")), digits(2) else {
                return false
            }
            if position == characters.count { return true }
            let separator = characters[position]
            guard [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(separator) else { return false }
            position += 1
            guard time() else { return false }
            if position == characters.count { return true }
            if literal(UInt8(ascii: "Z")) || literal(UInt8(ascii: "z")) { return position == characters.count }
            guard literal(UInt8(ascii: "+")) || literal(UInt8(ascii: "-")) else { return false }
            return digits(2) && literal(UInt8(ascii: ":")) && digits(2) && position == characters.count
        }
        return time() && position == characters.count
    }
}

extension StringProtocol {
    func replacingUnderscores() -> String { String(self.filter { $0 != "_" }) }
}
