import PomeriumAuthorize
import PomeriumCore
import PomeriumHTTP
import PomeriumSessions
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig
@testable import PomeriumProxy

@Suite("Cookie header cache")
struct CookieHeaderCacheTests {
    static func entry(_ header: String, email: String) -> CookieHeaderCache.Entry {
        var session = SessionState()
        session.email = email
        return CookieHeaderCache.Entry(
            header: header, cookies: CookieParser.parse(header), session: session, keptCookieHeader: nil)
    }

    /// A header shaped like a browser's: other cookies around a 300-byte session cookie.
    static let browserHeader =
        "_ga=GA1.2.1234567890.1234567890; _pomerium=v1." + String(repeating: "Ab0-_", count: 60) + "; app_pref=dark"

    @Test("a hit needs every byte of the header")
    func exactHit() {
        let cache = CookieHeaderCache(capacity: 16)
        let header = "_pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789"
        cache.store(Self.entry(header, email: "a@example.test"))
        #expect(cache.entry(for: header)?.session.email == "a@example.test")
        #expect(cache.entry(for: String(header.dropLast())) == nil)
        #expect(cache.entry(for: header + "9") == nil)
        let sibling = "_pomerium=v1.Abcdefghijklmnopqrstuvwxyz0123456789"
        #expect(cache.entry(for: sibling) == nil)
    }

    @Test("entry keeps the session's facts")
    func entryFacts() {
        let entry = Self.entry("_pomerium=v1.facts", email: "a@example.test")
        #expect(entry.facts === entry.session.derived(SessionFacts.init))
        #expect(entry.facts.identity.identity == ProxyRequestHandler.identity(entry.session))
    }

    @Test("byte lookups match string lookups")
    func bytesLookup() {
        let cache = CookieHeaderCache(capacity: 2048)
        let stored = Self.entry(Self.browserHeader, email: "a@example.test")
        cache.store(stored)
        let header = Array(Self.browserHeader.utf8)
        let hit = header.withUnsafeBufferPointer { cache.entry(forHeaderBytes: $0) }
        #expect(hit === stored)
        let shorter = header.dropLast().withUnsafeBufferPointer { cache.entry(forHeaderBytes: $0) }
        #expect(shorter == nil)
        var changed = header
        changed[changed.count / 2] ^= 0x01
        #expect(changed.withUnsafeBufferPointer { cache.entry(forHeaderBytes: $0) } == nil)
        #expect([UInt8]().withUnsafeBufferPointer { cache.entry(forHeaderBytes: $0) } == nil)
    }

