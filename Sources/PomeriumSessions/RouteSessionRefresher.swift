/// The contract between the proxy and the authenticate service for backend refresh: when a route
/// session has expired, the proxy asks for a new route-session JWT minted from the global session
/// that the expired one names (`ati`). In all-in-one mode the authenticate service implements it in
/// process; split deployments implement it with a signed call to the authenticate service's
/// `/.pomerium/refresh` endpoint.
public protocol RouteSessionRefresher: Sendable {
    /// Returns a new route-session JWT with the same audience, or throws when the global session is
    /// gone or the identity provider refused the refresh. On a throw the proxy clears the route
    /// cookie, sends the user to sign in and forwards nothing upstream.
    func refreshRouteSession(accessTokenID: String, audience: [String], issuerHost: String) async throws
        -> String
}
