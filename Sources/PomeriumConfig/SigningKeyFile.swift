import Glibc
import PomeriumCore

/// Stores a generated signing key at `signing_key_file`, so the key, and every assertion that
/// upstreams verified with it, survives a restart.
public enum SigningKeyFile {
    /// Writes the generated key to `options.signingKeyFile` when the options hold a generated key
    /// and the file does not exist yet. The file is created with mode 0600 and never overwritten.
    /// Returns whether a file was written.
    @discardableResult
    public static func persistGeneratedKey(_ options: Options) throws(PomeriumError) -> Bool {
        guard options.signingKeyIsGenerated, let path = options.signingKeyFile, let pem = options.signingKeyPEM else {
            return false
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            if errno == EEXIST { return false }
            throw PomeriumError(
                "signing-key-file", "cannot create signing_key_file \"\(path)\": \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var remaining = Array(pem.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw PomeriumError(
                    "signing-key-file", "cannot write signing_key_file \"\(path)\": \(String(cString: strerror(errno)))"
                )
            }
            remaining = remaining.dropFirst(written)
        }
        return true
    }
}
