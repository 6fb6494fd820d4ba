import Testing

@testable import PomeriumHTTP

/// `HTTPFieldName.hasPrefix` and `matches(_:lowercase:)` with a byte array lowercase the name a word
/// at a time. Every byte value in every position, for every length up to two words, must give the
/// result of a byte loop that lowercases `A` to `Z` only.
@Suite("Field names: word-wise lowercase comparison")
struct FieldNameFoldTests {
    private static func reference(_ name: [UInt8], _ lowercase: [UInt8]) -> Bool {
        name.count >= lowercase.count && zip(name, lowercase).allSatisfy { ASCII.lowercased($0) == $1 }
    }

    private static func uppercased(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 0x20 : $0 }
    }

    @Test("every byte value in every position", arguments: ["content-length-x", "x-b3-id~^_|09.!#"])
    func everyByteValue(expectedText: String) {
        let expected = Array(expectedText.utf8)
        var wrong: [String] = []
        for length in 1...expected.count {
            let lowercase = Array(expected[..<length])
            for position in 0..<length {
                for value in UInt8.min...UInt8.max {
                    var name = Self.uppercased(lowercase)
                    name[position] = value
                    let longer = name + Array("Zz".utf8)
                    for candidate in [name, longer] {
                        let prefix = candidate.withUnsafeBufferPointer {
                            HTTPFieldName.hasPrefix($0, lowercase: lowercase)
                        }
                        let whole = candidate.withUnsafeBufferPointer {
                            HTTPFieldName.matches($0, lowercase: lowercase)
                        }
                        let expectedPrefix = Self.reference(candidate, lowercase)
                        if prefix != expectedPrefix || whole != (expectedPrefix && candidate.count == length) {
                            wrong.append("length \(length), position \(position), byte \(value)")
                        }
                    }
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(8))")
    }

    @Test("empty lowercase name")
    func emptyName() {
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBufferPointer { HTTPFieldName.hasPrefix($0, lowercase: []) })
        #expect(empty.withUnsafeBufferPointer { HTTPFieldName.matches($0, lowercase: []) })
        #expect(Array("a".utf8).withUnsafeBufferPointer { HTTPFieldName.hasPrefix($0, lowercase: []) })
    }
}
