/// Where a setting came from: a file (with the line when the parser knows it), an environment
/// variable, or the built-in default.
public enum SourceLocation: Sendable, Hashable, CustomStringConvertible {
    case file(path: String, line: Int?)
    /// An environment variable; `line` is set inside a document decoded from one, such as `POLICY`.
    case environment(name: String, line: Int? = nil)
    case defaultValue

    public var description: String {
        switch self {
        case .file(let path, let line?): "\(path):\(line)"
        case .file(let path, nil): path
        case .environment(let name, nil): "environment variable \(name)"
        case .environment(let name, let line?): "environment variable \(name), line \(line)"
        case .defaultValue: "default"
        }
    }
}

/// One value of a parsed configuration document, with its location. All four file formats and the
/// environment produce this tree, so the option decoder is written once.
public struct ConfigNode: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        /// A scalar as text: numbers and booleans keep their written form (`30`, `true`).
        case scalar(String)
        case sequence([ConfigNode])
        case mapping([ConfigEntry])
        /// An explicit null (`~`, `null`, or a YAML key without a value).
        case null
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// The scalar's text, or nil for other kinds.
    public var scalar: String? {
        if case .scalar(let text) = value { return text }
        return nil
    }

    /// The mapping's entries, or nil for other kinds.
    public var entries: [ConfigEntry]? {
        if case .mapping(let entries) = value { return entries }
        return nil
    }

    /// A name for the node's kind, for error messages.
    var kindName: String {
        switch value {
        case .scalar: "a single value"
        case .sequence: "a list"
        case .mapping: "a map"
        case .null: "null"
        }
    }
}

/// A key and its value inside a mapping, in document order.
public struct ConfigEntry: Sendable, Equatable {
    public var key: String
    public var keyLocation: SourceLocation
    public var value: ConfigNode

    public init(key: String, keyLocation: SourceLocation, value: ConfigNode) {
        self.key = key
        self.keyLocation = keyLocation
        self.value = value
    }
}

/// A file that could not be parsed: the file, the line when known, and what is wrong.
public struct ConfigSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let location: SourceLocation
    public let reason: String

    public init(location: SourceLocation, reason: String) {
        self.location = location
        self.reason = reason
    }

    public var description: String { "\(location): \(reason)" }
}
