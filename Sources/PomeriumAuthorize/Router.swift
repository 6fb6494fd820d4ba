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

    /// The result of a lookup, with the work it took.
    public struct Lookup: Sendable {
        /// The first matching route, or nil when no route matched (the proxy then returns 404 "route unknown").
        public let route: RoutePolicy?
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
        guard let key = HostAndPort(parsing: host), let candidates = candidatesByHost[key] else {
            return Lookup(route: nil, pathMatcherEvaluations: 0)
        }
        var evaluations = 0
        for index in candidates {
            evaluations += 1
            if routes[index].matchesPath(path) {
                return Lookup(route: routes[index], pathMatcherEvaluations: evaluations)
            }
        }
        return Lookup(route: nil, pathMatcherEvaluations: evaluations)
    }
}
