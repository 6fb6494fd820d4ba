/// The effective value of every setting as text, for `-validate` and for reload change reports.
/// The display form redacts every secret and shortens PEM texts. The comparison form contains
/// full values and is never printed.
public enum EffectiveSettings {
    /// The text written in place of a secret value.
    public static let redacted = "[redacted]"

    /// Renders one line per setting, plus one per route, in catalog order, with secrets redacted.
    public static func displayLines(_ options: Options) -> [String] {
        var lines: [String] = []
        for descriptor in SettingsCatalog.settings {
            lines.append("\(descriptor.key): \(value(descriptor.key, options, display: true))")
            if descriptor.key == "policy" {
                for (index, route) in options.policy.enumerated() {
                    lines.append("policy[\(index)]: \(describe(route, display: true))")
                }
            }
        }
        return lines
    }

    /// Renders the display lines as one text, each line ending in a newline.
    public static func render(_ options: Options) -> String {
        displayLines(options).joined(separator: "\n") + "\n"
    }

    /// Returns the keys whose effective values differ between two option sets, in catalog order.
    public static func changedKeys(from old: Options, to new: Options) -> [String] {
        SettingsCatalog.settings.map(\.key).filter { value($0, old, display: false) != value($0, new, display: false) }
    }

    // MARK: Values

    /// Settings that hold a URL whose user part or query may carry a password; the display form
    /// redacts those parts (the loader rejects them in service URLs, but the printer does not rely
    /// on it).
    static let urlKeys: Set<String> = [
        "authenticate_service_url", "authorize_service_url", "cache_service_url", "forward_auth_url",
        "idp_provider_url", "tracing_jaeger_collector_endpoint", "tracing_jaeger_agent_endpoint",
    ]

    /// Whether a header's value is a credential, so the display form shows `[redacted]` instead:
    /// `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, and any name that contains
    /// token, secret, key, password, passwd, auth, session or credential (without regard to case).
    public static func isCredentialHeader(_ name: String) -> Bool {
        let lowered = name.lowercased()
        if ["cookie", "set-cookie"].contains(lowered) { return true }
        return ["token", "secret", "key", "password", "passwd", "auth", "session", "credential"].contains {
            lowered.contains($0)
        }
    }

    /// A header map's display text: `Name="value"` in name order, credential values redacted.
    static func headerText(_ items: [String: String], display: Bool, separator: String, quote: Bool) -> String {
        items.keys.sorted().map { name in
            let value = display && isCredentialHeader(name) ? redacted : items[name] ?? ""
            return quote ? "\(name)=\"\(value)\"" : "\(name):\(value)"
        }.joined(separator: separator)
    }

    static func value(_ key: String, _ options: Options, display: Bool) -> String {
        let isSecret = SettingsCatalog.byKey[key]?.isSecret ?? false
        let text = rawValue(key, options, display: display)
        if display, urlKeys.contains(key) { return ValueParsing.redactedURL(text) }
        guard display, isSecret, !text.isEmpty else { return text }
        if key == "shared_secret", options.sharedSecretIsGenerated { return "\(redacted) (generated for this process)" }
        if key == "signing_key", options.signingKeyIsGenerated { return "\(redacted) (generated for this process)" }
        if key == "cache_store_address" {
            // Only the password (user part or ?password=) of a redis:// URL is secret; the host stays visible.
            return ValueParsing.redactedURL(text)
        }
        if key == "certificates" { return "\(redacted) (\(options.tlsCertificates.count) certificate pairs in total)" }
        return redacted
    }

