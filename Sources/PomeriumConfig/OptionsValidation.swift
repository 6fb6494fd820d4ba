import Foundation

extension NodeDecoder {
    /// Applies the defaults that depend on the service mode, as v0.7 does during validation, with
    /// two fixes: all-in-one gRPC binds loopback, and generated secrets last for the process.
    mutating func applyModeDefaults(_ settings: [String: ConfigNode], to options: inout Options) {
        switch options.services {
        case .all:
            options.grpcInsecure = true
            let explicitAddress = settings["grpc_address"].flatMap(\.scalar)
            if explicitAddress == nil || explicitAddress == "" || options.grpcAddress == ":443" {
                options.grpcAddress = Options.allInOneGRPCAddress
            } else if let node = settings["grpc_address"], !Self.isLoopback(options.grpcAddress) {
                warning(
                    "grpc_address", node.location,
                    "\"\(options.grpcAddress)\" is reachable from other hosts, but all-in-one gRPC is plaintext and "
                        + "unauthenticated; bind it to 127.0.0.1")
            }
            let internalURL = ConfigURL(Self.loopbackURL(for: options.grpcAddress))
            if options.authorizeServiceURL == nil { options.authorizeServiceURL = internalURL }
            if options.cacheServiceURL == nil { options.cacheServiceURL = internalURL }
            if options.sharedSecret.isEmpty, Self.isAbsent(settings["shared_secret"]) {
                if let generated = GeneratedSecrets.sharedSecret {
                    options.sharedSecret = generated
                    options.sharedSecretIsGenerated = true
                } else {
                    error(
                        "shared_secret", .defaultValue,
                        "could not be generated; set it: head -c32 /dev/urandom | base64")
                }
            }
        case .authorize, .cache:
            if options.address == options.grpcAddress {
                warning(
                    "address", settings["address"]?.location ?? .defaultValue,
                    "equals grpc_address (\(options.grpcAddress)), so the HTTP listener moves to :5443 and gRPC keeps "
                        + "the port; set address explicitly to silence this")
                options.address = ":5443"
            }
        case .authenticate, .proxy:
            break
        }
        if options.services.runsAuthorize, options.signingKeyPEM == nil {
            if let generated = GeneratedSecrets.signingKeyPEM {
                options.signingKeyPEM = generated
                options.signingKeyIsGenerated = true
            } else {
                error("signing_key", .defaultValue, "could not be generated; set signing_key or signing_key_file")
            }
        }
    }

    /// The checks that involve more than one setting or depend on the service mode.
    mutating func validate(_ settings: [String: ConfigNode], _ options: Options) {
        // After a file error every setting would be "required"; the file error alone is reported.
        guard !fileFailed else { return }
        let mode = options.services
        let modeText = "services is \(mode.rawValue)"

        if !options.insecureServer, options.tlsCertificates.isEmpty,
            Self.isAbsent(settings["certificate"]), Self.isAbsent(settings["certificate_file"]),
            Self.isAbsent(settings["certificates"])
        {
            error(
                "certificate", .defaultValue,
                "no server certificate is set: set certificate and certificate_key (base64 PEM), or "
                    + "certificate_file and certificate_key_file, or certificates; or set insecure_server: true "
                    + "to serve plain HTTP behind a TLS-terminating load balancer (since v0.4.0 there is no "
                    + "default ./cert.pem)")
        }
        if options.insecureServer, !options.grpcInsecure, mode != .all {
            warning(
                "grpc_insecure", settings["grpc_insecure"]?.location ?? .defaultValue,
                "is false while insecure_server is true, so the gRPC server has no certificate; set grpc_insecure: true "
                    + "on every service")
        }
        if options.sharedSecret.isEmpty, Self.isAbsent(settings["shared_secret"]), mode != .all {
            error(
                "shared_secret", .defaultValue,
                "is required when \(modeText); generate one with head -c32 /dev/urandom | base64 and set the same "
                    + "value on every service")
        }
        if mode.runsAuthenticate || mode.runsProxy, options.cookieSecret.isEmpty,
            Self.isAbsent(settings["cookie_secret"])
        {
            error(
                "cookie_secret", .defaultValue,
                "is required when \(modeText); generate one with head -c32 /dev/urandom | base64")
        }
        if mode.runsAuthenticate || mode.runsProxy, options.authenticateServiceURL == nil,
            Self.isAbsent(settings["authenticate_service_url"])
        {
            error(
                "authenticate_service_url", .defaultValue,
                "is required when \(modeText); set the public URL of the authenticate service, "
                    + "such as https://authenticate.example.com")
        }
        if mode.runsAuthenticate {
            validateIdentityProvider(settings, options, modeText: modeText)
        }
        if mode == .proxy, options.authorizeServiceURL == nil, Self.isAbsent(settings["authorize_service_url"]) {
            error(
                "authorize_service_url", .defaultValue,
                "is required when services is proxy; set the authorize service's gRPC URL, such as https://authorize.internal:443"
            )
        }
        if mode == .authenticate || mode == .cache, options.cacheServiceURL == nil,
            Self.isAbsent(settings["cache_service_url"])
        {
            error(
                "cache_service_url", .defaultValue,
                "is required when \(modeText) (since v0.6.0 sessions live in the cache service); set it, "
                    + "such as https://cache.internal:443")
        }
        if let url = options.authenticateServiceURL, url.scheme == "http", options.cookieSecure {
            warning(
                "authenticate_service_url", settings["authenticate_service_url"]?.location ?? .defaultValue,
                "uses http:// while cookie_secure is true, so browsers drop the session cookie on that host; "
                    + "use https:// or set cookie_secure: false for local testing only")
        }
        if options.cookieSameSite == .none, !options.cookieSecure {
            error(
                "cookie_samesite", settings["cookie_samesite"]?.location ?? .defaultValue,
                "is None while cookie_secure is false; browsers reject SameSite=None cookies without Secure, so "
                    + "set cookie_secure: true or use Lax")
        }
        if mode.runsProxy, options.policy.isEmpty, Self.isAbsent(settings["policy"]) {
            warning("policy", .defaultValue, "has no routes, so every host except the service hosts answers 404")
        }
        // A v0.7 authenticate service ignored the routes. Here its redirect targets must be route
        // hosts, so a split authenticate service without them rejects every sign-in.
        if mode == .authenticate, options.policy.isEmpty, Self.isAbsent(settings["policy"]) {
            warning(
                "policy", .defaultValue,
                "has no routes, so the authenticate service answers every sign-in and sign-out with 400 "
                    + "(it redirects only to route hosts); copy the proxy's policy into this file")
        }
    }

