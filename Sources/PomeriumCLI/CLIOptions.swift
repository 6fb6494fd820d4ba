import PomeriumNet

/// A `--resolve HOST:PORT:ADDRESS` entry: connections to `HOST:PORT` go to `ADDRESS`, while TLS
/// and the `Host` header keep the name, as with curl's option of the same name.
public struct ResolveOverride: Sendable, Hashable {
    public let host: String
    public let port: Int
    public let address: String

    public init(parsing text: String) throws(CLIError) {
        let usage = "expected HOST:PORT:ADDRESS, for example app.example.com:443:127.0.0.1"
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[0].isEmpty, !parts[2].isEmpty else {
            throw CLIError(.usage, "invalid --resolve value \"\(text)\": \(usage)")
        }
        guard let port = Int(parts[1]), (1...65535).contains(port) else {
            throw CLIError(.usage, "invalid port \"\(parts[1])\" in --resolve \"\(text)\": \(usage)")
        }
        var address = parts[2]
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        guard (try? SocketAddress(parsing: address, defaultPort: port)) != nil else {
            throw CLIError(
                .usage, "invalid address \"\(parts[2])\" in --resolve \"\(text)\": give an IPv4 or IPv6 address")
        }
        host = parts[0].lowercased()
        self.port = port
        self.address = address
    }
}

/// The parsed command line of `pomerium-cli`.
public struct CLIOptions: Sendable, Equatable {
    public enum Command: String, Sendable, CaseIterable {
        case login, fetch, exec, logout
    }

    public var command: Command = .login
    /// The route URL, or for `fetch` the URL to request.
    public var url = ""
    /// The program and arguments that `exec` runs.
    public var execArguments: [String] = []
    public var showHelp = false
    public var showVersion = false

    public var certificateAuthorityFile: String?
    public var skipVerification = false
    public var resolve: [ResolveOverride] = []
    /// Seconds to wait for the browser to come back to the local callback.
    public var loginTimeout: Double = 300
    /// Seconds allowed for each request to Pomerium.
    public var requestTimeout: Double = 30
    /// A cached token that expires within this many seconds is refreshed before use.
    public var minimumValidity: Int64 = 60
    public var openBrowser = true
    public var cacheDirectory: String?
    public var useCache = true
    public var verbose = false

    public var method: String?
    public var headers: [String] = []
    public var body: String?
    public var bearer = false
    public var includeResponseHead = false

    public init() {}

    public static let usage = """
        Usage: pomerium-cli COMMAND [options] URL

        Signs in to a route of a Pomerium proxy through the browser and keeps the route's token,
        so scripts can call the route with `Authorization: Pomerium <token>`.

        Commands:
          login URL               print the route's JWT, signing in or refreshing it when needed
          fetch URL               send a request to URL with the route's JWT; write the body
          exec URL -- CMD [ARG]   run CMD with the route's JWT in the POMERIUM_JWT variable
          logout URL              delete the cached token of the route

        Options:
          --cacert FILE           trust only the CA certificates in FILE (PEM)
          -k, --insecure          skip TLS certificate checks (self-signed demo servers only)
          --resolve HOST:PORT:ADDRESS
                                  connect to ADDRESS for HOST:PORT, keeping the name for TLS and
                                  Host; repeatable
          --login-timeout SECONDS how long to wait for the browser login (default 300)
          --timeout SECONDS       timeout of each request to Pomerium (default 30)
          --min-validity SECONDS  refresh a cached token that expires within SECONDS (default 60)
          --no-browser            print the sign-in URL only; do not start $BROWSER
          --cache-dir DIR         keep tokens in DIR (default $XDG_CACHE_HOME/pomerium-cli,
                                  else ~/.cache/pomerium-cli)
          --no-cache              neither read nor write cached tokens
          -v, --verbose           report each step on standard error
          --version               print the version, then exit
          -h, --help              print this text, then exit

        fetch options:
          -X, --request METHOD    the request method (default GET, or POST with --data)
          -H, --header 'NAME: VALUE'
                                  add a request header; repeatable
          -d, --data TEXT         send TEXT as the request body
          --bearer                send the JWT as `Authorization: Bearer` instead of `Pomerium`
          -i, --include           write the status line and headers before the body

        Exit codes:
          0  success
          1  failure, including a response status of 400 or more from fetch
          2  invalid command line
          exec exits with the status of CMD.

        """

