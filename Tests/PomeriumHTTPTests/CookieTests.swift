import PomeriumHTTP
import Testing

@Suite("Cookie parsing")
struct CookieParsingTests {
    @Test("pairs in order")
    func pairs() {
        let cookies = CookieParser.parse("_pomerium=abc; theme=dark;lang=en ;  empty=")
        #expect(cookies.map(\.name) == ["_pomerium", "theme", "lang", "empty"])
        #expect(cookies.map(\.value) == ["abc", "dark", "en", ""])
    }

    @Test("quoted values")
    func quoted() {
        let cookies = CookieParser.parse("a=\"quoted\"; b=\"\"; c=\"unbalanced")
        #expect(cookies == [HTTPCookie(name: "a", value: "quoted"), HTTPCookie(name: "b", value: "")])
    }

    @Test("duplicates kept")
    func duplicates() {
        let cookies = CookieParser.parse("s=1; S=2; s=3")
        #expect(cookies.map(\.value) == ["1", "2", "3"])
    }

    @Test("value with equals and spaces")
    func equalsInValue() {
        let cookies = CookieParser.parse("token=a=b==; msg=hello world")
        #expect(cookies == [HTTPCookie(name: "token", value: "a=b=="), HTTPCookie(name: "msg", value: "hello world")])
    }

    @Test("invalid pairs skipped")
    func invalidSkipped() {
        let cookies = CookieParser.parse("noequals; =novalue; bad name=1; ok=1; q=a\"b; back=a\\b; good=2")
        #expect(cookies.map(\.name) == ["ok", "good"])
    }

    @Test(
        "hostile inputs never crash",
        arguments: [
            "", ";", ";;;", "=", "==", " = ", "\"", "a=\"", "a=\"\"\"", String(repeating: ";", count: 10_000),
            String(repeating: "a=b; ", count: 5000), "\u{0}=\u{0}", "a=\u{7F}", "é=é", "a=b\tc",
        ])
    func hostile(_ header: String) {
        let cookies = CookieParser.parse(header)
        #expect(cookies.allSatisfy { SetCookie.isValidName($0.name) })
    }

    @Test("several Cookie fields")
    func severalFields() {
        let headers: HTTPHeaders = ["Cookie": "a=1", "X": "y", "cookie": "b=2; c=3"]
        #expect(CookieParser.parse(headers: headers).map(\.name) == ["a", "b", "c"])
    }

    @Test("header value join")
    func join() {
        let value = CookieParser.headerValue([HTTPCookie(name: "a", value: "1"), HTTPCookie(name: "b", value: "2")])
        #expect(value == "a=1; b=2")
        #expect(CookieParser.headerValue([]) == "")
    }
}

@Suite("Set-Cookie")
struct SetCookieTests {
    @Test("all attributes")
    func allAttributes() throws {
        let cookie = SetCookie(
            name: "_pomerium", value: "v1", path: "/", domain: ".example.test", expires: 784_111_777, maxAge: 3600,
            secure: true, httpOnly: true, sameSite: .lax)
        #expect(
            try cookie.serialized()
                == "_pomerium=v1; Path=/; Domain=example.test; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        )
    }

    @Test("minimal cookie")
    func minimal() throws {
        #expect(try SetCookie(name: "a", value: "").serialized() == "a=")
    }

    @Test("deletion writes Max-Age zero")
    func deletion() throws {
        #expect(try SetCookie(name: "a", value: "", maxAge: -1).serialized() == "a=; Max-Age=0")
    }

    @Test("SameSite values")
    func sameSite() throws {
        #expect(try SetCookie(name: "a", value: "b", sameSite: .strict).serialized() == "a=b; SameSite=Strict")
        #expect(
            try SetCookie(name: "a", value: "b", secure: true, sameSite: SetCookie.SameSite.none).serialized()
                == "a=b; Secure; SameSite=None")
        #expect(throws: CookieError(.sameSiteNoneWithoutSecure)) {
            try SetCookie(name: "a", value: "b", sameSite: SetCookie.SameSite.none).serialized()
        }
    }

    @Test("prefixed names with their attributes")
    func prefixes() throws {
        #expect(try SetCookie(name: "__Secure-a", value: "v", secure: true).serialized() == "__Secure-a=v; Secure")
        let host = SetCookie(name: "__Host-a", value: "v", path: "/", secure: true)
        #expect(try host.serialized() == "__Host-a=v; Path=/; Secure")
    }

    @Test("space or comma value is quoted")
    func quotedValue() throws {
        #expect(try SetCookie(name: "a", value: "b c,d").serialized() == "a=\"b c,d\"")
    }

    @Test(
        "invalid parts rejected",
        arguments: [
            (SetCookie(name: "", value: "v"), CookieError.Kind.invalidName),
            (SetCookie(name: "a b", value: "v"), .invalidName),
            (SetCookie(name: "a;b", value: "v"), .invalidName),
            (SetCookie(name: "a\r\nSet-Cookie: x", value: "v"), .invalidName),
            (SetCookie(name: "a", value: "v;Domain=evil"), .invalidValue),
            (SetCookie(name: "a", value: "v\r\nX: y"), .invalidValue),
            (SetCookie(name: "a", value: "q\"q"), .invalidValue),
            (SetCookie(name: "a", value: "back\\slash"), .invalidValue),
            (SetCookie(name: "a", value: "\u{0}"), .invalidValue),
            (SetCookie(name: "a", value: "é"), .invalidValue),
            (SetCookie(name: "a", value: "v", path: "/;Domain=evil"), .invalidPath),
            (SetCookie(name: "a", value: "v", path: "/\r\n"), .invalidPath),
            (SetCookie(name: "a", value: "v", domain: "evil;x"), .invalidDomain),
            (SetCookie(name: "a", value: "v", domain: "a..b"), .invalidDomain),
            (SetCookie(name: "a", value: "v", domain: "-a.test"), .invalidDomain),
            (SetCookie(name: "a", value: "v", domain: ""), .invalidDomain),
            (SetCookie(name: "a", value: "v", domain: "."), .invalidDomain),
            (SetCookie(name: "__Secure-a", value: "v"), .securePrefixRequirements),
            (SetCookie(name: "__secure-a", value: "v"), .securePrefixRequirements),
            (SetCookie(name: "__Host-a", value: "v", path: "/"), .hostPrefixRequirements),
            (SetCookie(name: "__Host-a", value: "v", secure: true), .hostPrefixRequirements),
            (
                SetCookie(name: "__HOST-a", value: "v", path: "/", domain: "example.test", secure: true),
                .hostPrefixRequirements
            ),
        ])
    func invalid(_ cookie: SetCookie, _ kind: CookieError.Kind) {
        #expect(throws: CookieError(kind)) { try cookie.serialized() }
    }
}

@Suite("HTTP date")
struct HTTPDateTests {
    @Test(
        "IMF-fixdate values",
        arguments: [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
            (-86_400 * 365, "Wed, 01 Jan 1969 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (Int64.max, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (Int64.min, "Sat, 01 Jan 0000 00:00:00 GMT"),
        ] as [(Int64, String)])
    func format(_ seconds: Int64, _ expected: String) {
        #expect(HTTPDate.imfFixdate(unixSeconds: seconds) == expected)
    }
}
