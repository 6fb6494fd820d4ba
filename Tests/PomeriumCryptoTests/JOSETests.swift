import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumCrypto

/// Example keys and tokens from RFC 7515 appendix A, RFC 7520 section 4.4, RFC 7638 section 3.1 and
/// RFC 8037 appendix A.4.
enum RFCVectors {
    static let a1Key = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    static let a1Token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    static let a1Payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"

    static let a2Modulus =
        "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qP"
        + "CJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7"
        + "OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD"
        + "Zlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcD"
        + "TW9gb54h4FRWyuXpoQ"
    static let a2Token =
        "eyJhbGciOiJSUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"

    static let a3X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
    static let a3Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    static let a3Token =
        "eyJhbGciOiJFUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

    static let rfc7520Key = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"
    static let rfc7520KeyID = "018c0ae5-4d9b-471b-bfd6-eef314bc7037"
    static let rfc7520Token =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9"
        + ".SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
        + ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"

    static let rfc7638Modulus =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    static let rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

    static let ed25519X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    static let ed25519Token =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        + ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
}

private func decode(_ text: String) -> [UInt8] { Base64.urlUnpadded.decode(text)! }

@Suite("JOSE against RFC vectors")
struct RFCVectorTests {
    @Test("RFC 7515 A.1 HS256 verifies")
    func a1() throws {
        let verifier = try JWSVerifier(hmacKey: HMACKey(key: decode(RFCVectors.a1Key), digest: .sha256))
        let token = try verifier.verify(compact: Array(RFCVectors.a1Token.utf8))
        #expect(String(decoding: token.payload, as: UTF8.self) == RFCVectors.a1Payload)
        #expect(token.header.type == "JWT")
        let wrong = try JWSVerifier(hmacKey: HMACKey(key: decode(RFCVectors.rfc7520Key), digest: .sha256))
        #expect(throws: JWSError.invalidSignature) { try wrong.verify(compact: Array(RFCVectors.a1Token.utf8)) }
    }

    @Test("RFC 7515 A.2 RS256 verifies")
    func a2() throws {
        let key = try RSAPublicKey(modulus: decode(RFCVectors.a2Modulus), exponent: decode("AQAB"))
        let verifier = JWSVerifier(publicKey: .rsa(key), allowedAlgorithms: [.rs256])
        _ = try verifier.verify(compact: Array(RFCVectors.a2Token.utf8))
        let psOnly = JWSVerifier(publicKey: .rsa(key), allowedAlgorithms: [.ps256])
        #expect(throws: JWSError.algorithmNotAllowed(.rs256)) {
            try psOnly.verify(compact: Array(RFCVectors.a2Token.utf8))
        }
    }

    @Test("RFC 7515 A.3 ES256 verifies")
    func a3() throws {
        let key = try ECPublicKey(x: decode(RFCVectors.a3X), y: decode(RFCVectors.a3Y), curve: .p256)
        let verifier = JWSVerifier(publicKey: .ec(key), allowedAlgorithms: [.es256])
        let token = try verifier.verify(compact: Array(RFCVectors.a3Token.utf8))
        #expect(String(decoding: token.payload, as: UTF8.self) == RFCVectors.a1Payload)
        var altered = Array(RFCVectors.a3Token.utf8)
        altered[altered.count - 3] = UInt8(ascii: "A")
        #expect(throws: JWSError.invalidSignature) { try verifier.verify(compact: altered) }
    }

    @Test("RFC 7520 4.4 HS256 signs byte for byte")
    func rfc7520() throws {
        let key = try HMACKey(key: decode(RFCVectors.rfc7520Key), digest: .sha256)
        let parts = RFCVectors.rfc7520Token.split(separator: ".")
        let payload = decode(String(parts[1]))
        #expect(String(decoding: payload, as: UTF8.self).hasPrefix("It\u{2019}s a dangerous business, Frodo"))
        let signed = try JWS.sign(payload: payload, with: .hs256(key), keyID: RFCVectors.rfc7520KeyID)
        #expect(signed == RFCVectors.rfc7520Token)
        let verified = try JWSVerifier(hmacKey: key).verify(compact: Array(signed.utf8))
        #expect(verified.header.keyID == RFCVectors.rfc7520KeyID)
    }

    @Test("RFC 7638 thumbprint")
    func thumbprint() throws {
        let jwk = JWK(key: .rsa(try RSAPublicKey(modulus: decode(RFCVectors.rfc7638Modulus), exponent: decode("AQAB"))))
        #expect(try jwk.thumbprint() == RFCVectors.rfc7638Thumbprint)
    }

    @Test("RFC 8037 A.4 EdDSA verifies")
    func ed25519() throws {
        let key = try Ed25519PublicKey(rawRepresentation: decode(RFCVectors.ed25519X))
        let verifier = JWSVerifier(publicKey: .ed25519(key), allowedAlgorithms: [.edDSA])
        let token = try verifier.verify(compact: Array(RFCVectors.ed25519Token.utf8))
        #expect(String(decoding: token.payload, as: UTF8.self) == "Example of Ed25519 signing")
    }
}

