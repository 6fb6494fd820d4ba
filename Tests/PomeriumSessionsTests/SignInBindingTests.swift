import PomeriumCore
import PomeriumHTTP
import Testing

@testable import PomeriumSessions

@Suite("Sign-in binding")
struct SignInBindingTests {
    let clock = ManualWallClock(now: SessionFixtures.now)
    var binding: SignInBinding { SignInBinding(settings: CookieSettings(), clock: clock) }

    /// Returns the `name=value` pair of a `Set-Cookie` value.
    static func pair(_ setCookie: String?) throws -> (name: String, value: String) {
        let first = try #require(setCookie?.split(separator: ";").first)
        let parts = first.split(separator: "=", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }

    @Test("own cookie matches")
    func matching() throws {
        let start = try binding.start(cookies: [])
        let setCookie = try #require(start.setCookie)
        #expect(setCookie.hasPrefix("_pomerium_signin="))
        #expect(setCookie.contains("HttpOnly"))
        #expect(setCookie.contains("SameSite=Lax"))
        #expect(setCookie.contains("Secure"))
        #expect(setCookie.contains("Max-Age=900"))
        #expect(!setCookie.contains("Domain="), "host-only, so it stays on the route host")
        #expect(SignInBinding.isWellFormed(start.binding))
        try binding.check(binding: start.binding, cookies: [try Self.pair(setCookie)])
    }

    @Test("another browser's cookie does not match")
    func mismatch() throws {
        let victim = try binding.start(cookies: [])
        let attacker = try binding.start(cookies: [])
        #expect(victim.binding != attacker.binding)
        #expect(throws: SignInBinding.Failure.mismatch) {
            try binding.check(binding: attacker.binding, cookies: [try Self.pair(victim.setCookie)])
        }
    }

    @Test("a browser without the cookie is refused")
    func missingCookie() throws {
        let start = try binding.start(cookies: [])
        #expect(throws: SignInBinding.Failure.missingCookie) {
            try binding.check(binding: start.binding, cookies: [("_pomerium", "v1.abc")])
        }
    }

    @Test("used link fails after clearing")
    func replay() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        try binding.check(binding: start.binding, cookies: [cookie])
        let clearing = try binding.clearingHeader()
        #expect(clearing.hasPrefix("_pomerium_signin=;"))
        #expect(clearing.contains("Max-Age=0"))
        #expect(throws: SignInBinding.Failure.missingCookie) {
            try binding.check(binding: start.binding, cookies: [])
        }
    }

    @Test("a sign-in older than the lifetime is refused")
    func expiry() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        clock.advance(by: Double(SignInBinding.lifetime))
        try binding.check(binding: start.binding, cookies: [cookie])
        clock.advance(by: 1)
        #expect(throws: SignInBinding.Failure.expired) {
            try binding.check(binding: start.binding, cookies: [cookie])
        }
    }

    @Test("future issue time refused")
    func future() throws {
        let value = "\(clock.unixSeconds() + 3600).abcdefghijklmnopqrstuvwxyzABCDEF"
        let bound = try SignInBinding.binding(for: value)
        #expect(throws: SignInBinding.Failure.expired) {
            try binding.check(binding: bound, cookies: [("_pomerium_signin", value)])
        }
    }

    @Test("missing or malformed bindings are refused")
    func malformedBinding() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        for candidate in [nil, "", "short", String(start.binding.dropLast()) + "!", start.binding + "A"] {
            #expect(throws: SignInBinding.Failure.missingBinding, "\(candidate ?? "nil")") {
                try binding.check(binding: candidate, cookies: [cookie])
            }
        }
    }

    @Test("fresh cookie reused, old one replaced")
    func reuse() throws {
        let first = try binding.start(cookies: [])
        let cookie = try Self.pair(first.setCookie)
        clock.advance(by: Double(SignInBinding.lifetime / 2 - 1))
        let second = try binding.start(cookies: [cookie])
        #expect(second.setCookie == nil)
        #expect(second.binding == first.binding)
        clock.advance(by: 1)
        let third = try binding.start(cookies: [cookie])
        #expect(third.setCookie != nil)
        #expect(third.binding != first.binding)
        let malformed = try binding.start(cookies: [("_pomerium_signin", "not-a-binding")])
        #expect(malformed.setCookie != nil)
    }

    @Test("the cookie name follows cookie_name")
    func cookieName() throws {
        let custom = SignInBinding(settings: CookieSettings(name: "_corp", secure: false), clock: clock)
        let start = try custom.start(cookies: [])
        let setCookie = try #require(start.setCookie)
        #expect(setCookie.hasPrefix("_corp_signin="))
        #expect(!setCookie.contains("Secure"))
    }
}
