import Glibc
import PomeriumCrypto
import Synchronization

@testable import PomeriumCLI

/// Returns a compact JWS with `claims` as its payload and a placeholder signature.
func makeJWT(_ claims: String) -> String {
    let header = Base64.urlUnpadded.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
    let payload = Base64.urlUnpadded.encode(Array(claims.utf8))
    return "\(header).\(payload).c2lnbmF0dXJl"
}

/// Creates a fresh directory under /tmp for one test and returns its path.
func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/pomerium-cli-test-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { buffer -> String? in
        guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
        return String(cString: result)
    }
    return path ?? "/tmp/pomerium-cli-test-fallback-\(getpid())"
}

func removeDirectory(_ path: String) {
    guard let directory = opendir(path) else { return }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard name != "." && name != ".." else { continue }
        let child = "\(path)/\(name)"
        var status = stat()
        if lstat(child, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            removeDirectory(child)
        } else {
            unlink(child)
        }
    }
    closedir(directory)
    rmdir(path)
}

func fileMode(_ path: String) -> mode_t? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return status.st_mode & 0o777
}

/// A backend that records calls and returns scripted results.
final class FakeBackend: CredentialBackend {
    struct Calls: Sendable {
        var logins = 0
        var refreshes: [String] = []
    }
    let calls = Mutex(Calls())
    let loginResult: Result<RouteCredentials, CLIError>
    let refreshResult: Result<RouteCredentials, CLIError>

    init(login: Result<RouteCredentials, CLIError>, refresh: Result<RouteCredentials, CLIError>) {
        loginResult = login
        refreshResult = refresh
    }

    func login(route: RouteOrigin) async throws(CLIError) -> RouteCredentials {
        calls.withLock { $0.logins += 1 }
        return try loginResult.get()
    }

    func refresh(_ credentials: RouteCredentials) async throws(CLIError) -> RouteCredentials {
        calls.withLock { $0.refreshes.append(credentials.refreshToken) }
        return try refreshResult.get()
    }
}
