import Foundation
import PomeriumConfig
import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPClient
import PomeriumHTTPServer
import PomeriumLogging
import PomeriumNet
import PomeriumServer
import PomeriumTestSupport
import Testing

/// Self-signed P-256 certificates made with the `openssl` command, one per DNS name.
struct SelfSignedCertificates {
    let directory: URL

    init() throws {
        directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "listener-tls")
    }

    func certificatePath(_ name: String) -> String { directory.appendingPathComponent("\(name).pem").path }
    func keyPath(_ name: String) -> String { directory.appendingPathComponent("\(name)-key.pem").path }

    func certificate(_ name: String) throws -> String {
        try String(contentsOfFile: certificatePath(name), encoding: .utf8)
    }

    /// Issues a certificate for `name`.example.test and 127.0.0.1.
    func make(_ name: String) throws {
        let result = try CommandRunner.run(
            try Fixtures.findExecutable("openssl").path,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=\(name).example.test", "-addext",
                "subjectAltName=DNS:\(name).example.test,IP:127.0.0.1",
                "-keyout", keyPath(name), "-out", certificatePath(name),
            ])
        guard result.status == 0 else { throw FixtureError("openssl req for \(name) failed") }
    }

    /// Copies the pair `name` over the files that the config names, by rename as certbot does.
    func install(_ name: String, as target: String) throws {
        for (source, destination) in [
            (certificatePath(name), certificatePath(target)), (keyPath(name), keyPath(target)),
        ] {
            let temporary = destination + ".tmp"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
            #expect(rename(temporary, destination) == 0)
        }
    }
}

@Suite("Listener reload")
struct ListenerReloaderTests {
    static func config(certificate: String, key: String, extra: String = "") -> String {
        """
        address: 127.0.0.1:0
        certificate_file: \(certificate)
        certificate_key_file: \(key)
        authenticate_service_url: https://authenticate.example.test
        idp_provider: oidc
        idp_provider_url: http://127.0.0.1:5556
        idp_client_id: client
        idp_client_secret: secret
        cookie_secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
        shared_secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
        policy:
          - from: https://app.example.test
            to: http://127.0.0.1:9
            allow_public_unauthenticated_access: true

        """ + extra
    }

    /// A running TLS listener wired to a config file the way `pomerium` wires it.
    struct Harness {
        let file: URL
        let reloader: ConfigReloader
        let services: ServiceReloader
        let server: HTTPServer
        let tls: TLSServerContext
        let logs: InMemoryLogHandler.Store
        let level: AdjustableLogLevel
    }