    private static func rawValue(_ key: String, _ options: Options, display: Bool) -> String {
        func pem(_ text: String?) -> String {
            guard let text else { return "" }
            return display ? "PEM, \(text.utf8.count) bytes" : text
        }
        func list(_ items: [String]) -> String { items.joined(separator: ",") }
        func duration(_ value: Duration) -> String { ValueParsing.goDurationString(value) }
        switch key {
        case "services": return options.services.rawValue
        case "address": return options.address
        case "insecure_server": return String(options.insecureServer)
        case "http_redirect_addr": return options.httpRedirectAddress ?? ""
        case "metrics_address": return options.metricsAddress ?? ""
        case "certificate":
            if display, options.tlsCertificates.isEmpty { return "" }
            return display
                ? "\(options.tlsCertificates.count) certificate chains"
                : options.tlsCertificates.map(\.certificatePEM).joined(separator: "\n")
        case "certificate_key": return options.tlsCertificates.map(\.keyPEM).joined(separator: "\n")
        case "certificate_file": return options.certificateFile ?? ""
        case "certificate_key_file": return options.certificateKeyFile ?? ""
        case "certificates":
            // `certificate` and `certificate_key` already compare every pair, whichever setting it came from.
            return display && !options.tlsCertificates.isEmpty ? "set" : ""
        case "shared_secret": return options.sharedSecret.isEmpty ? "" : hex(options.sharedSecret)
        case "cookie_secret": return options.cookieSecret.isEmpty ? "" : hex(options.cookieSecret)
        case "cookie_name": return options.cookieName
        case "cookie_domain": return options.cookieDomain
        case "cookie_secure": return String(options.cookieSecure)
        case "cookie_http_only": return String(options.cookieHTTPOnly)
        case "cookie_expire": return duration(options.cookieExpire)
        case "cookie_samesite": return options.cookieSameSite.rawValue
        case "refresh_cooldown": return duration(options.refreshCooldown)
        case "authenticate_service_url": return options.authenticateServiceURL?.text ?? ""
        case "authenticate_callback_path": return options.authenticateCallbackPath
        case "authorize_service_url": return options.authorizeServiceURL?.text ?? ""
        case "cache_service_url": return options.cacheServiceURL?.text ?? ""
        case "forward_auth_url": return options.forwardAuthURL?.text ?? ""
        case "idp_provider": return options.idpProvider?.rawValue ?? ""
        case "idp_provider_url": return options.idpProviderURL?.text ?? ""
        case "idp_client_id": return options.idpClientID
        case "idp_client_secret": return options.idpClientSecret
        case "idp_scopes": return list(options.idpScopes)
        case "idp_service_account": return options.idpServiceAccount ?? ""
        case "idp_ca", "idp_ca_file": return key == "idp_ca" ? pem(options.idpCertificateAuthorityPEM) : ""
        case "programmatic_redirect_domains": return list(options.programmaticRedirectDomains)
        case "administrators": return list(options.administrators)
        case "signing_key": return options.signingKeyPEM ?? ""
        case "signing_key_file": return options.signingKeyFile ?? ""
        case "headers": return headerText(options.headers, display: display, separator: ", ", quote: true)
        case "jwt_claims_headers": return list(options.jwtClaimsHeaders)
        case "trusted_proxies": return list(options.trustedProxies)
        case "default_upstream_timeout": return duration(options.defaultUpstreamTimeout)
        case "timeout_read": return duration(options.timeoutRead)
        case "timeout_write": return duration(options.timeoutWrite)
        case "timeout_read_header": return duration(options.timeoutReadHeader)
        case "timeout_idle": return duration(options.timeoutIdle)
        case "grpc_address": return options.grpcAddress
        case "grpc_insecure": return String(options.grpcInsecure)
        case "grpc_client_timeout": return duration(options.grpcClientTimeout)
        case "grpc_client_dns_roundrobin": return String(options.grpcClientDNSRoundRobin)
        case "grpc_server_max_connection_age": return duration(options.grpcServerMaxConnectionAge)
        case "grpc_server_max_connection_age_grace": return duration(options.grpcServerMaxConnectionAgeGrace)
        case "override_certificate_name": return options.overrideCertificateName ?? ""
        case "certificate_authority": return pem(options.certificateAuthorityPEM)
        case "certificate_authority_file": return ""
        case "cache_store": return options.cacheStore.rawValue
        case "cache_store_address": return options.cacheStoreAddress ?? ""
        case "cache_store_password": return options.cacheStorePassword ?? ""
        case "cache_store_path": return options.cacheStorePath
        case "tracing_provider": return options.tracingProvider?.rawValue ?? ""
        case "tracing_debug": return String(options.tracingDebug)
        case "tracing_jaeger_collector_endpoint": return options.tracingJaegerCollectorEndpoint ?? ""
        case "tracing_jaeger_agent_endpoint": return options.tracingJaegerAgentEndpoint ?? ""
        case "log_level": return options.logLevel.rawValue
        case "pomerium_debug": return String(options.pomeriumDebug)
        case "policy":
            return display
                ? "\(options.policy.count) routes"
                : options.policy.map { describe($0, display: false) }.joined(separator: "\n")
        default: return ""
        }
    }

    /// Renders one route on one line: `from`, `to`, and every field that differs from its default.
    static func describe(_ route: Route, display: Bool) -> String {
        var parts =
            display
            ? ["from=\(route.from.redactedText)", "to=\(route.to.redactedText)"]
            : ["from=\(route.from.text)", "to=\(route.to.text)"]
        if let prefix = route.prefix { parts.append("prefix=\(prefix)") }
        if let path = route.path { parts.append("path=\(path)") }
        if let regex = route.regex { parts.append("regex=\(regex)") }
        if !route.allowedUsers.isEmpty { parts.append("allowed_users=\(route.allowedUsers.joined(separator: ","))") }
        if !route.allowedGroups.isEmpty { parts.append("allowed_groups=\(route.allowedGroups.joined(separator: ","))") }
        if !route.allowedDomains.isEmpty {
            parts.append("allowed_domains=\(route.allowedDomains.joined(separator: ","))")
        }
        if route.allowPublicUnauthenticatedAccess { parts.append("allow_public_unauthenticated_access=true") }
        if route.corsAllowPreflight { parts.append("cors_allow_preflight=true") }
        parts.append("timeout=\(ValueParsing.goDurationString(route.timeout))")
        if route.allowWebsockets { parts.append("allow_websockets=true") }
        if !route.setRequestHeaders.isEmpty {
            let headers = headerText(route.setRequestHeaders, display: display, separator: ",", quote: false)
            parts.append("set_request_headers=\(headers)")
        }
        if route.preserveHostHeader { parts.append("preserve_host_header=true") }
        if route.tlsSkipVerify { parts.append("tls_skip_verify=true") }
        if let name = route.tlsServerName { parts.append("tls_server_name=\(name)") }
        if let ca = route.tlsCustomCAPEM {
            parts.append("tls_custom_ca=\(display ? "PEM, \(ca.utf8.count) bytes" : ca)")
        }
        if let pair = route.tlsClientCertificate {
            parts.append(
                "tls_client_cert=\(display ? "PEM, \(pair.certificatePEM.utf8.count) bytes" : pair.certificatePEM)")
            parts.append("tls_client_key=\(display ? redacted : pair.keyPEM)")
        }
        return parts.joined(separator: " ")
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] })
    }
}
