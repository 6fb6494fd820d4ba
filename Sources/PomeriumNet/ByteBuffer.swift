/// A growable byte buffer with a read position, for socket I/O without Foundation. Bytes are
/// appended at the end and consumed from the front; consumed space is reclaimed when more than
/// half of the storage is dead.
public struct ByteBuffer: Sendable {
    public private(set) var storage: [UInt8]
    public private(set) var readerIndex: Int = 0

    public init(capacity: Int = 0) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    public init(bytes: some Sequence<UInt8>) {
        storage = Array(bytes)
    }

    public init(string: String) {
        storage = Array(string.utf8)
    }

    /// The number of unread bytes.
    @inline(__always) public var readableBytes: Int { storage.count - readerIndex }
    @inline(__always) public var isEmpty: Bool { readerIndex == storage.count }

    /// The unread bytes.
    public var readableView: ArraySlice<UInt8> { storage[readerIndex...] }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Callers in other modules reach this unspecialised, where the generic append walks the
        // collection byte by byte; contiguous input (arrays, slices) is copied in one step instead.
        let copied: Void? = bytes.withContiguousStorageIfAvailable { storage.append(contentsOf: $0) }
        if copied == nil { storage.append(contentsOf: bytes) }
    }

    /// Appends bytes in one copy; callers in other modules reach it without generic dispatch.
    public mutating func append(_ bytes: [UInt8]) {
        storage.append(contentsOf: bytes)
    }

    /// Appends the bytes in `bytes` in one copy.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes)
    }

    /// Lets `body` append bytes to the end of the storage in place, for encoders that write a
    /// message straight into an output buffer. `body` must only append.
    public mutating func appendInPlace(_ body: (inout [UInt8]) throws -> Void) rethrows {
        if readerIndex > 0 && readerIndex == storage.count {
            storage.removeAll(keepingCapacity: true)
            readerIndex = 0
        }
        try body(&storage)
    }

    public mutating func append(string: String) {
        storage.append(contentsOf: string.utf8)
    }

    public mutating func append(_ other: ByteBuffer) {
        storage.append(contentsOf: other.storage[other.readerIndex...])
    }

    /// Marks `count` unread bytes as consumed.
    public mutating func consume(_ count: Int) {
        precondition(count <= readableBytes, "consume past the end of the buffer")
        readerIndex += count
        if readerIndex == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= 65_536)
            readerIndex = 0
        } else if readerIndex > 4096 && readerIndex * 2 > storage.count {
            storage.removeSubrange(0..<readerIndex)
            readerIndex = 0
        }
    }

    /// Removes and returns up to `count` unread bytes.
    public mutating func read(upTo count: Int) -> ArraySlice<UInt8> {
        let taken = Swift.min(count, readableBytes)
        let slice = storage[readerIndex..<(readerIndex + taken)]
        consume(taken)
        return slice
    }

    public mutating func clear() {
        storage.removeAll(keepingCapacity: false)
        readerIndex = 0
    }

    /// Calls `body` with the unread bytes.
    public func withUnsafeReadableBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[readerIndex...])) }
    }

    /// Reserves `count` bytes at the end, lets `body` fill a prefix of them, and keeps the number of
    /// bytes `body` returns.
    public mutating func writeWithUnsafeMutableBytes(
        minimumWritableBytes count: Int,
        _ body: (UnsafeMutableRawBufferPointer) throws -> Int
    ) rethrows -> Int {
        let start = storage.count
        storage.append(contentsOf: repeatElement(0, count: count))
        var written = 0
        defer { storage.removeLast(count - written) }
        written = try storage.withUnsafeMutableBytes {
            try body(UnsafeMutableRawBufferPointer(rebasing: $0[start...]))
        }
        return written
    }
}
