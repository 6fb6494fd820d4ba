import PomeriumHTTP

/// Fuzzes the parsers of header and URL text: cookies, URLs, queries and path normalisation. Each
/// must return or throw without crashing, and their outputs must satisfy the stated invariants.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTextParsers(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)

    for cookie in CookieParser.parse(text) where !SetCookie.isValidName(cookie.name) {
        invariantFailed("a parsed cookie has an invalid name")
    }

    if let url = try? HTTPURL(parsing: text) {
        guard let again = try? HTTPURL(parsing: url.description), again == url else {
            invariantFailed("a URL does not survive serialisation")
        }
    }

    if let query = try? URLQuery(parsing: text) {
        guard let again = try? URLQuery(parsing: query.encoded), again == query else {
            invariantFailed("a query does not survive encoding")
        }
    }
    _ = URLQuery(parsingLeniently: text)

    if let path = try? PathNormalization.normalize(text) {
        guard let again = try? PathNormalization.normalize(path), again == path else {
            invariantFailed("path normalisation is not idempotent")
        }
        if path.contains("/../") || path.hasSuffix("/..") || path.contains("//") {
            invariantFailed("a normalised path keeps a dot segment or a double slash")
        }
    }
    return 0
}
