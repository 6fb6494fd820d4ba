import Glibc
import PomeriumCLI
import PomeriumCore
import PomeriumLogging

/// The `pomerium-cli` executable: signs in to Pomerium routes from scripts.
@main
enum PomeriumCLIMain {
    static func main() async {
        let options: CLIOptions
        do {
            options = try CLIOptions.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            CLIOutput.standardError("pomerium-cli: \(error.message)\n\n\(CLIOptions.usage)")
            exit(2)
        }
        if options.showHelp {
            CLIOutput.standardOutput(CLIOptions.usage)
            exit(0)
        }
        if options.showVersion {
            CLIOutput.standardOutput("pomerium-cli \(BuildInfo.version) (revision \(BuildInfo.revision))\n")
            exit(0)
        }
        let level: Logger.Level = options.verbose ? .debug : .warning
        LoggingSystem.bootstrap { _ in ConsoleLogHandler(logLevel: level) }
        var environment: [String: String] = [:]
        for entry in ChildProcess.currentEnvironment() {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        let runner = CLIRunner(options: options, environment: environment, logger: Logger(label: "pomerium-cli"))
        exit(await runner.run())
    }
}
