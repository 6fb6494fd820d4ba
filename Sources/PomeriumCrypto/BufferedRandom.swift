import COpenSSL
import Glibc

/// Random bytes from the same generator as `SecureRandom` (OpenSSL's DRBG), drawn in blocks so
/// that small, frequent draws such as one request id per request cost a copy instead of a call
/// into OpenSSL each. Bytes are handed out once: each byte is zeroed in the block as it is copied
/// out. One instance belongs to one thread; `current` gives the calling thread its own.
public final class BufferedRandom {
    /// The block size of `current`: 4 KiB serve 256 request ids per refill.
    public static let defaultBlockSize = 4096

    /// The block size in bytes.
    public let blockSize: Int
    /// The number of times the block was filled from OpenSSL, for tests and diagnostics.
    public private(set) var refillCount = 0
    private let block: UnsafeMutableRawBufferPointer
    /// The offset of the next unused byte of `block`, or `blockSize` when every byte is used.
    private var position: Int

    /// Creates an empty buffer that fills itself in blocks of `blockSize` bytes (at least 16) on
    /// first use.
    public init(blockSize: Int = BufferedRandom.defaultBlockSize) {
        self.blockSize = max(16, blockSize)
        block = UnsafeMutableRawBufferPointer.allocate(byteCount: self.blockSize, alignment: 16)
        block.initializeMemory(as: UInt8.self, repeating: 0)
        position = self.blockSize
    }

    deinit {
        if let base = block.baseAddress { OPENSSL_cleanse(base, block.count) }
        block.deallocate()
    }

    /// Fills `destination` with random bytes.
    ///
    /// - Throws: `OpenSSLError` when OpenSSL cannot produce a block (its generator failed to
    ///   seed); `destination` is then partly filled and must not be used.
    public func fill(_ destination: UnsafeMutableRawBufferPointer) throws {
        guard let target = destination.baseAddress, let source = block.baseAddress else { return }
        var written = 0
        while written < destination.count {
            if position == blockSize { try refill() }
            let count = min(blockSize - position, destination.count - written)
            (target + written).copyMemory(from: source + position, byteCount: count)
            (source + position).initializeMemory(as: UInt8.self, repeating: 0, count: count)
            position += count
            written += count
        }
    }

    /// Returns `count` random bytes.
    ///
    /// - Throws: `OpenSSLError` when OpenSSL cannot produce a block.
    public func bytes(_ count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(0, count))
        try output.withUnsafeMutableBytes { try fill($0) }
        return output
    }

    private func refill() throws {
        guard let base = block.baseAddress else { return }
        guard RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(blockSize)) == 1 else {
            throw OpenSSLError("RAND_bytes")
        }
        position = 0
        refillCount += 1
    }

    /// The calling thread's buffer, created on first use and released when the thread exits.
    /// Every event loop thread draws from its own buffer without a lock.
    public static var current: BufferedRandom {
        if let stored = pthread_getspecific(threadKey) {
            return Unmanaged<BufferedRandom>.fromOpaque(stored).takeUnretainedValue()
        }
        let created = BufferedRandom()
        pthread_setspecific(threadKey, Unmanaged.passRetained(created).toOpaque())
        return created
    }
}

/// The thread-local slot of `BufferedRandom.current`. Its destructor releases a thread's buffer.
private let threadKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { stored in
        guard let stored else { return }
        Unmanaged<BufferedRandom>.fromOpaque(stored).release()
    }
    return key
}()
