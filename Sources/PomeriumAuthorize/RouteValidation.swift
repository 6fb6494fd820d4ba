import PomeriumCore

/// The checks behind `RoutePolicy.init`. Each appends every problem it finds, naming the route, the value and the
/// fix, and returns the normalised value for the route to keep.
extension RoutePolicy {
    static func validateHost(_ text: String, route: String, problems: inout [PomeriumError]) -> String {
        let fix: String
        if text.isEmpty {
            fix = "set the host of the from URL"
        } else if text.contains("*") {
            fix = "wildcard hosts are not supported; list each host as its own route"
        } else if text.hasSuffix(".") {
            fix = "remove the trailing dot"
        } else if !text.utf8.allSatisfy({ $0 < 0x80 }) {
            fix = "write an internationalised name in its ASCII xn-- form"
        } else if let parsed = HostAndPort(parsing: text) {
            guard parsed.port != nil else { return parsed.host }
            fix = "give the port in the port field, not in the host"
        } else {
            fix = "use letters, digits, \"-\", \".\" and \"_\", or a bracketed IPv6 address"
        }
        problems.append(PomeriumError(.routeHostInvalid, "\(route): from host \"\(text)\" is invalid; \(fix)"))
        return text
    }

    static func validatePort(
        _ port: Int?,
        scheme: RouteScheme,
        route: String,
        problems: inout [PomeriumError]
    ) -> Int? {
        guard let port else { return nil }
        guard (1...65_535).contains(port) else {
            problems.append(
                PomeriumError(.routePortInvalid, "\(route): from port \(port) is invalid; use a port from 1 to 65535")
            )
            return nil
        }
        return port == scheme.defaultPort ? nil : port
    }

    /// Checks `prefix` and `path`, and compiles `regex`. Returns the compiled regex, or nil when none is set or it
    /// does not compile.
    static func validatePathMatchers(
        _ definition: RouteDefinition,
        route: String,
        problems: inout [PomeriumError]
    ) -> CompiledPathRegex? {
        for (name, value) in [("prefix", definition.prefix), ("path", definition.path)] {
            guard let value else { continue }
            if !value.hasPrefix("/") {
                problems.append(
                    PomeriumError(
                        .routePathInvalid,
                        "\(route): \(name) \"\(value)\" is invalid; it must start with \"/\", or remove the key"
                    ))
            }
        }

        guard let pattern = definition.regex else { return nil }
        do {
            return try CompiledPathRegex(pattern, routeID: definition.id)
        } catch {
            problems.append(
                PomeriumError(
                    .routeRegexInvalid,
                    "\(route): regex \"\(pattern)\" does not compile (\(error)); fix the pattern or remove the key"
                ))
            return nil
        }
    }

    /// Checks the allow lists and their combination with public access. Returns the parsed `allowed_users` and the
    /// lower-cased `allowed_domains`.
    static func validateAllowLists(
        _ definition: RouteDefinition,
        route: String,
        problems: inout [PomeriumError]
    ) -> (users: Set<EmailAddress>, domains: [String]) {
        let hasAllowList =
            !definition.allowedUsers.isEmpty || !definition.allowedDomains.isEmpty || !definition.allowedGroups.isEmpty
        if definition.allowPublicUnauthenticatedAccess && hasAllowList {
            problems.append(
                PomeriumError(
                    .routePublicWithAllowList,
                    "\(route) sets allow_public_unauthenticated_access together with allowed_users, allowed_domains "
                        + "or allowed_groups; remove the allow lists or the public access"
                ))
        }

        var userSet = Set<EmailAddress>()
        for user in definition.allowedUsers {
            if let address = EmailAddress(user) {
                userSet.insert(address)
            } else {
                problems.append(
                    PomeriumError(
                        .routeAllowedUserInvalid,
                        "\(route): allowed_users entry \"\(user)\" is not an email address; "
                            + PolicyEntrySyntax.addressFix
                    ))
            }
        }

        var domains: [String] = []
        for domain in definition.allowedDomains {
            if !PolicyEntrySyntax.isDomain(domain) {
                problems.append(
                    PomeriumError(
                        .routeAllowedDomainInvalid,
                        "\(route): allowed_domains entry \"\(domain)\" is invalid; " + PolicyEntrySyntax.domainFix
                    ))
            } else {
                domains.append(domain.asciiLowercased)
            }
        }

        for group in definition.allowedGroups where group.isEmpty {
            problems.append(
                PomeriumError(
                    .routeAllowedGroupInvalid,
                    "\(route): allowed_groups contains an empty entry; remove it"
                ))
        }
        return (userSet, domains)
    }
}
