import Foundation
import PomeriumAuthorize
import PomeriumCrypto

extension NodeDecoder {
    /// Decodes the `policy` list. Each route is checked on its own, so one bad route reports its
    /// problems without hiding those of the others.
    mutating func routes(_ node: ConfigNode, defaultTimeout: Duration) -> [Route] {
        let items: [ConfigNode]
        switch node.value {
        case .null: return []
        case .sequence(let list): items = list
        default:
            error("policy", node.location, "expects a list of routes but has \(node.kindName); write - from: ... items")
            return []
        }
        var routes: [(route: Route, location: SourceLocation)] = []
        for (index, item) in items.enumerated() {
            if let route = route(item, key: "policy[\(index)]", defaultTimeout: defaultTimeout) {
                routes.append((route, item.location))
            }
        }
        checkOverlaps(routes)
        return routes.map(\.route)
    }

    private mutating func route(_ node: ConfigNode, key: String, defaultTimeout: Duration) -> Route? {
        guard let entries = node.entries else {
            error(key, node.location, "a route must be a map with from, to and access settings, not \(node.kindName)")
            return nil
        }
        var fields: [String: ConfigNode] = [:]
        for entry in entries {
            // Field names match without regard to case, as v0.7's decoder matched them.
            if SettingsCatalog.routeFields.contains(entry.key.lowercased()) {
                guard fields[entry.key.lowercased()] == nil else {
                    error(
                        "\(key).\(entry.key)", entry.keyLocation,
                        "duplicate key: \(entry.key.lowercased()) is already set in this route and field names match without regard to case; keep one"
                    )
                    continue
                }
                fields[entry.key.lowercased()] = entry.value
            } else {
                unknownKey(
                    entry.key, fullKey: "\(key).\(entry.key)", at: entry.keyLocation,
                    known: SettingsCatalog.routeFields,
                    context: "route field")
            }
        }
        func field(_ name: String) -> String { "\(key).\(name)" }

        var wildcard = false
        if let fromNode = fields["from"], let text = fromNode.scalar, text.contains("*") {
            error(
                field("from"), fromNode.location,
                "has a wildcard host; Pomerium v0.7 has no wildcard routes, so write one route per host name")
            wildcard = true
        }
        var from =
            wildcard ? nil : fields["from"].flatMap { url($0, key: field("from"), example: "https://app.example.com") }
        var to = fields["to"].flatMap { url($0, key: field("to"), example: "http://app.internal:8080") }
        if let parsed = from, let location = fields["from"]?.location {
            if parsed.hasUserInfo {
                error(
                    field("from"), location,
                    "contains a user name or password, which a route cannot match; remove user:password@")
                from = nil
            } else if parsed.fragment != nil {
                error(field("from"), location, "has a fragment (#...), which browsers never send; remove it")
                from = nil
            }
        }
        if let parsed = to, let location = fields["to"]?.location {
            if parsed.hasUserInfo {
                error(
                    field("to"), location,
                    "contains a user name or password, which is not sent upstream; remove user:password@ and "
                        + "send credentials with set_request_headers: {Authorization: ...}")
                to = nil
            } else if parsed.fragment != nil {
                error(field("to"), location, "has a fragment (#...), which is never sent upstream; remove it")
                to = nil
            }
        }
        if Self.isBlank(fields["from"]) {
            error(field("from"), node.location, "is missing; every route needs from: https://public.host")
        }
        if Self.isBlank(fields["to"]) {
            error(field("to"), node.location, "is missing; every route needs to: http://upstream.host")
        }
        var hasErrors = from == nil || to == nil || wildcard
        if let from, let location = fields["from"]?.location {
            if !["http", "https"].contains(from.scheme) {
                error(field("from"), location, "scheme \"\(from.scheme)\" is not supported; write http:// or https://")
                hasErrors = true
            }
            if !from.path.isEmpty, from.path != "/" {
                error(
                    field("from"), location,
                    "has the path \"\(from.path)\", but from matches only scheme, host and port; "
                        + "move the path to prefix: \(from.path) (or path: for an exact match)")
                hasErrors = true
            }
            if from.query != nil {
                error(field("from"), location, "has a query string; from matches only scheme, host and port")
                hasErrors = true
            }
        }
        if let to, let location = fields["to"]?.location, !["http", "https"].contains(to.scheme) {
            error(field("to"), location, "scheme \"\(to.scheme)\" is not supported; write http:// or https://")
            hasErrors = true
        }

        let prefix = fields["prefix"].flatMap { pathSetting($0, key: field("prefix")) }
        let path = fields["path"].flatMap { pathSetting($0, key: field("path")) }
        var regex: String?
        if let node = fields["regex"], let pattern = nonEmptyText(node, key: field("regex")) {
            // The same engine as the policy router (Swift's Regex), so a pattern passes here only if the
            // router can compile it; the router matches it against the whole path.
            if let reason = Self.regexProblem(pattern) {
                self.error(
                    field("regex"), node.location,
                    "\"\(ValueParsing.excerpt(pattern))\" is not a valid regular expression: \(ValueParsing.excerpt(reason))"
                )
                hasErrors = true
            } else {
                regex = pattern
            }
        }

        let users = fields["allowed_users"].flatMap { list($0, key: field("allowed_users")) } ?? []
        let groups = fields["allowed_groups"].flatMap { list($0, key: field("allowed_groups")) } ?? []
        let domains = fields["allowed_domains"].flatMap { list($0, key: field("allowed_domains")) } ?? []
        for user in users where !PolicyEntrySyntax.isAddress(user) {
            error(
                field("allowed_users"), fields["allowed_users"]?.location ?? node.location,
                "entry \"\(ValueParsing.excerpt(user))\" is not an email address; \(PolicyEntrySyntax.addressFix)")
            hasErrors = true
        }
        for domain in domains where !PolicyEntrySyntax.isDomain(domain) {
            error(
                field("allowed_domains"), fields["allowed_domains"]?.location ?? node.location,
                "entry \"\(ValueParsing.excerpt(domain))\" is invalid; \(PolicyEntrySyntax.domainFix)")
            hasErrors = true
        }
        let isPublic =
            fields["allow_public_unauthenticated_access"].flatMap {
                bool($0, key: field("allow_public_unauthenticated_access"))
            } ?? false
        if isPublic {
            for (name, values) in [("allowed_users", users), ("allowed_groups", groups), ("allowed_domains", domains)]
            where !values.isEmpty {
                error(
                    field(name), fields[name]?.location ?? node.location,
                    "the route is public (allow_public_unauthenticated_access: true) and also lists \(name); "
                        + "a public route admits everyone, so remove \(name) or the public flag")
                hasErrors = true
            }
        } else if users.isEmpty, groups.isEmpty, domains.isEmpty, from != nil {
            warning(
                key, node.location,
                "allows nobody except administrators; add allowed_users, allowed_groups, allowed_domains "
                    + "or allow_public_unauthenticated_access: true")
        }

        var timeout = defaultTimeout
        var hasExplicitTimeout = false
        if let node = fields["timeout"], let value = duration(node, key: field("timeout")) {
            timeout = value
            hasExplicitTimeout = true
        }
        let headers = fields["set_request_headers"].flatMap { headerMap($0, key: field("set_request_headers")) } ?? [:]

        let customCA = certificateAuthority(
            base64: fields["tls_custom_ca"], file: fields["tls_custom_ca_file"], key: field("tls_custom_ca"),
            fileKey: field("tls_custom_ca_file"))
        let clientCertificate = certificatePair(
            certificate: fields["tls_client_cert"], key: fields["tls_client_key"],
            certificateFile: fields["tls_client_cert_file"], keyFile: fields["tls_client_key_file"],
            names: (
                field("tls_client_cert"), field("tls_client_key"), field("tls_client_cert_file"),
                field("tls_client_key_file")
            ),
            fallback: node.location)

        guard !hasErrors, let from, let to else { return nil }
        var route = Route(from: from, to: to, timeout: timeout)
        route.prefix = prefix
        route.path = path
        route.regex = regex
        route.allowedUsers = users
        route.allowedGroups = groups
        route.allowedDomains = domains
        route.allowPublicUnauthenticatedAccess = isPublic
        route.corsAllowPreflight =
            fields["cors_allow_preflight"].flatMap { bool($0, key: field("cors_allow_preflight")) } ?? false
        route.hasExplicitTimeout = hasExplicitTimeout
        route.allowWebsockets = fields["allow_websockets"].flatMap { bool($0, key: field("allow_websockets")) } ?? false
        route.setRequestHeaders = headers
        route.preserveHostHeader =
            fields["preserve_host_header"].flatMap { bool($0, key: field("preserve_host_header")) } ?? false
        route.tlsSkipVerify = fields["tls_skip_verify"].flatMap { bool($0, key: field("tls_skip_verify")) } ?? false
        route.tlsServerName = fields["tls_server_name"].flatMap { nonEmptyText($0, key: field("tls_server_name")) }
        route.tlsCustomCAPEM = customCA
        route.tlsClientCertificate = clientCertificate
        return route
    }

