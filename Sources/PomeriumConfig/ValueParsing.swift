import Foundation

/// Text-to-value conversions shared by the file formats and the environment.
enum ValueParsing {
    /// Parses a Go duration (`300ms`, `1h30m`, `1.5h`, `-2s`, `0`); units are ns, us, µs, ms, s, m, h.
    static func goDuration(_ text: String) -> Duration? {
        var scalars = Array(text.unicodeScalars)[...]
        guard !scalars.isEmpty else { return nil }
        var negative = false
        if scalars.first == "-" || scalars.first == "+" {
            negative = scalars.first == "-"
            scalars = scalars.dropFirst()
        }
        if scalars.count == 1, scalars.first == "0" { return .zero }
        guard !scalars.isEmpty else { return nil }
        var totalNanoseconds: Int64 = 0
        while !scalars.isEmpty {
            let whole = scalars.prefix { ("0"..."9").contains($0) }
            scalars = scalars.dropFirst(whole.count)
            var fraction: ArraySlice<Unicode.Scalar> = []
            if scalars.first == "." {
                scalars = scalars.dropFirst()
                fraction = scalars.prefix { ("0"..."9").contains($0) }
                scalars = scalars.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            let unitText = String(String.UnicodeScalarView(scalars.prefix { !("0"..."9").contains($0) && $0 != "." }))
            scalars = scalars.dropFirst(unitText.unicodeScalars.count)
            guard let unit = unitNanoseconds[unitText] else { return nil }
            guard let wholeValue = Int64(String(String.UnicodeScalarView(whole.isEmpty ? ["0"] : whole))) else {
                return nil
            }
            let (product, overflow) = wholeValue.multipliedReportingOverflow(by: unit)
            guard !overflow else { return nil }
            var part = product
            if !fraction.isEmpty {
                // Go's time.ParseDuration computes the fraction in floating point the same way; at most
                // 18 digits keep the scale inside Int64, and further digits are below 1 ns anyway.
                let digits = fraction.prefix(18)
                var scale: Int64 = 1
                for _ in digits { scale *= 10 }
                let numerator = Int64(String(String.UnicodeScalarView(digits))) ?? 0
                let fractionalNanoseconds = Double(numerator) * (Double(unit) / Double(scale))
                part += Int64(fractionalNanoseconds.rounded(.down))
            }
            let (sum, sumOverflow) = totalNanoseconds.addingReportingOverflow(part)
            guard !sumOverflow else { return nil }
            totalNanoseconds = sum
        }
        return .nanoseconds(negative ? -totalNanoseconds : totalNanoseconds)
    }

    private static let unitNanoseconds: [String: Int64] = [
        "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
        "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// Formats a duration as Go's `time.Duration.String` does: `1h30m0s`, `300ms`, `0s`.
    static func goDurationString(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0s" }
        var sign = ""
        if nanoseconds < 0 {
            sign = "-"
            nanoseconds = -nanoseconds
        }
        if nanoseconds < 1_000_000_000 {
            if nanoseconds < 1_000 { return "\(sign)\(nanoseconds)ns" }
            if nanoseconds < 1_000_000 { return sign + decimal(nanoseconds, scale: 1_000) + "µs" }
            return sign + decimal(nanoseconds, scale: 1_000_000) + "ms"
        }
        let hours = nanoseconds / 3_600_000_000_000
        let minutes = (nanoseconds / 60_000_000_000) % 60
        let secondsPart = nanoseconds % 60_000_000_000
        var text = sign
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        text += decimal(secondsPart, scale: 1_000_000_000) + "s"
        return text
    }

    private static func decimal(_ value: Int64, scale: Int64) -> String {
        let whole = value / scale
        let fraction = value % scale
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction)
        let width = String(scale).count - 1
        digits = String(repeating: "0", count: width - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    /// Parses the boolean spellings of Go's `strconv.ParseBool`, plus `yes`, `no`, `on` and `off` in
    /// YAML files only (YAML 1.1 booleans, which v0.7's YAML library accepted; its JSON, TOML and
    /// properties readers did not).
    static func bool(_ text: String, yamlWords: Bool) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: break
        }
        guard yamlWords else { return nil }
        switch text.lowercased() {
        case "yes", "y", "on": return true
        case "no", "n", "off": return false
        default: return nil
        }
    }

    /// Checks a listen address `[host]:port` (`:443`, `127.0.0.1:9090`, `[::1]:8443`,
    /// `localhost:80`); returns why it is not one, or nil when it is. Port 0 is allowed, as for
    /// Go's `net.Listen`: the kernel picks a free port, which tests and supervisors rely on.
    static func listenAddressProblem(_ text: String) -> String? {
        guard let colon = text.lastIndex(of: ":") else { return "has no :port" }
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return "has no numeric port"
        }
        guard portText.count <= 5, let port = Int(portText), (0...65535).contains(port) else {
            return "has the port \(excerpt(String(portText))), outside 0-65535"
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return "has an IPv6 address without its closing ]" }
            host = String(host.dropFirst().dropLast())
            var buffer = [UInt8](repeating: 0, count: 16)
            return inet_pton(AF_INET6, host, &buffer) == 1 ? nil : "has an invalid IPv6 address in brackets"
        }
        if host.isEmpty || isAddressOrCIDR(host) && !host.contains("/") { return nil }
        return isHostName(host) ? nil : "has a host that is neither an IP address nor a host name"
    }

    /// Returns whether `text` is a DNS host name: dot-separated labels of letters, digits, hyphens and
    /// underscores.
    static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && label.utf8.allSatisfy {
                    ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                        || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
                }
        }
    }

    /// The query parameters whose values are passwords (`?password=` of a Redis URL).
    static let secretQueryNames: Set<String> = ["password", "pass", "pwd", "secret", "token", "key", "auth"]

    /// `text` with the password of its user part and the values of password-like query parameters
    /// replaced by `[redacted]`, for display. Text that is not a URL comes back unchanged, except
    /// that anything before an `@` is redacted too.
    static func redactedURL(_ text: String) -> String {
        var result = text
        let authorityStart = result.range(of: "://")?.upperBound ?? result.startIndex
        let authorityEnd =
            result[authorityStart...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? result.endIndex
        if let at = result[authorityStart..<authorityEnd].lastIndex(of: "@") {
            let userPart = result[authorityStart..<at]
            let user = userPart.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let replacement =
                userPart.contains(":") ? "\(user):\(EffectiveSettings.redacted)" : EffectiveSettings.redacted
            result.replaceSubrange(authorityStart..<at, with: replacement)
        }
        guard let question = result.firstIndex(of: "?") else { return result }
        let fragmentStart = result[question...].firstIndex(of: "#") ?? result.endIndex
        let items = result[result.index(after: question)..<fragmentStart].split(
            separator: "&", omittingEmptySubsequences: false)
        let redactedItems = items.map { item -> String in
            guard let equals = item.firstIndex(of: "=") else { return String(item) }
            let name = item[..<equals].lowercased()
            guard secretQueryNames.contains(where: { name.contains($0) }) else { return String(item) }
            return item[...equals] + EffectiveSettings.redacted
        }
        result.replaceSubrange(
            result.index(after: question)..<fragmentStart, with: redactedItems.joined(separator: "&"))
        return result
    }

    /// Returns whether `text` is an HTTP token (RFC 9110 section 5.6.2): the characters allowed in a header
    /// name or a cookie name. Checked byte by byte, so a huge value costs one pass.
    static func isToken(_ text: String) -> Bool {
        guard !text.isEmpty else { return false }
        return text.utf8.allSatisfy { tokenBytes[Int($0)] }
    }

    private static let tokenBytes: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(UInt8(byte))
        }
    }

    /// Returns whether `text` may be a header value: no CR, LF, NUL or other control character except tab.
    static func isHeaderValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// Returns whether `text` is a domain name for a cookie's Domain attribute: dot-separated labels of
    /// letters, digits and hyphens, with an optional leading dot, at most 253 characters.
    static func isCookieDomain(_ text: String) -> Bool {
        var name = Substring(text)
        if name.hasPrefix(".") { name = name.dropFirst() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy {
                    ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                        || $0 == UInt8(ascii: "-")
                }
        }
    }

    /// The longest prefix of a value that messages echo, in characters.
    static let excerptLength = 64

    /// `text` as messages echo it: control characters escaped (`\n`, `\u{0}`) so one problem stays
    /// on one line, and cut to `excerptLength` characters with the full length noted. Never call
    /// this for a secret; secrets are not echoed at all.
    static func excerpt(_ text: String) -> String {
        var output = ""
        var count = 0
        var truncated = false
        for scalar in text.unicodeScalars {
            if count == excerptLength {
                truncated = true
                break
            }
            count += 1
            switch scalar {
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    || scalar.value == 0x2028 || scalar.value == 0x2029
                {
                    output += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        if truncated { output += "... (\(text.utf8.count) bytes)" }
        return output
    }

    /// Decodes standard base64 with padding; nil when `text` is not valid base64.
    static func base64(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return [UInt8](data)
    }

    /// Splits a comma-separated list, trimming spaces and dropping empty items.
    static func commaList(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Returns whether `text` is an IPv4 or IPv6 address, or a CIDR range of one.
    static func isAddressOrCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = String(parts[0])
        var buffer = [UInt8](repeating: 0, count: 16)
        let isIPv4 = inet_pton(AF_INET, address, &buffer) == 1
        let isIPv6 = !isIPv4 && inet_pton(AF_INET6, address, &buffer) == 1
        guard isIPv4 || isIPv6 else { return false }
        guard parts.count == 2 else { return true }
        guard let bits = Int(parts[1]), bits >= 0, bits <= (isIPv4 ? 32 : 128) else { return false }
        return true
    }
}
