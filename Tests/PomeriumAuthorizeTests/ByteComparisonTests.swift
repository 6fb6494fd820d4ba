import Testing

@testable import PomeriumAuthorize

@Suite("Byte comparison of strings")
struct ByteComparisonTests {
    @Test("same bytes")
    func sameBytes() {
        #expect("app.example.test".hasSameBytes(as: "app.example.test"))
        #expect("".hasSameBytes(as: ""))
        #expect(!"app.example.test".hasSameBytes(as: "app.example.tesT"))
        #expect(!"app.example.test".hasSameBytes(as: "app.example.test."))
        #expect(!"".hasSameBytes(as: "a"))
        // Canonically equivalent, so `==` holds, but the bytes differ.
        #expect("\u{212A}" == "K")
        #expect(!"\u{212A}".hasSameBytes(as: "K"))
        #expect(!"e\u{301}".hasSameBytes(as: "\u{E9}"))
    }

    @Test("byte prefix")
    func bytePrefix() {
        #expect("/app/x".hasBytePrefix("/app"))
        #expect("/app".hasBytePrefix("/app"))
        #expect("/app".hasBytePrefix(""))
        #expect(!"/ap".hasBytePrefix("/app"))
        #expect(!"/App/x".hasBytePrefix("/app"))
        #expect(!"/\u{E9}t\u{E9}".hasBytePrefix("/e\u{301}"))
    }
}
