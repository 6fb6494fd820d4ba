import PomeriumCore
import PomeriumCrypto
import PomeriumLogging
import Testing

@testable import PomeriumSessions

@Suite("Session cookie")
struct CookieTests {
    let clock = ManualWallClock(now: SessionFixtures.now)

    func codec(
        secret: [UInt8] = SessionFixtures.cookieSecret, settings: CookieSettings = CookieSettings(),
        store: InMemoryLogHandler.Store = .init()
    ) throws -> SessionCookieCodec {
        try SessionCookieCodec(
            cookieSecret: secret, settings: settings, clock: clock, logger: .inMemory(store: store))
    }

    /// The (name, value) pairs a browser would send back for these `Set-Cookie` values, leaving out
    /// the clearing ones.
    func cookies(from headers: [String]) -> [(name: String, value: String)] {
        headers.compactMap { header in
            let pair = header.split(separator: ";", maxSplits: 1)[0]
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty else { return nil }
            return (String(parts[0]), String(parts[1]))
        }
    }

    @Test("small session round trips in one cookie")
    func roundTrip() throws {
        let codec = try codec()
        let session = SessionFixtures.sampleSession()
        let headers = try codec.setCookieHeaders(for: session)
        let sent = cookies(from: headers)
        #expect(sent.count == 1)
        #expect(sent[0].value.hasPrefix("v1."))
        #expect(codec.session(fromCookies: sent) == session)
        #expect(!headers[0].contains("access-secret-value"))
    }

    @Test("attributes follow the settings")
    func attributes() throws {
        let header = try codec().setCookieHeaders(for: SessionState())[0]
        #expect(header.hasPrefix("_pomerium=v1."))
        for attribute in [
            "; Path=/", "; Expires=Wed, 15 Nov 2023 12:13:20 GMT", "; HttpOnly", "; Secure", "; SameSite=Lax",
        ] {
            #expect(header.contains(attribute), "\(attribute)")
        }
        #expect(!header.contains("Domain="))
        let custom = CookieSettings(
            name: "_custom", domain: "example.test", secure: false, httpOnly: false, expireSeconds: 60,
            sameSite: .strict)
        let other = try codec(settings: custom).setCookieHeaders(for: SessionState())[0]
        #expect(other.hasPrefix("_custom=v1."))
        #expect(other.contains("; Domain=example.test"))
        #expect(other.contains("; SameSite=Strict"))
        #expect(!other.contains("Secure"))
        #expect(!other.contains("HttpOnly"))
        #expect(other.contains("; Expires=Tue, 14 Nov 2023 22:14:20 GMT"))
        let without = try codec(settings: CookieSettings(sameSite: nil)).setCookieHeaders(for: SessionState())[0]
        #expect(!without.contains("SameSite"))
    }

