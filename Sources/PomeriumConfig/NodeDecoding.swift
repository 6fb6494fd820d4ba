import Foundation

/// Typed reads of `ConfigNode` values that record a problem, and return nil, when a value has the
/// wrong shape. Shared by the top-level options, the routes and the `certificates` entries.
struct NodeDecoder {
    var problems = ProblemList()
    /// Set when the config file could not be read or parsed: the checks for settings that are
    /// missing are skipped then, since they would only repeat that the file was not read.
    var fileFailed = false
    /// The paths of the files that `_file` settings named, in reading order, so a reload can tell
    /// when one of them changes while the config file stays the same.
    var referencedFiles: [String] = []

    mutating func error(_ key: String, _ location: SourceLocation, _ message: String) {
        problems.error(key, location, message)
    }

    mutating func warning(_ key: String, _ location: SourceLocation, _ message: String) {
        problems.warning(key, location, message)
    }

    /// Reads a scalar's text. Returns nil for null, and records an error for lists and maps.
    mutating func text(_ node: ConfigNode, key: String) -> String? {
        switch node.value {
        case .scalar(let text): return text
        case .null: return nil
        case .sequence, .mapping:
            error(key, node.location, "expects a single value but has \(node.kindName)")
            return nil
        }
    }

    /// Non-empty text, or nil for null and empty values.
    mutating func nonEmptyText(_ node: ConfigNode, key: String) -> String? {
        guard let value = text(node, key: key), !value.isEmpty else { return nil }
        return value
    }

    mutating func bool(_ node: ConfigNode, key: String) -> Bool? {
        guard let value = text(node, key: key) else { return nil }
        var fromYAML = false
        if case .file(let path, _) = node.location, ConfigFileFormat(path: path) == .yaml { fromYAML = true }
        guard let result = ValueParsing.bool(value, yamlWords: fromYAML) else {
            error(key, node.location, "\"\(ValueParsing.excerpt(value))\" is not a boolean; write true or false")
            return nil
        }
        return result
    }

    mutating func duration(_ node: ConfigNode, key: String) -> Duration? {
        guard let value = nonEmptyText(node, key: key) else { return nil }
        guard let duration = ValueParsing.goDuration(value) else {
            if Int(value) != nil {
                error(
                    key, node.location,
                    "\"\(ValueParsing.excerpt(value))\" has no unit; write a duration such as \(ValueParsing.excerpt(value))s, 5m or 1h30m"
                )
            } else {
                error(
                    key, node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a duration; write for example 30s, 300ms, 5m or 1h30m")
            }
            return nil
        }
        guard duration >= .zero else {
            error(key, node.location, "\"\(ValueParsing.excerpt(value))\" is negative; durations must be zero or more")
            return nil
        }
        return duration
    }

    /// Reads a list from a sequence of values, or from one comma-separated value.
    mutating func list(_ node: ConfigNode, key: String) -> [String]? {
        switch node.value {
        case .null: return nil
        case .scalar(let text): return ValueParsing.commaList(text)
        case .mapping:
            error(key, node.location, "expects a list but has a map")
            return nil
        case .sequence(let items):
            var result: [String] = []
            for (index, item) in items.enumerated() {
                guard let value = text(item, key: "\(key)[\(index)]") else { continue }
                let trimmed = value.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty { result.append(trimmed) }
            }
            return result
        }
    }

    /// Reads a string-to-string map. A single value is read as JSON (`{"K":"V"}`) or as `K:V,K:V`.
    mutating func map(_ node: ConfigNode, key: String) -> [String: String]? {
        switch node.value {
        case .null: return nil
        case .sequence:
            error(key, node.location, "expects a map of names to values but has a list")
            return nil
        case .scalar(let text):
            return mapFromText(text, node: node, key: key)
        case .mapping(let entries):
            var result: [String: String] = [:]
            for entry in entries {
                guard let value = self.text(entry.value, key: "\(key).\(entry.key)") else { continue }
                result[entry.key] = value
            }
            return result
        }
    }

    /// Reads a map of header names to values (`headers`, `set_request_headers`) and rejects a name
    /// that is not an HTTP token and a value with CR, LF, NUL or another control character, which
    /// would let the configuration inject header lines. Messages name the header, never its value.
    mutating func headerMap(_ node: ConfigNode, key: String) -> [String: String]? {
        guard let headers = map(node, key: key) else { return nil }
        var valid: [String: String] = [:]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            guard ValueParsing.isToken(name) else {
                let shown = name.isEmpty ? "an empty header name" : "header name \"\(ValueParsing.excerpt(name))\""
                error(
                    key, node.location,
                    "\(shown) is not valid; use letters, digits and !#$%&'*+-.^_`|~ without spaces or control characters"
                )
                continue
            }
            guard ValueParsing.isHeaderValue(value) else {
                error(
                    key, node.location,
                    "the value of header \"\(name)\" contains a line break or control character; write it on one line")
                continue
            }
            valid[name] = value
        }
        return valid
    }

