/// A key that could not be parsed or is not usable for the requested algorithm.
public struct KeyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong and what to do about it.
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}
