import Testing

@testable import PomeriumConfig

@Suite struct YAMLReaderTests {
    @Test func valuesCarryLineNumbers() throws {
        let text = "a: 1\n\nlist:\n  - x\n  - y: 2\n"
        let root = try YAMLReader.parse(Array(text.utf8), path: "c.yaml")
        let entries = try #require(root.entries)
        #expect(entries[0].value.location == .file(path: "c.yaml", line: 1))
        #expect(entries[1].keyLocation == .file(path: "c.yaml", line: 3))
        guard case .sequence(let items) = entries[1].value.value else {
            Issue.record("list is not a sequence")
            return
        }
        #expect(items[0].location == .file(path: "c.yaml", line: 4))
        #expect(items[1].entries?[0].value.location == .file(path: "c.yaml", line: 5))
    }

    @Test func nullsAndQuotedNulls() throws {
        let root = try YAMLReader.parse(Array("a: ~\nb:\nc: \"null\"\nd: null\n".utf8), path: "c.yaml")
        let values = try #require(root.entries).map(\.value.value)
        #expect(values == [.null, .null, .scalar("null"), .null])
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let text = """
            base: &base
              allowed_users: [a@example.test]
              timeout: 5s
            route:
              <<: *base
              timeout: 9s
            copy: *base
            """
        let root = try YAMLReader.parse(Array(text.utf8), path: "c.yaml")
        let entries = try #require(root.entries)
        let route = try #require(entries[1].value.entries)
        #expect(route.map(\.key) == ["timeout", "allowed_users"])
        #expect(route[0].value.scalar == "9s")
        #expect(entries[2].value == entries[0].value)
    }

    @Test func duplicateKeyIsAnError() {
        #expect(throws: ConfigSyntaxError(location: .file(path: "c.yaml", line: 2), reason: "duplicate key \"a\"")) {
            try YAMLReader.parse(Array("a: 1\na: 2\n".utf8), path: "c.yaml")
        }
    }

    @Test func aliasBombIsBounded() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            let previous = "*a\(level - 1)"
            text += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
        }
        #expect(throws: ConfigSyntaxError.self) { try YAMLReader.parse(Array(text.utf8), path: "c.yaml") }
    }

    @Test func deepNestingIsBounded() {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: ConfigSyntaxError.self) { try YAMLReader.parse(Array(text.utf8), path: "c.yaml") }
    }

    @Test func emptyDocumentIsNull() throws {
        #expect(try YAMLReader.parse([], path: "c.yaml").value == .null)
    }
}

@Suite struct JSONReaderTests {
    @Test func valuesCarryLineNumbers() throws {
        let text = "{\n  \"a\": 1,\n  \"b\": [true,\n    \"x\"]\n}"
        let root = try JSONReader.parse(Array(text.utf8), path: "c.json")
        let entries = try #require(root.entries)
        #expect(entries[0].value == ConfigNode(.scalar("1"), location: .file(path: "c.json", line: 2)))
        guard case .sequence(let items) = entries[1].value.value else {
            Issue.record("b is not a list")
            return
        }
        #expect(items[1] == ConfigNode(.scalar("x"), location: .file(path: "c.json", line: 4)))
    }

