import Testing

@testable import PomeriumHTTP

/// Method equality and hashing, which compare a registered method by its code and any other
/// method by its string.
@Suite("Methods")
struct MethodTests {
    @Test("registered methods equal their constants however they were made")
    func registeredMethods() throws {
        let constants: [HTTPMethod] = [.get, .head, .post, .put, .delete, .connect, .options, .trace, .patch]
        for constant in constants {
            let fromString = try #require(HTTPMethod(constant.rawValue))
            #expect(fromString == constant)
            let parsed = HTTPMethod(validatedBytes: Array(constant.rawValue.utf8)[...])
            #expect(parsed == constant)
            #expect(parsed.hashValue == constant.hashValue)
            for other in constants where other.rawValue != constant.rawValue {
                #expect(constant != other)
            }
        }
    }

    @Test("other methods compare by string, case-sensitively")
    func otherMethods() throws {
        let purge = try #require(HTTPMethod("PURGE"))
        let purgeAgain = try #require(HTTPMethod("PURGE"))
        let lowercase = try #require(HTTPMethod("get"))
        let mixedCase = try #require(HTTPMethod("Get"))
        let get = try #require(HTTPMethod("GET"))
        #expect(purge == HTTPMethod(validatedBytes: Array("PURGE".utf8)[...]))
        #expect(purge == purgeAgain)
        #expect(purge != .get)
        #expect(lowercase != .get)
        #expect(mixedCase != get)
        #expect(mixedCase != lowercase)
        #expect(Set([purge, .get, get, purgeAgain]).count == 2)
        #expect(HTTPMethod("") == nil)
        #expect(HTTPMethod("GE T") == nil)
    }
}
