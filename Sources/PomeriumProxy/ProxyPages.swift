import PomeriumCrypto
import PomeriumHTTP
import PomeriumSessions

/// A response the proxy writes itself: an error page, a redirect, the dashboard or a document.
struct LocalResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func redirect(_ status: Int = 302, to location: String) -> LocalResponse {
        LocalResponse(status: status, headers: ["Location": location])
    }

    static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> LocalResponse
    {
        LocalResponse(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }
}

/// The built-in pages: small HTML that loads nothing from other origins, and JSON for API clients.
enum ProxyPages {
    /// The path of the one stylesheet the pages use, served by the proxy itself.
    static let stylesheetPath = "/.pomerium/assets/style.css"

    /// The `Content-Security-Policy` of every built-in page.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src *;"

    static let stylesheet = """
        body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f8;color:#1d1d24}
        main{max-width:40rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;\
        box-shadow:0 1px 3px rgba(0,0,0,.15)}
        h1{font-size:1.5rem;margin-top:0}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
        dt{font-weight:600}
        dd{margin:0;overflow-wrap:anywhere}
        .request-id{color:#555;font-size:.85rem}
        form{margin-top:1.5rem}
        label{display:block;margin:.5rem 0 .2rem}
        input[type=text],input[type=email]{width:100%;padding:.4rem;box-sizing:border-box}
        button{margin-top:.8rem;padding:.5rem 1rem}

        """

    /// Returns whether the client asked for JSON: an `Accept` list naming `application/json` and not
    /// `text/html`.
    static func prefersJSON(_ headers: HTTPHeaders) -> Bool {
        // Most clients name no JSON type at all, and for those the field bytes decide:
        // splitting and lower-casing the ranges measured about 7,000 instructions per response.
        var mentionsJSON = false
        headers.forEachValueBytes(name: "Accept") { bytes in
            if !mentionsJSON { mentionsJSON = Self.containsJSON(bytes) }
        }
        guard mentionsJSON else { return false }
        let ranges = headers["Accept"].flatMap { $0.split(separator: ",") }.map {
            $0.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        }
        return ranges.contains("application/json") && !ranges.contains("text/html")
    }

    /// Returns whether `bytes` contain `json` in any ASCII case. A range that lower-cases to
    /// `application/json` contains it: no other character lower-cases to `j`, `s`, `o` or `n`.
    private static func containsJSON(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count >= 4 else { return false }
        for start in 0...(bytes.count - 4)
        where bytes[start] | 0x20 == UInt8(ascii: "j") && bytes[start + 1] | 0x20 == UInt8(ascii: "s")
            && bytes[start + 2] | 0x20 == UInt8(ascii: "o") && bytes[start + 3] | 0x20 == UInt8(ascii: "n")
        {
            return true
        }
        return false
    }

    /// Builds an error response: JSON `{"Status","Error","RequestID"}` for JSON clients, otherwise an
    /// HTML page with the status, the message, the request id and, when given, a retry link.
    static func error(
        status: Int, message: String, requestID: String, json: Bool, retryURL: String? = nil
    ) -> LocalResponse {
        let statusText = HTTPStatusReason.phrase(for: status)
        if json {
            let object = JSONObject([
                ("Status", .integer(Int64(status))), ("Error", .string("\(statusText): \(message)")),
                ("RequestID", .string(requestID)),
            ])
            return LocalResponse(
                status: status, headers: ["Content-Type": "application/json"], body: JSONWriter.encode(.object(object)))
        }
        var links = ""
        if let retryURL {
            links += "<p><a href=\"\(escape(retryURL))\">Try again</a></p>\n"
        }
        if status == 401 || status == 403 {
            links += "<p><a href=\"/.pomerium/\">Show your session</a></p>\n"
        }
        let body = """
            <main role="main">
            <h1>\(status) \(escape(statusText))</h1>
            <p>\(escape(message))</p>
            \(links)<p class="request-id">Request ID: <code>\(escape(requestID))</code></p>
            </main>
            """
        return html(status: status, title: "\(status) - \(statusText)", body: body)
    }

    /// Wraps `body` in a complete HTML document that links the stylesheet.
    static func html(status: Int, title: String, body: String) -> LocalResponse {
        let document = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <link rel="stylesheet" href="\(stylesheetPath)">
            </head>
            <body>
            \(body)
            </body>
            </html>

            """
        return LocalResponse(
            status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: Array(document.utf8))
    }

    /// Escapes text for HTML element content and double-quoted attribute values.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    /// Renders the dashboard: the route session's claims, a sign-out button and, for administrators, the
    /// impersonation form. Both forms carry `csrfToken`.
    static func dashboard(session: SessionState, csrfToken: String, isAdministrator: Bool) -> LocalResponse {
        var rows: [(String, String)] = []
        let displayName =
            session.name ?? [session.givenName, session.familyName].compactMap { $0 }.joined(separator: " ")
        if !displayName.isEmpty { rows.append(("Name", displayName)) }
        rows.append(("User ID", session.subject))
        rows.append(("Email", session.email))
        if let user = session.user { rows.append(("User", user)) }
        for group in session.groups { rows.append(("Group", group)) }
        if let expiry = session.expiry { rows.append(("Expires", HTTPDate.imfFixdate(unixSeconds: expiry))) }
        if let issuedAt = session.issuedAt { rows.append(("Issued", HTTPDate.imfFixdate(unixSeconds: issuedAt))) }
        rows.append(("Issuer", session.issuer))
        for audience in session.audience { rows.append(("Audience", audience)) }
        if let email = session.impersonateEmail, !email.isEmpty { rows.append(("Impersonated email", email)) }
        for group in session.impersonateGroups ?? [] { rows.append(("Impersonated group", group)) }
        var picture = ""
        if let url = session.picture, url.hasPrefix("https://") {
            picture = "<img src=\"\(escape(url))\" alt=\"\" width=\"64\" height=\"64\">\n"
        }
        let list = rows.map { "<dt>\(escape($0.0))</dt><dd>\(escape($0.1))</dd>" }.joined(separator: "\n")
        let token = escape(csrfToken)
        var body = """
            <main role="main">
            <h1>Your session</h1>
            \(picture)<dl>
            \(list)
            </dl>
            <form method="post" action="/.pomerium/sign_out">
            <input type="hidden" name="\(ProxyCSRF.fieldName)" value="\(token)">
            <button type="submit">Sign out</button>
            </form>

            """
        if isAdministrator {
            body += """
                <form method="post" action="/.pomerium/admin/impersonate">
                <h2>Sign in as</h2>
                <input type="hidden" name="\(ProxyCSRF.fieldName)" value="\(token)">
                <input type="hidden" name="pomerium_impersonate_action" value="set">
                <label for="impersonate-email">Email</label>
                <input type="email" id="impersonate-email" name="pomerium_impersonate_email">
                <label for="impersonate-groups">Groups, separated by commas</label>
                <input type="text" id="impersonate-groups" name="pomerium_impersonate_groups">
                <button type="submit">Impersonate</button>
                </form>

                """
        }
        body += "</main>"
        return html(status: 200, title: "Your session", body: body)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
