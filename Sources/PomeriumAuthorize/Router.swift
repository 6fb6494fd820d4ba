import Glibc
import PomeriumCore

/// Finds the policy route for a request: the first route in configuration order whose host rule and path matchers
/// accept it (see `RoutePolicy` for both rules).
///
/// Lookup is one dictionary access on the parsed `host:port` key, followed by the path matchers of only the routes
/// registered under that key. The cost per request therefore depends on how many routes share the request's host,
/// not on the size of the policy.
public struct Router: Sendable {
    /// The routes in configuration order.
    public let routes: [RoutePolicy]
    /// For each `Host` key, the indices into `routes` of its candidate routes, ascending.
    private let candidatesByHost: [HostAndPort: [Int]]
    /// The candidates of each key, by its text (`host` or `host:port`): a `Host` value spelled
    /// exactly like that text parses to that key, so the lookup skips the parse.
    private let candidatesByPlainHost: [String: [Int]]

    /// A route that can never match because an earlier route on every one of its `Host` keys accepts every path it
    /// accepts.
    public struct Shadowing: Sendable, Hashable {
        /// The id of the route that never matches.
        public let routeID: String
        /// The id of the earlier route that takes its requests.
        public let shadowedByID: String
    }

    /// The routes that can never match, in configuration order, for the configuration layer to warn about.
    ///
    /// Pomerium v0.7 granted the union of the allow lists of all routes with the same `from`, so v0.7 policies that
    /// split one host's grants over duplicate routes show up here: the later route's grants no longer apply.
    /// The check is conservative: it reports a route only when its shadowing is certain from the matcher text,
    /// so two different regexes that happen to accept the same paths are not reported.
    public let shadowedRoutes: [Shadowing]

    /// The `path` and `prefix` matchers of a route as ranges of `matcherBytes` (a count of -1 for
    /// none), so a lookup compares them in place without touching the route objects.
    private struct PathMatcher: Sendable {
        var exactStart = 0
        var exactCount = -1
        var prefixStart = 0
        var prefixCount = -1
        var hasRegex = false
    }

    /// The matchers by route index, and the bytes they point into.
    private let pathMatchers: [PathMatcher]
    private let matcherBytes: [UInt8]

    /// The result of a lookup, with the work it took.
    public struct Lookup: Sendable {
        /// The first matching route, or nil when no route matched (the proxy then returns 404 "route unknown"). A
        /// route whose `regex` match stopped at its limit also ends the lookup with nil.
        public let route: RoutePolicy?
        /// The index of `route` in `routes`.
        public let index: Int?
        /// How many routes had their path matchers evaluated. Host lookup itself is a single dictionary access.
        public let pathMatcherEvaluations: Int
    }

    /// Builds the host index.
    ///
    /// - Throws: `PolicyError` when two routes share an id.
    public init(routes: [RoutePolicy]) throws(PolicyError) {
        var problems: [PomeriumError] = []
        var seen = Set<String>()
        var candidates: [HostAndPort: [Int]] = [:]
        for (index, route) in routes.enumerated() {
            if !seen.insert(route.id).inserted {
                problems.append(
                    PomeriumError(
                        .routeIDInvalid,
                        "route id \"\(route.id)\" is used by more than one route; give every route a unique id"
                    ))
            }
            for key in route.hostKeys {
                candidates[key, default: []].append(index)
            }
        }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        self.routes = routes
        self.candidatesByHost = candidates
        var plain: [String: [Int]] = [:]
        for (key, indices) in candidates {
            let text = key.port.map { "\(key.host):\($0)" } ?? key.host
            if HostAndPort(parsing: text) == key { plain[text] = indices }
        }
        self.candidatesByPlainHost = plain
        self.shadowedRoutes = Self.findShadowedRoutes(routes, candidatesByHost: candidates)
        var bytes: [UInt8] = []
        pathMatchers = routes.map { route in
            var matcher = PathMatcher(hasRegex: route.hasRegex)
            if let exact = route.path {
                matcher.exactStart = bytes.count
                matcher.exactCount = exact.utf8.count
                bytes.append(contentsOf: exact.utf8)
            }
            if let prefix = route.prefix {
                matcher.prefixStart = bytes.count
                matcher.prefixCount = prefix.utf8.count
                bytes.append(contentsOf: prefix.utf8)
            }
            return matcher
        }
        matcherBytes = bytes
    }

