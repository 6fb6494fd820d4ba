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

    /// Returns `base` with a signed query of `parameters`: the same text as
    /// `sign(HTTPURL(parsing: base + "?" + <parameters form-encoded in order>)).description`,
    /// built in one buffer. The general path decodes the query it was given, sorts it through a
    /// dictionary and encodes it twice, which measured about 200,000 instructions per sign-in
    /// redirect. Parameters named like the signature parameters are replaced, as there.
    public func sign(base: SignedURLBase, parameters: [(name: String, value: String)]) throws -> String {
        let issued = clock.unixSeconds()
        let expiry = issued + URLSigner.validity
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(parameters.count + 2)
        for parameter in parameters where !Self.isSigningParameter(parameter.name) { pairs.append(parameter) }
        let issuedText = String(issued)
        let expiryText = String(expiry)
        pairs.append((URLSigner.issuedParameter, issuedText))
        pairs.append((URLSigner.expiryParameter, expiryText))

        // Go's `url.Values.Encode` sorts by name and keeps each name's values in order, which is
        // what a stable sort by name gives. An insertion sort is stable and the lists are short.
        for index in pairs.indices.dropFirst() {
            var position = index
            while position > 0, Self.precedes(pairs[index].name, pairs[position - 1].name) { position -= 1 }
            if position != index { pairs.insert(pairs.remove(at: index), at: position) }
        }

        var text = base.text
        text.reserveCapacity(
            text.count + 120 + pairs.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count * 3 + 2 })
        text.append(UInt8(ascii: "?"))
        // Where the signature pair goes: before the first name that sorts after it.
        var signatureOffset: Int?
        for (index, pair) in pairs.enumerated() {
            if index > 0 { text.append(UInt8(ascii: "&")) }
            if signatureOffset == nil, Self.precedes(URLSigner.signatureParameter, pair.name) {
                signatureOffset = text.count
            }
            PercentEncoding.append(pair.name, as: .queryComponent, to: &text)
            text.append(UInt8(ascii: "="))
            PercentEncoding.append(pair.value, as: .queryComponent, to: &text)
        }

        var times = Array(issuedText.utf8)
        times.append(UInt8(ascii: " "))
        times.append(contentsOf: expiryText.utf8)
        let mac = try text.withUnsafeBytes { url in
            try times.withUnsafeBytes { suffix in try key.authenticate(parts: [url, suffix]) }
        }

        var signature: [UInt8] = []
        signature.reserveCapacity(URLSigner.signatureParameter.utf8.count + 80)
        PercentEncoding.append(URLSigner.signatureParameter, as: .queryComponent, to: &signature)
        signature.append(UInt8(ascii: "="))
        PercentEncoding.append(Base64.url.encode(mac), as: .queryComponent, to: &signature)
        if let signatureOffset {
            signature.append(UInt8(ascii: "&"))
            text.insert(contentsOf: signature, at: signatureOffset)
        } else {
            text.append(UInt8(ascii: "&"))
            text.append(contentsOf: signature)
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func isSigningParameter(_ name: String) -> Bool {
        name == URLSigner.issuedParameter || name == URLSigner.expiryParameter || name == URLSigner.signatureParameter
    }

    /// Returns whether `a` sorts before `b` by UTF-8 bytes, as `URLQuery.encodedSortedByName` sorts.
    private static func precedes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        // Compares the contiguous bytes, because the generic comparison of the two views cost about
        // 7,000 instructions per sign-in URL.
        return a.withUTF8 { left in b.withUTF8 { right in left.lexicographicallyPrecedes(right) } }
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

/// The text of a URL up to its query, for `URLSigner.sign(base:parameters:)`: the
/// `HTTPURL.description` of a URL without query and fragment.
public struct SignedURLBase: Sendable {
    let text: [UInt8]

    /// Makes the base of `url`, leaving out its query and fragment.
    public init(_ url: HTTPURL) {
        var bare = url
        bare.query = nil
        bare.fragment = nil
        text = Array(bare.description.utf8)
    }
}
