/// One finding of configuration loading or validation. Errors make the configuration invalid;
/// warnings are reported and allowed.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Comparable {
        case warning
        case error

        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs == .warning && rhs == .error }
    }

    public let severity: Severity
    /// The setting concerned, for example `cookie_secret` or `policy[2].from`.
    public let key: String
    public let location: SourceLocation
    /// What is wrong and how to fix it. Never contains a secret value.
    public let message: String

    public init(_ severity: Severity, key: String, location: SourceLocation, _ message: String) {
        self.severity = severity
        self.key = key
        self.location = location
        self.message = message
    }

    /// One line: `error: config.yaml:12: cookie_secret: ...`. The key is left out when the message
    /// already starts with it (`policy_file was removed ...`), and control characters in any part
    /// are escaped, so one problem is always one line.
    public var description: String {
        let keyPart = message.hasPrefix(key + " ") ? "" : "\(key): "
        return Self.escaped("\(severity.rawValue): \(location): \(keyPart)\(message)")
    }

    private static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        var output = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                output.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            } else {
                output.append(scalar)
            }
        }
        return String(output)
    }
}

/// An ordered collection of problems found in one pass.
struct ProblemList {
    private(set) var items: [ConfigProblem] = []

    mutating func error(_ key: String, _ location: SourceLocation, _ message: String) {
        items.append(ConfigProblem(.error, key: key, location: location, message))
    }

    mutating func warning(_ key: String, _ location: SourceLocation, _ message: String) {
        items.append(ConfigProblem(.warning, key: key, location: location, message))
    }

    mutating func append(contentsOf problems: [ConfigProblem]) { items.append(contentsOf: problems) }
}