    private mutating func mapFromText(_ text: String, node: ConfigNode, key: String) -> [String: String]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [:] }
        if trimmed.hasPrefix("{") {
            do throws(ConfigSyntaxError) {
                let parsed = try JSONReader.parse(Array(trimmed.utf8), path: "")
                return map(parsed.relocated(to: node.location), key: key)
            } catch {
                self.error(
                    key, node.location, "is not a valid JSON object (\(error.reason)); write {\"Name\":\"value\"}")
                return nil
            }
        }
        var result: [String: String] = [:]
        for pair in text.split(separator: ",") {
            guard let colon = pair.firstIndex(of: ":") else {
                error(
                    key, node.location,
                    "item \"\(ValueParsing.excerpt(String(pair)))\" has no colon; write Name:value,Name2:value2 or a JSON object"
                )
                continue
            }
            let name = pair[..<colon].trimmingCharacters(in: .whitespaces)
            let value = pair[pair.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            result[name] = value
        }
        return result
    }

    /// Reads the URL of a service (`authenticate_service_url` and the like): http or https, a port
    /// in 1-65535, and no user part, query or fragment, none of which a service address can use.
    /// A user part is rejected without echoing the URL, since it may hold a password.
    mutating func serviceURL(_ node: ConfigNode, key: String, example: String) -> ConfigURL? {
        guard let url = url(node, key: key, example: example) else { return nil }
        var problems: [String] = []
        if !["http", "https"].contains(url.scheme) {
            problems.append("has the scheme \"\(ValueParsing.excerpt(url.scheme))\"; write http:// or https://")
        }
        if url.hasUserInfo {
            problems.append("contains a user name or password, which a service URL cannot use; remove user:password@")
        }
        if url.query != nil { problems.append("has a query string (?...), which a service URL cannot use; remove it") }
        if url.fragment != nil { problems.append("has a fragment (#...), which a service URL cannot use; remove it") }
        for problem in problems { error(key, node.location, "\(problem) (for example \(example))") }
        return problems.isEmpty ? url : nil
    }

    /// Reads an absolute URL, which must have a scheme, a host and a port, when written, in 1-65535.
    mutating func url(_ node: ConfigNode, key: String, example: String) -> ConfigURL? {
        guard let value = nonEmptyText(node, key: key) else { return nil }
        if let url = ConfigURL(value) {
            if let port = url.port, !(1...65535).contains(port) {
                error(key, node.location, "has the port \(port), outside 1-65535; write for example \(example)")
                return nil
            }
            return url
        }
        if value.contains("@") {
            // The text may carry a password in its user part, so the message does not repeat it.
            error(key, node.location, "is not a URL with a scheme and a host; write for example \(example)")
            return nil
        }
        if !value.contains("://") {
            error(
                key, node.location,
                "\"\(ValueParsing.excerpt(value))\" has no scheme; write a full URL such as https://\(ValueParsing.excerpt(value)) (a scheme and a host are required)"
            )
        } else {
            error(
                key, node.location,
                "\"\(ValueParsing.excerpt(value))\" is not a URL with a scheme and a host; write for example \(example)"
            )
        }
        return nil
    }

    /// Decodes a setting that contains base64 of PEM text into the PEM text. PEM text written as is
    /// is accepted too.
    mutating func base64PEM(_ node: ConfigNode, key: String, fileKey: String?) -> [UInt8]? {
        guard let value = nonEmptyText(node, key: key) else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN") { return Array(trimmed.utf8) }
        let compact = trimmed.filter { !$0.isWhitespace }
        guard let decoded = ValueParsing.base64(compact) else {
            let alternative = fileKey.map { ", or put the PEM file's path in \($0)" } ?? ""
            error(
                key, node.location,
                "is not valid base64; write the base64 of the PEM text (base64 -w0 file.pem)\(alternative)")
            return nil
        }
        guard String(decoding: decoded, as: UTF8.self).contains("-----BEGIN") else {
            error(
                key, node.location,
                "decodes from base64 but holds no PEM block; encode the whole PEM file, with its -----BEGIN line")
            return nil
        }
        return decoded
    }

    /// Reads the file named by a `_file` setting. The checks of the config file itself apply, so a
    /// directory, a device or a file over the size limit is reported with its reason and not read.
    mutating func fileContents(_ node: ConfigNode, key: String) -> [UInt8]? {
        guard let path = nonEmptyText(node, key: key) else { return nil }
        return fileContents(path: path, key: key, location: node.location)
    }

    /// Reads a file whose path comes from inside a setting's value (a parameter of
    /// `cache_store_address`); `label` names the parameter in the messages.
    mutating func fileContents(
        path: String, key: String, location: SourceLocation, label: String = "file"
    ) -> [UInt8]? {
        referencedFiles.append(path)
        if let reason = ConfigLoader.unreadableReason(path) {
            error(key, location, "\(label) \"\(path)\" \(reason); fix the path or the file's permissions")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            error(key, location, "\(label) \"\(path)\" \(reason); fix the path or the file's permissions")
            return nil
        }
        return [UInt8](data)
    }

    /// Reports an unknown key with the closest known one.
    mutating func unknownKey(
        _ key: String, fullKey: String, at location: SourceLocation, known: [String], context: String
    ) {
        let shownKey = ValueParsing.excerpt(fullKey)
        let shown = ValueParsing.excerpt(key)
        if let suggestion = SettingsCatalog.closest(to: key, among: known) {
            warning(shownKey, location, "unknown \(context) \"\(shown)\" is ignored; did you mean \"\(suggestion)\"?")
        } else {
            warning(shownKey, location, "unknown \(context) \"\(shown)\" is ignored")
        }
    }
}

extension ConfigNode {
    /// Returns the tree with every location moved to `base`. For documents decoded from an
    /// environment variable, file lines become lines inside that variable.
    func relocated(to base: SourceLocation) -> ConfigNode {
        var location = base
        if case .environment(let name, _) = base, case .file(_, let line) = self.location {
            location = .environment(name: name, line: line)
        }
        switch value {
        case .scalar, .null:
            return ConfigNode(value, location: location)
        case .sequence(let items):
            return ConfigNode(.sequence(items.map { $0.relocated(to: base) }), location: location)
        case .mapping(let entries):
            let moved = entries.map { entry in
                let value = entry.value.relocated(to: base)
                var keyLocation = base
                if case .environment(let name, _) = base, case .file(_, let line) = entry.keyLocation {
                    keyLocation = .environment(name: name, line: line)
                }
                return ConfigEntry(key: entry.key, keyLocation: keyLocation, value: value)
            }
            return ConfigNode(.mapping(moved), location: location)
        }
    }
}
