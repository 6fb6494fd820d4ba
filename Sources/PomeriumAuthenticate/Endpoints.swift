import PomeriumCrypto
import PomeriumHTTP
import PomeriumLogging
import PomeriumSessions

/// An endpoint's refusal: the status, a detail for the user, and a short reason code for the log.
/// Neither text may contain a token, code, state or cookie.
struct EndpointFailure: Error {
    let status: Int
    let detail: String
    let reason: String

    init(_ status: Int, _ detail: String, reason: String) {
        self.status = status
        self.detail = detail
        self.reason = reason
    }
}

extension AuthenticateService {
    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src *;"

    /// Handles one request to the authenticate host. Never throws: every failure becomes an
    /// error page (HTML, or JSON when the client accepts `application/json`).
    public func handle(_ request: AuthenticateRequest) async -> AuthenticateResponse {
        var response: AuthenticateResponse
        var reason = "ok"
        do {
            response = try await route(request)
        } catch let failure as EndpointFailure {
            response = errorResponse(status: failure.status, detail: failure.detail, request: request)
            reason = failure.reason
        } catch let failure as StoreError where failure.kind == .unavailable || failure.kind == .timeout {
            // The proxy responds to the same outage with 503, so the user can try again in a moment.
            response = errorResponse(
                status: 503, detail: "the session store is unavailable; try again in a moment", request: request)
            response.headers.replaceOrAdd(name: "Retry-After", value: "5")
            reason = "store-\(failure.kind.rawValue)"
            logger.error(
                "authenticate request failed: the session store is unavailable",
                metadata: ["req_id": .string(request.requestID), "error": .string(failure.description)])
        } catch {
            response = errorResponse(status: 500, detail: "internal error", request: request)
            reason = "internal"
            logger.error(
                "authenticate request failed",
                metadata: ["req_id": .string(request.requestID), "error": .string(String(describing: error))])
        }
        response.headers.replaceOrAdd(name: "Content-Security-Policy", value: Self.contentSecurityPolicy)
        response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        if response.status >= 300 {
            response.headers.replaceOrAdd(name: "X-Pomerium-Intercepted-Response", value: "true")
        }
        if !response.headers.contains(name: "Cache-Control") {
            response.headers.add(name: "Cache-Control", value: "no-store")
        }
        // The access line has the proxy's message and field names. Only the path is logged: the
        // query carries states, codes and signed session payloads.
        let level: Logger.Level = response.status >= 500 ? .warning : .debug
        logger.log(
            level: level,
            "http-request",
            metadata: {
                var metadata: Logger.Metadata = [
                    "req_id": .string(request.requestID), "method": .string(request.method.rawValue),
                    "host": .string(request.host), "path": .string(String(request.path.prefix(256))),
                    "status": .stringConvertible(response.status), "size": .stringConvertible(response.body.count),
                    "reason": .string(reason), "service": "authenticate",
                ]
                if let agent = request.headers.first(name: "User-Agent") { metadata["user_agent"] = .string(agent) }
                return metadata
            }())
        return response
    }

    private func route(_ request: AuthenticateRequest) async throws -> AuthenticateResponse {
        let path = request.path
        if callbackPaths.contains(path) {
            try requireMethod(request, [.get, .head])
            return try await callback(request)
        }
        switch path {
        case "/robots.txt":
            try requireMethod(request, [.get, .head])
            return AuthenticateResponse(
                status: 200, headers: ["Content-Type": "text/plain; charset=utf-8"],
                body: Array("User-agent: *\nDisallow: /\n".utf8))
        case Self.keySetPath:
            try requireMethod(request, [.get, .head])
            guard let keySet else { throw EndpointFailure(404, "no signing keys are configured", reason: "no-jwks") }
            return AuthenticateResponse(
                status: 200, headers: ["Content-Type": "application/json", "Cache-Control": "max-age=300"],
                body: keySet.jsonBytes)
        case Self.signInPath, Self.signOutPath, Self.refreshPath:
            if isPreflight(request) { return try preflight(request) }
            var response: AuthenticateResponse
            switch path {
            case Self.signInPath: response = try await signIn(request)
            case Self.signOutPath: response = try await signOut(request)
            default:
                try requireMethod(request, [.get])
                response = try await backendRefresh(request)
            }
            addCORSHeaders(to: &response, request: request)
            return response
        case Self.programmaticRefreshPath:
            return try await programmaticRefresh(request)
        default:
            throw EndpointFailure(404, "the page was not found", reason: "not-found")
        }
    }

