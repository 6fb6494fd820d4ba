extension String {
    /// Calls `body` with the string's UTF-8 bytes where they are stored. `withUTF8` is mutating, so
    /// a caller holding a `let` copies the string first, and each copy costs an atomic retain and
    /// release. Native and small strings are read in place, and any other string is copied once.
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }
}
