/// An ordered list of header fields that keeps the order, the case of names, and repeated names as
/// received. Lookups compare names case-insensitively (RFC 9110 §5.1).
///
/// The list itself accepts any strings. The encoders reject names that are not tokens and values
/// with CR, LF, NUL or other control characters before anything reaches the wire.
public struct HTTPHeaders: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    /// One field line.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    private var fields: [Field]

    public init() {
        fields = []
    }

    public init(_ fields: [(name: String, value: String)]) {
        self.fields = fields.map { Field(name: $0.name, value: $0.value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { Field(name: $0.0, value: $0.1) }
    }

    init(reservingCapacity capacity: Int) {
        fields = []
        fields.reserveCapacity(capacity)
    }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }
    public subscript(position: Int) -> Field { fields[position] }

    /// Appends a field after all existing ones, keeping any earlier field with the same name.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Removes every field named `name` and appends one field with `value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        if let index = index(ofFieldNamed: name) {
            fields[index].value = value
            var next = index + 1
            while let later = self.index(ofFieldNamed: name, from: next) {
                fields.remove(at: later)
                next = later
            }
        } else {
            add(name: name, value: value)
        }
    }

    /// Returns the index of the first field named `name` at or after `start`. Lookups run dozens of times
    /// per proxied request, so the loop compares lengths before calling the case-insensitive
    /// comparison, and reads names in place where `contains(where:)` copied each field.
    @inline(__always)
    private func index(ofFieldNamed name: String, from start: Int = 0) -> Int? {
        let length = name.utf8.count
        var index = start
        while index < fields.count {
            if fields[index].name.utf8.count == length && ASCII.equalsIgnoringCase(fields[index].name, name) {
                return index
            }
            index += 1
        }
        return nil
    }

    /// Removes every field named `name`.
    public mutating func remove(name: String) {
        // Checking first keeps a list shared with another copy from being copied when nothing goes.
        guard index(ofFieldNamed: name) != nil else { return }
        fields.removeAll { ASCII.equalsIgnoringCase($0.name, name) }
    }

    /// Removes every field for which `shouldRemove` returns true.
    public mutating func removeAll(where shouldRemove: (Field) throws -> Bool) rethrows {
        try fields.removeAll(where: shouldRemove)
    }

    /// Returns the value of the first field named `name`.
    public func first(name: String) -> String? {
        index(ofFieldNamed: name).map { fields[$0].value }
    }

    /// Returns the values of every field named `name`, in order.
    public subscript(name: String) -> [String] {
        fields.compactMap { ASCII.equalsIgnoringCase($0.name, name) ? $0.value : nil }
    }

    public func contains(name: String) -> Bool {
        index(ofFieldNamed: name) != nil
    }

    /// Returns the number of fields named `name`.
    public func count(name: String) -> Int {
        fields.reduce(0) { $0 + (ASCII.equalsIgnoringCase($1.name, name) ? 1 : 0) }
    }

    /// The comma-separated list elements of every field named `name`, trimmed and lowercased, with
    /// empty elements dropped (RFC 9110 §5.6.1). Suits `Connection`, `Transfer-Encoding`, `Upgrade`.
    public func tokens(name: String) -> [String] {
        var result: [String] = []
        var next = 0
        while let index = index(ofFieldNamed: name, from: next) {
            next = index + 1
            let bytes = Array(fields[index].value.utf8)
            for element in bytes.split(separator: ASCII.comma) {
                var start = element.startIndex
                var end = element.endIndex
                while start < end, ASCII.isWhitespace(bytes[start]) { start += 1 }
                while end > start, ASCII.isWhitespace(bytes[end - 1]) { end -= 1 }
                if start == end { continue }
                result.append(String(decoding: bytes[start..<end].map(ASCII.lowercased), as: UTF8.self))
            }
        }
        return result
    }

    /// Returns whether a comma-separated list field named `name` contains `token`, compared case-insensitively.
    public func containsToken(_ token: String, name: String) -> Bool {
        tokens(name: name).contains { ASCII.equalsIgnoringCase($0, token) }
    }
}

extension HTTPHeaders.Field {
    /// Returns whether this field's name equals `name`, compared case-insensitively.
    public func hasName(_ name: String) -> Bool {
        self.name.utf8.count == name.utf8.count && ASCII.equalsIgnoringCase(self.name, name)
    }
}

extension HTTPHeaders {
    /// The hop-by-hop fields of RFC 9110 §7.6.1 plus the legacy `Proxy-Connection` and `Keep-Alive`,
    /// the list Go's `httputil.ReverseProxy` removes.
    public static let hopByHopFieldNames = [
        "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade",
    ]

    /// Removes the hop-by-hop fields and every field that `Connection` names, as a proxy must before
    /// forwarding a message (RFC 9110 §7.6.1).
    public mutating func removeHopByHopFields() {
        let named = tokens(name: "Connection")
        removeAll { field in
            Self.hopByHopFieldNames.contains { field.hasName($0) } || named.contains { field.hasName($0) }
        }
    }
}
