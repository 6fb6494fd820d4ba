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

    /// Returns the entries of a sign-in cookie value.
    static func entries(_ cookie: (name: String, value: String)) -> [String] {
        cookie.value.split(separator: "~").map(String.init)
    }

    /// Returns a well-formed entry issued at `issued`, with a random part made of `filler`.
    static func entry(issued: Int64, filler: Character = "A") -> String {
        "\(issued)." + String(repeating: filler, count: 32)
    }

    @Test("own cookie matches")
    func matching() throws {
        let start = try binding.start(cookies: [])
        #expect(start.setCookie.hasPrefix("_pomerium_signin="))
        #expect(start.setCookie.contains("HttpOnly"))
        #expect(start.setCookie.contains("SameSite=Lax"))
        #expect(start.setCookie.contains("Secure"))
        #expect(start.setCookie.contains("Max-Age=900"))
        #expect(!start.setCookie.contains("Domain="), "host-only, so it stays on the route host")
        #expect(SignInBinding.isWellFormed(start.binding))
        let cookie = try Self.pair(start.setCookie)
        #expect(Self.entries(cookie).count == 1)
        let acceptance = try binding.check(binding: start.binding, cookies: [cookie])
        #expect(acceptance.remainingEntries.isEmpty)
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

    @Test("a browser without the cookie is rejected")
    func missingCookie() throws {
        let start = try binding.start(cookies: [])
        #expect(throws: SignInBinding.Failure.missingCookie) {
            try binding.check(binding: start.binding, cookies: [("_pomerium", "v1.abc")])
        }
    }

    @Test("used link fails after its entry is removed")
    func replay() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        let acceptance = try binding.check(binding: start.binding, cookies: [cookie])
        let clearing = try binding.setCookieHeader(keeping: acceptance.remainingEntries)
        #expect(clearing == (try binding.clearingHeader()))
        #expect(clearing.hasPrefix("_pomerium_signin=;"))
        #expect(clearing.contains("Max-Age=0"))
        #expect(throws: SignInBinding.Failure.missingCookie) {
            try binding.check(binding: start.binding, cookies: [])
        }
    }

    @Test("parallel tabs complete in either order")
    func parallelTabs() throws {
        for firstCallback in [0, 1] {
            let tabOne = try binding.start(cookies: [])
            let afterOne = try Self.pair(tabOne.setCookie)
            let tabTwo = try binding.start(cookies: [afterOne])
            let afterTwo = try Self.pair(tabTwo.setCookie)
            #expect(Self.entries(afterTwo).count == 2)
            #expect(Self.entries(afterTwo).first == Self.entries(afterOne).first)

            let order = firstCallback == 0 ? [tabOne, tabTwo] : [tabTwo, tabOne]
            let first = try binding.check(binding: order[0].binding, cookies: [afterTwo])
            #expect(first.remainingEntries.count == 1)
            let afterFirst = try Self.pair(try binding.setCookieHeader(keeping: first.remainingEntries))
            #expect(throws: SignInBinding.Failure.mismatch, "the first link works once") {
                try binding.check(binding: order[0].binding, cookies: [afterFirst])
            }
            let second = try binding.check(binding: order[1].binding, cookies: [afterFirst])
            #expect(second.remainingEntries.isEmpty)
        }
    }

    @Test("remaining entries keep the newest one's expiry")
    func remainingExpiry() throws {
        let tabOne = try binding.start(cookies: [])
        clock.advance(by: 100)
        let tabTwo = try binding.start(cookies: [try Self.pair(tabOne.setCookie)])
        clock.advance(by: 50)
        let acceptance = try binding.check(binding: tabOne.binding, cookies: [try Self.pair(tabTwo.setCookie)])
        let setCookie = try binding.setCookieHeader(keeping: acceptance.remainingEntries)
        #expect(setCookie.contains("Max-Age=850"))
        #expect(Self.entries(try Self.pair(setCookie)) == Self.entries(try Self.pair(tabTwo.setCookie)).suffix(1))
    }

    @Test("a flood of starts stays bounded and the newest completes")
    func startFlood() throws {
        var cookie: (name: String, value: String)?
        var starts: [SignInBinding.Start] = []
        for _ in 0..<50 {
            let start = try binding.start(cookies: cookie.map { [$0] } ?? [])
            cookie = try Self.pair(start.setCookie)
            starts.append(start)
            clock.advance(by: 1)
        }
        let last = try #require(cookie)
        #expect(Self.entries(last).count == SignInBinding.maximumPending)
        #expect(last.value.utf8.count <= 8 * 44)
        for start in starts.suffix(SignInBinding.maximumPending) {
            #expect(throws: Never.self) { try binding.check(binding: start.binding, cookies: [last]) }
        }
        #expect(throws: SignInBinding.Failure.mismatch, "the oldest sign-ins were dropped") {
            try binding.check(binding: starts[0].binding, cookies: [last])
        }
        let dropped = starts[starts.count - SignInBinding.maximumPending - 1]
        #expect(throws: SignInBinding.Failure.mismatch) {
            try binding.check(binding: dropped.binding, cookies: [last])
        }
    }

    @Test("expired entries are dropped on start")
    func expiredEntriesDropped() throws {
        let old = try binding.start(cookies: [])
        clock.advance(by: Double(SignInBinding.lifetime + 1))
        let fresh = try binding.start(cookies: [try Self.pair(old.setCookie)])
        let cookie = try Self.pair(fresh.setCookie)
        #expect(Self.entries(cookie).count == 1)
        #expect(throws: SignInBinding.Failure.mismatch) {
            try binding.check(binding: old.binding, cookies: [cookie])
        }
    }

    @Test("malformed entries are ignored")
    func malformedEntries() throws {
        let now = clock.unixSeconds()
        let valid = Self.entry(issued: now)
        let malformed = [
            "", "~", ".", "~~~", "garbage", "\(now).", ".\(String(repeating: "A", count: 32))",
            "\(now).short", "\(now).\(String(repeating: "A", count: 33))",
            "\(now).\(String(repeating: "!", count: 32))",
            "1234567890123456789.\(String(repeating: "A", count: 32))", "-5.\(String(repeating: "A", count: 32))",
            "\(now).\(String(repeating: "é", count: 32))", String(repeating: "~x", count: 4000),
        ]
        for junk in malformed {
            let cookies = [("_pomerium_signin", "\(junk)~\(valid)~\(junk)")]
            let start = try binding.start(cookies: cookies)
            #expect(Self.entries(try Self.pair(start.setCookie)).first == valid, "\(junk.prefix(40))")
            #expect(Self.entries(try Self.pair(start.setCookie)).count == 2, "\(junk.prefix(40))")
            let acceptance = try binding.check(binding: try SignInBinding.binding(for: valid), cookies: cookies)
            #expect(acceptance.remainingEntries.isEmpty, "\(junk.prefix(40))")
            #expect(throws: SignInBinding.Failure.mismatch, "\(junk.prefix(40))") {
                try binding.check(binding: try SignInBinding.binding(for: junk), cookies: [("_pomerium_signin", junk)])
            }
        }
    }

    @Test("one-entry cookie of the earlier format completes")
    func earlierFormat() throws {
        // Before the list format the cookie value was one `<issued>.<random>` entry and the
        // binding its hash, so a browser mid-login during an upgrade still matches.
        let value = Self.entry(issued: clock.unixSeconds() - 60, filler: "x")
        let acceptance = try binding.check(
            binding: try SignInBinding.binding(for: value), cookies: [("_pomerium_signin", value)])
        #expect(acceptance.remainingEntries.isEmpty)
        let start = try binding.start(cookies: [("_pomerium_signin", value)])
        #expect(Self.entries(try Self.pair(start.setCookie)).first == value)
    }

    @Test("duplicate cookies count together")
    func duplicateCookies() throws {
        let now = clock.unixSeconds()
        let older = Self.entry(issued: now - 20, filler: "a")
        let newer = Self.entry(issued: now - 10, filler: "b")
        let cookies = [("_pomerium_signin", newer), ("_pomerium_signin", older), ("_pomerium_signin", newer)]
        let acceptance = try binding.check(binding: try SignInBinding.binding(for: older), cookies: cookies)
        #expect(acceptance.remainingEntries == [newer])
        let start = try binding.start(cookies: cookies)
        let entries = Self.entries(try Self.pair(start.setCookie))
        #expect(entries.count == 3)
        #expect(Array(entries.prefix(2)) == [older, newer])
    }

    @Test("a sign-in older than the lifetime is rejected")
    func expiry() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        clock.advance(by: Double(SignInBinding.lifetime))
        _ = try binding.check(binding: start.binding, cookies: [cookie])
        clock.advance(by: 1)
        #expect(throws: SignInBinding.Failure.expired) {
            try binding.check(binding: start.binding, cookies: [cookie])
        }
    }

    @Test("future issue time rejected")
    func future() throws {
        let value = Self.entry(issued: clock.unixSeconds() + 3600)
        let bound = try SignInBinding.binding(for: value)
        #expect(throws: SignInBinding.Failure.expired) {
            try binding.check(binding: bound, cookies: [("_pomerium_signin", value)])
        }
    }

    @Test("missing or malformed bindings are rejected")
    func malformedBinding() throws {
        let start = try binding.start(cookies: [])
        let cookie = try Self.pair(start.setCookie)
        for candidate in [nil, "", "short", String(start.binding.dropLast()) + "!", start.binding + "A"] {
            #expect(throws: SignInBinding.Failure.missingBinding, "\(candidate ?? "nil")") {
                try binding.check(binding: candidate, cookies: [cookie])
            }
        }
    }

    @Test("the cookie name follows cookie_name")
    func cookieName() throws {
        let custom = SignInBinding(settings: CookieSettings(name: "_corp", secure: false), clock: clock)
        let start = try custom.start(cookies: [])
        #expect(start.setCookie.hasPrefix("_corp_signin="))
        #expect(!start.setCookie.contains("Secure"))
        let acceptance = try custom.check(binding: start.binding, cookies: [try Self.pair(start.setCookie)])
        #expect(try custom.setCookieHeader(keeping: acceptance.remainingEntries).hasPrefix("_corp_signin=;"))
    }
}
