import Glibc
import PomeriumConfig
import PomeriumCore
import PomeriumLogging
import PomeriumNet
import PomeriumServer

/// Loads the settings and starts the selected services.
struct Launcher {
    let options: CommandLineOptions

    func run() -> Int32 {
        if let path = options.configFile {
            var status = stat()
            if stat(path, &status) != 0 {
                let reason = String(cString: strerror(errno))
                // debugDescription quotes the path and escapes control characters, so a hostile name
                // cannot forge extra lines in the output.
                writeStandardError(
                    "pomerium: cannot read config file \(path.debugDescription): \(reason); check the -config flag\n")
                return ExitCode.failure
            }
        }
        let loader = ConfigLoader(configFile: options.configFile)
        let inputs = loader.readInputs()
        let result = loader.load(inputs: inputs)
        if options.validateOnly {
            return printValidation(result)
        }
        guard result.isValid else {
            for problem in result.problems {
                writeStandardError("pomerium: \(problem)\n")
            }
            writeStandardError(
                "pomerium: the configuration is invalid (\(result.errors.count) errors); fix the errors above, "
                    + "or run with -validate to see the effective settings\n")
            return ExitCode.failure
        }
        for problem in result.warnings {
            writeStandardError("pomerium: \(problem)\n")
        }
        let settings = result.options
        if settings.services == .authorize || settings.services == .cache {
            writeStandardError(
                "pomerium: services \"\(settings.services.rawValue)\" needs the gRPC server, which this build "
                    + "does not have yet; set the services key to all, authenticate or proxy\n")
            return ExitCode.failure
        }
        LoggingSystem.bootstrap(LoggingBootstrap.factory(options: settings))
        // A client that closes its connection while a response is written (over TLS, OpenSSL
        // writes with write(2)) must cost that connection only, not the process.
        signal(SIGPIPE, SIG_IGN)
        // Block the stop signals before any other thread starts, so that only the signalfd sees them.
        do {
            try SignalWatcher.blockSignals(Runtime.stopSignals)
        } catch {
            writeStandardError("pomerium: cannot block SIGTERM and SIGINT: \(error)\n")
            return ExitCode.failure
        }
        // result.inputs carries the stamps of the files that _file settings name; without them a
        // renewed certificate file would look unchanged to the first reload.
        let snapshot = ConfigSnapshot(
            options: settings, warnings: result.warnings, inputs: result.inputs, generation: 1)
        let runtime = Runtime(loader: loader, snapshot: snapshot, watchConfig: options.configFile != nil)
        return runtime.runBlocking()
    }

    /// Prints every problem, the effective settings with secrets redacted, and a summary; starts nothing.
    private func printValidation(_ result: ConfigLoadResult) -> Int32 {
        var output = ""
        for problem in result.problems {
            output += "\(problem)\n"
        }
        if !result.problems.isEmpty { output += "\n" }
        output += "effective settings (secrets redacted):\n"
        for line in EffectiveSettings.displayLines(result.options) {
            output += "  \(line)\n"
        }
        output += "\n"
        if result.isValid {
            output += "configuration is valid (\(result.warnings.count) warnings)\n"
        } else {
            output += "configuration is invalid: \(result.errors.count) errors, \(result.warnings.count) warnings\n"
        }
        writeStandardOutput(output)
        return result.isValid ? ExitCode.success : ExitCode.failure
    }
}
