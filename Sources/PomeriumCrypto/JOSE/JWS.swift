/// The protected header of a JWS.
public struct JWSHeader: Sendable, Equatable {
    /// The `alg` member.
    public let algorithm: JWSAlgorithm
    /// The `kid` member.
    public let keyID: String?
    /// The `typ` member.
    public let type: String?
    /// Every member, for callers that need others.
    public let object: JSONObject

    init(json: [UInt8]) throws(JWSError) {
        let object: JSONObject
        do {
            object = try JSONParser.parseObject(json)
        } catch {
            throw .malformed("header is not a JSON object")
        }
        guard let name = object["alg"]?.stringValue else { throw .malformed("header has no string alg") }
        guard let algorithm = JWSAlgorithm(rawValue: name) else { throw .unsupportedAlgorithm(name) }
        if object["crit"] != nil { throw .unsupportedCriticalHeader }
        if let kid = object["kid"], kid.stringValue == nil { throw .malformed("kid is not a string") }
        if let typ = object["typ"], typ.stringValue == nil { throw .malformed("typ is not a string") }
        self.algorithm = algorithm
        self.keyID = object["kid"]?.stringValue
        self.type = object["typ"]?.stringValue
        self.object = object
    }
}

/// A JWS in compact serialisation (RFC 7515 section 7.1), parsed but not yet verified.
public struct CompactJWS: Sendable {
    /// The largest token accepted, in bytes; a bound against memory use by hostile input.
    public static let maximumSize = 64 * 1024

    public let header: JWSHeader
    /// The decoded payload. Trust it only after `JWSVerifier.verify` succeeds.
    public let payload: [UInt8]
    /// The ASCII bytes of `header.payload` that the signature covers.
    public let signingInput: [UInt8]
    public let signature: [UInt8]

    /// Parses `header.payload.signature` with base64url parts without padding.
    public init(parsing compact: some Collection<UInt8>) throws(JWSError) {
        guard compact.count <= CompactJWS.maximumSize else { throw .malformed("token longer than 64 KiB") }
        let bytes = Array(compact)
        var dots: [Int] = []
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: ".") {
            dots.append(index)
            if dots.count > 2 { throw .malformed("more than three parts") }
        }
        guard dots.count == 2 else { throw .malformed("expected three dot-separated parts") }
        guard let headerJSON = Base64.urlUnpadded.decode(bytes: bytes[..<dots[0]]) else {
            throw .malformed("header is not base64url")
        }
        guard let payload = Base64.urlUnpadded.decode(bytes: bytes[(dots[0] + 1)..<dots[1]]) else {
            throw .malformed("payload is not base64url")
        }
        guard let signature = Base64.urlUnpadded.decode(bytes: bytes[(dots[1] + 1)...]) else {
            throw .malformed("signature is not base64url")
        }
        header = try JWSHeader(json: headerJSON)
        self.payload = payload
        self.signingInput = Array(bytes[..<dots[1]])
        self.signature = signature
    }

    /// Parses a token given as a string.
    public init(parsing compact: String) throws(JWSError) {
        try self.init(parsing: Array(compact.utf8))
    }
}

/// A key that signs JWS tokens.
public enum JWSSigningKey: Sendable {
    /// HS256 with an HMAC-SHA-256 key.
    case hs256(HMACKey)
    /// ES256 or ES384, chosen by the key's curve.
    case ecdsa(ECPrivateKey)

    /// The algorithm this key signs with.
    public var algorithm: JWSAlgorithm {
        switch self {
        case .hs256: .hs256
        case .ecdsa(let key): key.curve == .p256 ? .es256 : .es384
        }
    }

    func sign(_ input: [UInt8]) throws -> [UInt8] {
        switch self {
        case .hs256(let key):
            guard key.digest == .sha256 else { throw KeyError("HS256 needs an HMAC key over SHA-256") }
            return try key.authenticate(input)
        case .ecdsa(let key): return try key.sign(input)
        }
    }
}

/// Creation of compact JWS tokens.
public enum JWS {
    /// Signs `payload` and returns the compact serialisation. The header is
    /// `{"alg":...,"kid":...,"typ":...}` with `kid` and `typ` only when given.
    public static func sign(
        payload: some Collection<UInt8>,
        with key: JWSSigningKey,
        keyID: String? = nil,
        type: String? = nil
    ) throws -> String {
        var header: [(key: String, value: JSONValue)] = [("alg", .string(key.algorithm.rawValue))]
        if let keyID { header.append(("kid", .string(keyID))) }
        if let type { header.append(("typ", .string(type))) }
        return try sign(payload: payload, with: key, encodedHeader: encodeHeader(JSONObject(header)))
    }