    @Test("large session is chunked and every line stays under 3800 bytes")
    func chunking() throws {
        let codec = try codec()
        let session = SessionFixtures.sampleSession(groups: 300)
        let headers = try codec.setCookieHeaders(for: session)
        for header in headers { #expect(header.utf8.count <= CookieSettings.maximumSetCookieSize) }
        let sent = cookies(from: headers)
        #expect(sent.count > 1)
        #expect(sent[0].name == "_pomerium")
        #expect(sent[0].value.hasPrefix("v1c\(sent.count)."))
        #expect(sent[1].name == "_pomerium_1")
        #expect(codec.session(fromCookies: sent) == session)
        // Browsers may send cookies in any order.
        #expect(codec.session(fromCookies: sent.reversed()) == session)
    }

    @Test("every write expires the chunks it does not use")
    func staleChunksExpire() throws {
        let codec = try codec()
        let large = try codec.setCookieHeaders(for: SessionFixtures.sampleSession(groups: 300))
        let largeCount = cookies(from: large).count
        let small = try codec.setCookieHeaders(for: SessionFixtures.sampleSession())
        #expect(small.count == CookieSettings().maximumChunks)
        for index in 1..<CookieSettings().maximumChunks {
            let clearing = small.first { $0.hasPrefix("_pomerium_\(index)=;") }
            #expect(clearing != nil, "chunk \(index) not cleared")
            #expect(clearing?.contains("Max-Age=0") == true)
        }
        #expect(largeCount > 1)
        let clearing = try codec.clearingHeaders()
        #expect(clearing.count == CookieSettings().maximumChunks)
        #expect(clearing.allSatisfy { $0.contains("Max-Age=0") && $0.contains("=;") })
    }

    @Test("a session beyond the chunk bound is refused with a clear error")
    func tooLarge() throws {
        let codec = try codec(settings: CookieSettings(maximumChunks: 2))
        #expect(throws: CookieWriteError.tooManyChunks(needed: 3, maximum: 2)) {
            var session = SessionFixtures.sampleSession(groups: 0)
            session.groups = (0..<300).map { "g\($0)-padding-to-fill" }
            let headers = try codec.setCookieHeaders(for: session)
            Issue.record("wrote \(headers.count) cookies")
        }
        let error = CookieWriteError.tooManyChunks(needed: 9, maximum: 6)
        #expect(error.description.contains("at most 6"))
    }

    @Test("invalid secret and cookie name are rejected at setup")
    func setup() throws {
        #expect(throws: PomeriumError.self) { try codec(secret: [1, 2, 3]) }
        #expect(throws: CookieWriteError.self) { try codec(settings: CookieSettings(name: "bad name")) }
    }

    // MARK: Tampering

    func expectRejected(
        _ cookies: [(name: String, value: String)], reason: RejectionReason, secrets: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let store = InMemoryLogHandler.Store()
        let codec = try codec(store: store)
        #expect(codec.session(fromCookies: cookies) == nil, sourceLocation: sourceLocation)
        expectLoggedOnce(
            store, artefact: "session-cookie", reason: reason, without: secrets, sourceLocation: sourceLocation)
    }

