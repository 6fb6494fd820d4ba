/// An error with a stable code, a human-readable reason and the place that raised it. Equality and
/// hashing use the code only, so tests compare codes and messages can improve freely.
public struct PomeriumError: Error, Hashable, CustomStringConvertible, Sendable {
    /// A stable, kebab-case error code, for example `config-invalid`.
    public struct Code: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        public let rawValue: String

        public init(_ rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }

        public var description: String { rawValue }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// The reason alone, for messages shown to operators.
    public var description: String { reason }

    /// The code, reason and source location, for debugging.
    public var debugDescription: String { "\(code): \(reason) (\(file):\(line))" }

    public static func == (lhs: PomeriumError, rhs: PomeriumError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