    private static func isEnvironment(_ node: ConfigNode?) -> Bool {
        guard let node else { return false }
        if case .environment = node.location { return true }
        return false
    }

    /// Why Swift's `Regex` rejects `pattern`, or nil when it compiles.
    static func regexProblem(_ pattern: String) -> String? {
        do {
            _ = try Regex(pattern)
            return nil
        } catch {
            return String(describing: error)
        }
    }

    private static func isBlank(_ node: ConfigNode?) -> Bool {
        guard let node else { return true }
        if case .null = node.value { return true }
        return node.scalar?.isEmpty == true
    }

    private mutating func pathSetting(_ node: ConfigNode, key: String) -> String? {
        guard let value = nonEmptyText(node, key: key) else { return nil }
        guard value.hasPrefix("/") else {
            error(
                key, node.location,
                "\"\(ValueParsing.excerpt(value))\" must start with /; write /\(ValueParsing.excerpt(value))")
            return nil
        }
        return value
    }

    /// Warns about routes that an earlier route with the same matchers hides, on every `Host` value
    /// or only on a `Host` without a port.
    private mutating func checkOverlaps(_ routes: [(route: Route, location: SourceLocation)]) {
        var seen: [String: Int] = [:]
        // Routes whose `from` has no port or its scheme's default port, by host and path matchers.
        var seenWithoutPort: [String: Int] = [:]
        for (index, entry) in routes.enumerated() {
            let route = entry.route
            let matchers = [route.prefix ?? "", route.path ?? "", route.regex ?? ""]
            let signature = ([route.from.scheme, route.from.authority] + matchers).joined(separator: "\u{0}")
            if let earlier = seen[signature] {
                warning(
                    "policy", entry.location,
                    "two routes match the same requests (from \(route.from.text)); only the earlier one "
                        + "(route \(earlier + 1) of the valid routes) is used, so merge or remove this one")
                continue
            }
            seen[signature] = index
            let defaultPort = route.from.scheme == "https" ? 443 : 80
            guard route.from.port == nil || route.from.port == defaultPort else { continue }
            // A `Host` without a port matches the portless http:// and https:// routes of a name
            // alike, so the earlier one decides such requests whatever the connection's scheme.
            let portless = ([route.from.host] + matchers).joined(separator: "\u{0}")
            if let earlier = seenWithoutPort[portless], routes[earlier].route.from.scheme != route.from.scheme {
                let other = routes[earlier].route.from
                warning(
                    "policy", entry.location,
                    "requests for \(route.from.host) without a port in Host (as browsers send them) go to the "
                        + "earlier route from \(other.text) (route \(earlier + 1) of the valid routes), whatever "
                        + "their scheme; this route from \(route.from.text) decides only requests whose Host ends "
                        + "in :\(defaultPort). Use one scheme for the name, or give the routes different names")
            } else if seenWithoutPort[portless] == nil {
                seenWithoutPort[portless] = index
            }
        }
    }