    /// Parses `arguments` (without the program name).
    public static func parse(_ arguments: [String]) throws(CLIError) -> CLIOptions {
        var options = CLIOptions()
        var positional: [String] = []
        var index = 0

        func value(for flag: String, inline: String?) throws(CLIError) -> String {
            if let inline { return inline }
            guard index < arguments.count else {
                throw CLIError(.usage, "option \(flag) needs a value; run pomerium-cli --help for the list")
            }
            index += 1
            return arguments[index - 1]
        }

        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                options.execArguments = Array(arguments[index...])
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                positional.append(argument)
                continue
            }
            var name = argument
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            switch name {
            case "-h", "--help": options.showHelp = true
            case "--version": options.showVersion = true
            case "--cacert": options.certificateAuthorityFile = try value(for: name, inline: inline)
            case "--insecure", "-k": options.skipVerification = true
            case "--resolve": options.resolve.append(try ResolveOverride(parsing: try value(for: name, inline: inline)))
            case "--login-timeout":
                options.loginTimeout = try seconds(try value(for: name, inline: inline), flag: name)
            case "--timeout":
                options.requestTimeout = try seconds(try value(for: name, inline: inline), flag: name)
            case "--min-validity":
                let text = try value(for: name, inline: inline)
                guard let number = Int64(text), number >= 0 else {
                    throw CLIError(.usage, "option --min-validity takes whole seconds (0 or more), not \"\(text)\"")
                }
                options.minimumValidity = number
            case "--no-browser": options.openBrowser = false
            case "--cache-dir":
                let directory = try value(for: name, inline: inline)
                guard !directory.isEmpty else { throw CLIError(.usage, "option --cache-dir needs a directory") }
                options.cacheDirectory = directory
            case "--no-cache": options.useCache = false
            case "--verbose", "-v": options.verbose = true
            case "-X", "--request": options.method = try value(for: name, inline: inline).uppercased()
            case "-H", "--header":
                let header = try value(for: name, inline: inline)
                guard let colon = header.firstIndex(of: ":"), colon != header.startIndex else {
                    throw CLIError(.usage, "invalid --header \"\(header)\": expected 'NAME: VALUE'")
                }
                options.headers.append(header)
            case "-d", "--data": options.body = try value(for: name, inline: inline)
            case "--bearer": options.bearer = true
            case "-i", "--include": options.includeResponseHead = true
            default:
                throw CLIError(.usage, "unknown option \"\(argument)\"; run pomerium-cli --help for the list")
            }
        }
        if options.showHelp || options.showVersion { return options }

        guard let commandName = positional.first else {
            throw CLIError(.usage, "a command is missing: login, fetch, exec or logout")
        }
        guard let command = Command(rawValue: commandName) else {
            throw CLIError(
                .usage, "unknown command \"\(commandName)\": use login, fetch, exec or logout")
        }
        options.command = command
        guard positional.count >= 2 else {
            throw CLIError(.usage, "\(command.rawValue) needs a URL, for example https://app.example.com")
        }
        guard positional.count == 2 else {
            let extra = positional[2]
            let hint = command == .exec ? "; put the command after --" : ""
            throw CLIError(.usage, "unexpected argument \"\(extra)\" after the URL\(hint)")
        }
        options.url = positional[1]
        if command == .exec && options.execArguments.isEmpty {
            throw CLIError(.usage, "exec needs a command after --, for example: exec URL -- curl ...")
        }
        if command != .exec && !options.execArguments.isEmpty {
            throw CLIError(.usage, "only exec takes a command after --")
        }
        if command != .fetch
            && (options.method != nil || !options.headers.isEmpty || options.body != nil || options.bearer
                || options.includeResponseHead)
        {
            throw CLIError(.usage, "-X, -H, -d, --bearer and -i apply to fetch only")
        }
        return options
    }

    private static func seconds(_ text: String, flag: String) throws(CLIError) -> Double {
        guard let number = Double(text), number.isFinite, number > 0, number <= 86_400 else {
            throw CLIError(
                .usage, "option \(flag) takes a number of seconds above 0 and at most 86400, not \"\(text)\"")
        }
        return number
    }
}