    private func requireMethod(_ request: AuthenticateRequest, _ methods: [HTTPMethod]) throws {
        guard methods.contains(request.method) else {
            throw EndpointFailure(405, "the method \(request.method) is not allowed here", reason: "method")
        }
    }

    // MARK: Signed URLs and CORS

    /// Checks the request URL's signature, rebuilt with the scheme the request arrived on.
    func checkSignature(_ request: AuthenticateRequest) throws {
        do {
            try signer.validate(
                scheme: request.scheme, hostAndPort: request.host, path: request.path, rawQuery: request.rawQuery)
        } catch let rejection as SessionRejection {
            let detail: String
            switch rejection.reason {
            case .expired: detail = "the link has expired; go back to the application and try again"
            case .issuedInFuture: detail = "the link is not valid yet; check the clocks of the servers"
            case .missingParameter: detail = "the link is not signed"
            case .badSignature: detail = "the link's signature is invalid"
            default: detail = "the link's signature parameters are malformed"
            }
            throw EndpointFailure(400, detail, reason: "signed-url-\(rejection.reason.rawValue)")
        }
    }

    private func isPreflight(_ request: AuthenticateRequest) -> Bool {
        request.method == .options && request.headers.contains(name: "Origin")
            && request.headers.contains(name: "Access-Control-Request-Method")
    }

    /// Responds to a CORS preflight: allowed, with the origin echoed and credentials, only when the
    /// URL's signature is valid, so that an XHR can follow the sign-in redirect.
    private func preflight(_ request: AuthenticateRequest) throws -> AuthenticateResponse {
        try checkSignature(request)
        var response = AuthenticateResponse(status: 204)
        addCORSHeaders(to: &response, request: request)
        response.headers.replaceOrAdd(name: "Access-Control-Allow-Methods", value: "GET, POST, OPTIONS")
        let requested = request.headers.first(name: "Access-Control-Request-Headers") ?? ""
        if !requested.isEmpty { response.headers.replaceOrAdd(name: "Access-Control-Allow-Headers", value: requested) }
        response.headers.replaceOrAdd(name: "Access-Control-Max-Age", value: "600")
        return response
    }

    /// Adds the CORS headers for a request whose signature was checked by the endpoint.
    private func addCORSHeaders(to response: inout AuthenticateResponse, request: AuthenticateRequest) {
        guard let origin = request.headers.first(name: "Origin"), !origin.isEmpty, origin != "null",
            origin.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return }
        response.headers.replaceOrAdd(name: "Access-Control-Allow-Origin", value: origin)
        response.headers.replaceOrAdd(name: "Access-Control-Allow-Credentials", value: "true")
        response.headers.add(name: "Vary", value: "Origin")
    }

    // MARK: Error pages

    /// Builds the error page: JSON `{"Status","Error","RequestID"}` when the client accepts JSON, else
    /// HTML with the request id and a retry link to a valid `pomerium_redirect_uri`.
    func errorResponse(status: Int, detail: String, request: AuthenticateRequest) -> AuthenticateResponse {
        let reasonPhrase = HTTPStatusReason.phrase(for: status)
        if request.wantsJSON {
            let body = JSONWriter.encode(
                .object(
                    JSONObject([
                        ("Status", .integer(Int64(status))), ("Error", .string("\(reasonPhrase): \(detail)")),
                        ("RequestID", .string(request.requestID)),
                    ])))
            return AuthenticateResponse(status: status, headers: ["Content-Type": "application/json"], body: body)
        }
        var retry = ""
        if let target = request.query.value(for: "pomerium_redirect_uri"),
            let url = try? redirects.validate(target, programmatic: false)
        {
            retry = "<p><a href=\"\(Self.escapeHTML(url.description))\">Try again</a></p>"
        }
        let html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(status) - \(Self.escapeHTML(reasonPhrase))</title></head>
            <body><h1>\(status) - \(Self.escapeHTML(reasonPhrase))</h1>
            <p>\(Self.escapeHTML(detail))</p>
            \(retry)<p>Request ID: \(Self.escapeHTML(request.requestID))</p>
            </body></html>

            """
        return AuthenticateResponse(
            status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: Array(html.utf8))
    }

    static func escapeHTML(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }

    /// A 302 to `location` with extra `Set-Cookie` lines.
    static func redirect(to location: String, setCookies: [String] = []) -> AuthenticateResponse {
        var headers: HTTPHeaders = ["Location": location]
        for cookie in setCookies { headers.add(name: "Set-Cookie", value: cookie) }
        return AuthenticateResponse(status: 302, headers: headers)
    }
}
