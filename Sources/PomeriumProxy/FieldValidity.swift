import PomeriumCore
import PomeriumHTTP

/// Checks that let the proxy add a header field or a request target as already validated, so the
/// encoder does not check it again on every request. Configuration values are checked once per
/// configuration. Values built per request from bytes of unknown origin are checked here, with the
/// rules of `PomeriumHTTP`'s encoder and request parser.
enum FieldValidity {
    /// Returns whether `text` is a non-empty token (RFC 9110 section 5.6.2), as a field name must be.
    static func isToken(_ text: String) -> Bool { HTTPFieldName.isValidName(text) }

    /// Returns whether `text` may be a field value: no control character but HTAB, no DEL.
    static func isValue(_ text: String) -> Bool { HTTPFieldName.isValidValue(text) }

    /// Returns whether a field named `name` with `value` may be added as validated.
    static func isField(name: String, value: String) -> Bool {
        isToken(name) && isValue(value)
    }

    /// Returns whether `path` is an origin-form path the request parser accepts.
    static func isOriginPath(_ path: String) -> Bool {
        path.withUTF8Bytes { HTTPRequestTarget.isValidOriginPath($0) }
    }

    /// Returns whether `query` (without its `?`) contains only what the request parser accepts in a
    /// query.
    static func isQuery(_ query: String) -> Bool {
        query.withUTF8Bytes { HTTPRequestTarget.isValidQuery($0) }
    }
}
