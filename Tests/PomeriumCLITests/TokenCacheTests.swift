import Glibc
import PomeriumCore
import PomeriumLogging
import Synchronization
import Testing

@testable import PomeriumCLI

@Suite("route credentials")
struct RouteCredentialsTests {
    @Test("expiry comes from the JWT's exp claim")
    func expiry() throws {
        let route = try RouteOrigin(parsing: "https://app.example.test")
        let credentials = RouteCredentials(
            route: route, authenticateURL: "https://authn.example.test", jwt: makeJWT(#"{"exp":1000}"#),
            refreshToken: "r")
        #expect(credentials.expiry == 1000)
        #expect(credentials.isValid(now: 900, margin: 60))
        #expect(!credentials.isValid(now: 940, margin: 60), "a token inside the margin counts as expired")
        #expect(!credentials.isValid(now: 1000, margin: 0))
    }

    @Test("a token without exp counts as expired")
    func missingExpiry() throws {
        let route = try RouteOrigin(parsing: "https://app.example.test")
        for jwt in [makeJWT(#"{"sub":"x"}"#), "not-a-jwt", "a.b", makeJWT("not json")] {
            let credentials = RouteCredentials(route: route, authenticateURL: "", jwt: jwt, refreshToken: "r")
            #expect(credentials.expiry == nil)
            #expect(!credentials.isValid(now: 0, margin: 0))
        }
    }

    @Test("compact JWS shape")
    func compactShape() {
        #expect(RouteCredentials.isCompactJWS(makeJWT("{}")))
        #expect(!RouteCredentials.isCompactJWS("a.b"))
        #expect(!RouteCredentials.isCompactJWS("a..c"))
        #expect(!RouteCredentials.isCompactJWS("a.b.c!"))
    }
}

@Suite("token cache")
struct TokenCacheTests {
    let route = try! RouteOrigin(parsing: "https://app.example.test:8443")

    func credentials(_ jwt: String = makeJWT(#"{"exp":2000000000}"#)) -> RouteCredentials {
        RouteCredentials(
            route: route, authenticateURL: "https://authn.example.test:8443", jwt: jwt, refreshToken: "refresh-1")
    }

    @Test("save and load round trip with private modes")
    func roundTrip() throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base + "/nested/pomerium-cli")
        try cache.save(credentials())
        #expect(cache.load(route) == credentials())
        #expect(fileMode(cache.path(for: route)) == 0o600)
        #expect(fileMode(cache.directory) == 0o700)
        #expect(cache.path(for: route).hasSuffix("/https_app.example.test_8443.json"))
        try cache.save(credentials(makeJWT(#"{"exp":1}"#)))
        #expect(cache.load(route)?.expiry == 1, "a second save replaces the file")
    }

    @Test("a file others may read is ignored with a warning")
    func openModeIgnored() throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        try cache.save(credentials())
        chmod(cache.path(for: route), 0o644)
        let warnings = Mutex<[String]>([])
        #expect(cache.load(route, warning: { message in warnings.withLock { $0.append(message) } }) == nil)
        #expect(warnings.withLock { $0 }.first?.contains("its mode is 644, expected 600") == true)
    }

    @Test("a file of another route or malformed JSON is ignored")
    func foreignOrMalformed() throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        let other = try RouteOrigin(parsing: "https://other.example.test")
        try cache.save(credentials())
        rename(cache.path(for: route), cache.path(for: other))
        #expect(cache.load(other) == nil)
        let descriptor = open(cache.path(for: route), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = write(descriptor, "{oops", 5)
        close(descriptor)
        #expect(cache.load(route) == nil)
    }

    @Test("remove reports whether a token existed")
    func remove() throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        #expect(try cache.remove(route) == false)
        try cache.save(credentials())
        #expect(try cache.remove(route) == true)
        #expect(cache.load(route) == nil)
    }

    @Test("IPv6 hosts become safe file names")
    func ipv6Name() throws {
        let cache = TokenCache(directory: "/c")
        #expect(cache.path(for: try RouteOrigin(parsing: "https://[::1]:8443")) == "/c/https___1_8443.json")
    }

    @Test("default directory follows XDG_CACHE_HOME, then HOME")
    func defaultDirectory() throws {
        #expect(
            try TokenCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/pomerium-cli")
        #expect(
            try TokenCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/h"])
                == "/h/.cache/pomerium-cli")
        #expect(throws: CLIError.self) { try TokenCache.defaultDirectory(environment: [:]) }
    }

    @Test("an unwritable directory is named")
    func unwritable() throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let file = base + "/file"
        close(open(file, O_WRONLY | O_CREAT, 0o600))
        let cache = TokenCache(directory: file + "/sub")
        do {
            try cache.save(credentials())
            Issue.record("saving under a regular file succeeded")
        } catch {
            #expect(error.kind == .cache)
            #expect(error.message.contains(file))
            #expect(error.message.contains("--cache-dir"))
        }
    }
}

