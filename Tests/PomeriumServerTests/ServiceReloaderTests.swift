import Foundation
import PomeriumConfig
import PomeriumLogging
import PomeriumServer
import Synchronization
import Testing

@Suite("Service reload")
struct ServiceReloaderTests {
    static func config(routes: [String]) -> String {
        var text = """
            insecure_server: true
            address: 127.0.0.1:0
            authenticate_service_url: https://authenticate.example.test
            idp_provider: oidc
            idp_provider_url: http://127.0.0.1:5556
            idp_client_id: client
            idp_client_secret: secret
            cookie_secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
            shared_secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
            policy:

            """
        for host in routes {
            text +=
                "  - from: https://\(host).example.test\n    to: http://127.0.0.1:8000\n    allow_public_unauthenticated_access: true\n"
        }
        return text
    }

    func withReloader(
        _ body: (URL, ConfigReloader, HostDispatcher, ServiceReloader, Flag) throws -> Void
    ) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("config.yaml")
        try Self.config(routes: ["one"]).write(to: file, atomically: true, encoding: .utf8)
        let loader = ConfigLoader(configFile: file.path, environment: { [:] })
        let inputs = loader.readInputs()
        let result = loader.load(inputs: inputs)
        #expect(result.isValid, "\(result.problems)")
        let holder = ConfigSnapshotHolder(
            ConfigSnapshot(options: result.options, warnings: result.warnings, inputs: inputs, generation: 1))
        let logger = Logger.inMemory(store: .init())
        let failBuild = Flag()
        let build: ServiceSetBuilder = { snapshot in
            if failBuild.isSet { throw BuildFailure() }
            return ServiceSet(
                authenticateHost: nil, authenticate: nil, proxy: nil,
                responseHeaders: ServiceSet.responseHeaders(from: ["X-Routes": "\(snapshot.options.policy.count)"]),
                generation: snapshot.generation)
        }
        let dispatcher = HostDispatcher(services: try build(holder.current), logger: logger)
        let reloader = ConfigReloader(loader: loader, holder: holder, logger: logger)
        let services = ServiceReloader(dispatcher: dispatcher, holder: holder, logger: logger, build: build)
        try body(file, reloader, dispatcher, services, failBuild)
    }

    @Test("an applied reload swaps in services built from the new snapshot")
    func appliedReloadSwaps() throws {
        try withReloader { file, reloader, dispatcher, services, _ in
            try Self.config(routes: ["one", "two"]).write(to: file, atomically: true, encoding: .utf8)
            #expect(services.apply(reloader.reload()))
            #expect(dispatcher.services.generation == 2)
            #expect(dispatcher.services.responseHeaders.first(name: "X-Routes") == "2")
        }
    }

    @Test("an unchanged or invalid config leaves the services alone")
    func unchangedOrRejected() throws {
        try withReloader { file, reloader, dispatcher, services, _ in
            #expect(!services.apply(reloader.reload()))
            try "policy: [".write(to: file, atomically: true, encoding: .utf8)
            #expect(!services.apply(reloader.reload()))
            #expect(dispatcher.services.generation == 1)
        }
    }

    @Test("a snapshot whose services cannot be built keeps the running services")
    func failedBuildKeepsOld() throws {
        try withReloader { file, reloader, dispatcher, services, failBuild in
            failBuild.isSet = true
            try Self.config(routes: ["one", "two", "three"]).write(to: file, atomically: true, encoding: .utf8)
            #expect(!services.apply(reloader.reload()))
            #expect(dispatcher.services.generation == 1)
            #expect(dispatcher.services.responseHeaders.first(name: "X-Routes") == "1")
        }
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

struct BuildFailure: Error {}
