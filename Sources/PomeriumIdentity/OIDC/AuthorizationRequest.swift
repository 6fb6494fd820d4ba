import PomeriumCrypto

/// A prepared redirect to the provider's authorization endpoint. The caller keeps `nonce` and
/// `codeVerifier` with the pending login (for example inside its encrypted state) and passes them
/// back to `authenticate` at the callback.
public struct AuthorizationRequest: Sendable, Equatable {
    /// The full authorization URL to redirect the browser to.
    public let url: String
    /// The `state` value the caller supplied.
    public let state: String
    /// The `nonce` that the ID token must echo.
    public let nonce: String
    /// The PKCE code verifier, or nil when PKCE is off.
    public let codeVerifier: String?
}

/// PKCE (RFC 7636) and nonce values from OpenSSL's random generator.
enum AuthorizationSecrets {
    /// 32 random bytes as 43 base64url characters: a nonce or a PKCE verifier (RFC 7636 allows 43 to
    /// 128 characters of the unreserved set, which base64url stays within).
    static func randomToken() throws(IdentityError) -> String {
        do {
            return Base64.urlUnpadded.encode(try SecureRandom.bytes(32))
        } catch {
            throw .cryptographyFailed("generating random bytes failed: \(error)")
        }
    }

    /// Returns whether `verifier` is a valid PKCE code verifier: 43 to 128 characters of letters,
    /// digits, `-`, `.`, `_` and `~` (RFC 7636 section 4.1).
    static func isValidVerifier(_ verifier: String) -> Bool {
        let bytes = verifier.utf8
        guard (43...128).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                true
            default: false
            }
        }
    }

    /// Computes the S256 challenge: base64url without padding of SHA-256 over the ASCII verifier.
    static func codeChallenge(verifier: String) throws(IdentityError) -> String {
        do {
            return Base64.urlUnpadded.encode(try Digest.sha256(Array(verifier.utf8)))
        } catch {
            throw .cryptographyFailed("computing the PKCE challenge failed: \(error)")
        }
    }

    /// Compares a received nonce with the expected one in constant time.
    static func nonceEquals(_ received: String, _ expected: String) -> Bool {
        ConstantTime.equals(Array(received.utf8), Array(expected.utf8))
    }
}
