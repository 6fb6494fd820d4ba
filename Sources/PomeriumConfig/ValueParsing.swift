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
    /// files (YAML 1.1 booleans, which v0.7's YAML library accepted).
    static func bool(_ text: String, fromFile: Bool) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: break
        }
        guard fromFile else { return nil }
        switch text.lowercased() {
        case "yes", "y", "on": return true
        case "no", "n", "off": return false
        default: return nil
        }
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

    /// Whether `text` is an IPv4 or IPv6 address, or a CIDR range of one.
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
