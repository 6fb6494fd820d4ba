import Testing

@testable import PomeriumCrypto

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

private func bytes(hex text: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        result.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return result
}

@Suite("Base64")
struct Base64Tests {
    @Test("RFC 4648 section 10 vectors")
    func rfcVectors() {
        let cases = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in cases {
            #expect(Base64.standard.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.standard.decode(encoded) == Array(plain.utf8))
            let unpadded = encoded.replacingOccurrences(of: "=", with: "")
            #expect(Base64.urlUnpadded.encode(Array(plain.utf8)) == unpadded)
            #expect(Base64.urlUnpadded.decode(unpadded) == Array(plain.utf8))
        }
    }

    @Test("alphabets differ for bytes 0xfb 0xff")
    func alphabets() {
        #expect(Base64.standard.encode([0xFB, 0xFF]) == "+/8=")
        #expect(Base64.url.encode([0xFB, 0xFF]) == "-_8=")
        #expect(Base64.standardUnpadded.encode([0xFB, 0xFF]) == "+/8")
        #expect(Base64.url.decode("+/8=") == nil)
        #expect(Base64.standard.decode("-_8=") == nil)
    }

    @Test("strict decoding rejects non-canonical input")
    func strict() {
        #expect(Base64.urlUnpadded.decode("Zg==") == nil)
        #expect(Base64.url.decode("Zg") == nil)
        #expect(Base64.url.decode("Zg=") == nil)
        #expect(Base64.urlUnpadded.decode("Z") == nil)
        // "Zh" carries a non-zero unused bit; it would also decode to "f" without the check.
        #expect(Base64.urlUnpadded.decode("Zh") == nil)
        #expect(Base64.urlUnpadded.decode("Zm9") == nil)
        #expect(Base64.urlUnpadded.decode("Zm 9") == nil)
        #expect(Base64.standard.decode("Zm9v\n") == nil)
        #expect(Base64.standard.decode("=Zm9") == nil)
    }

    @Test("round trip of every length up to 70")
    func roundTrip() throws {
        for length in 0...70 {
            let data = try SecureRandom.bytes(length)
            for variant in [Base64.standard, .standardUnpadded, .url, .urlUnpadded] {
                let encoded = variant.encode(data)
                #expect(encoded.utf8.count == variant.encodedCount(length))
                #expect(variant.decode(encoded) == data)
            }
        }
    }
}

@Suite("Digests, HMAC and HKDF")
struct DigestTests {
    @Test("SHA-2 digests of abc")
    func shaVectors() throws {
        let abc = Array("abc".utf8)
        #expect(
            hex(try Digest.hash(.sha256, abc)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(try Digest.hash(.sha384, abc))
                == "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
        #expect(
            hex(try Digest.hash(.sha512, abc)).hasPrefix(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"))
        #expect(
            hex(try Digest.hash(.sha512_256, abc)) == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        )
    }

    @Test("HMAC-SHA-256 RFC 4231 test case 2")
    func hmacVector() throws {
        let key = try HMACKey(key: Array("Jefe".utf8), digest: .sha256)
        let mac = try key.authenticate(Array("what do ya want for nothing?".utf8))
        #expect(hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(key.isValid(mac: mac, for: Array("what do ya want for nothing?".utf8)))
        #expect(!key.isValid(mac: mac, for: Array("what do ya want for nothing!".utf8)))
        #expect(!key.isValid(mac: mac.dropLast(), for: Array("what do ya want for nothing?".utf8)))
    }

    @Test("HMAC key reused across calls and parts")
    func hmacParts() throws {
        let key = try HMACKey(key: Array("secret".utf8), digest: .sha512_256)
        let whole = try key.authenticate(Array("hello world".utf8))
        let hello = Array("hello ".utf8)
        let world = Array("world".utf8)
        let parts = try hello.withUnsafeBytes { first in
            try world.withUnsafeBytes { second in try key.authenticate(parts: [first, second]) }
        }
        #expect(parts == whole)
        #expect(try key.authenticate(Array("hello world".utf8)) == whole)
        #expect(whole.count == 32)
    }

    @Test("HMAC rejects an empty key")
    func hmacEmptyKey() {
        #expect(throws: OpenSSLError.self) { try HMACKey(key: [UInt8](), digest: .sha256) }
    }

    @Test("HKDF RFC 5869 test case 1")
    func hkdfVector() throws {
        let okm = try HKDF.deriveKey(
            key: [UInt8](repeating: 0x0B, count: 22),
            salt: bytes(hex: "000102030405060708090a0b0c"),
            info: bytes(hex: "f0f1f2f3f4f5f6f7f8f9"),
            length: 42)
        #expect(
            hex(okm)
                == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test("constant-time compare")
    func constantTime() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
    }

    @Test("constant-time compare of buffers")
    func constantTimeBuffers() {
        let stored: [UInt8] = Array("_pomerium=v1.abc".utf8)
        let cases: [([UInt8], Bool)] = [
            (Array("_pomerium=v1.abc".utf8), true),
            (Array("_pomerium=v1.abd".utf8), false),
            (Array("Xpomerium=v1.abc".utf8), false),
            (Array("_pomerium=v1.ab".utf8), false),
        ]
        for (candidate, expected) in cases {
            let equal = stored.withUnsafeBufferPointer { left in
                candidate.withUnsafeBufferPointer { right in ConstantTime.equals(left, right) }
            }
            #expect(equal == expected, "\(String(decoding: candidate, as: UTF8.self))")
        }
        let empty = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        #expect(ConstantTime.equals(empty, empty))
    }

    @Test("secure random bytes differ")
    func random() throws {
        let first = try SecureRandom.bytes(32)
        let second = try SecureRandom.bytes(32)
        #expect(first.count == 32)
        #expect(first != second)
        #expect(try SecureRandom.bytes(0).isEmpty)
    }
}

@Suite("AEAD")
struct AEADTests {
    let secret = [UInt8](repeating: 7, count: 32)

