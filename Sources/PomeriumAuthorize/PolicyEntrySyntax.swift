/// The shape of the `allowed_users`, `administrators` and `allowed_domains` entries, shared by
/// the evaluator and the configuration loader, so `-validate` and a reload reject what the
/// evaluator would reject, with the key and the file line of the entry.
public enum PolicyEntrySyntax {
    /// The fix an operator reads for an entry that is not an email address.
    public static let addressFix = "write it as local@domain with exactly one \"@\" and no spaces"
    /// The fix an operator reads for an invalid `allowed_domains` entry.
    public static let domainFix = "write the bare domain, such as example.com, without \"@\" or spaces"

    /// Returns whether `text` is an email address as `EmailAddress` parses it.
    public static func isAddress(_ text: String) -> Bool { EmailAddress(text) != nil }

    /// Returns whether `text` is an `allowed_domains` entry: not empty, no `@`, no whitespace or control
    /// character.
    public static func isDomain(_ text: String) -> Bool {
        !text.isEmpty && !text.contains("@") && !text.containsWhitespaceOrControl
    }
}