@Suite("JWS rejections")
struct JWSRejectionTests {
    let ecKey = try! ECPrivateKey.generate()

    private func token(header: String, payload: String = "{}", signature: [UInt8] = [1, 2, 3]) -> [UInt8] {
        Array(
            (Base64.urlUnpadded.encode(Array(header.utf8)) + "." + Base64.urlUnpadded.encode(Array(payload.utf8)) + "."
                + Base64.urlUnpadded.encode(signature)).utf8)
    }

    @Test("alg none is never accepted")
    func algNone() throws {
        let verifier = JWSVerifier(publicKey: .ec(ecKey.publicKey), allowedAlgorithms: JWSAlgorithm.identityProvider)
        #expect(throws: JWSError.unsupportedAlgorithm("none")) {
            try verifier.verify(compact: token(header: #"{"alg":"none"}"#, signature: []))
        }
        let hmac = try JWSVerifier(hmacKey: HMACKey(key: [1, 2, 3], digest: .sha256))
        #expect(throws: JWSError.unsupportedAlgorithm("none")) {
            try hmac.verify(compact: token(header: #"{"alg":"none"}"#, signature: []))
        }
    }

    @Test("HS256 signed with the public key is rejected")
    func algorithmConfusion() throws {
        let publicPEM = try ecKey.publicKey.pem()
        let forged = try JWS.sign(
            payload: Array("{}".utf8), with: .hs256(HMACKey(key: Array(publicPEM.utf8), digest: .sha256)))
        let verifier = JWSVerifier(publicKey: .ec(ecKey.publicKey), allowedAlgorithms: [.es256, .hs256])
        #expect(verifier.allowedAlgorithms == [.es256])
        #expect(throws: JWSError.algorithmNotAllowed(.hs256)) { try verifier.verify(compact: Array(forged.utf8)) }
    }

    @Test("an ES256 token is rejected by an HMAC verifier")
    func asymmetricToHMAC() throws {
        let signed = try JWS.sign(payload: Array("{}".utf8), with: .ecdsa(ecKey))
        let verifier = try JWSVerifier(hmacKey: HMACKey(key: [1], digest: .sha256))
        #expect(throws: JWSError.algorithmNotAllowed(.es256)) { try verifier.verify(compact: Array(signed.utf8)) }
    }

    @Test("alg must match the key type")
    func algKeyMismatch() throws {
        let signed = try JWS.sign(payload: Array("{}".utf8), with: .ecdsa(ecKey))
        let p384 = try ECPrivateKey.generate(curve: .p384)
        let verifier = JWSVerifier(publicKey: .ec(p384.publicKey), allowedAlgorithms: [.es256, .es384])
        #expect(throws: JWSError.noMatchingKey) { try verifier.verify(compact: Array(signed.utf8)) }
    }

    @Test("kid selects the key")
    func kidSelection() throws {
        let other = try ECPrivateKey.generate()
        let set = JWKSet(keys: [JWK(key: .ec(other.publicKey), keyID: "a"), JWK(key: .ec(ecKey.publicKey), keyID: "b")])
        let verifier = JWSVerifier(keySet: set, allowedAlgorithms: [.es256])
        _ = try verifier.verify(compact: Array(try JWS.sign(payload: [], with: .ecdsa(ecKey), keyID: "b").utf8))
        _ = try verifier.verify(compact: Array(try JWS.sign(payload: [], with: .ecdsa(ecKey)).utf8))
        #expect(throws: JWSError.invalidSignature) {
            try verifier.verify(compact: Array(try JWS.sign(payload: [], with: .ecdsa(ecKey), keyID: "a").utf8))
        }
        #expect(throws: JWSError.noMatchingKey) {
            try verifier.verify(compact: Array(try JWS.sign(payload: [], with: .ecdsa(ecKey), keyID: "c").utf8))
        }
    }

