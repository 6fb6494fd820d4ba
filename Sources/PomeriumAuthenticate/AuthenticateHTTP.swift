import PomeriumCrypto
import PomeriumHTTP
import PomeriumHTTPServer
import PomeriumNet
import PomeriumSessions

/// One request to the authenticate service, with the body already read.
public struct AuthenticateRequest: Sendable {
    public var method: HTTPMethod
    /// The scheme the request arrived on (`https` over TLS, else `http`).
    public var scheme: String
    /// The `Host` header: host and optional port.
    public var host: String
    /// The percent-encoded path.
    public var path: String
    /// The percent-encoded query without `?`; empty when absent.
    public var rawQuery: String
    public var headers: HTTPHeaders
    /// The id shown on error pages and written to the log lines of this request.
    public var requestID: String

    public init(
        method: HTTPMethod, scheme: String, host: String, path: String, rawQuery: String, headers: HTTPHeaders,
        requestID: String? = nil
    ) {
        self.method = method
        self.scheme = scheme
        self.host = host
        self.path = path
        self.rawQuery = rawQuery
        self.headers = headers
        self.requestID = requestID ?? Self.makeRequestID(headers: headers)
    }

    /// Returns the client's `X-Request-Id` when it is a short token, else 12 random bytes in hex.
    static func makeRequestID(headers: HTTPHeaders) -> String {
        if let given = headers.first(name: "X-Request-Id"), (1...64).contains(given.utf8.count),
            given.utf8.allSatisfy({
                $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A)
            })
        {
            return given
        }
        let bytes = (try? SecureRandom.bytes(12)) ?? []
        return bytes.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
        }.joined()
    }

    /// The query, parsed leniently (an invalid escape is kept as written).
    public var query: URLQuery { URLQuery(parsingLeniently: rawQuery) }

    /// The request's cookies in header order.
    public var cookies: [(name: String, value: String)] {
        CookieParser.parse(headers: headers).map { ($0.name, $0.value) }
    }

    /// The host name of the `Host` header, lowercase, without port.
    var hostName: String {
        guard let parsed = try? HTTPURL(parsing: "http://" + host) else { return host.lowercased() }
        return parsed.host
    }

    /// The `Host` as `iss` carries it: with the port only when it is not the scheme's default.
    var audienceHost: String {
        guard let parsed = try? HTTPURL(parsing: scheme + "://" + host) else { return host.lowercased() }
        return AudienceHost.format(host: parsed.host, port: parsed.port, scheme: scheme)
    }

    /// Whether the client asked for JSON (`Accept: application/json`).
    var wantsJSON: Bool {
        guard let accept = headers.first(name: "Accept") else { return false }
        let first = accept.split(separator: ",").first.flatMap { $0.split(separator: ";").first } ?? ""
        return first.filter { $0 != " " && $0 != "\t" }.lowercased() == "application/json"
    }
}

/// A complete response of the authenticate service.
public struct AuthenticateResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The `Location` header, for tests and logs.
    public var location: String? { headers.first(name: "Location") }
}

/// Collects one request on its event loop, runs the service in a task, and writes the response
/// back on the same loop.
final class AuthenticateRequestHandler: HTTPRequestHandler {
    /// The largest request body read, in bytes. The endpoints take their input from the query, so
    /// a body only needs to hold a small sign-out form.
    static let maximumBodySize = 64 * 1024

    private let service: AuthenticateService
    private let loop: EventLoop
    private var head: HTTPRequestHead?
    private var responder: HTTPResponder?
    private var bodySize = 0
    private var task: Task<Void, Never>?

    init(service: AuthenticateService, loop: EventLoop) {
        self.service = service
        self.loop = loop
    }

    func requestStarted(_ head: HTTPRequestHead, responder: HTTPResponder) {
        self.responder = responder
        // A declared length over the limit gets its 413 at once, so the client is not left
        // sending up to 64 KiB before it learns that the body is rejected.
        if let declared = head.headers.first(name: "Content-Length").flatMap({ Int($0) }),
            declared > Self.maximumBodySize
        {
            respondBodyTooLarge(responder)
            return
        }
        self.head = head
        responder.readRequestBody()
    }

    func requestBody(_ bytes: [UInt8]) {
        bodySize += bytes.count
        if bodySize > Self.maximumBodySize, let responder, head != nil {
            head = nil
            respondBodyTooLarge(responder)
        }
    }

    private func respondBodyTooLarge(_ responder: HTTPResponder) {
        responder.respond(
            status: 413, headers: ["Content-Type": "text/plain; charset=utf-8", "Connection": "close"],
            body: Array("request body too large\n".utf8))
    }

    func requestEnded(trailers: HTTPHeaders) {
        guard let head, let responder else { return }
        let request = AuthenticateRequest(
            method: head.method,
            scheme: responder.isTLS ? "https" : "http",
            host: head.headers.first(name: "Host") ?? "",
            path: head.path,
            rawQuery: head.query ?? "",
            headers: head.headers,
            // The dispatcher's id, which its `Request-Id` response header carries, so that the
            // header, the error page and the log lines name the same request.
            requestID: responder.additionalHeaders.first(name: RequestID.headerName)
        )
        let bound = LoopBound(responder, loop: loop)
        let service = self.service
        let loop = self.loop
        task = Task {
            let response = await service.handle(request)
            loop.execute {
                bound.value.respond(status: response.status, headers: response.headers, body: response.body)
            }
        }
    }

    func requestFailed(_ error: HTTPServerError) {
        task?.cancel()
    }
}

extension AuthenticateService {
    /// Returns a request handler for a connection on `loop`, for requests whose Host is the
    /// authenticate host.
    public func makeHandler(loop: EventLoop) -> any HTTPRequestHandler {
        AuthenticateRequestHandler(service: self, loop: loop)
    }
}
