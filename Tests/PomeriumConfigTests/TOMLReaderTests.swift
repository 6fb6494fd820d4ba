import Foundation
import PomeriumTestSupport
import Testing

@testable import PomeriumConfig

/// The TOML parser against Python's `tomllib` (Python 3.11+) as the reference: both render each
/// document to the same canonical text, or both reject it.
@Suite struct TOMLReaderTests {
    static let validDocuments: [String] = [
        #"title = "TOML Example""#,
        """
        # comment
        [owner]
        name = "Tom Preston-Werner"
        dob = 1979-05-27T07:32:00-08:00

        [database]
        enabled = true
        ports = [ 8000, 8001, 8002 ]
        data = [ ["delta", "phi"], [3.14] ]
        temp_targets = { cpu = 79.5, case = 72.0 }
        """,
        #"str = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF. \U0001F600""#,
        "str1 = \"\"\"\nRoses are red\nViolets are blue\"\"\"",
        "str = \"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"",
        "str = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"",
        "str = \"\"\"Here are fifteen quotation marks: \"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\".\"\"\"",
        "winpath = 'C:\\Users\\nodejs\\templates'\nregex = '<\\i\\c*\\s*>'",
        "lines = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''",
        "quot15 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\napos = ''''That,' she said, 'It's a trap.''''",
        "int1 = +99\nint2 = 42\nint3 = 0\nint4 = -17\nint5 = 1_000\nint6 = 5_349_221\nint7 = 1_2_3_4_5",
        "hex1 = 0xDEADBEEF\nhex2 = 0xdeadbeef\nhex3 = 0xdead_beef\noct1 = 0o01234567\noct2 = 0o755\nbin1 = 0b11010110",
        "big = 9223372036854775807\nsmall = -9223372036854775808",
        "flt1 = +1.0\nflt2 = 3.1415\nflt3 = -0.01\nflt4 = 5e+22\nflt5 = 1e06\nflt6 = -2E-2\nflt7 = 6.626e-34\nflt8 = 224_617.445_991_228",
        "sf1 = inf\nsf2 = +inf\nsf3 = -inf\nsf4 = nan\nsf5 = +nan\nsf6 = -nan",
        "odt1 = 1979-05-27T07:32:00Z\nodt2 = 1979-05-27T00:32:00-07:00\nodt3 = 1979-05-27T00:32:00.999999-07:00\nodt4 = 1979-05-27 07:32:00Z",
        "ldt1 = 1979-05-27T07:32:00\nldt2 = 1979-05-27T00:32:00.5\nld1 = 1979-05-27\nlt1 = 07:32:00\nlt2 = 00:32:00.999999",
        "name = \"Orange\"\nphysical.color = \"orange\"\nphysical.shape = \"round\"\nsite.\"google.com\" = true",
        "\"quoted key\" = 1\n'literal key' = 2\nbare-key_1 = 3\n1234 = 4\n\"\" = 5",
        "[a.b.c]\nx = 1\n[a]\ny = 2\n[a.d]\nz = 3",
        "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true",
        """
        [[products]]
        name = "Hammer"
        sku = 738594937

        [[products]]  # empty table within the array

        [[products]]
        name = "Nail"
        sku = 284758393
        color = "gray"
        """,
        """
        [[fruits]]
        name = "apple"
        [fruits.physical]
        color = "red"
        [[fruits.varieties]]
        name = "red delicious"
        [[fruits.varieties]]
        name = "granny smith"
        [[fruits]]
        name = "banana"
        [[fruits.varieties]]
        name = "plantain"
        """,
        "points = [ { x = 1, y = 2, z = 3 },\n           { x = 7, y = 8, z = 9 } ]\nempty = {}\nnested = { a.b = 1, c = [1, [2]] }",
        "arr = [\n  1,\n  2, # comment\n  3,\n]\nmixed = [ 0.1, \"s\", true, [] ]",
        "key = \"value\"   # trailing comment\r\nother = 'x'\r\n",
        "[ spaced . \"table\" ]\n key = 1",
    ]

    static let invalidDocuments: [String] = [
        "key = ", "= 1", "a = 1\na = 2", "[t]\n[t]", "a = 1\n[a]", "a = {x = 1}\n[a]", "a = {x = 1}\na.y = 2",
        "a.b = 1\n[a.b]", "x = [1, 2", "s = \"unterminated", "s = 'a\nb'", "i = 01", "i = 1__0", "i = _1", "f = 1.",
        "f = .5",
        "f = 1e", "s = \"\\q\"", "t = 1979-05-27T25", "k = v", "a = 1 b = 2", "arr = [1,,2]", "tbl = { a = 1, }",
        "[[a]]\n[a]", "a = [1]\n[[a]]", "s = \"\\u00\"", "k = \"a\u{01}b\"", "k = 1\r2",
    ]

