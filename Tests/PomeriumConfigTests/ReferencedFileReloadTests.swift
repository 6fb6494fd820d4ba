import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

/// A reload notices a changed file that a `_file` setting names while config.yaml stays the same.
@Suite struct ReferencedFileReloadTests {
    /// A directory apart from the config file's, as /etc/ssl is apart from /etc/pomerium.
    static func certificateDirectory() throws -> URL {
        try RepositoryPaths.makeTemporaryDirectory(prefix: "pomerium-certs")
    }

    static func write(_ text: String, to url: URL) throws {
        // Written beside and renamed over, as certbot and cert-manager replace files.
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".tmp-" + url.lastPathComponent)
        try Data(text.utf8).write(to: temporary)
        #expect(rename(temporary.path, url.path) == 0)
    }

    @Test func renewedCertificateIsReloaded() throws {
        let certificates = try Self.certificateDirectory()
        let certificate = certificates.appendingPathComponent("tls.crt")
        let key = certificates.appendingPathComponent("tls.key")
        try Self.write(TestMaterial.serverCertificate, to: certificate)
        try Self.write(TestMaterial.serverKey, to: key)
        let fixture = try ReloadFixture(
            TestConfig.baseYAML + "certificate_file: \(certificate.path)\ncertificate_key_file: \(key.path)\n")
        #expect(Set(fixture.holder.current.inputs.referencedFiles.keys) == [certificate.path, key.path])
        guard case .unchanged = fixture.reloader.reload() else {
            Issue.record("a reload without any change was not reported as unchanged")
            return
        }

        try Self.write(TestMaterial.otherCertificate, to: certificate)
        try Self.write(TestMaterial.otherKey, to: key)
        guard case .applied(let report) = fixture.reloader.reload() else {
            Issue.record("the renewed certificate was not reloaded")
            return
        }
        #expect(report.changedKeys.contains("certificate"))
        let pair = try #require(fixture.holder.current.options.tlsCertificates.first)
        #expect(pair.certificatePEM == TestMaterial.otherCertificate)
        guard case .unchanged = fixture.reloader.reload() else {
            Issue.record("the reload after the renewal did not settle")
            return
        }
    }

    @Test func fileThatAppearsLaterIsNoticed() throws {
        let certificates = try Self.certificateDirectory()
        let authority = certificates.appendingPathComponent("ca.pem")
        try Self.write(TestMaterial.serverCertificate, to: authority)
        let fixture = try ReloadFixture(TestConfig.baseYAML + "certificate_authority_file: \(authority.path)\n")
        try FileManager.default.removeItem(at: authority)
        guard case .rejected = fixture.reloader.reload() else {
            Issue.record("a removed certificate_authority_file was not noticed")
            return
        }
        try Self.write(TestMaterial.otherCertificate, to: authority)
        guard case .applied(let report) = fixture.reloader.reload() else {
            Issue.record("the restored file was not reloaded")
            return
        }
        #expect(report.changedKeys == ["certificate_authority"])
    }

    @Test func watcherReloadsOnAChangeInTheCertificateDirectory() async throws {
        let certificates = try Self.certificateDirectory()
        let authority = certificates.appendingPathComponent("ca.pem")
        try Self.write(TestMaterial.serverCertificate, to: authority)
        let fixture = try ReloadFixture(TestConfig.baseYAML + "certificate_authority_file: \(authority.path)\n")
        let (watcher, recorder) = try ConfigWatcherTests.startWatcher(fixture)
        #expect(watcher.referencedDirectories == [certificates.path])
        try Self.write(TestMaterial.otherCertificate, to: authority)
        let outcomes = await recorder.wait(count: 1)
        guard case .applied(let report)? = outcomes.last else {
            Issue.record("no applied reload: \(outcomes)")
            await ConfigWatcherTests.stop(watcher)
            return
        }
        #expect(report.changedKeys == ["certificate_authority"])
        await ConfigWatcherTests.stop(watcher)
    }
}