    func withListener(
        _ certificates: SelfSignedCertificates, extra: String = "",
        _ body: (Harness, HTTPClient) async throws -> Void
    ) async throws {
        let file = certificates.directory.appendingPathComponent("config.yaml")
        try Self.config(
            certificate: certificates.certificatePath("live"), key: certificates.keyPath("live"), extra: extra
        ).write(to: file, atomically: true, encoding: .utf8)
        let loader = ConfigLoader(configFile: file.path, environment: { [:] })
        let inputs = loader.readInputs()
        let result = loader.load(inputs: inputs)
        try #require(result.isValid, "\(result.problems)")
        let holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: result.options, warnings: result.warnings, inputs: result.inputs, generation: 1))
        let logs = InMemoryLogHandler.Store()
        let logger = Logger.inMemory(store: logs)
        let tls = try #require(try ServerTLS.makeContext(options: result.options))
        let timeouts = ServerTimeouts(options: result.options)
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let build: ServiceSetBuilder = { snapshot in
            ServiceSet(
                authenticateHost: nil, authenticate: nil, proxy: nil, responseHeaders: HTTPHeaders(),
                generation: snapshot.generation)
        }
        let dispatcher = HostDispatcher(services: try build(holder.current), logger: logger)
        let server = try await HTTPServer(
            group: group,
            configuration: HTTPServerConfiguration(
                address: try SocketAddress(parsing: "127.0.0.1:0"), tls: tls, readHeaderTimeout: timeouts.readHeader,
                readTimeout: timeouts.read, writeTimeout: timeouts.write, idleTimeout: timeouts.idle)
        ) { loop in dispatcher.makeHandler(loop: loop) }
        let level = AdjustableLogLevel(.debug)
        let listener = ListenerReloader(
            server: server, tls: tls, options: result.options, logLevel: level, logger: logger)
        let harness = Harness(
            file: file, reloader: ConfigReloader(loader: loader, holder: holder, logger: logger),
            services: ServiceReloader(
                dispatcher: dispatcher, holder: holder, listener: listener, logger: logger, build: build),
            server: server, tls: tls, logs: logs, level: level)
        do {
            try await body(harness, HTTPClient(group: group))
        } catch {
            await server.shutdown(gracePeriod: 0)
            throw error
        }
        await server.shutdown(gracePeriod: 0)
    }

    /// GET /healthz over TLS, trusting only the certificate `trusted`, so success proves which
    /// certificate the listener presented.
    func health(
        _ client: HTTPClient, _ server: HTTPServer, trusting trusted: String, name: String
    ) async throws -> HTTPClientResponse {
        let tls = TLSClientConfiguration(trustRoots: .pem(Array(trusted.utf8)), serverNameOverride: name)
        let head = try HTTPRequestHead(method: .get, target: "/healthz", headers: ["Host": name])
        return try await client.send(
            head, to: HTTPUpstream(scheme: .https, host: "127.0.0.1", port: server.localAddress.port, tls: tls))
    }

    @Test("a renewed certificate reaches new connections and the open keep-alive one stays up")
    func certificateReload() async throws {
        let certificates = try SelfSignedCertificates()
        try certificates.make("first")
        try certificates.make("second")
        try certificates.install("first", as: "live")
        let first = try certificates.certificate("first")
        let second = try certificates.certificate("second")
        try await withListener(certificates) { harness, client in
            let loop = harness.server.group.loops[0]
            let before = try await health(client, harness.server, trusting: first, name: "first.example.test")
            #expect(before.head.status == 200)
            #expect(await client.connectionsOpened(on: loop) == 1)

            try certificates.install("second", as: "live")
            #expect(harness.services.apply(harness.reloader.reload()))
            #expect(harness.tls.replacementCount == 1)
            #expect(harness.logs.all.contains { $0.message.contains("listener certificates replaced") })

            // The pooled keep-alive connection still carries requests, with the old certificate.
            let reused = try await health(client, harness.server, trusting: first, name: "first.example.test")
            #expect(reused.head.status == 200)
            #expect(await client.connectionsOpened(on: loop) == 1)

            // A new connection gets the new certificate and fails to verify against the old one.
            let fresh = HTTPClient(group: harness.server.group)
            let after = try await health(fresh, harness.server, trusting: second, name: "second.example.test")
            #expect(after.head.status == 200)
            await #expect(throws: (any Error).self) {
                _ = try await health(
                    HTTPClient(group: harness.server.group), harness.server, trusting: first,
                    name: "first.example.test")
            }
        }
    }

    @Test("a certificate that does not match its key changes nothing and names the key and the file")
    func invalidCertificateReload() async throws {
        let certificates = try SelfSignedCertificates()
        try certificates.make("first")
        try certificates.make("second")
        try certificates.install("first", as: "live")
        let first = try certificates.certificate("first")
        try await withListener(certificates) { harness, _ in
            // The second certificate with the first key: both files parse, but they do not match.
            try FileManager.default.removeItem(atPath: certificates.certificatePath("live"))
            try FileManager.default.copyItem(
                atPath: certificates.certificatePath("second"), toPath: certificates.certificatePath("live"))
            let outcome = harness.reloader.reload()
            guard case .rejected(let problems) = outcome else {
                Issue.record("a mismatched certificate and key were not rejected: \(outcome)")
                return
            }
            #expect(!harness.services.apply(outcome))
            let problem = try #require(problems.first { $0.severity == .error })
            #expect(problem.key == "certificate_file")
            #expect(problem.message.contains(certificates.certificatePath("live")))
            #expect(problem.message.contains(certificates.keyPath("live")))
            let logged = harness.logs.all.filter { $0.level == .error }.map(\.jsonLine).joined(separator: "\n")
            #expect(logged.contains("certificate_file"))
            #expect(logged.contains(certificates.certificatePath("live")))
            #expect(harness.tls.replacementCount == 0)
            let still = try await health(
                HTTPClient(group: harness.server.group), harness.server, trusting: first, name: "first.example.test")
            #expect(still.head.status == 200)
        }
    }

    @Test("a reload adds a certificate to the SNI set")
    func sniSetReload() async throws {
        let certificates = try SelfSignedCertificates()
        for name in ["first", "extra"] { try certificates.make(name) }
        try certificates.install("first", as: "live")
        let extra = try certificates.certificate("extra")
        try await withListener(certificates) { harness, _ in
            try
                (Self.config(
                    certificate: certificates.certificatePath("live"), key: certificates.keyPath("live"),
                    extra: """
                        certificates:
                          - cert_file: \(certificates.certificatePath("extra"))
                            key_file: \(certificates.keyPath("extra"))

                        """)).write(to: harness.file, atomically: true, encoding: .utf8)
            #expect(harness.services.apply(harness.reloader.reload()))
            let chosen = try await health(
                HTTPClient(group: harness.server.group), harness.server, trusting: extra, name: "extra.example.test")
            #expect(chosen.head.status == 200)
        }
    }

    @Test("timeouts and log_level apply to new connections and every logger")
    func timeoutsAndLogLevel() async throws {
        let certificates = try SelfSignedCertificates()
        try certificates.make("first")
        try certificates.install("first", as: "live")
        try await withListener(certificates) { harness, _ in
            #expect(harness.server.currentConfiguration.idleTimeout == 300)
            let followed = Logger(
                label: "test",
                handler: AdjustableLevelLogHandler(base: InMemoryLogHandler(store: harness.logs), level: harness.level))
            #expect(followed.logLevel == .debug)

            let edited = Self.config(
                certificate: certificates.certificatePath("live"), key: certificates.keyPath("live"),
                extra:
                    "timeout_idle: 45s\ntimeout_read: 1m\ntimeout_write: 2s\ntimeout_read_header: 3s\nlog_level: warn\n"
            )
            try edited.write(to: harness.file, atomically: true, encoding: .utf8)
            let outcome = harness.reloader.reload()
            guard case .applied(let report) = outcome else {
                Issue.record("the timeout edit was not applied: \(outcome)")
                return
            }
            #expect(report.restartKeys.isEmpty)
            #expect(harness.services.apply(outcome))
            let configuration = harness.server.currentConfiguration
            #expect(configuration.idleTimeout == 45)
            #expect(configuration.readTimeout == 60)
            #expect(configuration.writeTimeout == 2)
            #expect(configuration.readHeaderTimeout == 3)
            #expect(harness.server.configuration.idleTimeout == 300)
            #expect(harness.level.level == .warning)
            #expect(followed.logLevel == .warning)
            #expect(harness.tls.replacementCount == 0)
        }
    }
}
