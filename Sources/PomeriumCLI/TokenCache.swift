import Glibc
import PomeriumCrypto

/// Route tokens on disk, one JSON file per route origin in a directory that only the user may
/// read (mode 0700, files 0600). A write goes to a temporary file that is renamed over the old
/// one, so a reader never sees half a file.
public struct TokenCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The default directory: `$XDG_CACHE_HOME/pomerium-cli` when that variable contains an absolute
    /// path (the XDG base directory rule), else `$HOME/.cache/pomerium-cli`.
    public static func defaultDirectory(environment: [String: String]) throws(CLIError) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return xdg + "/pomerium-cli"
        }
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw CLIError(
                .cache, "neither XDG_CACHE_HOME nor HOME is an absolute path: pass --cache-dir DIR or --no-cache")
        }
        return home + "/.cache/pomerium-cli"
    }

    /// Returns the file of `route`: its origin with every character outside `[a-z0-9.-]` replaced by `_`.
    public func path(for route: RouteOrigin) -> String {
        let name = "\(route.scheme)_\(route.host)_\(route.port)"
        let safe = String(
            name.map { character -> Character in
                character.isASCII && (character.isLetter || character.isNumber || character == "." || character == "-")
                    ? character : "_"
            })
        return "\(directory)/\(safe).json"
    }

    /// Returns the cached credentials of `route`, or nil when there are none. A file that others
    /// may read, that does not parse, or that belongs to another route is ignored, with the
    /// reason in `warning`.
    public func load(_ route: RouteOrigin, warning: (String) -> Void = { _ in }) -> RouteCredentials? {
        let file = path(for: route)
        let descriptor = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else {
            if errno != ENOENT { warning("cannot read the token cache \(file): \(Self.errorText(errno))") }
            return nil
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            warning("ignoring the token cache \(file): it is not a regular file")
            return nil
        }
        guard status.st_mode & 0o077 == 0 else {
            let mode = String(status.st_mode & 0o777, radix: 8)
            warning("ignoring the token cache \(file): its mode is \(mode), expected 600; delete it and log in again")
            return nil
        }
        guard status.st_size <= 1024 * 1024 else {
            warning("ignoring the token cache \(file): it is larger than 1 MiB")
            return nil
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                warning("cannot read the token cache \(file): \(Self.errorText(errno))")
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        guard let object = try? JSONParser.parseObject(bytes),
            object["route"]?.stringValue == route.description,
            let authenticate = object["authenticate_url"]?.stringValue,
            let jwt = object["jwt"]?.stringValue,
            let refresh = object["refresh_token"]?.stringValue
        else {
            warning("ignoring the token cache \(file): it is malformed or names another route")
            return nil
        }
        return RouteCredentials(route: route, authenticateURL: authenticate, jwt: jwt, refreshToken: refresh)
    }

    /// Writes `credentials`, creating the directory (mode 0700) when needed.
    public func save(_ credentials: RouteCredentials) throws(CLIError) {
        try createDirectory()
        let file = path(for: credentials.route)
        let temporary = "\(file).\(getpid()).tmp"
        let document = JSONWriter.encode(
            .object(
                JSONObject([
                    ("route", .string(credentials.route.description)),
                    ("authenticate_url", .string(credentials.authenticateURL)),
                    ("jwt", .string(credentials.jwt)),
                    ("refresh_token", .string(credentials.refreshToken)),
                    ("expires_at", credentials.expiry.map { .integer($0) } ?? .null),
                ])))

        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw CLIError(.cache, "cannot write the token cache \(temporary): \(Self.errorText(errno))")
        }
        var written = 0
        while written < document.count {
            let count = document[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = Self.errorText(errno)
                close(descriptor)
                unlink(temporary)
                throw CLIError(.cache, "cannot write the token cache \(temporary): \(reason)")
            }
            written += count
        }
        // The mode is set again in case the umask or an older file changed it.
        fchmod(descriptor, 0o600)
        close(descriptor)
        guard rename(temporary, file) == 0 else {
            let reason = Self.errorText(errno)
            unlink(temporary)
            throw CLIError(.cache, "cannot replace the token cache \(file): \(reason)")
        }
    }

    /// Deletes the cached credentials of `route`. Returns false when there were none.
    @discardableResult
    public func remove(_ route: RouteOrigin) throws(CLIError) -> Bool {
        let file = path(for: route)
        if unlink(file) == 0 { return true }
        if errno == ENOENT { return false }
        throw CLIError(.cache, "cannot delete the token cache \(file): \(Self.errorText(errno))")
    }

    private func createDirectory() throws(CLIError) {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw CLIError(
                    .cache,
                    "cannot create the token cache directory \(prefix): \(Self.errorText(errno)); pass --cache-dir DIR")
            }
        }
        var status = stat()
        guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw CLIError(.cache, "the token cache directory \(directory) is not a directory; pass --cache-dir DIR")
        }
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