    /// Encodes a header object for `sign(payload:with:encodedHeader:)`, so a caller that signs many
    /// tokens with one header encodes it once.
    public static func encodeHeader(_ header: JSONObject) -> [UInt8] {
        Base64.urlUnpadded.encodeToBytes(JSONWriter.encode(.object(header)))
    }

    /// Signs `payload` under an already encoded header, which must name the key's algorithm.
    public static func sign(payload: some Collection<UInt8>, with key: JWSSigningKey, encodedHeader: [UInt8]) throws
        -> String
    {
        var input = encodedHeader
        input.reserveCapacity(encodedHeader.count + Base64.urlUnpadded.encodedCount(payload.count) + 100)
        input.append(UInt8(ascii: "."))
        input.append(contentsOf: Base64.urlUnpadded.encodeToBytes(payload))
        let signature = try key.sign(input)
        input.append(UInt8(ascii: "."))
        input.append(contentsOf: Base64.urlUnpadded.encodeToBytes(signature))
        return String(decoding: input, as: UTF8.self)
    }
}

/// Verifies JWS tokens against configured keys and an explicit algorithm allow-list. The key always
/// comes from configuration or a fetched key set, never from the token, and the algorithm must fit
/// the key's type, which rules out HS256 signed with a public key.
public struct JWSVerifier: Sendable {
    private enum Keys: Sendable {
        case hmac(HMACKey)
        case keySet(JWKSet)
    }

    private let keys: Keys
    /// The algorithms this verifier accepts.
    public let allowedAlgorithms: Set<JWSAlgorithm>

    /// A verifier for HS256 tokens under one HMAC-SHA-256 key.
    public init(hmacKey: HMACKey) throws {
        guard hmacKey.digest == .sha256 else { throw KeyError("HS256 verification needs an HMAC key over SHA-256") }
        keys = .hmac(hmacKey)
        allowedAlgorithms = [.hs256]
    }

    /// A verifier for asymmetric tokens under a key set. HS256 is never allowed here.
    public init(keySet: JWKSet, allowedAlgorithms: Set<JWSAlgorithm>) {
        keys = .keySet(keySet)
        self.allowedAlgorithms = allowedAlgorithms.subtracting([.hs256])
    }

    /// A verifier for asymmetric tokens under one public key.
    public init(publicKey: PublicKey, allowedAlgorithms: Set<JWSAlgorithm>) {
        self.init(keySet: JWKSet(keys: [JWK(key: publicKey)]), allowedAlgorithms: allowedAlgorithms)
    }

    /// Parses and verifies a compact token, returning it when the signature is valid.
    public func verify(compact: some Collection<UInt8>) throws(JWSError) -> CompactJWS {
        let token = try CompactJWS(parsing: compact)
        try verify(token)
        return token
    }

    /// Verifies a parsed token.
    public func verify(_ token: CompactJWS) throws(JWSError) {
        let algorithm = token.header.algorithm
        guard allowedAlgorithms.contains(algorithm) else { throw .algorithmNotAllowed(algorithm) }
        switch keys {
        case .hmac(let key):
            guard key.isValid(mac: token.signature, for: token.signingInput) else { throw .invalidSignature }
        case .keySet(let set):
            let candidates = set.candidates(keyID: token.header.keyID, algorithm: algorithm)
            guard !candidates.isEmpty else { throw .noMatchingKey }
            for candidate in candidates
            where JWSVerifier.verifySignature(token.signature, over: token.signingInput, key: candidate.key, algorithm)
            {
                return
            }
            throw .invalidSignature
        }
    }

    static func verifySignature(_ signature: [UInt8], over input: [UInt8], key: PublicKey, _ algorithm: JWSAlgorithm)
        -> Bool
    {
        switch (key, algorithm) {
        case (.ec(let ec), .es256) where ec.curve == .p256: ec.verify(signature: signature, for: input)
        case (.ec(let ec), .es384) where ec.curve == .p384: ec.verify(signature: signature, for: input)
        case (.rsa(let rsa), .rs256): rsa.verifyPKCS1(signature: signature, for: input, digest: .sha256)
        case (.rsa(let rsa), .ps256): rsa.verifyPSS(signature: signature, for: input, digest: .sha256)
        case (.ed25519(let ed), .edDSA): ed.verify(signature: signature, for: input)
        default: false
        }
    }
}
