import Testing

@testable import PomeriumAuthorize

@Suite("EmailAddress")
struct EmailAddressTests {
    struct ParseCase: Sendable, CustomTestStringConvertible {
        let text: String
        /// The expected local part and domain, or nil when the text must not parse.
        let expected: (local: String, domain: String)?
        var testDescription: String { "\"\(text)\"" }
    }

    static let parseCases: [ParseCase] = [
        ParseCase(text: "alice@example.test", expected: ("alice", "example.test")),
        ParseCase(text: "alice@EXAMPLE.Test", expected: ("alice", "example.test")),
        ParseCase(text: "Alice.Smith+tag@example.test", expected: ("Alice.Smith+tag", "example.test")),
        ParseCase(text: "a@b", expected: ("a", "b")),
        ParseCase(text: "jürgen@bücher.test", expected: ("jürgen", "bücher.test")),
        // Only ASCII letters are lower-cased: Ü stays upper-case.
        ParseCase(text: "jürgen@BÜCHER.test", expected: ("jürgen", "bÜcher.test")),
        // A combining mark right after the `@` belongs to the domain, not to a grapheme with the `@`.
        ParseCase(text: "alice@\u{301}example.test", expected: ("alice", "\u{301}example.test")),
        ParseCase(text: "alice\u{301}@example.test", expected: ("alice\u{301}", "example.test")),
        ParseCase(text: "a@b@c", expected: nil),
        ParseCase(text: "a@@c", expected: nil),
        ParseCase(text: "@example.test", expected: nil),
        ParseCase(text: "alice@", expected: nil),
        ParseCase(text: "@", expected: nil),
        ParseCase(text: "", expected: nil),
        ParseCase(text: "alice", expected: nil),
        ParseCase(text: "alice @example.test", expected: nil),
        ParseCase(text: " alice@example.test", expected: nil),
        ParseCase(text: "alice@example.test\n", expected: nil),
        ParseCase(text: "alice@exa\u{0}mple.test", expected: nil),
        ParseCase(text: "alice@example.test\u{2028}", expected: nil),
        ParseCase(text: "alice@example.test\u{A0}", expected: nil),
        ParseCase(text: "Alice@Example.Test", expected: ("Alice", "example.test")),
        ParseCase(text: "alice@exa\u{7F}mple.test", expected: nil),
        ParseCase(text: "a@b@c\u{E9}", expected: nil),
        ParseCase(text: "a\u{E9}@b@c", expected: nil),
        ParseCase(text: "alice@example.test\u{E9}", expected: ("alice", "example.test\u{E9}")),
    ]

    @Test("parsing", arguments: parseCases)
    func parsing(_ testCase: ParseCase) {
        let address = EmailAddress(testCase.text)
        if let expected = testCase.expected {
            // Compare bytes: String equality would accept a canonically equivalent spelling.
            #expect(address.map { Array($0.localPart.utf8) } == Array(expected.local.utf8))
            #expect(address.map { Array($0.domain.utf8) } == Array(expected.domain.utf8))
        } else {
            #expect(address == nil)
        }
    }

    struct EqualityCase: Sendable, CustomTestStringConvertible {
        let left: String
        let right: String
        let equal: Bool
        let explanation: String
        var testDescription: String { explanation }
    }

    static let equalityCases: [EqualityCase] = [
        EqualityCase(
            left: "alice@example.test", right: "alice@EXAMPLE.TEST", equal: true, explanation: "domain case ignored"),
        EqualityCase(
            left: "alice@example.test", right: "Alice@example.test", equal: false, explanation: "local case kept"),
        EqualityCase(
            left: "caf\u{E9}@example.test", right: "cafe\u{301}@example.test", equal: false,
            explanation: "no Unicode normalisation in the local part"),
        EqualityCase(
            left: "a@b\u{FC}cher.test", right: "a@bu\u{308}cher.test", equal: false,
            explanation: "no Unicode normalisation in the domain"),
        // U+212A KELVIN SIGN lower-cases to ASCII k under full Unicode folding.
        EqualityCase(
            left: "a@kelvin.test", right: "a@\u{212A}elvin.test", equal: false, explanation: "no Unicode case folding"),
    ]

    @Test("equality", arguments: equalityCases)
    func equality(_ testCase: EqualityCase) throws {
        let left = try #require(EmailAddress(testCase.left))
        let right = try #require(EmailAddress(testCase.right))
        #expect((left == right) == testCase.equal)
        #expect(Set([left]).contains(right) == testCase.equal)
    }

    @Test("description lower-cases the domain only")
    func descriptionForm() throws {
        let address = try #require(EmailAddress("Alice@Example.TEST"))
        #expect(address.description == "Alice@example.test")
    }

    @Test("exact text compares bytes, not canonical equivalence")
    func exactText() {
        #expect("caf\u{E9}" == "cafe\u{301}")
        #expect(ExactText("caf\u{E9}") != ExactText("cafe\u{301}"))
        #expect(Set([ExactText("caf\u{E9}")]).contains(ExactText("cafe\u{301}")) == false)
        #expect(ExactText("group") == ExactText("group"))
    }
}
