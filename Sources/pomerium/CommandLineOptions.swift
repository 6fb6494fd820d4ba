/// The command-line flags, in Go's `flag` style as Pomerium takes them: `-config FILE`,
/// `-config=FILE`, and the same with two dashes.
struct CommandLineOptions: Equatable {
    var configFile: String?
    var showVersion = false
    var showHelp = false
    var validateOnly = false

    /// A command line that cannot be parsed. Its message names the flag and what to do.
    struct UsageError: Error, Equatable, CustomStringConvertible {
        let description: String
    }

    static let usage = """
        Usage: pomerium [flags]

        Pomerium is an identity-aware access proxy. Settings come from the config file and from
        environment variables named after the settings in upper case (COOKIE_SECRET, POLICY, ...);
        an environment variable wins over the file.

        Flags:
          -config FILE   read settings from FILE (.yaml, .yml, .json, .toml or .properties)
          -validate      check the settings, print every problem and the effective settings, then
                         exit without starting anything
          -version       print the version and the git revision, then exit
          -help          print this text, then exit

        Exit codes:
          0  stopped cleanly, or -version, -help or -validate succeeded
          1  invalid settings, a missing config file, or a fatal runtime error
          2  invalid command line

        """

    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
        var options = CommandLineOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
                throw UsageError(description: "unexpected argument \"\(argument)\": pomerium takes flags only")
            }
            var name = Substring(argument.dropFirst(argument.hasPrefix("--") ? 2 : 1))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = name[..<equals]
            }
            switch name {
            case "config":
                if let inlineValue {
                    options.configFile = inlineValue
                } else if index < arguments.count {
                    options.configFile = arguments[index]
                    index += 1
                } else {
                    throw UsageError(description: "flag -config needs a file name: -config config.yaml")
                }
                if options.configFile?.isEmpty == true {
                    throw UsageError(description: "flag -config has an empty file name")
                }
            case "version":
                options.showVersion = try parseBool(flag: "version", inlineValue)
            case "help", "h":
                options.showHelp = try parseBool(flag: String(name), inlineValue)
            case "validate":
                options.validateOnly = try parseBool(flag: "validate", inlineValue)
            default:
                throw UsageError(description: "unknown flag \"\(argument)\"; run pomerium -help for the list")
            }
        }
        return options
    }

    /// Parses the value of a boolean flag written as `-flag=value`, with the spellings Go accepts.
    private static func parseBool(flag: String, _ value: String?) throws(UsageError) -> Bool {
        guard let value else { return true }
        switch value {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default:
            throw UsageError(description: "flag -\(flag) takes true or false, not \"\(value)\"")
        }
    }
}
