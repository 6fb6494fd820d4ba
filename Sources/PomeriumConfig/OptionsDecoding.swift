import Foundation
import PomeriumAuthorize
import PomeriumCrypto

/// Values generated once per process when the configuration leaves them out. A reload reuses them,
/// unlike v0.7, which made a new shared secret on every reload and so broke every session.
enum GeneratedSecrets {
    static let sharedSecret: [UInt8]? = try? ConfigKeyCheck.randomBytes(count: 32)
    static let signingKeyPEM: String? = try? ConfigKeyCheck.generateP256PrivateKeyPEM()
}

extension NodeDecoder {
    /// Decodes every top-level setting into `Options`, applies the mode-derived defaults, and runs
    /// the checks that involve several settings.
    mutating func options(from settings: [String: ConfigNode]) -> Options {
        var options = Options()
        func node(_ key: String) -> ConfigNode? { settings[key] }

        decodeListeners(settings, into: &options)
        decodeSecretsAndCookies(settings, into: &options)
        decodeServiceURLs(settings, into: &options)
        decodeIdentityProvider(settings, into: &options)
        decodeTimeoutsAndGRPC(settings, into: &options)
        decodeCacheStore(settings, into: &options)
        decodeObservability(settings, into: &options)
        decodeCertificates(settings, into: &options)

        if let administrators = node("administrators"), let value = list(administrators, key: "administrators") {
            options.administrators = value
            for entry in value where !PolicyEntrySyntax.isAddress(entry) {
                error(
                    "administrators", administrators.location,
                    "entry \"\(ValueParsing.excerpt(entry))\" is not an email address; \(PolicyEntrySyntax.addressFix)")
            }
        }
        if let claimsNode = node("jwt_claims_headers"), let value = list(claimsNode, key: "jwt_claims_headers") {
            for claim in value where !ValueParsing.isToken(claim) {
                error(
                    "jwt_claims_headers", claimsNode.location,
                    "\"\(ValueParsing.excerpt(claim))\" cannot be a header name; use letters, digits, - and _ without spaces or line breaks"
                )
            }
            options.jwtClaimsHeaders = value.filter { ValueParsing.isToken($0) }
        }
        if let headersNode = node("headers"), let value = headerMap(headersNode, key: "headers") {
            options.headers = value.keys.contains("disable") ? [:] : value
        }
        if let proxiesNode = node("trusted_proxies"), let value = list(proxiesNode, key: "trusted_proxies") {
            for entry in value where !ValueParsing.isAddressOrCIDR(entry) {
                error(
                    "trusted_proxies", proxiesNode.location,
                    "\"\(entry)\" is not an IP address or CIDR range; write for example 10.0.0.0/8")
            }
            options.trustedProxies = value.filter(ValueParsing.isAddressOrCIDR)
        }
        decodeSigningKey(settings, into: &options)
        if let policyNode = node("policy") {
            options.policy = routes(policyNode, defaultTimeout: options.defaultUpstreamTimeout)
        }
        applyModeDefaults(settings, to: &options)
        validate(settings, options)
        return options
    }

