import PomeriumCore
import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging

/// Signed URLs, the way v0.7's services trust each other through the browser: the query gets
/// `pomerium_issued` and `pomerium_expiry` (Unix seconds, 5 minutes apart), then
/// `pomerium_signature` = base64url with padding of HMAC-SHA-512/256 over
/// `<URL with the query sorted as Go's url.Values.Encode writes it><issued> <expiry>`.
///
/// The key is the 32 bytes decoded from `shared_secret` (v0.7 used the base64 text itself).
/// Validation rebuilds the URL with the scheme the request arrived on and also accepts `https`,
/// where v0.7 always assumed `https` and so failed behind plain-HTTP hops.
public struct URLSigner: Sendable {
    public static let issuedParameter = "pomerium_issued"
    public static let expiryParameter = "pomerium_expiry"
    public static let signatureParameter = "pomerium_signature"
    /// How long a signature is valid, in seconds.
    public static let validity: Int64 = 300
    /// The clock skew allowed on both sides, in seconds.
    public static let leeway: Int64 = 60

    static let artefact = "signed-url"

    private let key: HMACKey
    private let clock: any WallClock
    private let logger: Logger

    public init(sharedSecret: [UInt8], clock: any WallClock, logger: Logger) throws {
        guard sharedSecret.count == 32 else {
            throw PomeriumError(
                "shared-secret-invalid",
                "shared_secret must decode to 32 bytes, got \(sharedSecret.count); generate one with `head -c32 /dev/urandom | base64`"
            )
        }
        key = try HMACKey(key: sharedSecret, digest: .sha512_256)
        self.clock = clock
        self.logger = logger
    }

    /// Returns `url` with issue time, expiry and signature added to its query, sorted by name.
    /// Any earlier signature parameters in the query are replaced.
    public func sign(_ url: HTTPURL) throws -> HTTPURL {
        var query = URLQuery(parsingLeniently: url.query ?? "")
        let issued = clock.unixSeconds()
        let expiry = issued + URLSigner.validity
        query.remove(name: URLSigner.signatureParameter)
        query.set(name: URLSigner.issuedParameter, value: String(issued))
        query.set(name: URLSigner.expiryParameter, value: String(expiry))
        var signed = url
        signed.fragment = nil
        signed.query = query.encodedSortedByName
        let mac = try self.mac(url: signed.description, issued: issued, expiry: expiry)
        query.set(name: URLSigner.signatureParameter, value: Base64.url.encode(mac))
        signed.query = query.encodedSortedByName
        return signed
    }

    private func mac(url: String, issued: Int64, expiry: Int64) throws -> [UInt8] {
        try key.authenticate(Array("\(url)\(issued) \(expiry)".utf8))
    }

    /// Checks the signature of a request URL. `scheme` is the scheme the request arrived on,
    /// `hostAndPort` its `Host` header, `path` and `rawQuery` its target as received.
    ///
    /// - Throws: `SessionRejection` with `missingParameter`, `duplicateParameter`, `malformed`,
    ///   `expired`, `issuedInFuture` or `badSignature`; each is logged once at debug level.
    public func validate(scheme: String, hostAndPort: String, path: String, rawQuery: String) throws {
        do {
            try check(scheme: scheme.lowercased(), hostAndPort: hostAndPort, path: path, rawQuery: rawQuery)
        } catch let rejection as SessionRejection {
            logger.logRejection(rejection)
            throw rejection
        }
    }

    /// Checks a whole URL as `validate(scheme:hostAndPort:path:rawQuery:)` does.
    public func validate(_ url: HTTPURL) throws {
        try validate(scheme: url.scheme, hostAndPort: url.hostAndPort, path: url.path, rawQuery: url.query ?? "")
    }

    private func check(scheme: String, hostAndPort: String, path: String, rawQuery: String) throws {
        let query: URLQuery
        do {
            query = try URLQuery(parsing: rawQuery)
        } catch {
            throw SessionRejection(Self.artefact, .malformed)
        }
        func single(_ name: String) throws -> String {
            let values = query.values(for: name)
            guard !values.isEmpty else { throw SessionRejection(Self.artefact, .missingParameter) }
            guard values.count == 1 else { throw SessionRejection(Self.artefact, .duplicateParameter) }
            return values[0]
        }
        let issuedText = try single(URLSigner.issuedParameter)
        let expiryText = try single(URLSigner.expiryParameter)
        let signatureText = try single(URLSigner.signatureParameter)
        guard let issued = Self.seconds(issuedText), let expiry = Self.seconds(expiryText),
            let signature = Base64.url.decode(signatureText), signature.count == key.digest.outputSize
        else { throw SessionRejection(Self.artefact, .malformed) }

        let now = clock.unixSeconds()
        guard now - URLSigner.leeway <= expiry else { throw SessionRejection(Self.artefact, .expired) }
        guard now + URLSigner.leeway >= issued else { throw SessionRejection(Self.artefact, .issuedInFuture) }

        var unsigned = query
        unsigned.remove(name: URLSigner.signatureParameter)
        let rest = hostAndPort + path + "?" + unsigned.encodedSortedByName
        var schemes = [scheme]
        if scheme != "https" { schemes.append("https") }
        for candidate in schemes {
            let expected = try mac(url: candidate + "://" + rest, issued: issued, expiry: expiry)
            if ConstantTime.equals(expected, signature) { return }
        }
        throw SessionRejection(Self.artefact, .badSignature)
    }

    /// Parses decimal seconds without sign, leading zeros or other characters.
    private static func seconds(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            text == "0" || !text.hasPrefix("0")
        else { return nil }
        return Int64(text)
    }
}