    @Test("seal and open round trip")
    func roundTrip() throws {
        let key = try AEADKey(secret: secret, purpose: "test")
        for length in [0, 1, 15, 16, 17, 1024] {
            let plaintext = try SecureRandom.bytes(length)
            let sealed = try key.seal(plaintext, associatedData: Array("ad".utf8))
            #expect(sealed.count == length + AEADKey.overhead)
            #expect(try key.open(sealed, associatedData: Array("ad".utf8)) == plaintext)
        }
    }

    @Test("every bit flip is rejected")
    func bitFlips() throws {
        let key = try AEADKey(secret: secret, purpose: "test")
        let sealed = try key.seal(Array("session".utf8))
        for index in sealed.indices {
            for bit in 0..<8 {
                var altered = sealed
                altered[index] ^= 1 << bit
                #expect(throws: AEADError.authenticationFailed) { try key.open(altered) }
            }
        }
    }

    @Test("wrong associated data, purpose or secret is rejected")
    func bindings() throws {
        let key = try AEADKey(secret: secret, purpose: "one")
        let sealed = try key.seal(Array("x".utf8), associatedData: Array("a".utf8))
        #expect(throws: AEADError.authenticationFailed) { try key.open(sealed, associatedData: Array("b".utf8)) }
        let otherPurpose = try AEADKey(secret: secret, purpose: "two")
        #expect(throws: AEADError.authenticationFailed) {
            try otherPurpose.open(sealed, associatedData: Array("a".utf8))
        }
        let otherSecret = try AEADKey(secret: [UInt8](repeating: 8, count: 32), purpose: "one")
        #expect(throws: AEADError.authenticationFailed) {
            try otherSecret.open(sealed, associatedData: Array("a".utf8))
        }
    }

    @Test("truncated input and short secrets are rejected")
    func lengths() throws {
        let key = try AEADKey(secret: secret, purpose: "test")
        let sealed = try key.seal([UInt8]())
        #expect(throws: AEADError.tooShort(AEADKey.overhead - 1)) { try key.open(sealed.dropLast()) }
        #expect(throws: AEADError.secretTooShort(31)) {
            try AEADKey(secret: [UInt8](repeating: 1, count: 31), purpose: "x")
        }
    }

    @Test("two seals of one plaintext differ")
    func freshSalt() throws {
        let key = try AEADKey(secret: secret, purpose: "test")
        #expect(try key.seal(Array("same".utf8)) != key.seal(Array("same".utf8)))
    }
}

@Suite("JSON")
struct JSONTests {
    @Test("parses nested values and keeps order")
    func parse() throws {
        let object = try JSONParser.parseObject(
            Array(#"{"b":1,"a":[true,false,null,-2.5,"x\u00e9\n\"",{"c":1e3}],"big":12345678901234567890}"#.utf8))
        #expect(object.members.map(\.key) == ["b", "a", "big"])
        #expect(object["b"] == .integer(1))
        let array = try #require(object["a"]?.arrayValue)
        #expect(array[0] == .bool(true))
        #expect(array[2] == .null)
        #expect(array[3] == .double(-2.5))
        #expect(array[4] == .string("xé\n\""))
        #expect(array[5].objectValue?["c"] == .double(1000))
        #expect(object["big"]?.doubleValue == 1.2345678901234567e19)
    }

    @Test("surrogate pairs decode")
    func surrogates() throws {
        #expect(try JSONParser.parse(Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(#""\ud83d""#.utf8)) }
    }

    @Test("rejects malformed documents")
    func rejects() {
        let bad = [
            "", "{", "{\"a\":1,}", "[1,]", "{\"a\":1,\"a\":2}", "01", "1.", "tru", "\"\u{01}\"", "{} x", "[\"\\x\"]",
            String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
        ]
        for text in bad {
            #expect(throws: JSONParseError.self, "\(text.prefix(20))") { try JSONParser.parse(Array(text.utf8)) }
        }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test("writer escapes and round-trips")
    func writer() throws {
        let value = JSONValue.object(
            JSONObject([
                ("s", .string("a\"b\\c\n\u{01}é")), ("i", .integer(-5)), ("d", .double(1.5)), ("n", .null),
                ("whole", .double(1_586_842_679)),
            ]))
        let encoded = JSONWriter.encode(value)
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""whole":1586842679"#))
        #expect(String(decoding: encoded, as: UTF8.self).contains(#"\u0001"#))
        let parsed = try JSONParser.parse(encoded)
        #expect(parsed.objectValue?["s"] == .string("a\"b\\c\n\u{01}é"))
        #expect(parsed.objectValue?["whole"] == .integer(1_586_842_679))
    }
}