    // MARK: PEM settings

    /// CA certificates from a base64 setting or a file setting, checked with OpenSSL.
    mutating func certificateAuthority(
        base64: ConfigNode?, file: ConfigNode?, key: String, fileKey: String
    ) -> String? {
        var pem: [UInt8]?
        var location = SourceLocation.defaultValue
        var usedKey = key
        if let base64, let decoded = base64PEM(base64, key: key, fileKey: fileKey) {
            pem = decoded
            location = base64.location
            if let file, nonEmptyText(file, key: fileKey) != nil {
                warning(fileKey, file.location, "is ignored because \(key) is also set; keep only one of them")
            }
        } else if let file, let contents = fileContents(file, key: fileKey) {
            pem = contents
            location = file.location
            usedKey = fileKey
        }
        guard let pem else { return nil }
        do throws(ConfigKeyCheckError) {
            try ConfigKeyCheck.validateCertificateAuthorities(pem: pem)
        } catch {
            self.error(usedKey, location, "is not a valid CA certificate list: \(error.reason)")
            return nil
        }
        return String(decoding: pem, as: UTF8.self)
    }

    /// A certificate chain and its key from a base64 pair or a file pair; both halves are required
    /// and the key must match the certificate.
    mutating func certificatePair(
        certificate: ConfigNode?, key: ConfigNode?, certificateFile: ConfigNode?, keyFile: ConfigNode?,
        names: (certificate: String, key: String, certificateFile: String, keyFile: String), fallback: SourceLocation
    ) -> TLSCertificatePair? {
        let hasBase64Certificate = certificate.flatMap { nonEmptyText($0, key: names.certificate) } != nil
        let hasBase64Key = key.flatMap { nonEmptyText($0, key: names.key) } != nil
        let hasFileCertificate = certificateFile.flatMap { nonEmptyText($0, key: names.certificateFile) } != nil
        let hasFileKey = keyFile.flatMap { nonEmptyText($0, key: names.keyFile) } != nil
        var certificatePEM: [UInt8]?
        var keyPEM: [UInt8]?
        var location = fallback
        var usedKey = names.certificate
        var files = ""
        if hasBase64Certificate || hasBase64Key {
            guard hasBase64Certificate, hasBase64Key else {
                let missing = hasBase64Certificate ? names.key : names.certificate
                error(
                    missing, (certificate ?? key)?.location ?? fallback,
                    "is missing; \(names.certificate) and \(names.key) must be set together")
                return nil
            }
            // The environment overriding the file is the documented precedence (the example
            // config.yaml keeps certificate_file for when CERTIFICATE is unset), so only a file or an
            // environment holding both forms gets the warning.
            let base64FromEnvironment = Self.isEnvironment(certificate) && Self.isEnvironment(key)
            let filesFromFile = !Self.isEnvironment(certificateFile) && !Self.isEnvironment(keyFile)
            if hasFileCertificate || hasFileKey, !(base64FromEnvironment && filesFromFile) {
                warning(
                    names.certificateFile, (certificateFile ?? keyFile)?.location ?? fallback,
                    "is ignored because \(names.certificate) and \(names.key) are set; keep only one pair")
            }
            certificatePEM = certificate.flatMap {
                base64PEM($0, key: names.certificate, fileKey: names.certificateFile)
            }
            keyPEM = key.flatMap { base64PEM($0, key: names.key, fileKey: names.keyFile) }
            location = certificate?.location ?? fallback
        } else if hasFileCertificate || hasFileKey {
            guard hasFileCertificate, hasFileKey else {
                let missing = hasFileCertificate ? names.keyFile : names.certificateFile
                error(
                    missing, (certificateFile ?? keyFile)?.location ?? fallback,
                    "is missing; \(names.certificateFile) and \(names.keyFile) must be set together")
                return nil
            }
            certificatePEM = certificateFile.flatMap { fileContents($0, key: names.certificateFile) }
            keyPEM = keyFile.flatMap { fileContents($0, key: names.keyFile) }
            location = certificateFile?.location ?? fallback
            usedKey = names.certificateFile
            if let certificatePath = certificateFile?.scalar, let keyPath = keyFile?.scalar {
                files = "files \"\(certificatePath)\" and \"\(keyPath)\": "
            }
        } else {
            return nil
        }
        guard let certificatePEM, let keyPEM else { return nil }
        return checkedPair(
            certificatePEM: certificatePEM, keyPEM: keyPEM, key: usedKey, location: location, files: files)
    }

