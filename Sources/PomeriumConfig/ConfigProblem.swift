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

    /// One line: `error: config.yaml:12: cookie_secret: ...`.
    public var description: String {
        "\(severity.rawValue): \(location): \(key): \(message)"
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
