/// Parses JSON (RFC 8259) into a `ConfigNode` tree with 1-based line numbers. Numbers and booleans
/// keep their written text; duplicate keys are an error.
enum JSONReader {
    static func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        var scanner = Scanner(bytes: bytes, path: path)
        scanner.skipByteOrderMark()
        scanner.skipWhitespace()
        let node = try scanner.value(depth: 0)
        scanner.skipWhitespace()
        guard scanner.isAtEnd else { throw scanner.error("unexpected text after the JSON value") }
        return node
    }

    private struct Scanner {
        let bytes: [UInt8]
        let path: String
        var index = 0
        var line = 1

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }

        var isAtEnd: Bool { index >= bytes.count }
        var location: SourceLocation { .file(path: path, line: line) }

        func error(_ reason: String) -> ConfigSyntaxError { ConfigSyntaxError(location: location, reason: reason) }

        mutating func skipByteOrderMark() {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\n"): line += 1
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): break
                default: return
                }
                index += 1
            }
        }

        mutating func value(depth: Int) throws(ConfigSyntaxError) -> ConfigNode {
            guard depth < YAMLReader.maximumDepth else { throw error("nesting deeper than \(YAMLReader.maximumDepth)") }
            guard index < bytes.count else { throw error("unexpected end of the file") }
            let start = location
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var entries: [ConfigEntry] = []
                var seen: Set<String> = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return ConfigNode(.mapping(entries), location: start)
                }
                while true {
                    skipWhitespace()
                    let keyLocation = location
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                        throw error("expected a quoted key")
                    }
                    let key = try string()
                    guard seen.insert(key).inserted else {
                        throw error("duplicate key \"\(ValueParsing.excerpt(key))\"")
                    }
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"))
                    skipWhitespace()
                    let item = try value(depth: depth + 1)
                    entries.append(ConfigEntry(key: key, keyLocation: keyLocation, value: item))
                    skipWhitespace()
                    if try endOrComma(UInt8(ascii: "}")) { break }
                }
                return ConfigNode(.mapping(entries), location: start)
            case UInt8(ascii: "["):
                index += 1
                var items: [ConfigNode] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return ConfigNode(.sequence(items), location: start)
                }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if try endOrComma(UInt8(ascii: "]")) { break }
                }
                return ConfigNode(.sequence(items), location: start)
            case UInt8(ascii: "\""):
                return ConfigNode(.scalar(try string()), location: start)
            default:
                let word = literal()
                switch word {
                case "true", "false": return ConfigNode(.scalar(word), location: start)
                case "null": return ConfigNode(.null, location: start)
                default:
                    guard Self.isNumber(word) else { throw error("invalid JSON value \"\(word.prefix(40))\"") }
                    return ConfigNode(.scalar(word), location: start)
                }
            }
        }

        private mutating func endOrComma(_ close: UInt8) throws(ConfigSyntaxError) -> Bool {
            guard index < bytes.count else { throw error("unexpected end of the file") }
            if bytes[index] == close {
                index += 1
                return true
            }
            try expect(UInt8(ascii: ","))
            return false
        }

        private mutating func expect(_ byte: UInt8) throws(ConfigSyntaxError) {
            guard index < bytes.count, bytes[index] == byte else {
                throw error("expected \"\(Character(Unicode.Scalar(byte)))\"")
            }
            index += 1
        }

        private mutating func literal() -> String {
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                let isPart =
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "E")
                guard isPart else { break }
                index += 1
            }
            if index == start, index < bytes.count { index += 1 }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        static func isNumber(_ text: String) -> Bool {
            var characters = Array(text.utf8)[...]
            if characters.first == UInt8(ascii: "-") { characters = characters.dropFirst() }
            let digits = characters.prefix { $0 >= 48 && $0 <= 57 }
            guard !digits.isEmpty, !(digits.count > 1 && digits.first == 48) else { return false }
            characters = characters.dropFirst(digits.count)
            if characters.first == UInt8(ascii: ".") {
                let fraction = characters.dropFirst().prefix { $0 >= 48 && $0 <= 57 }
                guard !fraction.isEmpty else { return false }
                characters = characters.dropFirst(1 + fraction.count)
            }
            if characters.first == UInt8(ascii: "e") || characters.first == UInt8(ascii: "E") {
                characters = characters.dropFirst()
                if characters.first == UInt8(ascii: "+") || characters.first == UInt8(ascii: "-") {
                    characters = characters.dropFirst()
                }
                let exponent = characters.prefix { $0 >= 48 && $0 <= 57 }
                guard !exponent.isEmpty else { return false }
                characters = characters.dropFirst(exponent.count)
            }
            return characters.isEmpty
        }

        private mutating func string() throws(ConfigSyntaxError) -> String {
            index += 1
            var output: [UInt8] = []
            while true {
                guard index < bytes.count else { throw error("unterminated string") }
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: output, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw error("unterminated string") }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                    case UInt8(ascii: "b"): output.append(0x08)
                    case UInt8(ascii: "f"): output.append(0x0C)
                    case UInt8(ascii: "n"): output.append(0x0A)
                    case UInt8(ascii: "r"): output.append(0x0D)
                    case UInt8(ascii: "t"): output.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hexQuad()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                                bytes[index + 1] == UInt8(ascii: "u")
                            else { throw error("unpaired UTF-16 surrogate in a string") }
                            index += 2
                            let low = try hexQuad()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid UTF-16 surrogate pair") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                        output.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        throw error("invalid escape \\\(Character(Unicode.Scalar(escape)))")
                    }
                default:
                    guard byte >= 0x20 else { throw error("control character inside a string") }
                    output.append(byte)
                }
            }
        }

        private mutating func hexQuad() throws(ConfigSyntaxError) -> UInt32 {
            guard index + 4 <= bytes.count,
                let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
            else { throw error("invalid \\u escape") }
            index += 4
            return value
        }
    }
}