    @Test("every altered character of a cookie is rejected")
    func bitFlips() throws {
        let sent = cookies(from: try codec().setCookieHeaders(for: SessionFixtures.sampleSession()))
        let value = Array(sent[0].value.utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var rejected = 0
        for index in 3..<value.count {
            var altered = value
            altered[index] = alphabet[(alphabet.firstIndex(of: value[index])! + 1) % alphabet.count]
            let text = String(decoding: altered, as: UTF8.self)
            let decodable = Base64.urlUnpadded.decode(bytes: altered[3...]) != nil
            try expectRejected(
                [("_pomerium", text)], reason: decodable ? .decryptionFailed : .malformed, secrets: [text])
            rejected += 1
        }
        #expect(rejected == value.count - 3)
    }

    @Test("truncated, re-versioned and foreign cookies are rejected")
    func otherMutations() throws {
        let sent = cookies(from: try codec().setCookieHeaders(for: SessionFixtures.sampleSession()))
        let value = sent[0].value
        let truncated = String(value.dropLast(4))
        let canonical = Base64.urlUnpadded.decode(truncated.dropFirst(3)) != nil
        try expectRejected(
            [("_pomerium", truncated)], reason: canonical ? .decryptionFailed : .malformed, secrets: [value])
        try expectRejected([("_pomerium", "v2." + value.dropFirst(3))], reason: .unsupportedVersion, secrets: [value])
        try expectRejected([("_pomerium", "garbage")], reason: .unsupportedVersion, secrets: [])
        try expectRejected([("_pomerium", "v1.")], reason: .decryptionFailed, secrets: [])
        let foreign = cookies(
            from: try codec(secret: [UInt8](repeating: 9, count: 32)).setCookieHeaders(
                for: SessionFixtures.sampleSession()))
        try expectRejected(foreign, reason: .decryptionFailed, secrets: [foreign[0].value])
        // A value sealed for another cookie name does not open under this one.
        let renamed = cookies(
            from: try codec(settings: CookieSettings(name: "_other")).setCookieHeaders(
                for: SessionFixtures.sampleSession()))
        try expectRejected([("_pomerium", renamed[0].value)], reason: .decryptionFailed, secrets: [renamed[0].value])
    }

    @Test("chunk sets must be complete, unique and in order")
    func chunkMutations() throws {
        let sent = cookies(from: try codec().setCookieHeaders(for: SessionFixtures.sampleSession(groups: 700)))
        try #require(sent.count >= 3)
        let secrets = sent.map(\.value)
        // Missing chunk.
        try expectRejected(sent.filter { $0.name != "_pomerium_1" }, reason: .chunkMissing, secrets: secrets)
        // Reordered: values of two chunks swapped.
        var swapped = sent
        swapped[1].value = sent[2].value
        swapped[2].value = sent[1].value
        try expectRejected(swapped, reason: .decryptionFailed, secrets: secrets)
        // Extra chunk beyond the declared count.
        try expectRejected(sent + [("_pomerium_\(sent.count)", "AAAA")], reason: .chunkUnexpected, secrets: secrets)
        // Duplicated chunk.
        try expectRejected(sent + [sent[1]], reason: .chunkDuplicated, secrets: secrets)
        // Empty chunk.
        var emptied = sent
        emptied[1].value = ""
        try expectRejected(emptied, reason: .chunkMissing, secrets: secrets)
        // A stale chunk from a longer session in place of the real one.
        let other = cookies(from: try codec().setCookieHeaders(for: SessionFixtures.sampleSession(groups: 701)))
        var stale = sent
        stale[1].value = other[1].value
        try expectRejected(stale, reason: .decryptionFailed, secrets: secrets)
        // A count above the bound.
        var inflated = sent
        inflated[0].value = "v1c9." + sent[0].value.split(separator: ".", maxSplits: 1)[1]
        try expectRejected(inflated, reason: .tooManyChunks, secrets: secrets)
        // A count that is not a plain number.
        var badCount = sent
        badCount[0].value = "v1c+3." + sent[0].value.split(separator: ".", maxSplits: 1)[1]
        try expectRejected(badCount, reason: .malformed, secrets: secrets)
    }

    @Test("another candidate cookie with the same name is tried")
    func severalCandidates() throws {
        let codec = try codec()
        let session = SessionFixtures.sampleSession()
        let good = cookies(from: try codec.setCookieHeaders(for: session))
        #expect(codec.session(fromCookies: [("_pomerium", "v1.AAAA")] + good) == session)
        #expect(codec.session(fromCookies: [("other", "x")]) == nil)
    }
}

@Suite("Opened-cookie cache")
struct CookieCacheTests {
    @Test("a repeated cookie is served from the bounded cache, a tampered one is not")
    func cache() throws {
        let clock = ManualWallClock(now: SessionFixtures.now)
        let codec = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(), clock: clock,
            logger: .inMemory(store: .init()), openedCacheCapacity: 2)
        var values: [String] = []
        for index in 0..<3 {
            var session = SessionFixtures.sampleSession()
            session.id = "s\(index)"
            let header = try codec.setCookieHeaders(for: session)[0]
            values.append(String(header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1]))
        }
        #expect(codec.session(fromCookies: [("_pomerium", values[0])])?.id == "s0")
        #expect(codec.openedCacheCount == 1)
        #expect(codec.session(fromCookies: [("_pomerium", values[0])])?.id == "s0")
        #expect(codec.openedCacheCount == 1)
        _ = codec.session(fromCookies: [("_pomerium", values[1])])
        _ = codec.session(fromCookies: [("_pomerium", values[2])])
        #expect(codec.openedCacheCount == 2)
        var altered = Array(values[0].utf8)
        altered[10] = altered[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(codec.session(fromCookies: [("_pomerium", String(decoding: altered, as: UTF8.self))]) == nil)
    }
}