    /// Checks that the pair loads; `files` names the files the PEM came from, for the messages.
    mutating func checkedPair(
        certificatePEM: [UInt8], keyPEM: [UInt8], key: String, location: SourceLocation, files: String = ""
    ) -> TLSCertificatePair? {
        do throws(ConfigKeyCheckError) {
            let info = try ConfigKeyCheck.validateCertificateChain(certificatePEM: certificatePEM, keyPEM: keyPEM)
            if info.isExpired {
                warning(
                    key, location,
                    "the certificate has expired; browsers and clients will reject it until it is renewed")
            } else if let start = CertificateValidity.notBefore(pem: certificatePEM),
                start > Int64(Date().timeIntervalSince1970)
            {
                let date = Date(timeIntervalSince1970: TimeInterval(start)).ISO8601Format()
                warning(
                    key, location,
                    "the certificate is not valid until \(date); browsers and clients will reject it until then "
                        + "(check the clock of this host and of the machine that issued it)")
            }
        } catch {
            self.error(key, location, "\(files)the certificate and key do not load: \(error.reason)")
            return nil
        }
        return TLSCertificatePair(
            certificatePEM: String(decoding: certificatePEM, as: UTF8.self),
            keyPEM: String(decoding: keyPEM, as: UTF8.self))
    }
}