    private mutating func decodeListeners(_ settings: [String: ConfigNode], into options: inout Options) {
        if let node = settings["services"], let value = nonEmptyText(node, key: "services") {
            if let mode = ServiceMode(rawValue: value) {
                options.services = mode
            } else {
                let valid = ServiceMode.allCases.map(\.rawValue).joined(separator: ", ")
                let hint = value.contains(",") ? "; one process runs one mode, so start one process per service" : ""
                error(
                    "services", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is an invalid service type; use one of \(valid)\(hint)")
            }
        }
        if let node = settings["address"], let value = listenAddress(node, key: "address") {
            options.address = value
        }
        if let node = settings["insecure_server"], let value = bool(node, key: "insecure_server") {
            options.insecureServer = value
        }
        options.httpRedirectAddress = settings["http_redirect_addr"].flatMap {
            listenAddress($0, key: "http_redirect_addr")
        }
        options.metricsAddress = settings["metrics_address"].flatMap { listenAddress($0, key: "metrics_address") }
        if let node = settings["metrics_address"], let address = options.metricsAddress {
            warning(
                "metrics_address", node.location,
                "this build serves no Prometheus metrics, so nothing listens on \(address); remove the setting or scrape another source"
            )
        }
    }

    private mutating func decodeSecretsAndCookies(_ settings: [String: ConfigNode], into options: inout Options) {
        options.sharedSecret = settings["shared_secret"].flatMap { secret($0, key: "shared_secret") } ?? []
        options.cookieSecret = settings["cookie_secret"].flatMap { secret($0, key: "cookie_secret") } ?? []
        if let node = settings["cookie_name"], let value = nonEmptyText(node, key: "cookie_name") {
            if ValueParsing.isToken(value) {
                options.cookieName = value
            } else {
                error(
                    "cookie_name", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a valid cookie name; use letters, digits, - and _")
            }
        }
        if let node = settings["cookie_domain"], let value = text(node, key: "cookie_domain") {
            if value.isEmpty || ValueParsing.isCookieDomain(value) {
                options.cookieDomain = value
            } else {
                error(
                    "cookie_domain", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a domain name; write only the domain, such as corp.example.com, without spaces, ; or cookie attributes"
                )
            }
        }
        if let node = settings["cookie_secure"], let value = bool(node, key: "cookie_secure") {
            options.cookieSecure = value
        }
        if let node = settings["cookie_http_only"], let value = bool(node, key: "cookie_http_only") {
            options.cookieHTTPOnly = value
        }
        if let node = settings["cookie_expire"], let value = duration(node, key: "cookie_expire") {
            options.cookieExpire = value
        }
        if let node = settings["refresh_cooldown"], let value = duration(node, key: "refresh_cooldown") {
            options.refreshCooldown = value
        }
        if let node = settings["cookie_samesite"], let value = nonEmptyText(node, key: "cookie_samesite") {
            if let sameSite = CookieSameSite.allCases.first(where: { $0.rawValue.lowercased() == value.lowercased() }) {
                options.cookieSameSite = sameSite
            } else {
                error(
                    "cookie_samesite", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a SameSite value; use Strict, Lax or None")
            }
        }
    }

    /// A listen address `[host]:port`; an error that names the expected form otherwise.
    private mutating func listenAddress(_ node: ConfigNode, key: String) -> String? {
        guard let value = nonEmptyText(node, key: key) else { return nil }
        if let problem = ValueParsing.listenAddressProblem(value) {
            error(
                key, node.location,
                "\"\(ValueParsing.excerpt(value))\" \(problem); write [host]:port with a port in 0-65535 (0 lets the kernel pick), such as :8443 or 127.0.0.1:9090"
            )
            return nil
        }
        return value
    }

    /// A 32-byte secret written as standard base64.
    private mutating func secret(_ node: ConfigNode, key: String) -> [UInt8]? {
        guard let value = text(node, key: key), !value.isEmpty else { return nil }
        if value.contains(where: \.isWhitespace) {
            error(
                key, node.location,
                "contains whitespace (often a trailing newline from a file or shell); remove it, the value must be "
                    + "exactly the base64 text")
            return nil
        }
        guard let bytes = ValueParsing.base64(value) else {
            error(key, node.location, "is not valid base64; generate a secret with: head -c32 /dev/urandom | base64")
            return nil
        }
        guard bytes.count == 32 else {
            error(
                key, node.location,
                "decodes to \(bytes.count) bytes but must decode to exactly 32; generate one with: "
                    + "head -c32 /dev/urandom | base64")
            return nil
        }
        return bytes
    }

    private mutating func decodeServiceURLs(_ settings: [String: ConfigNode], into options: inout Options) {
        if let node = settings["authenticate_service_url"] {
            options.authenticateServiceURL = serviceURL(
                node, key: "authenticate_service_url", example: "https://authenticate.example.com")
        }
        if let node = settings["authorize_service_url"] {
            options.authorizeServiceURL = serviceURL(
                node, key: "authorize_service_url", example: "https://authorize.internal:443")
        }
        if let node = settings["cache_service_url"] {
            options.cacheServiceURL = serviceURL(node, key: "cache_service_url", example: "https://cache.internal:443")
        }
        if let node = settings["forward_auth_url"] {
            options.forwardAuthURL = serviceURL(
                node, key: "forward_auth_url", example: "https://forwardauth.example.com")
        }
        if let node = settings["authenticate_callback_path"], let value = text(node, key: "authenticate_callback_path")
        {
            if value.hasPrefix("/") {
                options.authenticateCallbackPath = value
            } else {
                error(
                    "authenticate_callback_path", node.location,
                    "\"\(ValueParsing.excerpt(value))\" must be a path starting with /, such as /oauth2/callback")
            }
        }
    }

    private mutating func decodeIdentityProvider(_ settings: [String: ConfigNode], into options: inout Options) {
        if let node = settings["idp_provider"], let value = nonEmptyText(node, key: "idp_provider") {
            if let kind = IdentityProviderKind(rawValue: value) {
                options.idpProvider = kind
            } else {
                let valid = IdentityProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
                let hint = value == "github" ? " (GitHub arrived in Pomerium v0.8; use oidc with another provider)" : ""
                error(
                    "idp_provider", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a known identity provider; use one of \(valid)\(hint)")
            }
        }
        if let node = settings["idp_provider_url"] {
            options.idpProviderURL = serviceURL(node, key: "idp_provider_url", example: "https://accounts.google.com")
        }
        if options.idpProviderURL == nil, let kind = options.idpProvider, let fallback = kind.defaultProviderURL {
            options.idpProviderURL = ConfigURL(fallback)
        }
        options.idpClientID = settings["idp_client_id"].flatMap { text($0, key: "idp_client_id") } ?? ""
        options.idpClientSecret = settings["idp_client_secret"].flatMap { text($0, key: "idp_client_secret") } ?? ""
        let scopes = settings["idp_scopes"].flatMap { list($0, key: "idp_scopes") } ?? []
        options.idpScopes = scopes.isEmpty ? (options.idpProvider?.defaultScopes ?? []) : scopes
        options.idpServiceAccount = settings["idp_service_account"].flatMap {
            nonEmptyText($0, key: "idp_service_account")
        }
        options.idpCertificateAuthorityPEM = certificateAuthority(
            base64: settings["idp_ca"], file: settings["idp_ca_file"], key: "idp_ca", fileKey: "idp_ca_file")
        if let node = settings["programmatic_redirect_domains"],
            let value = list(node, key: "programmatic_redirect_domains")
        {
            for entry in value where entry.contains("/") {
                error(
                    "programmatic_redirect_domains", node.location,
                    "\"\(entry)\" must be a host name such as localhost or app.example.com, without scheme or path")
            }
            options.programmaticRedirectDomains = value.filter { !$0.contains("/") }.map { $0.lowercased() }
        }
    }

    private mutating func decodeTimeoutsAndGRPC(_ settings: [String: ConfigNode], into options: inout Options) {
        let durations: [(String, WritableKeyPath<Options, Duration>)] = [
            ("default_upstream_timeout", \.defaultUpstreamTimeout),
            ("timeout_read", \.timeoutRead),
            ("timeout_write", \.timeoutWrite),
            ("timeout_read_header", \.timeoutReadHeader),
            ("timeout_idle", \.timeoutIdle),
            ("grpc_client_timeout", \.grpcClientTimeout),
            ("grpc_server_max_connection_age", \.grpcServerMaxConnectionAge),
            ("grpc_server_max_connection_age_grace", \.grpcServerMaxConnectionAgeGrace),
        ]
        for (key, path) in durations {
            if let node = settings[key], let value = duration(node, key: key) {
                options[keyPath: path] = value
            }
        }
        if let node = settings["grpc_address"], let value = listenAddress(node, key: "grpc_address") {
            options.grpcAddress = value
        }
        if let node = settings["grpc_insecure"], let value = bool(node, key: "grpc_insecure") {
            options.grpcInsecure = value
        }
        if let node = settings["grpc_client_dns_roundrobin"], let value = bool(node, key: "grpc_client_dns_roundrobin")
        {
            options.grpcClientDNSRoundRobin = value
        }
        options.overrideCertificateName = settings["override_certificate_name"].flatMap {
            nonEmptyText($0, key: "override_certificate_name")
        }
        options.certificateAuthorityPEM = certificateAuthority(
            base64: settings["certificate_authority"], file: settings["certificate_authority_file"],
            key: "certificate_authority", fileKey: "certificate_authority_file")
    }

    private mutating func decodeCacheStore(_ settings: [String: ConfigNode], into options: inout Options) {
        if let node = settings["cache_store"], let value = nonEmptyText(node, key: "cache_store") {
            if let kind = CacheStoreKind(rawValue: value) {
                options.cacheStore = kind
            } else {
                error(
                    "cache_store", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a cache store; use autocache, bolt or redis")
            }
        }
        options.cacheStoreAddress = settings["cache_store_address"].flatMap {
            nonEmptyText($0, key: "cache_store_address")
        }
        options.cacheStorePassword = settings["cache_store_password"].flatMap {
            nonEmptyText($0, key: "cache_store_password")
        }
        if let node = settings["cache_store_path"], let value = nonEmptyText(node, key: "cache_store_path") {
            options.cacheStorePath = value
        }
        guard options.cacheStore == .redis else { return }
        guard let address = options.cacheStoreAddress, let node = settings["cache_store_address"] else {
            error(
                "cache_store_address", settings["cache_store"]?.location ?? .defaultValue,
                "is missing but cache_store is redis; set it to host:port or redis://host:6379/0")
            return
        }
        switch RedisAddress.parse(address, password: options.cacheStorePassword) {
        case .success(let redis):
            options.redis = redis
            if redis.useTLS { checkRedisTLSFiles(address, location: node.location) }
            if options.cacheStorePassword != nil, address.contains("@") {
                warning(
                    "cache_store_password", settings["cache_store_password"]?.location ?? node.location,
                    "overrides the password inside cache_store_address; keep the password in one place")
            }
        case .failure(let failure):
            error("cache_store_address", node.location, "is not a Redis address: \(failure.reason)")
        }
    }

    /// Loads the CA and client certificate files that a `rediss://` address names, as the Redis
    /// store does when it starts, so that `-validate` and a reload reject a file the start would
    /// stop on. The messages name the parameter and the path, never the address, which may hold a
    /// password.
    private mutating func checkRedisTLSFiles(_ address: String, location: SourceLocation) {
        let items = URLComponents(string: address)?.queryItems ?? []
        func path(_ name: String) -> String? { items.first { $0.name == name }?.value }
        let key = "cache_store_address"
        if let caPath = path("tls_ca_file"),
            let pem = fileContents(path: caPath, key: key, location: location, label: "tls_ca_file")
        {
            do throws(ConfigKeyCheckError) {
                try ConfigKeyCheck.validateCertificateAuthorities(pem: pem)
            } catch {
                self.error(
                    key, location, "tls_ca_file \"\(caPath)\" is not a valid CA certificate list: \(error.reason)")
            }
        }
        guard let certificatePath = path("tls_cert_file"), let keyPath = path("tls_key_file") else { return }
        let certificatePEM = fileContents(path: certificatePath, key: key, location: location, label: "tls_cert_file")
        let keyPEM = fileContents(path: keyPath, key: key, location: location, label: "tls_key_file")
        guard let certificatePEM, let keyPEM else { return }
        _ = checkedPair(
            certificatePEM: certificatePEM, keyPEM: keyPEM, key: key, location: location,
            files: "tls_cert_file \"\(certificatePath)\" and tls_key_file \"\(keyPath)\": ")
    }

    private mutating func decodeObservability(_ settings: [String: ConfigNode], into options: inout Options) {
        if let node = settings["tracing_provider"], let value = nonEmptyText(node, key: "tracing_provider") {
            if let provider = TracingProvider(rawValue: value.lowercased()) {
                options.tracingProvider = provider
                warning(
                    "tracing_provider", node.location,
                    "this build exports no traces, so nothing is sent to \(provider.rawValue); remove the setting")
            } else {
                error(
                    "tracing_provider", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not supported; the only tracing provider is jaeger (Zipkin arrived in Pomerium v0.9)"
                )
            }
        }
        if let node = settings["tracing_debug"], let value = bool(node, key: "tracing_debug") {
            options.tracingDebug = value
        }
        if let node = settings["tracing_jaeger_collector_endpoint"],
            let endpoint = url(
                node, key: "tracing_jaeger_collector_endpoint", example: "http://jaeger:14268/api/traces")
        {
            if ["http", "https"].contains(endpoint.scheme) {
                options.tracingJaegerCollectorEndpoint = endpoint.text
            } else {
                error(
                    "tracing_jaeger_collector_endpoint", node.location,
                    "has the scheme \"\(ValueParsing.excerpt(endpoint.scheme))\"; write http:// or https://, for example http://jaeger:14268/api/traces"
                )
            }
        }
        if let node = settings["tracing_jaeger_agent_endpoint"],
            let value = nonEmptyText(node, key: "tracing_jaeger_agent_endpoint")
        {
            if value.contains("@") {
                // The text may hold a password, so the message does not repeat it.
                error(
                    "tracing_jaeger_agent_endpoint", node.location,
                    "contains a user part (user@), which the UDP agent protocol cannot use; write host:port such as 127.0.0.1:6831"
                )
            } else if let problem = ValueParsing.listenAddressProblem(value) {
                error(
                    "tracing_jaeger_agent_endpoint", node.location,
                    "\"\(ValueParsing.excerpt(value))\" \(problem); write host:port such as 127.0.0.1:6831")
            } else {
                options.tracingJaegerAgentEndpoint = value
            }
        }
        if options.tracingProvider == .jaeger, options.tracingJaegerCollectorEndpoint == nil,
            options.tracingJaegerAgentEndpoint == nil
        {
            error(
                "tracing_provider", settings["tracing_provider"]?.location ?? .defaultValue,
                "is jaeger but neither tracing_jaeger_collector_endpoint nor tracing_jaeger_agent_endpoint is set; "
                    + "set one, for example http://jaeger:14268/api/traces")
        }
        if let node = settings["log_level"], let value = nonEmptyText(node, key: "log_level") {
            if let level = LogLevel(rawValue: value.lowercased()) {
                options.logLevel = level
            } else {
                warning(
                    "log_level", node.location,
                    "\"\(ValueParsing.excerpt(value))\" is not a log level, so debug is used; use debug, info, warn or error"
                )
            }
        }
        if let node = settings["pomerium_debug"], let value = bool(node, key: "pomerium_debug") {
            options.pomeriumDebug = value
        }
    }

    private mutating func decodeCertificates(_ settings: [String: ConfigNode], into options: inout Options) {
        options.certificateFile = settings["certificate_file"].flatMap { nonEmptyText($0, key: "certificate_file") }
        options.certificateKeyFile = settings["certificate_key_file"].flatMap {
            nonEmptyText($0, key: "certificate_key_file")
        }
        if let pair = certificatePair(
            certificate: settings["certificate"], key: settings["certificate_key"],
            certificateFile: settings["certificate_file"], keyFile: settings["certificate_key_file"],
            names: ("certificate", "certificate_key", "certificate_file", "certificate_key_file"),
            fallback: .defaultValue)
        {
            options.tlsCertificates.append(pair)
        }
        guard let listNode = settings["certificates"] else { return }
        let items: [ConfigNode]
        switch listNode.value {
        case .null: return
        case .sequence(let list): items = list
        default:
            error(
                "certificates", listNode.location, "expects a list of {cert, key} entries but has \(listNode.kindName)")
            return
        }
        for (index, item) in items.enumerated() {
            let key = "certificates[\(index)]"
            guard let entries = item.entries else {
                error(key, item.location, "must be a map with cert and key (base64 PEM) or cert_file and key_file")
                continue
            }
            var fields: [String: ConfigNode] = [:]
            for entry in entries {
                if SettingsCatalog.certificateFields.contains(entry.key) {
                    fields[entry.key] = entry.value
                } else {
                    unknownKey(
                        entry.key, fullKey: "\(key).\(entry.key)", at: entry.keyLocation,
                        known: SettingsCatalog.certificateFields, context: "certificate field")
                }
            }
            // Pomerium v0.8 wrote file paths in cert and key: a value that is an existing file and
            // not base64 PEM is read as a path.
            for (name, fileName) in [("cert", "cert_file"), ("key", "key_file")] {
                if let value = fields[name]?.scalar, fields[fileName] == nil, Self.looksLikePath(value) {
                    fields[fileName] = fields[name]
                    fields[name] = nil
                }
            }
            if let pair = certificatePair(
                certificate: fields["cert"], key: fields["key"], certificateFile: fields["cert_file"],
                keyFile: fields["key_file"],
                names: ("\(key).cert", "\(key).key", "\(key).cert_file", "\(key).key_file"), fallback: item.location)
            {
                options.tlsCertificates.append(pair)
            } else if fields.isEmpty {
                error(key, item.location, "is empty; set cert and key (base64 PEM) or cert_file and key_file")
            }
        }
    }

    private static func looksLikePath(_ value: String) -> Bool {
        guard !value.hasPrefix("-----BEGIN") else { return false }
        if ValueParsing.base64(value).map({ String(decoding: $0, as: UTF8.self).contains("-----BEGIN") }) == true {
            return false
        }
        return FileManager.default.fileExists(atPath: value)
    }

    private mutating func decodeSigningKey(_ settings: [String: ConfigNode], into options: inout Options) {
        let keyNode = settings["signing_key"]
        let fileNode = settings["signing_key_file"]
        options.signingKeyFile = fileNode.flatMap { nonEmptyText($0, key: "signing_key_file") }
        if let keyNode, let pem = base64PEM(keyNode, key: "signing_key", fileKey: "signing_key_file") {
            if options.signingKeyFile != nil, let fileNode {
                error("signing_key_file", fileNode.location, "is set together with signing_key; keep only one of them")
            }
            do throws(ConfigKeyCheckError) {
                try ConfigKeyCheck.validateP256PrivateKey(pem: pem)
                options.signingKeyPEM = String(decoding: pem, as: UTF8.self)
            } catch {
                self.error(
                    "signing_key", keyNode.location,
                    "is not a P-256 private key (\(error.reason)); create one with: "
                        + "openssl ecparam -genkey -name prime256v1 -noout | base64 -w0")
            }
            return
        }
        guard let path = options.signingKeyFile, let fileNode else { return }
        referencedFiles.append(path)
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let pem = fileContents(fileNode, key: "signing_key_file") else { return }
        do throws(ConfigKeyCheckError) {
            try ConfigKeyCheck.validateP256PrivateKey(pem: pem)
            options.signingKeyPEM = String(decoding: pem, as: UTF8.self)
        } catch {
            self.error(
                "signing_key_file", fileNode.location,
                "file \"\(path)\" does not hold a P-256 private key (\(error.reason)); delete it to have a new key generated"
            )
        }
    }
}