@Suite("Opened-cookie cache limits")
struct OpenedCookieCacheLimitTests {
    /// Returns `index` in decimal, padded with zeros to eight digits.
    func padded(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Returns a distinct 100-byte cookie text for `index`, ending in its number as a tag would.
    func text(_ index: Int) -> [UInt8] {
        let tail = Array(padded(index).utf8)
        return Array(repeating: UInt8(ascii: "c"), count: 100 - tail.count) + tail
    }

    func session(_ index: Int, groups: Int = 3) -> SessionState {
        var session = SessionFixtures.sampleSession(groups: groups).routeSession
        session.id = "session-" + padded(index)
        return session
    }

    @Test("byte limit evicts oldest entries")
    func byteLimitEvicts() {
        let charge = OpenedCookieCache.charge(cookieBytes: 100, session: session(0))
        let cache = OpenedCookieCache(capacity: 1000, maximumBytes: 20 * charge + charge / 2)
        for index in 0..<30 {
            cache.store(session(index), for: text(index))
        }
        #expect(cache.count == 20)
        #expect(cache.chargedBytes == 20 * charge)
        for index in 0..<10 {
            #expect(cache.session(for: text(index)) == nil, "entry \(index)")
        }
        for index in 10..<30 {
            #expect(cache.session(for: text(index))?.id == session(index).id, "entry \(index)")
        }
    }

    @Test("count limit still holds")
    func countLimitHolds() {
        let cache = OpenedCookieCache(capacity: 5, maximumBytes: 1 << 30)
        for index in 0..<12 {
            cache.store(session(index), for: text(index))
        }
        #expect(cache.count == 5)
        #expect(cache.session(for: text(6)) == nil)
        #expect(cache.session(for: text(7))?.id == session(7).id)
        #expect(cache.session(for: text(11))?.id == session(11).id)
    }

    @Test("hit returns stored session")
    func hitReturnsSameSession() {
        let cache = OpenedCookieCache(capacity: 4)
        let stored = session(1)
        cache.store(stored, for: text(1))
        let hit = cache.session(for: text(1))
        #expect(hit == stored)
        #expect(hit?.isSameStorage(as: stored) == true)
        #expect(cache.session(for: text(2)) == nil)
    }

    @Test("repeated store charged once")
    func storedTwiceChargedOnce() {
        let cache = OpenedCookieCache(capacity: 4)
        cache.store(session(1), for: text(1))
        cache.store(session(1), for: text(1))
        #expect(cache.count == 1)
        #expect(cache.chargedBytes == OpenedCookieCache.charge(cookieBytes: 100, session: session(1)))
    }

    @Test("oversized entry not stored")
    func largeEntrySkipped() {
        let small = OpenedCookieCache.charge(cookieBytes: 100, session: session(0))
        let cache = OpenedCookieCache(capacity: 100, maximumBytes: 16 * small)
        let large = session(1, groups: 200)
        #expect(OpenedCookieCache.charge(cookieBytes: 100, session: large) > cache.maximumEntryBytes)
        cache.store(large, for: text(1))
        #expect(cache.count == 0)
        #expect(cache.session(for: text(1)) == nil)
        cache.store(session(2), for: text(2))
        #expect(cache.session(for: text(2))?.id == session(2).id)
    }

    @Test("evicted cookie bytes released")
    func evictedKeysReleased() {
        let charge = OpenedCookieCache.charge(cookieBytes: 100, session: session(0))
        let cache = OpenedCookieCache(capacity: 4096, maximumBytes: 20 * charge)
        for index in 0..<500 {
            cache.store(session(index), for: text(index))
        }
        #expect(cache.count == 20)
        #expect(cache.orderedKeyBytes == 20 * 100)
        #expect(cache.evictedSlotCount <= 64)
    }

    @Test("zero limit turns cache off")
    func zeroLimitsTurnOff() {
        for cache in [OpenedCookieCache(capacity: 0), OpenedCookieCache(capacity: 10, maximumBytes: 0)] {
            cache.store(session(1), for: text(1))
            #expect(cache.count == 0)
            #expect(cache.session(for: text(1)) == nil)
        }
    }

    @Test("chunked cookie cached by default")
    func chunkedCookieCached() throws {
        let codec = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(),
            clock: ManualWallClock(now: SessionFixtures.now), logger: .inMemory(store: .init()))
        var large = SessionFixtures.sampleSession().routeSession
        large.groups = (0..<360).map { "group-with-a-fairly-long-name-" + padded($0) }
        let sent = cookies(from: try codec.setCookieHeaders(for: large).filter { !$0.contains("Max-Age=0") })
        #expect(sent.count >= 5)
        #expect(codec.session(fromCookies: sent) == large)
        #expect(codec.openedCacheCount == 1)
        #expect(codec.session(fromCookies: sent) == large)
        #expect(codec.openedCacheCount == 1)
    }