    /// Renders a value in the canonical text that the Python script produces.
    static func canonical(_ value: TOMLReader.Value) -> String {
        switch value {
        case .string(let text): return "s:" + jsonString(text)
        case .integer(let number): return "i:\(number)"
        case .boolean(let flag): return "b:\(flag)"
        case .float(let number, _):
            if number.isNaN { return "f:nan" }
            if number.isInfinite { return number > 0 ? "f:inf" : "f:-inf" }
            return "f:" + String(format: "%.17g", number)
        case .dateTime(let text): return "d:" + normalizedDateTime(text)
        case .array(let items): return "[" + items.map(canonical).joined(separator: ",") + "]"
        case .table(let entries):
            let sorted = entries.sorted { $0.key < $1.key }
            return "{" + sorted.map { jsonString($0.key) + ":" + canonical($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value > 0x7E:
                result +=
                    scalar.value > 0xFFFF
                    ? String(format: "\\U%08x", scalar.value) : String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Python's `isoformat()` spelling: `T` separator, `+00:00` for Z, six fraction digits or none.
    static func normalizedDateTime(_ text: String) -> String {
        var value = text
        if value.count > 10, value.dropFirst(4).first == "-" {
            let index = value.index(value.startIndex, offsetBy: 10)
            value.replaceSubrange(index...index, with: "T")
        }
        if value.hasSuffix("Z") || value.hasSuffix("z") { value = String(value.dropLast()) + "+00:00" }
        guard let dot = value.firstIndex(of: ".") else { return value }
        let afterDot = value[value.index(after: dot)...]
        let digits = afterDot.prefix { $0.isNumber }
        let rest = afterDot.dropFirst(digits.count)
        var fraction = String(digits.prefix(6))
        fraction += String(repeating: "0", count: 6 - fraction.count)
        let head = String(value[..<dot])
        return fraction == "000000" ? head + rest : head + "." + fraction + rest
    }

    static let pythonScript = #"""
        import json, math, sys, tomllib, datetime
        def js(t):
            out = '"'
            for ch in t:
                o = ord(ch)
                if ch == '"': out += '\\"'
                elif ch == '\\': out += '\\\\'
                elif o < 0x20 or o > 0x7E: out += ("\\U%08x" % o) if o > 0xFFFF else ("\\u%04x" % o)
                else: out += ch
            return out + '"'
        def canon(v):
            if isinstance(v, bool): return "b:" + ("true" if v else "false")
            if isinstance(v, int): return "i:%d" % v
            if isinstance(v, float):
                if math.isnan(v): return "f:nan"
                if math.isinf(v): return "f:inf" if v > 0 else "f:-inf"
                return "f:" + ("%.17g" % v)
            if isinstance(v, str): return "s:" + js(v)
            if isinstance(v, (datetime.datetime, datetime.date, datetime.time)): return "d:" + v.isoformat()
            if isinstance(v, list): return "[" + ",".join(canon(x) for x in v) + "]"
            return "{" + ",".join(json.dumps(k) + ":" + canon(v[k]) for k in sorted(v)) + "}"
        out = []
        for doc in json.load(open(sys.argv[1])):
            try: out.append(canon(tomllib.loads(doc)))
            except Exception: out.append("ERROR")
        json.dump(out, open(sys.argv[2], "w"))
        """#

    /// Runs the documents through Python's tomllib and returns one canonical text or "ERROR" each.
    static func pythonReference(_ documents: [String]) throws -> [String] {
        let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "toml-reference")
        let input = directory.appendingPathComponent("in.json")
        let output = directory.appendingPathComponent("out.json")
        let script = directory.appendingPathComponent("reference.py")
        try JSONSerialization.data(withJSONObject: documents).write(to: input)
        try Data(pythonScript.utf8).write(to: script)
        let python = RepositoryPaths.python
        let interpreter = FileManager.default.fileExists(atPath: python.path) ? python.path : "/usr/bin/python3"
        let result = try CommandRunner.run(interpreter, [script.path, input.path, output.path])
        #expect(result.status == 0, "\(result.standardError)")
        let data = try Data(contentsOf: output)
        return try #require(JSONSerialization.jsonObject(with: data) as? [String])
    }

    @Test func validDocumentsMatchTomllib() throws {
        let reference = try Self.pythonReference(Self.validDocuments)
        #expect(reference.count == Self.validDocuments.count)
        for (document, expected) in zip(Self.validDocuments, reference) {
            #expect(expected != "ERROR", "tomllib rejected: \(document)")
            do {
                let parsed = try TOMLReader.parseValue(Array(document.utf8))
                #expect(Self.canonical(parsed) == expected, "document: \(document)")
            } catch {
                Issue.record("rejected \(document): \(error)")
            }
        }
    }

    @Test func invalidDocumentsRejectedLikeTomllib() throws {
        let reference = try Self.pythonReference(Self.invalidDocuments)
        for (document, expected) in zip(Self.invalidDocuments, reference) {
            #expect(expected == "ERROR", "tomllib accepted: \(document)")
            #expect(throws: ConfigSyntaxError.self, "accepted: \(document)") {
                try TOMLReader.parseValue(Array(document.utf8))
            }
        }
    }

    /// Unlike tomllib, the reader skips a UTF-8 byte order mark, which some editors write.
    @Test func byteOrderMarkIsSkipped() throws {
        let parsed = try TOMLReader.parseValue([0xEF, 0xBB, 0xBF] + Array("bom = 1".utf8))
        #expect(parsed == .table([("bom", .integer(1))]))
    }

    @Test func nodesCarryLineNumbers() throws {
        let text = "a = 1\n\n[t]\nb = \"x\"\n\n[[list]]\nc = true\n"
        let root = try TOMLReader.parse(Array(text.utf8), path: "f.toml")
        let entries = try #require(root.entries)
        #expect(entries[0].value.location == .file(path: "f.toml", line: 1))
        let table = try #require(entries[1].value.entries)
        #expect(table[0].value.location == .file(path: "f.toml", line: 4))
        guard case .sequence(let items) = entries[2].value.value else {
            Issue.record("list is not a sequence")
            return
        }
        #expect(items[0].entries?[0].value.location == .file(path: "f.toml", line: 7))
    }

    @Test func syntaxErrorNamesLine() {
        #expect(
            throws: ConfigSyntaxError(location: .file(path: "f.toml", line: 3), reason: "key \"a\" is defined twice")
        ) {
            try TOMLReader.parse(Array("a = 1\n\na = 2\n".utf8), path: "f.toml")
        }
    }
}
