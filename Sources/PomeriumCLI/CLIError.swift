/// A failure the command reports to the user: one line that names the value involved and what to
/// do next. Messages never contain a token.
public struct CLIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The command line is invalid; the process exits with status 2.
        case usage
        /// A URL, file or setting given to the command is invalid.
        case invalidInput
        /// The server could not be reached, or TLS failed.
        case connection
        /// The server rejected the request or answered something unexpected.
        case rejected
        /// The login did not finish: timed out, or the callback was malformed.
        case login
        /// The token cache could not be read or written.
        case cache
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