@Suite("credential manager")
struct CredentialManagerTests {
    let route = try! RouteOrigin(parsing: "https://app.example.test")
    let clock = ManualWallClock(now: 1_000)

    func credentials(expiry: Int64, refresh: String) -> RouteCredentials {
        RouteCredentials(
            route: route, authenticateURL: "https://authn.example.test", jwt: makeJWT("{\"exp\":\(expiry)}"),
            refreshToken: refresh)
    }

    let logs = InMemoryLogHandler.Store()

    func manager(_ backend: FakeBackend, cache: TokenCache?) -> CredentialManager {
        CredentialManager(
            backend: backend, cache: cache, clock: clock, minimumValidity: 60, logger: .inMemory(store: logs))
    }

    @Test("a valid cached token is used without the backend")
    func cachedToken() async throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        try cache.save(credentials(expiry: 2_000, refresh: "cached"))
        let backend = FakeBackend(
            login: .failure(CLIError(.login, "unused")), refresh: .failure(CLIError(.rejected, "unused")))
        let result = try await manager(backend, cache: cache).credentials(for: route)
        #expect(result.refreshToken == "cached")
        #expect(backend.calls.withLock { $0.logins } == 0)
        #expect(backend.calls.withLock { $0.refreshes }.isEmpty)
    }

    @Test("a token expiring within the margin is refreshed and stored")
    func refresh() async throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        try cache.save(credentials(expiry: 1_030, refresh: "old"))
        let backend = FakeBackend(
            login: .failure(CLIError(.login, "unused")), refresh: .success(credentials(expiry: 5_000, refresh: "new")))
        let result = try await manager(backend, cache: cache).credentials(for: route)
        #expect(result.refreshToken == "new")
        #expect(backend.calls.withLock { $0.refreshes } == ["old"])
        #expect(backend.calls.withLock { $0.logins } == 0)
        #expect(cache.load(route)?.refreshToken == "new")
    }

    @Test("a failed refresh falls back to a login")
    func refreshFails() async throws {
        let base = makeTemporaryDirectory()
        defer { removeDirectory(base) }
        let cache = TokenCache(directory: base)
        try cache.save(credentials(expiry: 900, refresh: "old"))
        let backend = FakeBackend(
            login: .success(credentials(expiry: 5_000, refresh: "login")),
            refresh: .failure(CLIError(.rejected, "refused")))
        let result = try await manager(backend, cache: cache).credentials(for: route)
        #expect(result.refreshToken == "login")
        #expect(backend.calls.withLock { $0.refreshes } == ["old"])
        #expect(backend.calls.withLock { $0.logins } == 1)
        #expect(cache.load(route)?.refreshToken == "login")
        let warning = logs.all.first { $0.message == "refreshing the token failed; signing in again" }
        #expect(warning?.level == .warning)
        #expect(warning?.metadata["error"] == "refused")
    }

    @Test("without a cache every call logs in")
    func noCache() async throws {
        let backend = FakeBackend(
            login: .success(credentials(expiry: 5_000, refresh: "login")),
            refresh: .failure(CLIError(.rejected, "unused")))
        _ = try await manager(backend, cache: nil).credentials(for: route)
        _ = try await manager(backend, cache: nil).credentials(for: route)
        #expect(backend.calls.withLock { $0.logins } == 2)
    }

    @Test("a login failure reaches the caller")
    func loginFails() async throws {
        let backend = FakeBackend(
            login: .failure(CLIError(.login, "timed out")), refresh: .failure(CLIError(.rejected, "unused")))
        do {
            _ = try await manager(backend, cache: nil).credentials(for: route)
            Issue.record("no error")
        } catch {
            #expect(error.message == "timed out")
        }
    }

    @Test("renew refreshes a rejected token first")
    func renew() async throws {
        let backend = FakeBackend(
            login: .failure(CLIError(.login, "unused")), refresh: .success(credentials(expiry: 5_000, refresh: "new")))
        let result = try await manager(backend, cache: nil).renew(credentials(expiry: 5_000, refresh: "old"))
        #expect(result.refreshToken == "new")
        #expect(backend.calls.withLock { $0.refreshes } == ["old"])
    }
}
