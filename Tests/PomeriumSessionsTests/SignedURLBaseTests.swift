import PomeriumCore
import PomeriumHTTP
import PomeriumLogging
import Testing

@testable import PomeriumSessions

/// `URLSigner.sign(base:parameters:)` builds the signed URL in one buffer. It must give the text
/// that the general path gives: the parameters form-encoded after the base, parsed as a URL and
/// signed with `sign(_:)`.
@Suite("Signed URLs built from a base")
struct SignedURLBaseTests {
    let clock = ManualWallClock(now: SessionFixtures.now)

    func signer() throws -> URLSigner {
        try URLSigner(sharedSecret: SessionFixtures.sharedSecret, clock: clock, logger: Logger(label: "test"))
    }

    /// Signs `base` and `parameters` the general way.
    func general(_ base: String, _ parameters: [(name: String, value: String)]) throws -> String {
        let query = URLQuery(parameters)
        return try signer().sign(HTTPURL(parsing: base + "?" + query.encoded)).description
    }

    func fast(_ base: String, _ parameters: [(name: String, value: String)]) throws -> String {
        try signer().sign(base: SignedURLBase(HTTPURL(parsing: base)), parameters: parameters)
    }

    static let bases = [
        "https://authn.example.test/.pomerium/sign_in",
        "http://localhost:48140/.pomerium/sign_in",
        "HTTP://Authn.Example.TEST:8443/.pomerium/sign_out",
        "https://authn.example.test:443/.pomerium/sign_in",
        "http://authn.example.test:/.pomerium/sign_in",
        "http://[::1]:9000/.pomerium/sign_in",
        "https://user:pw@authn.example.test/a%20b/.pomerium/sign_in",
        "https://authn.example.test",
    ]

    static let parameterLists: [[(name: String, value: String)]] = [
        [
            ("pomerium_redirect_uri", "http://127.0.0.1:48140/"),
            ("pomerium_signin_binding", "EmiNz7LQymrAewVmHW9uEvgKfCAkI7TgeOISGe2gj-E"),
        ],
        [
            ("pomerium_redirect_uri", "https://app.example.test:8443/a b/c?x=1&y=%2F+z#frag"),
            ("pomerium_signin_binding", "abc"),
        ],
        [("pomerium_redirect_uri", "https://ünï.example.test/päth?q=✓;semi"), ("zeta", ""), ("", "empty name")],
        [("b", "2"), ("a", "1"), ("b", "1"), ("pomerium_z", "after"), ("pomerium_s", "before")],
        [
            ("pomerium_signature", "old"), ("pomerium_issued", "1"), ("pomerium_redirect_uri", "x"),
            ("pomerium_expiry", "2"), ("pomerium_issued", "3"),
        ],
        [("~tilde", "-._~"), ("UPPER", "Mixed Case"), ("pomerium_signatures", "sorts after the signature")],
        [],
    ]

    @Test("text equals the general path")
    func sameText() throws {
        for base in Self.bases {
            for parameters in Self.parameterLists {
                let expected = try general(base, parameters)
                #expect(try fast(base, parameters) == expected, "base \(base), parameters \(parameters)")
            }
        }
    }

    @Test("signed URL validates")
    func validates() throws {
        let text = try fast(Self.bases[0], Self.parameterLists[1])
        try signer().validate(try HTTPURL(parsing: text))
    }

    @Test("base drops query and fragment")
    func baseDropsQuery() throws {
        let withQuery = try fast("https://authn.example.test/p?old=1#top", [("a", "1")])
        #expect(try withQuery == fast("https://authn.example.test/p", [("a", "1")]))
        #expect(!withQuery.contains("old="))
        #expect(!withQuery.contains("#"))
    }
}