    /// The hash of a misaligned header comes from an aligned copy, so a header must hit at every
    /// offset from an aligned address, and a changed byte must miss at every offset.
    @Test("lookups at every alignment")
    func everyAlignment() {
        let cache = CookieHeaderCache(capacity: 2048)
        let stored = Self.entry(Self.browserHeader, email: "a@example.test")
        cache.store(stored)
        let header = Array(Self.browserHeader.utf8)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: header.count + 8, alignment: 8)
        defer { storage.deallocate() }
        for offset in 0..<8 {
            let bytes = UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + header.count)])
                .bindMemory(to: UInt8.self)
            _ = bytes.initialize(from: header)
            #expect(cache.entry(forHeaderBytes: UnsafeBufferPointer(bytes)) === stored, "at offset \(offset)")
            bytes[bytes.count - 1] ^= 0x01
            #expect(cache.entry(forHeaderBytes: UnsafeBufferPointer(bytes)) == nil, "at offset \(offset)")
        }
    }

    @Test("one changed byte misses", arguments: ["first", "middle", "last"])
    func singleByteChange(_ place: String) {
        let cache = CookieHeaderCache(capacity: 2048)
        let header = Array(Self.browserHeader.utf8)
        cache.store(Self.entry(Self.browserHeader, email: "a@example.test"))
        let offset = ["first": 0, "middle": header.count / 2, "last": header.count - 1][place] ?? 0
        for replacement in [UInt8(ascii: "X"), UInt8(ascii: "y"), header[offset] ^ 0x01]
        where replacement != header[offset] {
            var changed = header
            changed[offset] = replacement
            #expect(cache.entry(for: String(decoding: changed, as: UTF8.self)) == nil, "byte \(replacement)")
        }
        #expect(cache.entry(for: Self.browserHeader)?.session.email == "a@example.test")
    }

    /// Two users whose headers differ in one byte, at every position: each gets only its own
    /// session, and a third header that differs from both in that byte gets none.
    @Test("two users one byte apart, at every position")
    func twoUsersEveryPosition() {
        let base = Array(Self.browserHeader.utf8)
        for position in 0..<base.count {
            let cache = CookieHeaderCache(capacity: 2048)
            var other = base
            other[position] = base[position] == UInt8(ascii: "Q") ? UInt8(ascii: "R") : UInt8(ascii: "Q")
            var third = base
            third[position] = base[position] == UInt8(ascii: "Z") ? UInt8(ascii: "W") : UInt8(ascii: "Z")
            let first = String(decoding: base, as: UTF8.self)
            let second = String(decoding: other, as: UTF8.self)
            cache.store(Self.entry(first, email: "first@example.test"))
            cache.store(Self.entry(second, email: "second@example.test"))
            // Both fit unless their slots collide, and a collision may only cost the first a miss.
            let firstHit = cache.entry(for: first)?.session.email
            #expect(firstHit == "first@example.test" || (firstHit == nil && cache.count == 1), "at \(position)")
            #expect(cache.entry(for: second)?.session.email == "second@example.test", "at \(position)")
            if third != base && third != other {
                #expect(cache.entry(for: String(decoding: third, as: UTF8.self)) == nil, "at \(position)")
            }
        }
    }

    @Test("a header in a filled slot misses")
    func sameSlotMisses() throws {
        let cache = CookieHeaderCache(capacity: 16)
        cache.store(Self.entry(Self.browserHeader, email: "a@example.test"))
        let slot = cache.slotIndex(of: Self.browserHeader)
        // About one in 16 headers shares the slot, so 2,000 tries all missing it have odds of 1e-56.
        let neighbour = try #require(
            (0..<2000).lazy.map { "x=\($0); " + Self.browserHeader }.first { cache.slotIndex(of: $0) == slot })
        #expect(cache.entry(for: neighbour) == nil)
        #expect(cache.entry(for: Self.browserHeader)?.session.email == "a@example.test")
    }

    @Test("slots depend on the whole header")
    func slotsSpread() {
        // The headers share their length and all bytes but the first. A slot taken from the last
        // bytes, or from any other part a client can copy, would put them all in one slot.
        let cache = CookieHeaderCache(capacity: 2048)
        let slots = Set(
            (0..<64).map { index in
                cache.slotIndex(of: String(UnicodeScalar(UInt8(0x40 + index))) + Self.browserHeader.dropFirst())
            })
        #expect(slots.count > 48)
    }

    @Test("each cache has its own seed")
    func seedPerCache() {
        // Eight headers in the same slots of two caches of 2,048 slots: odds of 2^-88 by chance.
        let first = CookieHeaderCache(capacity: 2048)
        let second = CookieHeaderCache(capacity: 2048)
        let headers = (0..<8).map { "a=\($0); " + Self.browserHeader }
        #expect(headers.map(first.slotIndex(of:)) != headers.map(second.slotIndex(of:)))
    }

    @Test("a header that shares the slot replaces the entry")
    func collisionReplaces() throws {
        let cache = CookieHeaderCache(capacity: 16)
        let first = "a=1; _pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789"
        let slot = cache.slotIndex(of: first)
        let second = try #require(
            (0..<2000).lazy.map { "b=\($0); _pomerium=v1.abcdefghijklmnopqrstuvwxyz0123456789" }
                .first { cache.slotIndex(of: $0) == slot })
        cache.store(Self.entry(first, email: "first@example.test"))
        cache.store(Self.entry(second, email: "second@example.test"))
        #expect(cache.entry(for: first) == nil)
        #expect(cache.entry(for: second)?.session.email == "second@example.test")
        #expect(cache.count == 1)
    }

    @Test("the slot count is a power of two and capacity 0 stores nothing")
    func bounds() {
        let cache = CookieHeaderCache(capacity: 3)
        for index in 0..<100 { cache.store(Self.entry("_pomerium=v1.value-\(index)", email: "u\(index)@x.test")) }
        #expect(cache.count <= 4)
        let off = CookieHeaderCache(capacity: 0)
        off.store(Self.entry("_pomerium=v1.value", email: "u@x.test"))
        #expect(off.entry(for: "_pomerium=v1.value") == nil)
        #expect(off.count == 0)
    }

    @Test("long headers are not stored")
    func longHeaderSkipped() {
        let cache = CookieHeaderCache(capacity: 16)
        let longest = "_pomerium=" + String(repeating: "a", count: CookieHeaderCache.maximumHeaderLength - 10)
        let tooLong = longest + "b"
        cache.store(Self.entry(longest, email: "fits@example.test"))
        cache.store(Self.entry(tooLong, email: "long@example.test"))
        #expect(cache.entry(for: longest)?.session.email == "fits@example.test")
        #expect(cache.entry(for: tooLong) == nil)
    }

    static func config(echo: String) -> String {
        """
        policy:
          - from: https://app.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
          - from: https://other.example.test
            to: \(echo)
            allowed_users: [alice@corp.test]
        """
    }

    @Test("a cached header still expires, keeps its audience and forwards the other cookies")
    func checksAfterHit() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 60)
                let cookie = try proxy.cookieHeader(session) + "; app_pref=dark"
                for _ in 0..<2 {
                    let allowed = try await proxy.request(
                        host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                    #expect(allowed.status == 200)
                    #expect(allowed.echo?.values("Cookie") == ["app_pref=dark"])
                }
                #expect(proxy.service.cookieHeaderCache.entry(for: cookie) != nil)
                // The session's audience lacks this host, cached or not.
                let otherHost = try await proxy.request(
                    host: "other.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(otherHost.status == 302)
                // Past `exp` the cached session leads to sign-in. The refresher fails, so the
                // cookie is cleared.
                proxy.clock.advance(by: 61)
                let expired = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(expired.status == 302)
                #expect(expired.headers["Set-Cookie"].contains { $0.hasPrefix("_pomerium=;") })
            }
        }
    }

    /// A reload builds a new service with a new, empty cache. A header cached under the old
    /// `cookie_secret` is neither found in it nor opened by the new secret.
    @Test("a new cookie secret starts an empty cache")
    func secretRotation() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 60)
                let cookie = try proxy.cookieHeader(session)
                let response = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", cookie)])
                #expect(response.status == 200)
                #expect(proxy.service.cookieHeaderCache.entry(for: cookie) != nil)

                var options = proxy.service.options
                options.cookieSecret = [UInt8](repeating: 0x5A, count: 32)
                let rotated = try proxy.service.reconfigured(options: options)
                #expect(rotated.cookieHeaderCache.count == 0)
                #expect(rotated.cookieHeaderCache.entry(for: cookie) == nil)
                let loaded = rotated.loader.load(
                    cookies: CookieParser.parse(cookie), authorization: { nil }, sessionQueryParameter: { nil },
                    audienceHost: "app.example.test")
                #expect(loaded == nil)
            }
        }
    }

    @Test("the proxy looks up the Cookie bytes")
    func handlerHitsByBytes() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                // An entry stored by hand for a header that contains no session cookie: only a
                // cache hit turns this header into Alice's session.
                let header = "planted=1; app_pref=dark"
                let alice = proxy.session("alice@corp.test", audience: ["app.example.test"])
                proxy.service.cookieHeaderCache.store(
                    CookieHeaderCache.Entry(
                        header: header, cookies: CookieParser.parse(header), session: alice,
                        keptCookieHeader: "app_pref=dark"))
                let hit = try await proxy.request(host: "app.example.test", path: "/", headers: [("Cookie", header)])
                #expect(hit.status == 200)
                #expect(hit.echo?.values("Cookie") == ["app_pref=dark"])
                // A second Cookie field takes the long way, which finds no session.
                let split = try await proxy.request(
                    host: "app.example.test", path: "/", headers: [("Cookie", header), ("Cookie", "b=2")])
                #expect(split.status == 302)
            }
        }
    }

    @Test("two Cookie fields store nothing")
    func twoFieldsNotStored() async throws {
        try await Fixtures.withEchoUpstream { echo in
            try await ProxyHarness.run(config: Self.config(echo: echo.baseURL)) { proxy in
                let session = proxy.session("alice@corp.test", audience: ["app.example.test"], expiresIn: 60)
                let cookie = try proxy.cookieHeader(session)
                for _ in 0..<2 {
                    let response = try await proxy.request(
                        host: "app.example.test", path: "/", headers: [("Cookie", cookie), ("Cookie", "b=2")])
                    #expect(response.status == 200)
                }
                #expect(proxy.service.cookieHeaderCache.count == 0)
                #expect(proxy.service.cookieHeaderCache.entry(for: cookie) == nil)
            }
        }
    }
}