    private mutating func validateIdentityProvider(
        _ settings: [String: ConfigNode], _ options: Options, modeText: String
    ) {
        if options.idpProvider == nil, Self.isAbsent(settings["idp_provider"]) {
            let valid = IdentityProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
            error("idp_provider", .defaultValue, "is required when \(modeText) (since v0.7.0); use one of \(valid)")
        }
        if options.idpClientID.isEmpty {
            error(
                "idp_client_id", settings["idp_client_id"]?.location ?? .defaultValue,
                "is required when \(modeText); copy the OAuth client id from the identity provider")
        }
        if options.idpClientSecret.isEmpty {
            error(
                "idp_client_secret", settings["idp_client_secret"]?.location ?? .defaultValue,
                "is required when \(modeText); copy the OAuth client secret from the identity provider")
        }
        if let kind = options.idpProvider, options.idpProviderURL == nil, Self.isAbsent(settings["idp_provider_url"]) {
            error(
                "idp_provider_url", .defaultValue,
                "is required for idp_provider \(kind.rawValue); set the issuer URL, such as https://example.okta.com")
        }
        if options.idpProvider == .google, let account = options.idpServiceAccount,
            let node = settings["idp_service_account"]
        {
            let decoded = ValueParsing.base64(account.filter { !$0.isWhitespace })
            let isJSONObject = decoded.map { (try? JSONReader.parse($0, path: ""))?.entries != nil } ?? false
            if !isJSONObject {
                error(
                    "idp_service_account", node.location,
                    "is not base64 of a JSON service-account key; write the output of base64 -w0 service-account.json")
            }
        }
    }

    static func isAbsent(_ node: ConfigNode?) -> Bool {
        guard let node else { return true }
        switch node.value {
        case .null: return true
        case .scalar(let text): return text.isEmpty
        case .sequence(let items): return items.isEmpty
        case .mapping(let entries): return entries.isEmpty
        }
    }

    private static func isLoopback(_ address: String) -> Bool {
        address.hasPrefix("127.") || address.hasPrefix("localhost:") || address.hasPrefix("[::1]:")
    }

    /// The URL that reaches a listen address from the same host: an empty or wildcard host becomes 127.0.0.1.
    static func loopbackURL(for address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return Options.allInOneServiceURL }
        let host = String(address[..<colon])
        let port = address[address.index(after: colon)...]
        let reachable = ["", "0.0.0.0", "[::]", "::"].contains(host) ? "127.0.0.1" : host
        return "http://\(reachable):\(port)"
    }
}