    /// Returns the name-value pairs of `Set-Cookie` lines.
    func cookies(from headers: [String]) -> [(String, String)] {
        headers.map { header in
            let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            return (String(pair[0]), pair.count > 1 ? String(pair[1]) : "")
        }
    }
}

@Suite("Opened-cookie cache key")
struct OpenedCookieKeyTests {
    @Test("keys with the same length and suffix hash alike but are equal only when every byte is")
    func sameSuffix() {
        let tail = Array(repeating: UInt8(ascii: "t"), count: OpenedCookieKey.hashedSuffix)
        let first = OpenedCookieKey(Array("aaaa".utf8) + tail)
        let second = OpenedCookieKey(Array("aaab".utf8) + tail)
        #expect(first.hashValue == second.hashValue)
        #expect(first != second)
        #expect(first == OpenedCookieKey(Array("aaaa".utf8) + tail))
        #expect(OpenedCookieKey([]) == OpenedCookieKey([]))
        #expect(OpenedCookieKey([1]) != OpenedCookieKey([]))
    }

    @Test("a cached session is not served for another cookie with the same length and ending")
    func sharedSuffixMisses() throws {
        let codec = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(),
            clock: ManualWallClock(now: SessionFixtures.now), logger: .inMemory(store: .init()),
            openedCacheCapacity: 4)
        let header = try codec.setCookieHeaders(for: SessionFixtures.sampleSession())[0]
        let value = String(header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
        #expect(codec.session(fromCookies: [("_pomerium", value)]) != nil)
        var altered = Array(value.utf8)
        altered[5] = altered[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(codec.session(fromCookies: [("_pomerium", String(decoding: altered, as: UTF8.self))]) == nil)
        #expect(codec.openedCacheCount == 1)
    }

    @Test("a cookie canonically equivalent to a cached one but with other bytes is not served from the cache")
    func canonicalEquivalentMisses() throws {
        let codec = try SessionCookieCodec(
            cookieSecret: SessionFixtures.cookieSecret, settings: CookieSettings(),
            clock: ManualWallClock(now: SessionFixtures.now), logger: .inMemory(store: .init()),
            openedCacheCapacity: 4)
        // The Kelvin sign U+212A is canonically equivalent to "K", so a String-keyed cache would
        // treat the two texts as one key.
        // Each seal draws a new nonce; a 370-character body lacks a "K" once in 300 seals.
        var value = ""
        for _ in 0..<20 where !value.contains("K") {
            let header = try codec.setCookieHeaders(for: SessionFixtures.sampleSession())[0]
            value = String(header.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
        }
        let k = try #require(value.firstIndex(of: "K"))
        #expect(codec.session(fromCookies: [("_pomerium", value)]) != nil)
        var kelvin = value
        kelvin.replaceSubrange(k...k, with: "\u{212A}")
        #expect(kelvin == value)
        #expect(codec.session(fromCookies: [("_pomerium", kelvin)]) == nil)
    }
}
