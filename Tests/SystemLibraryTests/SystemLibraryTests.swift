import CHiredis
import CLMDB
import CLinux
import CNghttp2
import COpenSSL
import CPCRE2
import CXXHash
import CYAML
import Glibc
import Testing

/// Each system-library target links and its library answers one real call.
@Suite struct SystemLibraryTests {
    @Test func openSSLIsVersion3() {
        #expect(OpenSSL_version_num() >= 0x3000_0000)
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let input = Array("abc".utf8)
        _ = SHA256(input, input.count, &digest)
        let hex = digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func openSSLShimSetsMinimumTLSVersion() throws {
        let context = try #require(SSL_CTX_new(TLS_server_method()))
        defer { SSL_CTX_free(context) }
        #expect(CShim_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1)
    }

    @Test func nghttp2Version() throws {
        let info = try #require(nghttp2_version(0))
        #expect(info.pointee.version_num >= 0x01_2000)
        #expect(String(cString: info.pointee.proto_str) == "h2")
    }

    @Test func libyamlParsesAScalar() {
        var parser = yaml_parser_t()
        #expect(yaml_parser_initialize(&parser) == 1)
        defer { yaml_parser_delete(&parser) }
        let text = Array("key: value\n".utf8)
        var found: [String] = []
        text.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                defer { yaml_event_delete(&event) }
                if event.type == YAML_SCALAR_EVENT {
                    let scalar = event.data.scalar
                    found.append(
                        String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self))
                }
                if event.type == YAML_STREAM_END_EVENT { break }
            }
        }
        #expect(found == ["key", "value"])
    }

    @Test func lmdbOpensAnEnvironment() throws {
        var environment: OpaquePointer?
        #expect(mdb_env_create(&environment) == 0)
        defer { mdb_env_close(environment) }
        let directory = "/tmp/pomerium-lmdb-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        mkdir(directory, 0o700)
        defer {
            unlink("\(directory)/data.mdb")
            unlink("\(directory)/lock.mdb")
            rmdir(directory)
        }
        #expect(mdb_env_open(environment, directory, 0, 0o600) == 0)
        var major: Int32 = 0
        _ = mdb_version(&major, nil, nil)
        #expect(major == 0)
    }

    @Test func hiredisReaderParsesAReply() throws {
        let reader = try #require(redisReaderCreate())
        defer { redisReaderFree(reader) }
        let reply = "+PONG\r\n"
        #expect(redisReaderFeed(reader, reply, reply.utf8.count) == REDIS_OK)
        var parsed: UnsafeMutableRawPointer?
        #expect(redisReaderGetReply(reader, &parsed) == REDIS_OK)
        let object = try #require(parsed?.assumingMemoryBound(to: redisReply.self))
        defer { freeReplyObject(parsed) }
        #expect(object.pointee.type == REDIS_REPLY_STATUS)
        #expect(String(cString: object.pointee.str) == "PONG")
    }

    @Test func xxHashGivesTheXXH3ReferenceValue() {
        #expect(XXH_versionNumber() >= 800)
        // The empty input's XXH3 64-bit hash with seed 0, from xxHash's own test vectors.
        #expect(XXH3_64bits(nil, 0) == 0x2D06_8005_38D3_94C2)
        let input = Array("pomerium".utf8)
        #expect(XXH3_64bits_withSeed(input, input.count, 1) != XXH3_64bits_withSeed(input, input.count, 2))
    }

    @Test func pcre2CompilesAndMatches() throws {
        var errorCode: Int32 = 0
        var errorOffset = 0
        let pattern = Array("^a+$".utf8)
        let code = try #require(pcre2_compile_8(pattern, pattern.count, 0, &errorCode, &errorOffset, nil))
        defer { pcre2_code_free_8(code) }
        let data = try #require(pcre2_match_data_create_8(1, nil))
        defer { pcre2_match_data_free_8(data) }
        let subject = Array("aaa".utf8)
        #expect(pcre2_match_8(code, subject, subject.count, 0, 0, data, nil) > 0)
        let other = Array("ab".utf8)
        #expect(pcre2_match_8(code, other, other.count, 0, 0, data, nil) == PCRE2_ERROR_NOMATCH)
    }

    @Test func linuxHeadersGiveEpollAndEventfd() {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        #expect(epoll >= 0)
        defer { close(epoll) }
        let wakeup = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        #expect(wakeup >= 0)
        defer { close(wakeup) }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeup
        #expect(epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0)
        var one: UInt64 = 1
        #expect(write(wakeup, &one, 8) == 8)
        var ready = [epoll_event](repeating: epoll_event(), count: 4)
        #expect(epoll_wait(epoll, &ready, 4, 1000) == 1)
        #expect(CLinux_available_cpu_count() >= 1)
    }
}
