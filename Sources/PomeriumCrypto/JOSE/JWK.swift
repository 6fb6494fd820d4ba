/// One public JSON Web Key (RFC 7517): EC P-256/P-384, RSA, or OKP Ed25519 (RFC 8037).
public struct JWK: Sendable, Equatable {
    /// The key material.
    public let key: PublicKey
    /// The `kid` member.
    public var keyID: String?
    /// The `alg` member; when present, the key is used with that algorithm only.
    public var algorithm: String?
    /// The `use` member; when present, it must be `sig` for verification.
    public var use: String?

    public init(key: PublicKey, keyID: String? = nil, algorithm: String? = nil, use: String? = nil) {
        self.key = key
        self.keyID = keyID
        self.algorithm = algorithm
        self.use = use
    }

    /// Parses a JWK object. Private members such as `d` are ignored, so only the public key is kept.
    ///
    /// - Throws: `KeyError` for a missing or invalid member, or an unsupported `kty` or `crv`.
    public init(json object: JSONObject) throws {
        func member(_ name: String) throws -> String {
            guard let value = object[name]?.stringValue else {
                throw KeyError("invalid JWK: the \"\(name)\" member is missing or not a string")
            }
            return value
        }
        func bytes(_ name: String) throws -> [UInt8] {
            guard let decoded = Base64.urlUnpadded.decode(try member(name)) else {
                throw KeyError("invalid JWK: the \"\(name)\" member is not base64url without padding")
            }
            return decoded
        }
        let type = try member("kty")
        switch type {
        case "EC":
            let curveName = try member("crv")
            guard let curve = ECCurve(rawValue: curveName) else {
                throw KeyError("invalid JWK: EC curve \"\(curveName.prefix(16))\" is not P-256 or P-384")
            }
            key = .ec(try ECPublicKey(x: try bytes("x"), y: try bytes("y"), curve: curve))
        case "RSA":
            key = .rsa(try RSAPublicKey(modulus: try bytes("n"), exponent: try bytes("e")))
        case "OKP":
            let curveName = try member("crv")
            guard curveName == "Ed25519" else {
                throw KeyError("invalid JWK: OKP curve \"\(curveName.prefix(16))\" is not Ed25519")
            }
            key = .ed25519(try Ed25519PublicKey(rawRepresentation: try bytes("x")))
        default:
            throw KeyError("unsupported JWK: key type \"\(type.prefix(16))\" is not EC, RSA or OKP")
        }
        for name in ["kid", "alg", "use"] where object[name] != nil && object[name]?.stringValue == nil {
            throw KeyError("invalid JWK: the \"\(name)\" member is not a string")
        }
        keyID = object["kid"]?.stringValue
        algorithm = object["alg"]?.stringValue
        use = object["use"]?.stringValue
    }

    /// The required members in lexicographic order, as RFC 7638 section 3.2 defines for thumbprints.
    private var requiredMembers: [(key: String, value: JSONValue)] {
        switch key {
        case .ec(let ec):
            [
                ("crv", .string(ec.curve.rawValue)), ("kty", .string("EC")),
                ("x", .string(Base64.urlUnpadded.encode(ec.x))), ("y", .string(Base64.urlUnpadded.encode(ec.y))),
            ]
        case .rsa(let rsa):
            [
                ("e", .string(Base64.urlUnpadded.encode(rsa.exponent))), ("kty", .string("RSA")),
                ("n", .string(Base64.urlUnpadded.encode(rsa.modulus))),
            ]
        case .ed25519(let ed):
            [
                ("crv", .string("Ed25519")), ("kty", .string("OKP")),
                ("x", .string(Base64.urlUnpadded.encode(ed.rawRepresentation))),
            ]
        }
    }

    /// The JWK as a JSON object: the required members, then `kid`, `alg` and `use` when set.
    public var jsonObject: JSONObject {
        var members = requiredMembers
        if let keyID { members.append(("kid", .string(keyID))) }
        if let algorithm { members.append(("alg", .string(algorithm))) }
        if let use { members.append(("use", .string(use))) }
        return JSONObject(members)
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url without padding.
    public func thumbprint() throws -> String {
        let canonical = JSONWriter.encode(.object(JSONObject(requiredMembers)))
        return Base64.urlUnpadded.encode(try Digest.sha256(canonical))
    }

    /// Whether this key may verify a signature made with `algorithm`: the key type and curve fit the
    /// algorithm, any `alg` member names it, and any `use` member is `sig`.
    public func suits(_ algorithm: JWSAlgorithm) -> Bool {
        if let declared = self.algorithm, declared != algorithm.rawValue { return false }
        if let use, use != "sig" { return false }
        switch (key, algorithm) {
        case (.ec(let ec), .es256): return ec.curve == .p256
        case (.ec(let ec), .es384): return ec.curve == .p384
        case (.rsa, .rs256), (.rsa, .ps256): return true
        case (.ed25519, .edDSA): return true
        default: return false
        }
    }
}

/// A JSON Web Key Set (RFC 7517 section 5).
public struct JWKSet: Sendable, Equatable {
    public var keys: [JWK]

    public init(keys: [JWK]) { self.keys = keys }

    /// Parses a JWKS document. Keys of unsupported types are skipped, as RFC 7517 section 5 recommends,
    /// so a provider that adds a new key type does not break sign-in.
    ///
    /// - Throws: `KeyError` when the document is not JSON or has no `keys` array, or when a key of a
    ///   supported type is invalid.
    public init(json bytes: some Collection<UInt8>) throws {
        let object: JSONObject
        do {
            object = try JSONParser.parseObject(bytes)
        } catch {
            throw KeyError("invalid JWKS document: \(error)")
        }
        guard let entries = object["keys"]?.arrayValue else {
            throw KeyError("invalid JWKS document: the \"keys\" member is missing or not an array")
        }
        var keys: [JWK] = []
        for entry in entries {
            guard let member = entry.objectValue else {
                throw KeyError("invalid JWKS document: a key is not an object")
            }
            let type = member["kty"]?.stringValue
            guard type == "EC" || type == "RSA" || type == "OKP" else { continue }
            keys.append(try JWK(json: member))
        }
        self.keys = keys
    }

    /// The document as compact JSON bytes: `{"keys":[...]}`.
    public func jsonBytes() -> [UInt8] {
        JSONWriter.encode(.object(JSONObject([("keys", .array(keys.map { .object($0.jsonObject) }))])))
    }

    /// The keys that may verify a token with this header: when it has a `kid`, the keys with that
    /// `kid` and keys without one; otherwise all keys. In both cases only keys that suit the algorithm.
    public func candidates(keyID: String?, algorithm: JWSAlgorithm) -> [JWK] {
        keys.filter { key in
            if let keyID, let ownID = key.keyID, ownID != keyID { return false }
            return key.suits(algorithm)
        }
    }
}
