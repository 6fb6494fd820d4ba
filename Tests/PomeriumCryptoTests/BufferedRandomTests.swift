import Glibc
import PomeriumCrypto
import Testing

@Suite("Buffered random bytes and request ids")
struct BufferedRandomTests {
    @Test("a draw that spans blocks refills and returns bytes from both blocks")
    func drawSpansBlocks() throws {
        let random = BufferedRandom(blockSize: 16)
        #expect(random.refillCount == 0)
        let first = try random.bytes(10)
        #expect(random.refillCount == 1)
        let second = try random.bytes(40)
        #expect(second.count == 40)
        #expect(random.refillCount == 4)
        // 50 random bytes that are all zero would mean the block was never filled.
        #expect((first + second).contains { $0 != 0 })
    }

    @Test("the block size is at least 16 bytes")
    func minimumBlockSize() {
        #expect(BufferedRandom(blockSize: 1).blockSize == 16)
        #expect(BufferedRandom().blockSize == BufferedRandom.defaultBlockSize)
    }

    @Test("an empty draw does not fill the block")
    func emptyDraw() throws {
        let random = BufferedRandom(blockSize: 32)
        #expect(try random.bytes(0).isEmpty)
        #expect(random.refillCount == 0)
    }

    @Test("request ids are UUID-shaped lowercase hex and distinct across refills")
    func requestIDsAcrossRefills() {
        let random = BufferedRandom(blockSize: 48)
        var seen = Set<String>()
        for _ in 0..<40 {
            let id = RequestID.make(from: random)
            #expect(id.count == 36)
            #expect(id.split(separator: "-", omittingEmptySubsequences: false).map(\.count) == [8, 4, 4, 4, 12])
            #expect(id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x2D })
            seen.insert(id)
        }
        // 40 ids of 16 bytes from 48-byte blocks: 3 ids per block, 14 refills, none repeated.
        #expect(random.refillCount == 14)
        #expect(seen.count == 40)
    }

    @Test("the thread's buffer serves request ids and stays the same on one thread")
    func currentBuffer() {
        let buffer = BufferedRandom.current
        #expect(BufferedRandom.current === buffer)
        let before = buffer.refillCount
        let ids = (0..<300).map { _ in RequestID.make() }
        #expect(Set(ids).count == 300)
        // 300 ids of 16 bytes take at least one more 4 KiB block.
        #expect(buffer.refillCount > before)
    }

    @Test("another thread gets its own buffer")
    func bufferPerThread() throws {
        let mine = ObjectIdentifier(BufferedRandom.current)
        let box = UnsafeMutablePointer<ObjectIdentifier?>.allocate(capacity: 1)
        box.initialize(to: nil)
        defer { box.deallocate() }
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { argument in
                argument?.assumingMemoryBound(to: ObjectIdentifier?.self).pointee = ObjectIdentifier(
                    BufferedRandom.current)
                return nil
            }, box)
        try #require(created == 0)
        pthread_join(thread, nil)
        let theirs = try #require(box.pointee)
        #expect(theirs != mine)
    }
}
