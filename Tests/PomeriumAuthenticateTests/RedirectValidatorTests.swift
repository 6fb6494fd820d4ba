import Foundation
import Testing

@testable import PomeriumAuthenticate

/// The redirect validator against the generated open-redirect payloads
/// (Resources/generate_redirects.py) and a list of legitimate targets.
@Suite struct RedirectValidatorTests {
    static let validator = RedirectValidator(
        allowedHosts: ["app.example.test", "authn.example.test", "fwd.example.test"],
        programmaticHosts: ["localhost", "127.0.0.1", "::1"]
    )

    static func resource(_ name: String) throws -> [String] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources").appendingPathComponent(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines.map(unescape)
    }

    /// Reverses the generator's escaping of backslash, tab, newline and carriage return.
    static func unescape(_ line: String) -> String {
        var output = ""
        var iterator = line.makeIterator()
        while let character = iterator.next() {
            guard character == "\\", let next = iterator.next() else {
                output.append(character)
                continue
            }
            switch next {
            case "t": output.append("\t")
            case "n": output.append("\n")
            case "r": output.append("\r")
            default: output.append(next)
            }
        }
        return output
    }

    @Test func payloadFileHasEnoughEntries() throws {
        let payloads = try Self.resource("open-redirects.txt")
        #expect(payloads.count >= 500)
        let set = Set(payloads)
        for sample in [
            "https://evil.test", "//evil.test", "https://evil.test\\@app.example.test", "javascript:alert(1)",
        ] {
            let present = set.contains(sample)
            #expect(present, "\(sample)")
        }
    }

    @Test func everyPayloadRejected() throws {
        var accepted: [String] = []
        for payload in try Self.resource("open-redirects.txt") {
            if (try? Self.validator.validate(payload)) != nil { accepted.append(payload) }
        }
        #expect(accepted.isEmpty, "accepted: \(accepted.prefix(20))")
    }

    @Test func everyPayloadRejectedForProgrammaticLogin() throws {
        // Programmatic login adds loopback hosts; payloads aimed at 127.0.0.1 with a clean path
        // are then legitimate, so only the ones aimed at evil.test are replayed.
        var accepted: [String] = []
        for payload in try Self.resource("open-redirects.txt") where payload.contains("evil") {
            if (try? Self.validator.validate(payload, programmatic: true)) != nil { accepted.append(payload) }
        }
        #expect(accepted.isEmpty, "accepted: \(accepted.prefix(20))")
    }

    @Test func legitimateTargetsAccepted() throws {
        let targets = try Self.resource("legitimate-redirects.txt")
        #expect(targets.count >= 10)
        for target in targets {
            #expect(throws: Never.self, "\(target)") { try Self.validator.validate(target) }
        }
    }

    @Test func programmaticLoopbackOnlyWhenProgrammatic() throws {
        for target in ["http://localhost:8000", "http://127.0.0.1:8000/cb", "http://[::1]:9000/"] {
            #expect(throws: RedirectRejection.self) { try Self.validator.validate(target) }
            #expect(throws: Never.self) { try Self.validator.validate(target, programmatic: true) }
        }
    }

    @Test func hostComparedCaseInsensitively() throws {
        let url = try Self.validator.validate("HTTPS://App.Example.Test/Path")
        #expect(url.host == "app.example.test")
        #expect(url.path == "/Path")
    }

    @Test func rejectionNamesReason() {
        #expect(throws: RedirectRejection(reason: "the target's host is not an allowed host")) {
            try Self.validator.validate("https://evil.test/")
        }
        #expect(throws: RedirectRejection(reason: "the target contains user information")) {
            try Self.validator.validate("https://app.example.test@evil.test/")
        }
        #expect(throws: RedirectRejection(reason: "the target's path starts with two slashes")) {
            try Self.validator.validate("https://app.example.test//evil.test")
        }
    }

    @Test func deeplyEncodedPathRejected() {
        var path = "//evil.test"
        for _ in 0..<8 {
            path = path.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        }
        #expect(throws: RedirectRejection.self) { try Self.validator.validate("https://app.example.test/" + path) }
    }
}
