import Foundation

/// Reads the notBefore time of the first certificate in PEM text, so loading can warn about a
/// certificate that is not valid yet. Only the few DER headers down to the validity field are
/// walked; OpenSSL has already parsed and checked the whole chain by the time this runs.
// NOTE: PomeriumCrypto's ConfigKeyCheckCertificateInfo reports only isExpired; a notBefore there
// (X509_get0_notBefore) would replace this walk. PomeriumCrypto belongs to another helper.
enum CertificateValidity {
    /// The notBefore time as seconds since 1970, or nil when the text holds no readable certificate.
    static func notBefore(pem: [UInt8]) -> Int64? {
        let text = String(decoding: pem, as: UTF8.self)
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex)
        else { return nil }
        let body = text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let der = ValueParsing.base64(String(body)) else { return nil }
        var reader = DERReader(bytes: der[...])
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
        // signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
        guard var certificate = reader.enter(tag: 0x30), var tbs = certificate.enter(tag: 0x30) else { return nil }
        if tbs.peekTag == 0xA0 { _ = tbs.skip() }
        guard tbs.skip(), tbs.skip(), tbs.skip(), var validity = tbs.enter(tag: 0x30) else { return nil }
        guard let tag = validity.peekTag, let value = validity.read() else { return nil }
        return time(tag: tag, String(decoding: value, as: UTF8.self))
    }

    /// Parses UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    private static func time(tag: UInt8, _ text: String) -> Int64? {
        guard text.hasSuffix("Z") else { return nil }
        let digits = Array(text.dropLast().utf8)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        func number(_ range: Range<Int>) -> Int { range.reduce(0) { $0 * 10 + Int(digits[$1] - 0x30) } }
        var year: Int
        var offset: Int
        switch (tag, digits.count) {
        case (0x17, 12):
            year = number(0..<2)
            year += year < 50 ? 2000 : 1900
            offset = 2
        case (0x18, 14):
            year = number(0..<4)
            offset = 4
        default:
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(number(offset..<offset + 2) - 1)
        parts.tm_mday = Int32(number(offset + 2..<offset + 4))
        parts.tm_hour = Int32(number(offset + 4..<offset + 6))
        parts.tm_min = Int32(number(offset + 6..<offset + 8))
        parts.tm_sec = Int32(number(offset + 8..<offset + 10))
        return Int64(timegm(&parts))
    }

    /// Walks DER tag-length-value items (definite lengths only, as DER requires).
    private struct DERReader {
        var bytes: ArraySlice<UInt8>

        var peekTag: UInt8? { bytes.first }

        /// Reads one item and returns its contents.
        mutating func read() -> ArraySlice<UInt8>? {
            var index = bytes.startIndex
            guard index < bytes.endIndex else { return nil }
            index += 1
            guard index < bytes.endIndex else { return nil }
            var length = Int(bytes[index])
            index += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard count >= 1, count <= 4, bytes.endIndex - index >= count else { return nil }
                length = 0
                for _ in 0..<count {
                    length = length << 8 | Int(bytes[index])
                    index += 1
                }
            }
            guard bytes.endIndex - index >= length else { return nil }
            let contents = bytes[index..<index + length]
            bytes = bytes[(index + length)...]
            return contents
        }

        /// Reads one item and returns whether it was there.
        mutating func skip() -> Bool { read() != nil }

        /// Reads an item with `tag` and returns a reader over its contents.
        mutating func enter(tag: UInt8) -> DERReader? {
            guard peekTag == tag, let contents = read() else { return nil }
            return DERReader(bytes: contents)
        }
    }
}