    @Test func escapesAndSurrogates() throws {
        let root = try JSONReader.parse(Array(#"{"s": "a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#.utf8), path: "c.json")
        #expect(root.entries?[0].value.scalar == "a\"b\\c/d\né😀")
    }

    @Test(arguments: [
        "{\"a\": 1,}", "[1 2]", "{\"a\" 1}", "01", "\"unterminated", "{\"a\": 1, \"a\": 2}", "[1] x", "nul",
    ])
    func invalidJSONIsRejected(_ text: String) {
        #expect(throws: ConfigSyntaxError.self) { try JSONReader.parse(Array(text.utf8), path: "c.json") }
    }
}

/// The properties reader follows `java.util.Properties.load`: separators `=`, `:` or whitespace,
/// `#` and `!` comments, backslash continuation lines, and `\t \n \r \f \uXXXX` escapes.
@Suite struct PropertiesReaderTests {
    static func pairs(_ text: String) throws -> [String: String] {
        let pairs = try PropertiesReader.pairs(Array(text.utf8), path: "c.properties")
        return Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    @Test func javaSeparatorsAndComments() throws {
        let text = """
            # comment
            ! also a comment
            a=1
            b : 2
            c 3
              d   =   4  
            e
            f=
            """
        #expect(try Self.pairs(text) == ["a": "1", "b": "2", "c": "3", "d": "4  ", "e": "", "f": ""])
    }

    @Test func continuationLinesAndEscapes() throws {
        let text = "fruits = apple, banana, \\\n    pear\nkey\\ with\\ spaces = v\\tx\\u0041\\\\\nodd\\\\\\\nline = x\n"
        let result = try Self.pairs(text)
        #expect(result["fruits"] == "apple, banana, pear")
        #expect(result["key with spaces"] == "v\txA\\")
        #expect(result["odd\\line"] == "x")
    }

    @Test func laterKeyReplacesEarlier() throws {
        #expect(try Self.pairs("a=1\na=2\n") == ["a": "2"])
    }

    @Test func dottedKeysNestIntoListsAndMaps() throws {
        let text = "policy.1.from = b\npolicy.0.from = a\nheaders.X-A = 1\n"
        let root = try PropertiesReader.parse(Array(text.utf8), path: "c.properties")
        let entries = try #require(root.entries)
        guard case .sequence(let routes) = entries[0].value.value else {
            Issue.record("policy is not a list")
            return
        }
        #expect(routes.map { $0.entries?[0].value.scalar } == ["a", "b"])
        #expect(routes[0].entries?[0].value.location == .file(path: "c.properties", line: 2))
        #expect(entries[1].value.entries?[0].key == "X-A")
    }

    @Test func conflictingKeysAreAnError() {
        #expect(throws: ConfigSyntaxError.self) {
            try PropertiesReader.parse(Array("policy = x\npolicy.0.from = a\n".utf8), path: "c.properties")
        }
    }

    @Test func malformedUnicodeEscapeIsAnError() {
        #expect(throws: ConfigSyntaxError.self) { try Self.pairs("a = \\u12") }
    }
}

@Suite struct ValueParsingTests {
    @Test(arguments: [
        ("0", Duration.zero), ("300ms", .milliseconds(300)), ("1h30m", .seconds(5400)), ("1.5h", .seconds(5400)),
        ("2h45m30.5s", .milliseconds(9_930_500)), ("1us", .microseconds(1)), ("1µs", .microseconds(1)),
        ("10ns", .nanoseconds(10)), ("-2s", .seconds(-2)), (".5s", .milliseconds(500)),
        ("1m0.25s", .milliseconds(60_250)),
    ])
    func goDurations(_ text: String, _ expected: Duration) {
        #expect(ValueParsing.goDuration(text) == expected)
    }

    @Test(arguments: ["", "1", "s", "1x", "1.s.", "++1s", "1h-1m", "99999999999999999h"])
    func invalidGoDurations(_ text: String) {
        #expect(ValueParsing.goDuration(text) == nil)
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.milliseconds(300), "300ms"), (.seconds(5400), "1h30m0s"), (.seconds(30), "30s"),
        (.milliseconds(1500), "1.5s"), (.microseconds(2), "2µs"), (.seconds(300), "5m0s"),
    ])
    func goDurationStrings(_ duration: Duration, _ expected: String) {
        #expect(ValueParsing.goDurationString(duration) == expected)
    }

    @Test func boolSpellings() {
        for text in ["1", "t", "T", "true", "TRUE", "True"] {
            #expect(ValueParsing.bool(text, yamlWords: false) == true)
        }
        for text in ["0", "f", "F", "false", "FALSE", "False"] {
            #expect(ValueParsing.bool(text, yamlWords: false) == false)
        }
        #expect(ValueParsing.bool("yes", yamlWords: false) == nil)
        #expect(ValueParsing.bool("yes", yamlWords: true) == true)
        #expect(ValueParsing.bool("off", yamlWords: true) == false)
        #expect(ValueParsing.bool("tRuE", yamlWords: true) == nil)
    }

    @Test func addressesAndRanges() {
        #expect(ValueParsing.isAddressOrCIDR("10.0.0.0/8"))
        #expect(ValueParsing.isAddressOrCIDR("fd00::/8"))
        #expect(ValueParsing.isAddressOrCIDR("192.168.1.1"))
        #expect(!ValueParsing.isAddressOrCIDR("10.0.0.0/33"))
        #expect(!ValueParsing.isAddressOrCIDR("example.test"))
    }

    @Test func redisAddressForms() throws {
        let plain = try RedisAddress.parse("localhost:6379", password: nil).get()
        #expect(
            plain
                == RedisAddress(host: "localhost", port: 6379, useTLS: false, database: 0, username: nil, password: nil)
        )
        let url = try RedisAddress.parse("redis://user:pw@127.0.0.1:6390/2", password: nil).get()
        #expect(
            url
                == RedisAddress(
                    host: "127.0.0.1", port: 6390, useTLS: false, database: 2, username: "user", password: "pw"))
        let tls = try RedisAddress.parse("rediss://[::1]?db=4", password: "explicit").get()
        #expect(
            tls == RedisAddress(host: "::1", port: 6379, useTLS: true, database: 4, username: nil, password: "explicit")
        )
        #expect((try? RedisAddress.parse("redis://h:6379/x", password: nil).get()) == nil)
        #expect((try? RedisAddress.parse("rediss://h:6379/0?tls_ca_file=/ca.pem", password: nil).get()) != nil)
        for misspelt in ["rediss://h:6379/0?tls_ca=/ca.pem", "redis://h:6379/0?tls_skip_verify=true"] {
            guard case .failure(let error) = RedisAddress.parse(misspelt, password: nil) else {
                Issue.record("\(misspelt) was accepted")
                continue
            }
            #expect(error.reason.contains("tls_"))
        }
        #expect((try? RedisAddress.parse("localhost", password: nil).get()) == nil)
    }

    @Test func closestKeySuggestions() {
        let keys = SettingsCatalog.settings.map(\.key)
        #expect(SettingsCatalog.closest(to: "service", among: keys) == "services")
        #expect(SettingsCatalog.closest(to: "COOKIE_SECRT", among: keys) == "cookie_secret")
        #expect(SettingsCatalog.closest(to: "completely_unrelated_thing", among: keys) == nil)
    }
}
