import Foundation

/// The file formats the loader reads, chosen by the file's extension.
public enum ConfigFileFormat: String, Sendable, CaseIterable {
    case yaml, json, toml, properties

    /// The extensions of each format, in the order the error message lists them.
    public static let extensions: [(String, ConfigFileFormat)] = [
        ("yaml", .yaml), ("yml", .yaml), ("json", .json), ("toml", .toml), ("properties", .properties),
        ("props", .properties), ("prop", .properties),
    ]

    /// The format for `path`'s extension, or nil when it is not one of `extensions`.
    public init?(path: String) {
        let lowered = (path as NSString).pathExtension.lowercased()
        guard let match = Self.extensions.first(where: { $0.0 == lowered }) else { return nil }
        self = match.1
    }

    func parse(_ bytes: [UInt8], path: String) throws(ConfigSyntaxError) -> ConfigNode {
        switch self {
        case .yaml: try YAMLReader.parse(bytes, path: path)
        case .json: try JSONReader.parse(bytes, path: path)
        case .toml: try TOMLReader.parse(bytes, path: path)
        case .properties: try PropertiesReader.parse(bytes, path: path)
        }
    }
}

/// The outcome of one load: the options (best effort even when invalid, for the printer), every
/// problem, and the inputs it was built from, so a reload can tell whether anything changed.
public struct ConfigLoadResult: Sendable {
    public let options: Options
    public let problems: [ConfigProblem]
    /// The inputs: file bytes and the environment variables the loader read.
    public let inputs: ConfigInputs

    /// Whether no problem is an error.
    public var isValid: Bool { !problems.contains { $0.severity == .error } }
    public var errors: [ConfigProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ConfigProblem] { problems.filter { $0.severity == .warning } }
}

/// The raw inputs of one load. Two loads with equal inputs produce equal options, so a reload
/// compares these before doing any work.
public struct ConfigInputs: Sendable, Equatable {
    public let fileContents: [UInt8]?
    /// The environment variables that name settings, and only those.
    public let environment: [String: String]
    /// The files that `_file` settings named (certificates, keys, CAs), each with its identity and
    /// size and modification time when read, nil when it was missing. A reload compares these too,
    /// so a renewed certificate is noticed while the config file stays the same.
    public let referencedFiles: [String: FileStamp?]

    public init(fileContents: [UInt8]?, environment: [String: String], referencedFiles: [String: FileStamp?] = [:]) {
        self.fileContents = fileContents
        self.environment = environment
        self.referencedFiles = referencedFiles
    }

    /// The same inputs with the files at `paths` stamped now.
    func referencing(_ paths: some Sequence<String>) -> ConfigInputs {
        var stamps: [String: FileStamp?] = [:]
        for path in paths { stamps[path] = FileStamp(path: path) }
        return ConfigInputs(fileContents: fileContents, environment: environment, referencedFiles: stamps)
    }

    /// A 64-bit FNV-1a checksum of the inputs, for logs and metrics; change detection compares
    /// the inputs themselves.
    public var checksum: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        mix(fileContents ?? [])
        for path in referencedFiles.keys.sorted() {
            mix([1])
            mix(path.utf8)
            mix(String(describing: referencedFiles[path] ?? nil).utf8)
        }
        for key in environment.keys.sorted() {
            mix([0])
            mix(key.utf8)
            mix([0])
            mix(environment[key, default: ""].utf8)
        }
        return hash
    }
}

/// What identifies one version of a file without reading it: device, inode, size and modification
/// time in nanoseconds. A replaced file (new inode), an edit (new size or time) or a Kubernetes
/// symlink swap all change it.
public struct FileStamp: Sendable, Hashable, CustomStringConvertible {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int64
    public let modified: Int64
    public let changed: Int64

    /// Stamps the file at `path` (following symbolic links); nil when it cannot be examined.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    public var description: String { "\(device):\(inode):\(size):\(modified):\(changed)" }
}

/// Reads the settings from the config file and the environment, decodes and validates them.
/// Precedence: environment variable, then the file, then the built-in default.
public struct ConfigLoader: Sendable {
    /// The `-config` file, or nil to read the environment only.
    public let configFile: String?
    private let environment: @Sendable () -> [String: String]

    /// The extensions viper accepted in v0.7 that this loader does not read.
    static let unsupportedExtensions: Set<String> = ["hcl", "dotenv", "env", "ini"]

    /// The largest config file, or file named by a `_file` setting, that is read, in bytes. A file
    /// of 10,000 routes is about 1 MB, so the limit leaves room while a wrong path (a log, a disk
    /// image) is not read into memory.
    static let maximumFileSize = 64 << 20

