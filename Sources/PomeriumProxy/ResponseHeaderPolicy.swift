import PomeriumCrypto
import PomeriumHTTP

/// The `headers` setting and the `Request-Id` prepared once per configuration, so a response
/// gets them with one pass over its fields instead of one lookup per configured header. A class,
/// so a response reads it through one reference instead of copying its four lists.
final class ResponseHeaderPolicy: Sendable {
    /// The configured fields, one per name compared case-insensitively, without `Request-Id`.
    let fields: [(name: String, value: String)]
    /// The bytes `add` appends: every name and value, and a `Request-Id` with its 36-digit id.
    let byteCount: Int
    /// The lowercase bytes of every name in `fields`, and of `Request-Id`.
    private let lowercaseNames: [[UInt8]]
    /// Bit n is set when a name in `lowercaseNames` is n bytes long (bit 63: 63 or more), so most
    /// fields are rejected with one test.
    private let lengthMask: UInt64
    /// `fields` encoded and checked once, so `add` copies them with one append. A field that
    /// fails the check stays unchecked, and the encoder rejects the response that carries it.
    private let block: HTTPHeaders.FieldBlock

    /// Prepares `configured`, in the order the fields are written. Where two entries have the
    /// same name in another letter case, the result is what setting each in turn gives: the
    /// first entry's spelling with the last entry's value. A configured `Request-Id` gives way
    /// to the request's id.
    init(_ configured: [(name: String, value: String)]) {
        var fields: [(name: String, value: String)] = []
        var positions: [String: Int] = [:]
        for field in configured {
            let key = field.name.lowercased()
            guard key != RequestID.headerName.lowercased() else { continue }
            if let position = positions[key] {
                fields[position].value = field.value
            } else {
                positions[key] = fields.count
                fields.append(field)
            }
        }
        self.fields = fields
        byteCount = fields.reduce(RequestID.headerName.utf8.count + 36) {
            $0 + $1.name.utf8.count + $1.value.utf8.count
        }
        lowercaseNames = (fields.map(\.name) + [RequestID.headerName]).map { Array($0.lowercased().utf8) }
        lengthMask = lowercaseNames.reduce(0) { $0 | Self.lengthBit($1.count) }
        block = HTTPHeaders.FieldBlock(fields)
    }

    /// Returns whether `name` is a configured name or `Request-Id`, compared case-insensitively.
    func isPolicyName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard lengthMask & Self.lengthBit(name.count) != 0 else { return false }
        for candidate in lowercaseNames where HTTPFieldName.matches(name, lowercase: candidate) { return true }
        return false
    }

    @inline(__always)
    private static func lengthBit(_ count: Int) -> UInt64 { 1 << UInt64(min(count, 63)) }

    /// Appends the configured fields and `Request-Id: requestID`. The caller has removed any
    /// field of the same names (see `isPolicyName`).
    /// `requestID` comes from `RequestID.make`, hexadecimal digits and dashes, never from a client.
    func add(to headers: inout HTTPHeaders, requestID: String) {
        headers.append(block)
        headers.add(validatedName: RequestID.headerName, value: requestID)
    }

    /// Appends the configured fields and a `Request-Id` whose value is `requestIDText`, the text
    /// of an id from `RequestID.makeBits()` (see `RequestID.withText(of:_:)`).
    func add(to headers: inout HTTPHeaders, requestIDText: UnsafeRawBufferPointer) {
        headers.append(block)
        headers.add(validatedName: RequestID.headerName, valueBytes: requestIDText)
    }

    /// Sets the configured fields and `Request-Id: requestID` on `headers`, replacing fields of the
    /// same names.
    func apply(to headers: inout HTTPHeaders, requestID: String) {
        headers.removeFields(whereName: isPolicyName)
        add(to: &headers, requestID: requestID)
    }
}
