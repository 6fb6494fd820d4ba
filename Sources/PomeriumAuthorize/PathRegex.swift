import CPCRE2
import Glibc
import PomeriumLogging
import Synchronization

/// The outcome of matching a request path against a route's `regex`.
public enum PathRegexResult: Sendable, Equatable {
    case match
    case noMatch
    /// The match stopped at `CompiledPathRegex.matchLimit` or at another PCRE2 limit, so the path
    /// neither matched nor failed to match. The router then selects no route at all, because
    /// going on to the next route could give the request a broader route's policy.
    case undecided
}

/// A `regex` path matcher, compiled once when the route is built, that matches whole paths with
/// PCRE2 (Debian's libpcre2-8) under a match limit.
///
/// Pomerium matched `regex` with Go's RE2, whose time is linear in the path. Backtracking engines,
/// Swift's `Regex` among them, can take time exponential in the path for patterns with nested
/// quantifiers: `^/(a+)+$` took 50 s for a 22-byte path with Swift's `Regex`, and
/// `^/api/.*/.*\.json$` 0.1 s for 2,800 bytes, growing with the square of the length. That time
/// blocks an event loop. PCRE2 backtracks too, but stops after `matchLimit` steps, so the cost of
/// one request has a bound, and its JIT compiler makes the common patterns cheap.
///
/// The syntax is PCRE2's, which covers RE2's: `\d`, `\w` and `\s` are ASCII classes as in RE2,
/// `.` matches one code point (UTF mode), and `(?i)`, non-greedy quantifiers and non-capturing
/// groups work. Back-references and look-around, which RE2 rejects, compile here.
///
/// A compiled pattern, and a match context that is not changed after creation, can be used by many
/// threads at once (pcre2api(3), "Multithreading"). The JIT code runs on a 32 KiB area of each
/// calling thread's stack (pcre2jit(3)), so one instance serves every event loop.
final class CompiledPathRegex: @unchecked Sendable {
    /// The maximum number of backtracking steps of one match. `^/admin/(a+)+$` on a run of `a`
    /// that ends in another byte reached it after about 4 ms with the JIT, on one 2-CPU virtual
    /// machine for paths of 200 to 8,000 bytes. PCRE2's default of 10 million would allow an
    /// estimated 40 ms. `^/api/.*/.*\.json$` took 0.014 ms on 8,000 bytes.
    static let matchLimit: UInt32 = 1_000_000

    private let code: OpaquePointer
    private let context: OpaquePointer
    private let routeID: String
    private let logger = Logger(label: "pomerium.authorize")
    /// When the last warning about an undecided match was logged, and how many were not logged since.
    private let warnings = Mutex<(lastSecond: Int, suppressed: Int)>((lastSecond: 0, suppressed: 0))

    /// Compiles `pattern` so that it must match the whole path.
    ///
    /// - Throws: `PathRegexError` with PCRE2's message and the offset of the error in the pattern.
    init(_ pattern: String, routeID: String = "") throws(PathRegexError) {
        if pattern.isEmpty {
            throw PathRegexError("the pattern is empty")
        }
        var errorCode: Int32 = 0
        var errorOffset = 0
        // Anchoring at compile time, because PCRE2's JIT does not support the anchoring options at
        // match time. `\C` could split a UTF-8 sequence, so it is rejected.
        let options =
            UInt32(PCRE2_UTF) | UInt32(PCRE2_ANCHORED) | UInt32(PCRE2_ENDANCHORED)
            | UInt32(PCRE2_NEVER_BACKSLASH_C)
        var text = pattern
        let compiled = text.withUTF8 { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw PathRegexError("\(Self.message(errorCode)) at offset \(errorOffset)")
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw PathRegexError("PCRE2 could not allocate a match context")
        }
        // Without JIT code (a platform without JIT, or no executable memory), pcre2_match
        // interprets the pattern under the same limits.
        _ = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
        pcre2_set_match_limit_8(context, Self.matchLimit)
        pcre2_set_depth_limit_8(context, Self.matchLimit)
        code = compiled
        self.context = context
        self.routeID = routeID
    }

    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }

    /// Matches the whole of `path`.
    func match(_ path: String) -> PathRegexResult {
        // One pair of offsets: only whether the pattern matched is used. A failed allocation
        // decides nothing, so it is undecided rather than no match.
        guard let data = pcre2_match_data_create_8(1, nil) else { return .undecided }
        defer { pcre2_match_data_free_8(data) }
        var path = path
        let status = path.withUTF8 { bytes -> Int32 in
            // A Swift string is valid UTF-8, so PCRE2's own check can be skipped. PCRE2 accepts a
            // null subject only with length 0, which the empty buffer has.
            pcre2_match_8(code, bytes.baseAddress, bytes.count, 0, UInt32(PCRE2_NO_UTF_CHECK), data, context)
        }
        if status >= 0 { return .match }
        if status == PCRE2_ERROR_NOMATCH { return .noMatch }
        warnUndecided(status: status, pathLength: path.utf8.count)
        return .undecided
    }

    /// Returns whether the whole of `path` matches; an undecided match counts as no match.
    func matchesWhole(_ path: String) -> Bool {
        match(path) == .match
    }

    /// Logs at most one warning per 10 seconds for this route, with the number left out before it,
    /// because clients choose the paths and could otherwise flood the log.
    private func warnUndecided(status: Int32, pathLength: Int) {
        let now = Int(time(nil))
        let suppressed: Int? = warnings.withLock { state in
            guard now - state.lastSecond >= 10 else {
                state.suppressed += 1
                return nil
            }
            let count = state.suppressed
            state = (lastSecond: now, suppressed: 0)
            return count
        }
        guard let suppressed else { return }
        logger.warning(
            "route regex stopped before deciding whether the path matches; the request gets no route (404)",
            metadata: [
                "route": .string(routeID), "error": .string(Self.message(status)),
                "path_length": .string(String(pathLength)), "not_logged_since_last": .string(String(suppressed)),
            ])
    }

    /// Returns PCRE2's message for an error code.
    static func message(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = pcre2_get_error_message_8(code, &buffer, buffer.count)
        guard length > 0 else { return "PCRE2 error \(code)" }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

/// A `regex` setting that PCRE2 does not compile.
struct PathRegexError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
