import Glibc
import PomeriumCrypto
import PomeriumLogging

/// The assertion signing key used when `signing_key` is not set: generated once, stored as SEC 1
/// PEM in a file with mode 0600, and loaded from that file on every later start and reload. v0.7
/// generated a new key per start and per reload, which broke every upstream's verification.
public enum SigningKeyFile {
    /// Loads the key at `path`, or stores `newKey` there (a freshly generated P-256 key when nil)
    /// when the file does not exist, and returns the key the file holds.
    ///
    /// The new file is written to a temporary name in the same folder and then hard-linked to
    /// `path`, so a reader never sees a partial file, an existing file is never overwritten, and
    /// two processes starting at once end up with the same key.
    ///
    /// - Throws: `KeyError` when the file exists but holds no usable P-256 key, or cannot be written.
    public static func loadOrCreate(path: String, newKey: ECPrivateKey? = nil, logger: Logger) throws -> ECPrivateKey {
        if let existing = try load(path: path, logger: logger) { return existing }
        let key = try newKey ?? ECPrivateKey.generate(curve: .p256)
        guard key.curve == .p256 else { throw KeyError("the key to store in \(path) is not on P-256") }
        let pem = try key.sec1PEM()
        let temporary = "\(path).tmp-\(getpid())-\(Base64.urlUnpadded.encode(try SecureRandom.bytes(6)))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw KeyError(
                "cannot create signing key file \(temporary): \(String(cString: strerror(errno))); check that the folder exists and is writable"
            )
        }
        defer { unlink(temporary) }
        var bytes = Array(pem.utf8)
        let written = write(descriptor, &bytes, bytes.count)
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, synced == 0 else {
            throw KeyError("cannot write signing key file \(temporary): \(String(cString: strerror(errno)))")
        }
        if link(temporary, path) != 0 {
            let error = errno
            if error == EEXIST, let raced = try load(path: path, logger: logger) { return raced }
            throw KeyError("cannot create signing key file \(path): \(String(cString: strerror(error)))")
        }
        let keyID = try JWK(key: .ec(key.publicKey)).thumbprint()
        logger.info("generated a new assertion signing key", metadata: ["path": .string(path), "kid": .string(keyID)])
        return key
    }

    private static func load(path: String, logger: Logger) throws -> ECPrivateKey? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw KeyError("cannot read signing key file \(path): \(String(cString: strerror(errno)))")
        }
        if status.st_mode & 0o077 != 0 {
            logger.warning(
                "signing key file is readable by other users; restrict it with chmod 600",
                metadata: ["path": .string(path)])
        }
        guard let handle = fopen(path, "r") else {
            throw KeyError("cannot open signing key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, handle)
            if count == 0 { break }
            contents.append(contentsOf: buffer[..<count])
            guard contents.count <= 64 * 1024 else { throw KeyError("signing key file \(path) is larger than 64 KiB") }
        }
        do {
            let key = try ECPrivateKey(pem: String(decoding: contents, as: UTF8.self))
            guard key.curve == .p256 else { throw KeyError("the key is not on P-256") }
            return key
        } catch {
            throw KeyError(
                "signing key file \(path) holds no usable P-256 key (\(error)); delete it to generate a new one")
        }
    }
}
