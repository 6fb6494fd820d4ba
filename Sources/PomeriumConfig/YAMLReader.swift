import CYAML

/// Parses YAML through libyaml's event API into a `ConfigNode` tree whose nodes carry 1-based line
/// numbers. Supports anchors, aliases and `<<` merge keys; reads the first document only.
enum YAMLReader {
    /// The deepest nesting accepted, so a hostile file cannot exhaust the stack.
    static let maximumDepth = 64
    /// The most nodes a document may expand to, counting alias copies, so alias bombs stay small.
    static let maximumNodeCount = 200_000

    static func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        var builder = Builder(path: path)
        return try builder.parse(bytes)
    }

    private struct Builder {
        let path: String
        var parser = yaml_parser_t()
        var anchors: [String: (node: ConfigNode, size: Int)] = [:]
        var nodeCount = 0
        /// The input, kept to turn the byte offset of a reader error into a line.
        var input: [UInt8] = []

        init(path: String) { self.path = path }

        mutating func parse(_ bytes: [UInt8]) throws(ConfigSyntaxError) -> ConfigNode {
            guard yaml_parser_initialize(&parser) == 1 else {
                throw ConfigSyntaxError(location: .file(path: path, line: nil), reason: "libyaml failed to start")
            }
            defer { yaml_parser_delete(&parser) }
            input = bytes
            var copy = bytes
            return try copy.withUnsafeMutableBufferPointer { buffer throws(ConfigSyntaxError) -> ConfigNode in
                yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
                return try parseStream()
            }
        }

        private mutating func parseStream() throws(ConfigSyntaxError) -> ConfigNode {
            var event = try next()
            defer { yaml_event_delete(&event) }
            guard event.type == YAML_STREAM_START_EVENT else {
                throw syntax("expected the start of a YAML stream", event)
            }
            var documentStart = try next()
            defer { yaml_event_delete(&documentStart) }
            if documentStart.type == YAML_STREAM_END_EVENT {
                return ConfigNode(.null, location: .file(path: path, line: 1))
            }
            guard documentStart.type == YAML_DOCUMENT_START_EVENT else {
                throw syntax("expected the start of a YAML document", documentStart)
            }
            var first = try next()
            defer { yaml_event_delete(&first) }
            return try node(from: &first, depth: 0)
        }

        /// Builds the node that starts with `event`, reading the events of its children.
        private mutating func node(from event: inout yaml_event_t, depth: Int) throws(ConfigSyntaxError) -> ConfigNode {
            guard depth < YAMLReader.maximumDepth else {
                throw syntax("nesting deeper than \(YAMLReader.maximumDepth) levels", event)
            }
            nodeCount += 1
            guard nodeCount <= YAMLReader.maximumNodeCount else {
                throw syntax("the document expands to more than \(YAMLReader.maximumNodeCount) values", event)
            }
            let location = SourceLocation.file(path: path, line: Int(event.start_mark.line) + 1)
            let startCount = nodeCount
            let result: ConfigNode
            let anchor: String?
            switch event.type {
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = Self.string(scalar.value, length: scalar.length)
                anchor = Self.optionalString(scalar.anchor)
                let isPlain = scalar.style == YAML_PLAIN_SCALAR_STYLE || scalar.style == YAML_ANY_SCALAR_STYLE
                let tag = Self.optionalString(scalar.tag)
                if tag == "tag:yaml.org,2002:null"
                    || (isPlain && tag == nil && ["", "~", "null", "Null", "NULL"].contains(text))
                {
                    result = ConfigNode(.null, location: location)
                } else {
                    result = ConfigNode(.scalar(text), location: location)
                }
            case YAML_ALIAS_EVENT:
                let name = Self.optionalString(event.data.alias.anchor) ?? ""
                guard let target = anchors[name] else { throw syntax("unknown alias *\(name)", event) }
                nodeCount += target.size
                guard nodeCount <= YAMLReader.maximumNodeCount else {
                    throw syntax("the document expands to more than \(YAMLReader.maximumNodeCount) values", event)
                }
                return target.node
            case YAML_SEQUENCE_START_EVENT:
                anchor = Self.optionalString(event.data.sequence_start.anchor)
                var items: [ConfigNode] = []
                while true {
                    var child = try next()
                    defer { yaml_event_delete(&child) }
                    if child.type == YAML_SEQUENCE_END_EVENT { break }
                    items.append(try node(from: &child, depth: depth + 1))
                }
                result = ConfigNode(.sequence(items), location: location)
            case YAML_MAPPING_START_EVENT:
                anchor = Self.optionalString(event.data.mapping_start.anchor)
                var entries: [ConfigEntry] = []
                var seen: Set<String> = []
                var merged: [ConfigEntry] = []
                while true {
                    var keyEvent = try next()
                    defer { yaml_event_delete(&keyEvent) }
                    if keyEvent.type == YAML_MAPPING_END_EVENT { break }
                    let keyNode = try node(from: &keyEvent, depth: depth + 1)
                    var valueEvent = try next()
                    defer { yaml_event_delete(&valueEvent) }
                    let valueNode = try node(from: &valueEvent, depth: depth + 1)
                    guard let key = keyNode.scalar else {
                        if case .null = keyNode.value {
                            throw syntax("a map key is empty", keyEvent)
                        }
                        throw syntax("a map key must be a single value, not \(keyNode.kindName)", keyEvent)
                    }
                    if key == "<<" {
                        merged.append(contentsOf: try mergeEntries(valueNode, event: valueEvent))
                        continue
                    }
                    guard seen.insert(key).inserted else {
                        throw syntax("duplicate key \"\(ValueParsing.excerpt(key))\"", keyEvent)
                    }
                    entries.append(ConfigEntry(key: key, keyLocation: keyNode.location, value: valueNode))
                }
                for entry in merged where seen.insert(entry.key).inserted {
                    entries.append(entry)
                }
                result = ConfigNode(.mapping(entries), location: location)
            default:
                throw syntax("unexpected YAML event", event)
            }
            if let anchor {
                anchors[anchor] = (result, nodeCount - startCount)
            }
            return result
        }

        private func mergeEntries(_ node: ConfigNode, event: yaml_event_t) throws(ConfigSyntaxError) -> [ConfigEntry] {
            switch node.value {
            case .mapping(let entries):
                return entries
            case .sequence(let items):
                var result: [ConfigEntry] = []
                var seen: Set<String> = []
                for item in items {
                    guard let entries = item.entries else { throw syntax("a << merge list must hold maps only", event) }
                    result.append(contentsOf: entries.filter { seen.insert($0.key).inserted })
                }
                return result
            default:
                throw syntax("a << merge key needs a map or a list of maps", event)
            }
        }

        private mutating func next() throws(ConfigSyntaxError) -> yaml_event_t {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
                let context = parser.context.map { " " + String(cString: $0) } ?? ""
                var line = Int(parser.problem_mark.line) + 1
                if parser.error == YAML_READER_ERROR {
                    // Reader errors (a NUL byte, invalid UTF-8) carry a byte offset and no line mark.
                    let offset = min(Int(parser.problem_offset), input.count)
                    line = input[..<offset].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
                }
                throw ConfigSyntaxError(location: .file(path: path, line: line), reason: "\(problem)\(context)")
            }
            return event
        }

        private func syntax(_ reason: String, _ event: yaml_event_t) -> ConfigSyntaxError {
            ConfigSyntaxError(location: .file(path: path, line: Int(event.start_mark.line) + 1), reason: reason)
        }

        private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
            guard let pointer else { return "" }
            return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
        }

        private static func optionalString(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let pointer else { return nil }
            return String(cString: pointer)
        }
    }
}