    /// Validates every definition and builds the host index, collecting the problems of all routes.
    ///
    /// - Throws: `PolicyError` with every problem of every route, then any duplicate ids.
    public init(definitions: [RouteDefinition]) throws(PolicyError) {
        var problems: [PomeriumError] = []
        var routes: [RoutePolicy] = []
        for definition in definitions {
            do {
                routes.append(try RoutePolicy(definition))
            } catch {
                problems.append(contentsOf: error.problems)
            }
        }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        try self.init(routes: routes)
    }

    /// Returns the first route matching the `Host` value and the normalised path, or nil.
    public func route(host: String, path: String) -> RoutePolicy? {
        lookup(host: host, path: path).route
    }

    /// Looks up the route for the `Host` value and the normalised path, and counts the path matchers it ran.
    public func lookup(host: String, path: String) -> Lookup {
        guard let candidates = candidates(host: host) else {
            return Lookup(route: nil, index: nil, pathMatcherEvaluations: 0)
        }
        var evaluations = 0
        // The same tests as `RoutePolicy.matchesPath`, on bytes prepared once. A route with a
        // regex runs its own full match.
        let found: Int? = path.withUTF8Bytes { pathBytes in
            matcherBytes.withUnsafeBufferPointer { storage in
                pathMatchers.withUnsafeBufferPointer { matchers in
                    for index in candidates {
                        evaluations += 1
                        let matcher = matchers[index]
                        if matcher.exactCount >= 0 {
                            guard pathBytes.count == matcher.exactCount,
                                Self.bytesEqual(pathBytes, storage, matcher.exactStart, matcher.exactCount)
                            else { continue }
                        }
                        if matcher.prefixCount >= 0 {
                            guard pathBytes.count >= matcher.prefixCount,
                                Self.bytesEqual(pathBytes, storage, matcher.prefixStart, matcher.prefixCount)
                            else { continue }
                        }
                        if matcher.hasRegex {
                            switch routes[index].regexResult(path) {
                            case .match: break
                            case .noMatch: continue
                            // A later route may be broader, so the lookup ends without a route.
                            case .undecided: return nil
                            }
                        }
                        return index
                    }
                    return nil
                }
            }
        }
        guard let found else { return Lookup(route: nil, index: nil, pathMatcherEvaluations: evaluations) }
        return Lookup(route: routes[found], index: found, pathMatcherEvaluations: evaluations)
    }

    /// Returns whether `path` starts with the `count` bytes of `storage` at `start`.
    @inline(__always)
    private static func bytesEqual(
        _ path: UnsafeBufferPointer<UInt8>, _ storage: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int
    ) -> Bool {
        guard count > 0, let pathBase = path.baseAddress, let storageBase = storage.baseAddress else { return true }
        return memcmp(pathBase, storageBase + start, count) == 0
    }

    /// Returns the indices into `routes` of the routes registered for the `Host` value.
    private func candidates(host: String) -> [Int]? {
        if let plain = candidatesByPlainHost[host] { return plain }
        guard let key = HostAndPort(parsing: host) else { return nil }
        return candidatesByHost[key]
    }

    private static func findShadowedRoutes(
        _ routes: [RoutePolicy],
        candidatesByHost: [HostAndPort: [Int]]
    ) -> [Shadowing] {
        var shadowed: [Shadowing] = []
        for (index, route) in routes.enumerated() {
            var firstShadowingID: String?
            var everyKeyShadowed = true
            for key in route.hostKeys {
                let earlier = (candidatesByHost[key] ?? []).prefix { $0 < index }
                guard let coveringIndex = earlier.first(where: { routes[$0].acceptsEveryPath(of: route) }) else {
                    everyKeyShadowed = false
                    break
                }
                firstShadowingID = firstShadowingID ?? routes[coveringIndex].id
            }
            if everyKeyShadowed, let firstShadowingID {
                shadowed.append(Shadowing(routeID: route.id, shadowedByID: firstShadowingID))
            }
        }
        return shadowed
    }
}

extension RoutePolicy {
    /// Returns whether every path that `other`'s matchers accept is certainly accepted by this route's matchers.
    /// Regexes count as equal only when their pattern text is identical.
    func acceptsEveryPath(of other: RoutePolicy) -> Bool {
        if let exact = path {
            guard let otherExact = other.path, otherExact.utf8.elementsEqual(exact.utf8) else { return false }
        }
        if let prefix {
            let otherPrefixCovered = other.prefix.map { $0.utf8.starts(with: prefix.utf8) } ?? false
            let otherPathCovered = other.path.map { $0.utf8.starts(with: prefix.utf8) } ?? false
            guard otherPrefixCovered || otherPathCovered else { return false }
        }
        if let regexPattern {
            guard let otherPattern = other.regexPattern, otherPattern.utf8.elementsEqual(regexPattern.utf8) else {
                return false
            }
        }
        return true
    }
}