    @Test("a JWK with alg or use restrictions is honoured")
    func jwkRestrictions() throws {
        let signed = Array(try JWS.sign(payload: [], with: .ecdsa(ecKey)).utf8)
        let encryptionOnly = JWKSet(keys: [JWK(key: .ec(ecKey.publicKey), use: "enc")])
        #expect(throws: JWSError.noMatchingKey) {
            try JWSVerifier(keySet: encryptionOnly, allowedAlgorithms: [.es256]).verify(compact: signed)
        }
        let otherAlg = JWKSet(keys: [JWK(key: .ec(ecKey.publicKey), algorithm: "ES384")])
        #expect(throws: JWSError.noMatchingKey) {
            try JWSVerifier(keySet: otherAlg, allowedAlgorithms: [.es256]).verify(compact: signed)
        }
    }

    @Test("malformed compact forms are rejected")
    func malformed() throws {
        let verifier = JWSVerifier(publicKey: .ec(ecKey.publicKey), allowedAlgorithms: [.es256])
        let valid = try JWS.sign(payload: Array("{}".utf8), with: .ecdsa(ecKey))
        let cases: [String] = [
            "", "a.b", "a.b.c.d", String(valid.dropLast(10)), valid + "=",
            valid.replacingOccurrences(of: ".", with: ".."),
            "!!!" + valid,
        ]
        for text in cases {
            #expect(throws: JWSError.self) { try verifier.verify(compact: Array(text.utf8)) }
        }
        #expect(throws: JWSError.malformed("header is not a JSON object")) {
            try verifier.verify(compact: token(header: "[]"))
        }
        #expect(throws: JWSError.malformed("header is not a JSON object")) {
            try verifier.verify(compact: token(header: #"{"alg":"ES256","alg":"none"}"#))
        }
        #expect(throws: JWSError.unsupportedCriticalHeader) {
            try verifier.verify(compact: token(header: #"{"alg":"ES256","crit":["b64"]}"#))
        }
        #expect(throws: JWSError.malformed("token longer than 64 KiB")) {
            try verifier.verify(compact: [UInt8](repeating: 0x41, count: 70_000))
        }
    }
}

@Suite("JWK and JWKS")
struct JWKTests {
    @Test("JWKS round trip keeps every key type")
    func roundTrip() throws {
        let ec = try ECPrivateKey.generate()
        let ec384 = try ECPrivateKey.generate(curve: .p384)
        let rsa = try RSAPublicKey(modulus: decode(RFCVectors.a2Modulus), exponent: decode("AQAB"))
        let ed = try Ed25519PublicKey(rawRepresentation: decode(RFCVectors.ed25519X))
        let set = JWKSet(keys: [
            JWK(key: .ec(ec.publicKey), keyID: "ec", algorithm: "ES256", use: "sig"),
            JWK(key: .ec(ec384.publicKey), keyID: "ec384"), JWK(key: .rsa(rsa), keyID: "rsa"), JWK(key: .ed25519(ed)),
        ])
        let parsed = try JWKSet(json: set.jsonBytes())
        #expect(parsed == set)
    }

    @Test("unknown key types are skipped and private members dropped")
    func skipsUnknown() throws {
        let document = """
            {"keys":[{"kty":"oct","k":"AAAA"},{"kty":"EC","crv":"P-256","x":"\(RFCVectors.a3X)","y":"\(RFCVectors.a3Y)","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI","kid":"k"}]}
            """
        let set = try JWKSet(json: Array(document.utf8))
        #expect(set.keys.count == 1)
        #expect(set.keys[0].keyID == "k")
        #expect(!String(decoding: set.jsonBytes(), as: UTF8.self).contains("\"d\""))
    }

    @Test("invalid JWKS documents are rejected")
    func rejects() {
        for document in [
            "[]", "{}", #"{"keys":{}}"#, #"{"keys":[1]}"#, #"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#,
            #"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#,
            #"{"keys":[{"kty":"OKP","crv":"X25519","x":"AA"}]}"#,
        ] {
            #expect(throws: KeyError.self, "\(document)") { try JWKSet(json: Array(document.utf8)) }
        }
    }
}