    /// Environment variables of removed settings; they are reported like the removed file keys.
    static let removedEnvironmentNames = ["POLICY_FILE", "AUTHENTICATE_INTERNAL_URL", "COOKIE_REFRESH"]

    public init(
        configFile: String?,
        environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment }
    ) {
        self.configFile = configFile
        self.environment = environment
    }

    /// Returns why `path` cannot be read as a config file (does not exist, is a directory, is a FIFO or a
    /// device, is larger than `maximumFileSize`, ...), or nil when it is a regular file that can be
    /// opened for reading.
    static func unreadableReason(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            switch code {
            case ENOENT: return "does not exist"
            case ELOOP: return "is a loop of symbolic links"
            case EACCES: return "cannot be reached (permission denied on a directory in the path)"
            case ENOTDIR: return "has a path through something that is not a directory"
            default: return "cannot be examined (\(String(cString: strerror(code))))"
            }
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return "is a directory, not a file"
        case S_IFIFO: return "is a FIFO (named pipe), not a regular file"
        case S_IFCHR, S_IFBLK: return "is a device, not a regular file"
        case S_IFSOCK: return "is a socket, not a regular file"
        default: return "is not a regular file"
        }
        guard access(path, R_OK) == 0 else { return "is not readable (permission denied)" }
        guard info.st_size <= maximumFileSize else {
            return
                "is \(info.st_size) bytes, more than the \(maximumFileSize >> 20) MiB limit for files the configuration reads"
        }
        return nil
    }

    /// Returns whether an environment value counts as unset: empty or only whitespace (`POLICY="   "`
    /// keeps the file's routes instead of replacing them with none).
    static func isBlank(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
    }

    /// Reads the file and the environment now and builds the options.
    public func load() -> ConfigLoadResult {
        load(inputs: readInputs())
    }

    /// Reads the file and the relevant environment variables without decoding them, and stamps the
    /// `referencedFiles` (pass those of the current snapshot's inputs to compare against it).
    public func readInputs(referencedFiles: some Sequence<String>) -> ConfigInputs {
        readInputs().referencing(referencedFiles)
    }

    /// Reads the file and the relevant environment variables without decoding them.
    public func readInputs() -> ConfigInputs {
        let names = Set(SettingsCatalog.settings.map(\.environmentName)).union(Self.removedEnvironmentNames)
        let environment = self.environment().filter { names.contains($0.key) && !Self.isBlank($0.value) }
        // Only a regular file is read, so a FIFO or a device cannot block or feed endless bytes.
        let contents = configFile.flatMap { path -> [UInt8]? in
            guard Self.unreadableReason(path) == nil else { return nil }
            return FileManager.default.contents(atPath: path).map { [UInt8]($0) }
        }
        return ConfigInputs(fileContents: contents, environment: environment)
    }

    /// Builds the options from inputs already read.
    public func load(inputs: ConfigInputs) -> ConfigLoadResult {
        var decoder = NodeDecoder()
        var settings: [String: ConfigNode] = [:]
        if let configFile {
            readFile(configFile, contents: inputs.fileContents, into: &settings, decoder: &decoder)
        }
        readEnvironment(inputs.environment, into: &settings, decoder: &decoder)
        let options = decoder.options(from: settings)
        // Stamped after reading: a file that changes in between differs from its stamp at the next
        // reload check, which then loads again.
        return ConfigLoadResult(
            options: options, problems: decoder.problems.items, inputs: inputs.referencing(decoder.referencedFiles))
    }

    private func readFile(
        _ path: String, contents: [UInt8]?, into settings: inout [String: ConfigNode], decoder: inout NodeDecoder
    ) {
        let fileLocation = SourceLocation.file(path: path, line: nil)
        // Checked before the extension, so a directory or a device gets its own reason rather than
        // a request to rename it.
        guard let contents else {
            decoder.fileFailed = true
            let reason = Self.unreadableReason(path) ?? "cannot be read"
            decoder.error(
                "config file", fileLocation,
                "cannot read config file \"\(ValueParsing.excerpt(path))\": it \(reason); check the -config flag and the file's permissions"
            )
            return
        }
        let supported = ConfigFileFormat.extensions.map { "." + $0.0 }.joined(separator: ", ")
        guard let format = ConfigFileFormat(path: path) else {
            let fileExtension = (path as NSString).pathExtension.lowercased()
            decoder.fileFailed = true
            if Self.unsupportedExtensions.contains(fileExtension) {
                decoder.error(
                    "config file", fileLocation,
                    "the .\(fileExtension) format is not supported; write the file as one of \(supported)")
            } else {
                decoder.error(
                    "config file", fileLocation,
                    "cannot tell the format from the extension \"\(fileExtension)\"; rename the file to end in one of \(supported)"
                )
            }
            return
        }
        let root: ConfigNode
        do throws(ConfigSyntaxError) {
            root = try format.parse(contents, path: path)
        } catch {
            decoder.fileFailed = true
            decoder.error("config file", error.location, "invalid \(format.rawValue): \(error.reason)")
            return
        }
        let entries: [ConfigEntry]
        switch root.value {
        case .null:
            entries = []
        case .mapping(let list):
            entries = list
        default:
            decoder.fileFailed = true
            decoder.error(
                "config file", root.location, "the file must hold a map of settings at the top, not \(root.kindName)")
            return
        }
        let knownKeys = SettingsCatalog.settings.map(\.key)
        var written: [String: String] = [:]
        for entry in entries {
            let key = entry.key.lowercased()
            if let earlier = written.updateValue(entry.key, forKey: key) {
                // Keys match without regard to case, so these two would silently replace each other.
                decoder.error(
                    entry.key, entry.keyLocation,
                    "duplicate key: \"\(ValueParsing.excerpt(earlier))\" is already set and keys match without regard to case; keep one"
                )
                continue
            }
            if SettingsCatalog.byKey[key] != nil {
                settings[key] = entry.value
            } else if let removed = SettingsCatalog.removedKeys[key] {
                if removed.isError {
                    decoder.error(entry.key, entry.keyLocation, removed.message)
                } else {
                    decoder.warning(entry.key, entry.keyLocation, removed.message)
                }
            } else {
                decoder.unknownKey(
                    entry.key, fullKey: entry.key, at: entry.keyLocation, known: knownKeys, context: "setting")
            }
        }
    }

    private func readEnvironment(
        _ environment: [String: String], into settings: inout [String: ConfigNode], decoder: inout NodeDecoder
    ) {
        for name in Self.removedEnvironmentNames {
            guard environment[name] != nil, let removed = SettingsCatalog.removedKeys[name.lowercased()] else {
                continue
            }
            let location = SourceLocation.environment(name: name)
            let message = removed.message.replacingOccurrences(of: name.lowercased(), with: name)
            if removed.isError {
                decoder.error(name, location, message)
            } else {
                decoder.warning(name, location, message)
            }
        }
        for descriptor in SettingsCatalog.settings {
            let name = descriptor.environmentName
            guard let value = environment[name] else { continue }
            let location = SourceLocation.environment(name: name)
            switch descriptor.key {
            case "policy", "certificates":
                if let document = decodeDocument(value, name: name, key: descriptor.key, decoder: &decoder) {
                    settings[descriptor.key] = document
                } else {
                    settings[descriptor.key] = nil
                }
            default:
                settings[descriptor.key] = ConfigNode(.scalar(value), location: location)
            }
        }
    }

    /// Decodes an environment variable that contains base64 of a YAML or JSON list (`POLICY`,
    /// `CERTIFICATES`); a value that is already YAML or JSON is accepted too.
    private func decodeDocument(_ value: String, name: String, key: String, decoder: inout NodeDecoder) -> ConfigNode? {
        let location = SourceLocation.environment(name: name)
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes = Array(trimmed.utf8)
        if let decoded = ValueParsing.base64(trimmed.filter { !$0.isWhitespace }) {
            bytes = decoded
        } else if !(trimmed.hasPrefix("[") || trimmed.hasPrefix("-")) {
            decoder.error(
                name, location, "is not base64 of a YAML or JSON list; encode the list with: base64 -w0 \(key).yaml")
            return nil
        }
        do throws(ConfigSyntaxError) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let node =
                text.hasPrefix("[")
                ? try JSONReader.parse(bytes, path: name) : try YAMLReader.parse(bytes, path: name)
            return node.relocated(to: location)
        } catch {
            var line: Int?
            if case .file(_, let errorLine) = error.location { line = errorLine }
            decoder.error(
                name, .environment(name: name, line: line),
                "does not decode to a valid YAML or JSON list: \(error.reason)")
            return nil
        }
    }
}

extension ConfigLoader {
    /// Loads settings from `text` in `format` instead of a file, with `environment` as the whole
    /// environment. Problems name the file `config.<format>`. Meant for tests and tools that keep
    /// the configuration in memory.
    public static func load(
        text: String, format: ConfigFileFormat, environment: [String: String] = [:]
    ) -> ConfigLoadResult {
        let name = "config." + (ConfigFileFormat.extensions.first { $0.1 == format }?.0 ?? format.rawValue)
        let loader = ConfigLoader(configFile: name, environment: { environment })
        let names = Set(SettingsCatalog.settings.map(\.environmentName)).union(removedEnvironmentNames)
        let relevant = environment.filter { names.contains($0.key) && !isBlank($0.value) }
        return loader.load(inputs: ConfigInputs(fileContents: Array(text.utf8), environment: relevant))
    }
}
