import Glibc
import PomeriumCore
import PomeriumLogging

/// Loads the settings and starts the selected services.
struct Launcher {
    let options: CommandLineOptions

    func run() -> Int32 {
        if let path = options.configFile {
            var status = stat()
            if stat(path, &status) != 0 {
                let reason = String(cString: strerror(errno))
                writeStandardError("pomerium: cannot read config file \"\(path)\": \(reason); check the -config flag\n")
                return ExitCode.failure
            }
        }
        // NOTE: settings loading and the services are wired in as their targets land.
        writeStandardError("pomerium: no services are available in this build yet\n")
        return ExitCode.failure
    }
}
