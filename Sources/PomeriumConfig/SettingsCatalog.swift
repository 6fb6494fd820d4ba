/// How a changed setting takes effect on reload.
public enum ReloadBehavior: String, Sendable {
    /// The new value applies to the next request or connection.
    case hot
    /// The new value applies only after the process restarts (listeners, stores, service wiring).
    case restart
}

/// One top-level setting: its key, how reload treats it, whether its value is secret, and whether
/// it is an addition beyond Pomerium v0.7.
public struct SettingDescriptor: Sendable, Hashable {
    public let key: String
    public let reload: ReloadBehavior
    public let isSecret: Bool
    public let isAddition: Bool

    /// The environment variable that sets this key: the key in upper case.
    public var environmentName: String { key.uppercased() }
}

/// Every setting key the loader reads, the route fields, and the keys that earlier versions had.
public enum SettingsCatalog {
    private static func hot(_ key: String, secret: Bool = false, addition: Bool = false) -> SettingDescriptor {
        SettingDescriptor(key: key, reload: .hot, isSecret: secret, isAddition: addition)
    }

    private static func restart(_ key: String, secret: Bool = false, addition: Bool = false) -> SettingDescriptor {
        SettingDescriptor(key: key, reload: .restart, isSecret: secret, isAddition: addition)
    }

    /// The top-level settings, in the order the effective-settings printer lists them. Restart-only
    /// are the listen addresses and `insecure_server` (sockets are bound at start), `services`, the
    /// stores, the identity provider (discovered once at start), the gRPC and tracing settings, and
    /// `pomerium_debug` (the log format).
    public static let settings: [SettingDescriptor] = [
        restart("services"),
        restart("address"),
        restart("insecure_server"),
        restart("http_redirect_addr"),
        restart("metrics_address"),
        hot("certificate"),
        hot("certificate_key", secret: true),
        hot("certificate_file"),
        hot("certificate_key_file"),
        hot("certificates", secret: true, addition: true),
        hot("shared_secret", secret: true),
        hot("cookie_secret", secret: true),
        hot("cookie_name"),
        hot("cookie_domain"),
        hot("cookie_secure"),
        hot("cookie_http_only"),
        hot("cookie_expire"),
        hot("cookie_samesite", addition: true),
        hot("refresh_cooldown"),
        hot("authenticate_service_url"),
        restart("authenticate_callback_path"),
        restart("authorize_service_url"),
        restart("cache_service_url"),
        hot("forward_auth_url"),
        restart("idp_provider"),
        restart("idp_provider_url"),
        restart("idp_client_id"),
        restart("idp_client_secret", secret: true),
        restart("idp_scopes"),
        restart("idp_service_account", secret: true),
        restart("idp_ca", addition: true),
        restart("idp_ca_file", addition: true),
        hot("programmatic_redirect_domains", addition: true),
        hot("administrators"),
        hot("signing_key", secret: true),
        hot("signing_key_file", addition: true),
        hot("headers"),
        hot("jwt_claims_headers"),
        hot("trusted_proxies", addition: true),
        hot("default_upstream_timeout"),
        hot("timeout_read"),
        hot("timeout_write"),
        hot("timeout_read_header"),
        hot("timeout_idle"),
        restart("grpc_address"),
        restart("grpc_insecure"),
        hot("grpc_client_timeout"),
        restart("grpc_client_dns_roundrobin"),
        restart("grpc_server_max_connection_age"),
        restart("grpc_server_max_connection_age_grace"),
        restart("override_certificate_name"),
        restart("certificate_authority"),
        restart("certificate_authority_file"),
        restart("cache_store"),
        restart("cache_store_address", secret: true),
        restart("cache_store_password", secret: true),
        restart("cache_store_path"),
        restart("tracing_provider"),
        restart("tracing_debug"),
        restart("tracing_jaeger_collector_endpoint"),
        restart("tracing_jaeger_agent_endpoint"),
        hot("log_level"),
        restart("pomerium_debug"),
        hot("policy"),
    ]

    /// The settings by key.
    public static let byKey: [String: SettingDescriptor] = Dictionary(
        uniqueKeysWithValues: settings.map { ($0.key, $0) })

    /// The fields of one route; `prefix`, `path` and `regex` are additions beyond v0.7.
    public static let routeFields: [String] = [
        "from", "to", "prefix", "path", "regex", "allowed_users", "allowed_groups", "allowed_domains",
        "allow_public_unauthenticated_access", "cors_allow_preflight", "timeout", "allow_websockets",
        "set_request_headers", "preserve_host_header", "tls_skip_verify", "tls_server_name", "tls_custom_ca",
        "tls_custom_ca_file", "tls_client_cert", "tls_client_key", "tls_client_cert_file", "tls_client_key_file",
    ]

    /// The fields of one `certificates` entry.
    public static let certificateFields: [String] = ["cert", "key", "cert_file", "key_file"]

    /// Keys that earlier Pomerium versions had, with what changed and what to write instead.
    /// `isError` marks the ones whose absence changes behaviour, so keeping them is an error.
    public static let removedKeys: [String: (isError: Bool, message: String)] = [
        "policy_file": (
            true,
            "policy_file was removed in v0.0.5: move the route list under the policy key of the config file, "
                + "or set POLICY to the base64 of the route list"
        ),
        "authenticate_internal_url": (
            false,
            "authenticate_internal_url was removed in v0.4.0 because the authenticate service no longer "
                + "serves gRPC; delete the setting (authenticate_service_url is the only authenticate URL)"
        ),
        "cookie_refresh": (
            false,
            "cookie_refresh was removed in v0.6.0 because sessions now refresh through the cache service; "
                + "delete the setting"
        ),
    ]

    /// The closest known name to `key` within a small edit distance, for "did you mean" hints.
    static func closest(to key: String, among candidates: [String]) -> String? {
        // Edit distance is quadratic; a key far longer than any setting name gets no suggestion.
        guard key.utf8.count <= 128 else { return nil }
        let lowered = key.lowercased()
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, candidate)
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        guard let best else { return nil }
        let allowed = max(2, key.count / 3)
        if best.distance <= allowed { return best.name }
        // A key that is a known name with a prefix or suffix dropped, such as `scope` for `idp_scopes`.
        let containing = candidates.filter { $0.contains(lowered) && lowered.count >= 4 }
        return containing.count == 1 ? containing[0] : nil
    }

    /// The Levenshtein distance between two strings, counted in characters.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let left = Array(lhs)
        let right = Array(rhs)
        if left.isEmpty { return right.count }
        if right.isEmpty { return left.count }
        var previous = Array(0...right.count)
        var current = [Int](repeating: 0, count: right.count + 1)
        for i in 1...left.count {
            current[0] = i
            for j in 1...right.count {
                let substitution = previous[j - 1] + (left[i - 1] == right[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[right.count]
    }
}
