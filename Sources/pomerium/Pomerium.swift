import Glibc
import PomeriumCore

/// The `pomerium` executable: parses the flags, then runs the services that the settings select.
@main
enum Pomerium {
    static func main() {
        let options: CommandLineOptions
        do {
            options = try CommandLineOptions.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            writeStandardError("pomerium: \(error.description)\n\n\(CommandLineOptions.usage)")
            exit(ExitCode.usage)
        }
        if options.showHelp {
            writeStandardOutput(CommandLineOptions.usage)
            exit(ExitCode.success)
        }
        if options.showVersion {
            writeStandardOutput("pomerium \(BuildInfo.version) (revision \(BuildInfo.revision))\n")
            exit(ExitCode.success)
        }
        exit(Launcher(options: options).run())
    }
}

/// The process exit codes, as listed in `-help`.
enum ExitCode {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
}

func writeStandardOutput(_ text: String) { writeAll(1, text) }
func writeStandardError(_ text: String) { writeAll(2, text) }

private func writeAll(_ descriptor: Int32, _ text: String) {
    var text = text
    text.withUTF8 { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