@Suite("JOSE cross-checks with PyJWT and jwcrypto", .enabled(if: PythonRunner.isAvailable))
struct PythonCrossCheckTests {
    @Test("tokens signed by Python verify in Swift")
    func pythonToSwift() throws {
        let output = try PythonRunner.run(
            """
            import json, jwt
            from jwcrypto import jwk
            from cryptography.hazmat.primitives.asymmetric import ec, rsa, ed25519
            from cryptography.hazmat.primitives import serialization
            keys = {
                "ES256": ec.generate_private_key(ec.SECP256R1()),
                "ES384": ec.generate_private_key(ec.SECP384R1()),
                "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                "EdDSA": ed25519.Ed25519PrivateKey.generate(),
            }
            out = {"tokens": {}, "jwks": {"keys": []}}
            for alg, key in keys.items():
                out["tokens"][alg] = jwt.encode({"sub": "user-" + alg}, key, algorithm=alg, headers={"kid": alg})
                pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                j = json.loads(jwk.JWK.from_pem(pem).export_public())
                j["kid"] = alg
                out["jwks"]["keys"].append(j)
            out["hs256"] = jwt.encode({"sub": "hmac"}, "k" * 32, algorithm="HS256")
            print(json.dumps(out))
            """)
        let object = try JSONParser.parseObject(Array(output.utf8))
        let jwksBytes = JSONWriter.encode(try #require(object["jwks"]))
        let set = try JWKSet(json: jwksBytes)
        #expect(set.keys.count == 5)
        let verifier = JWSVerifier(keySet: set, allowedAlgorithms: JWSAlgorithm.identityProvider)
        let tokens = try #require(object["tokens"]?.objectValue)
        for (alg, value) in tokens.members {
            let text = try #require(value.stringValue)
            let token = try verifier.verify(compact: Array(text.utf8))
            #expect(token.header.algorithm.rawValue == alg)
            #expect(try JSONParser.parseObject(token.payload)["sub"] == .string("user-\(alg)"))
        }
        let hmacToken = try #require(object["hs256"]?.stringValue)
        #expect(throws: JWSError.algorithmNotAllowed(.hs256)) { try verifier.verify(compact: Array(hmacToken.utf8)) }
        let hmac = try JWSVerifier(
            hmacKey: HMACKey(key: Array(String(repeating: "k", count: 32).utf8), digest: .sha256))
        _ = try hmac.verify(compact: Array(hmacToken.utf8))
    }

    @Test("tokens signed by Swift verify in Python")
    func swiftToPython() throws {
        let p256 = try ECPrivateKey.generate()
        let p384 = try ECPrivateKey.generate(curve: .p384)
        let set = JWKSet(keys: [
            JWK(key: .ec(p256.publicKey), keyID: "p256"), JWK(key: .ec(p384.publicKey), keyID: "p384"),
        ])
        let payload = Array(#"{"sub":"swift","n":1}"#.utf8)
        let es256 = try JWS.sign(payload: payload, with: .ecdsa(p256), keyID: "p256", type: "JWT")
        let es384 = try JWS.sign(payload: payload, with: .ecdsa(p384), keyID: "p384")
        let hs256 = try JWS.sign(
            payload: payload, with: .hs256(HMACKey(key: Array(String(repeating: "s", count: 32).utf8), digest: .sha256))
        )
        let input = JSONWriter.encode(
            .object(
                JSONObject([
                    ("jwks", try JSONParser.parse(set.jsonBytes())), ("es256", .string(es256)),
                    ("es384", .string(es384)),
                    ("hs256", .string(hs256)),
                ])))
        let output = try PythonRunner.run(
            """
            import json, sys, jwt
            from jwcrypto import jwk, jws
            data = json.load(sys.stdin)
            keyset = jwk.JWKSet.from_json(json.dumps(data["jwks"]))
            results = []
            for name in ("es256", "es384"):
                token = jws.JWS()
                token.deserialize(data[name])
                kid = token.jose_header["kid"]
                token.verify(keyset.get_key(kid))
                results.append(json.loads(token.payload)["sub"])
                pub = jwt.PyJWK(json.loads(keyset.get_key(kid).export_public()))
                results.append(jwt.decode(data[name], pub.key, algorithms=[name.upper()])["sub"])
            results.append(jwt.decode(data["hs256"], "s" * 32, algorithms=["HS256"])["sub"])
            print(",".join(results))
            """, input: String(decoding: input, as: UTF8.self))
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "swift,swift,swift,swift,swift")
    }

    @Test("JWK thumbprints match jwcrypto")
    func thumbprints() throws {
        let key = try ECPrivateKey.generate()
        let jwk = JWK(key: .ec(key.publicKey))
        let output = try PythonRunner.run(
            """
            import sys
            from jwcrypto import jwk
            print(jwk.JWK.from_json(sys.stdin.read()).thumbprint())
            """, input: String(decoding: JSONWriter.encode(.object(jwk.jsonObject)), as: UTF8.self))
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == (try jwk.thumbprint()))
    }
}
