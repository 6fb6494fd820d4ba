/// The name-value pairs of a URL query in their original order, decoded as
/// `application/x-www-form-urlencoded` the way Go's `url.ParseQuery` does.
public struct URLQuery: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public struct Item: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    private var items: [Item]

    public init() {
        items = []
    }

    public init(_ items: [(name: String, value: String)]) {
        self.items = items.map { Item(name: $0.name, value: $0.value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        items = elements.map { Item(name: $0.0, value: $0.1) }
    }

    /// Parses a raw query (without `?`) strictly: pairs split on `&`, empty pairs skipped, a pair
    /// without `=` has an empty value, `+` decodes to a space. Throws on a malformed `%` escape,
    /// on decoded text that is not UTF-8, and on a `;` in a pair, which Go 1.17 and later reject
    /// because older parsers split on it.
    public init(parsing raw: String) throws(URLParseError) {
        items = []
        for pair in raw.utf8.split(separator: UInt8(ascii: "&")) {
            if pair.contains(ASCII.semicolon) { throw URLParseError(.invalidQuery) }
            items.append(try Self.decodePair(pair))
        }
    }

    /// Parses like `init(parsing:)` but drops each invalid pair, as Go's `URL.Query()` does.
    public init(parsingLeniently raw: String) {
        items = []
        for pair in raw.utf8.split(separator: UInt8(ascii: "&")) where !pair.contains(ASCII.semicolon) {
            if let item = try? Self.decodePair(pair) { items.append(item) }
        }
    }

    private static func decodePair(_ pair: Substring.UTF8View) throws(URLParseError) -> Item {
        let equals = pair.firstIndex(of: ASCII.equals)
        let nameBytes = pair[pair.startIndex..<(equals ?? pair.endIndex)]
        let valueBytes = equals.map { pair[pair.index(after: $0)...] } ?? pair[pair.endIndex...]
        return Item(name: try decodeComponent(nameBytes), value: try decodeComponent(valueBytes))
    }

    private static func decodeComponent(_ bytes: Substring.UTF8View) throws(URLParseError) -> String {
        let decoded = try PercentEncoding.decodeBytes(bytes, plusAsSpace: true)
        guard let text = String(validating: decoded, as: UTF8.self) else { throw URLParseError(.invalidUTF8) }
        return text
    }

    public var startIndex: Int { items.startIndex }
    public var endIndex: Int { items.endIndex }
    public subscript(position: Int) -> Item { items[position] }

    /// The first value named `name`, compared exactly.
    public func value(for name: String) -> String? {
        items.first { $0.name == name }?.value
    }

    /// Every value named `name`, in order.
    public func values(for name: String) -> [String] {
        items.compactMap { $0.name == name ? $0.value : nil }
    }

    public mutating func append(name: String, value: String) {
        items.append(Item(name: name, value: value))
    }

    /// Replaces every value named `name` with one `value`, at the position of the first.
    public mutating func set(name: String, value: String) {
        if let index = items.firstIndex(where: { $0.name == name }) {
            items[index].value = value
            var next = index + 1
            while next < items.count {
                if items[next].name == name { items.remove(at: next) } else { next += 1 }
            }
        } else {
            append(name: name, value: value)
        }
    }

    public mutating func remove(name: String) {
        items.removeAll { $0.name == name }
    }

    /// The pairs form-encoded in their current order: `name=value` joined with `&`.
    public var encoded: String {
        Self.encode(items)
    }

    /// The pairs form-encoded with names sorted by their UTF-8 bytes and each name's values in
    /// their current order, exactly as Go's `url.Values.Encode` writes them. Signed URLs hash this text.
    public var encodedSortedByName: String {
        var order: [String] = []
        var valuesByName: [String: [String]] = [:]
        for item in items {
            if valuesByName[item.name] == nil { order.append(item.name) }
            valuesByName[item.name, default: []].append(item.value)
        }
        order.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var sorted: [Item] = []
        sorted.reserveCapacity(items.count)
        for name in order {
            for value in valuesByName[name] ?? [] { sorted.append(Item(name: name, value: value)) }
        }
        return Self.encode(sorted)
    }

    private static func encode(_ items: [Item]) -> String {
        var parts: [String] = []
        parts.reserveCapacity(items.count)
        for item in items {
            parts.append(
                PercentEncoding.encode(item.name, as: .queryComponent) + "="
                    + PercentEncoding.encode(item.value, as: .queryComponent))
        }
        return parts.joined(separator: "&")
    }
}

/// Building the upstream request target the way Go's `httputil.NewSingleHostReverseProxy` does.
public enum UpstreamTarget {
    /// Joins the upstream base path and the request path with exactly one slash between them
    /// (Go's `singleJoiningSlash`): `/api/` + `/users` and `/api` + `users` both give `/api/users`.
    public static func joinPaths(_ base: String, _ path: String) -> String {
        let baseHasSlash = base.hasSuffix("/")
        let pathHasSlash = path.hasPrefix("/")
        switch (baseHasSlash, pathHasSlash) {
        case (true, true): return base + path.dropFirst()
        case (false, false): return base + "/" + path
        default: return base + path
        }
    }

    /// Merges the upstream's raw query and the request's raw query: both joined by `&` when both
    /// are non-empty, else whichever is present. Nil when neither has text.
    public static func mergeQueries(_ base: String?, _ request: String?) -> String? {
        let baseText = base ?? ""
        let requestText = request ?? ""
        if baseText.isEmpty && requestText.isEmpty { return nil }
        if baseText.isEmpty || requestText.isEmpty { return baseText + requestText }
        return baseText + "&" + requestText
    }

    /// The origin-form target for `url`'s path and query joined with the request's.
    public static func target(upstream url: HTTPURL, requestPath: String, requestQuery: String?) -> String {
        let path = joinPaths(url.path, requestPath)
        guard let query = mergeQueries(url.query, requestQuery) else { return path }
        return path + "?" + query
    }
}
