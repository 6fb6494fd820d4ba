import PomeriumLogging
import PomeriumNet
import PomeriumSessions

/// The backend refresh both proxy handlers run for an expired route session: the authenticate
/// service mints a new route session, which is verified before anything uses it.
enum BackendRefresh {
    /// A renewed session and, when the caller asked for them, the `Set-Cookie` values that store it.
    struct Renewal {
        let session: SessionState
        let cookies: [String]?
    }

    /// Asks the authenticate service for a new route session for `expired`, verifies it for
    /// `audienceHost` and, with `makeCookies`, encodes its cookies. Calls `completion` on `loop`
    /// with the renewal, or with nil after logging why the refresh failed (with `requestID`).
    /// Once `isFinished` returns true (the exchange ended meanwhile), nothing is logged or called.
    static func renew(
        _ expired: SessionState, audienceHost: String, makeCookies: Bool, service: ProxyService, loop: EventLoop,
        requestID: String, isFinished: @escaping () -> Bool, completion: @escaping (Renewal?) -> Void
    ) {
        let refresher = service.shared.refresher
        let accessTokenID = expired.accessTokenID
        let audience = expired.audience
        let issuerHost = service.authenticateAudienceHost
        let logger = service.shared.logger
        loop.submit(
            {
                try await refresher.refreshRouteSession(
                    accessTokenID: accessTokenID, audience: audience, issuerHost: issuerHost)
            },
            completion: { result in
                guard !isFinished() else { return }
                switch result {
                case .success(let token):
                    do {
                        let renewed = try service.tokens.verify(Array(token.utf8), audienceHost: audienceHost)
                        let cookies = makeCookies ? try service.cookies.setCookieHeaders(for: renewed) : nil
                        completion(Renewal(session: renewed, cookies: cookies))
                        return
                    } catch {
                        logger.warning(
                            "backend refresh returned an unusable session",
                            metadata: ["req_id": .string(requestID), "error": .string("\(error)")])
                    }
                case .failure(let error):
                    logger.warning(
                        "backend refresh failed",
                        metadata: ["req_id": .string(requestID), "error": .string("\(error)")])
                }
                completion(nil)
            })
    }
}
