extension HTTPHeaders {
    /// A run of fields encoded and checked once, for fields a proxy adds to many messages (the
    /// `headers` setting, the identity headers of a session). `HTTPHeaders.append(_:)` copies the
    /// bytes with one copy and the entries with their offsets moved, instead of encoding each
    /// name and value again.
    ///
    /// Each field is checked when the block is built: a valid one is written by the encoder as it
    /// is, an invalid one is kept and checked again by the encoder, which rejects it, just as
    /// `add(name:value:)` would.
    public struct FieldBlock: Sendable {
        /// The names and values, one after another.
        let bytes: [UInt8]
        /// The fields, as ranges of `bytes`.
        let entries: [Entry]

        /// Creates an empty block.
        public init() {
            bytes = []
            entries = []
        }

        /// Encodes `fields` in order.
        public init(_ fields: [(name: String, value: String)]) {
            var bytes: [UInt8] = []
            var entries: [Entry] = []
            bytes.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
            entries.reserveCapacity(fields.count)
            for field in fields {
                let nameStart = bytes.count
                bytes.append(contentsOf: field.name.utf8)
                let valueStart = bytes.count
                bytes.append(contentsOf: field.value.utf8)
                let isChecked = bytes.withUnsafeBufferPointer { storage in
                    HTTPHeaders.isValidName(UnsafeBufferPointer(rebasing: storage[nameStart..<valueStart]))
                        && HTTPHeaders.isValidValue(UnsafeBufferPointer(rebasing: storage[valueStart...]))
                }
                entries.append(
                    Entry(name: nameStart..<valueStart, value: valueStart..<bytes.count, isChecked: isChecked))
            }
            self.bytes = bytes
            self.entries = entries
        }

        /// The number of fields.
        public var count: Int { entries.count }

        /// The number of name and value bytes, for `HTTPHeaders.reserveCapacity(fields:bytes:)`.
        public var byteCount: Int { bytes.count }

        /// Whether every field passed the check, so that appending the block adds no field the
        /// encoder would reject.
        public var isValid: Bool { entries.allSatisfy(\.isChecked) }

        /// The fields, as strings; for tests and diagnostics.
        public var fields: [Field] {
            entries.map { entry in
                Field(
                    name: String(decoding: bytes[entry.name], as: UTF8.self),
                    value: String(decoding: bytes[entry.value], as: UTF8.self))
            }
        }
    }
}
