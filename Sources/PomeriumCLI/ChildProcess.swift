import Glibc

/// Starts programs with `posix_spawnp`, searching `PATH`, with no shell in between.
public enum ChildProcess {
    /// Starts `arguments[0]` with `arguments` and `environment` (`NAME=value` entries), sharing
    /// the standard streams. Returns the process id.
    public static func spawn(_ arguments: [String], environment: [String]) throws(CLIError) -> pid_t {
        guard let program = arguments.first, !program.isEmpty else {
            throw CLIError(.usage, "the command to run is empty")
        }
        var cArguments = arguments.map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in cArguments { free(pointer) }
            for pointer in cEnvironment { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, program, nil, nil, &cArguments, &cEnvironment)
        guard status == 0 else {
            throw CLIError(
                .invalidInput, "cannot start \"\(program)\": \(TokenCache.errorText(status)); check the name and PATH")
        }
        return pid
    }

    /// Waits for `pid` and returns its exit status, or 128 plus the signal number when a signal
    /// ended it, as shells report it.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 1 }
        }
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// Returns the current environment as `NAME=value` entries.
    public static func currentEnvironment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            entries.append(String(cString: entry))
            cursor += 1
        }
        return entries
    }
}

/// Shows the sign-in URL and, when `$BROWSER` is set, opens it there.
public struct BrowserLauncher: Sendable {
    /// The `$BROWSER` value: commands separated by `:`, tried in order. A `%s` in a command is
    /// replaced by the URL; otherwise the URL is the last argument.
    public let browser: String?
    public let openBrowser: Bool
    let write: @Sendable (String) -> Void

    public init(browser: String?, openBrowser: Bool, write: @escaping @Sendable (String) -> Void) {
        self.browser = browser
        self.openBrowser = openBrowser
        self.write = write
    }

    /// Returns the argument lists to try for `url`.
    public static func commands(browser: String, url: String) -> [[String]] {
        browser.split(separator: ":").compactMap { entry in
            let words = entry.split(separator: " ").map(String.init)
            guard !words.isEmpty else { return nil }
            if words.contains(where: { $0.contains("%s") }) {
                return words.map { $0.replacing("%s", with: url) }
            }
            return words + [url]
        }
    }

    func present(signInURL: String, route: RouteOrigin) {
        write("To sign in to \(route), open this URL in a browser:\n\n    \(signInURL)\n\n")
        guard openBrowser, let browser, !browser.isEmpty else { return }
        let environment = ChildProcess.currentEnvironment()
        for command in Self.commands(browser: browser, url: signInURL) {
            if (try? ChildProcess.spawn(command, environment: environment)) != nil {
                write("Opened the sign-in URL with \(command[0]). Waiting for the login to finish...\n")
                return
            }
        }
        write("Could not start any command in BROWSER; open the URL yourself.\n")
    }
}
