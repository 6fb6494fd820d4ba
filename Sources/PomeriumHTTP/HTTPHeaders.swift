/// An ordered list of header fields that keeps the order, the case of names, and repeated names as
/// received. Lookups compare names case-insensitively (RFC 9110 §5.1).
///
/// The list itself accepts any strings. The encoders reject names that are not tokens and values
/// with CR, LF, NUL or other control characters before anything reaches the wire.
///
/// Storage: the names and values live as bytes in one array, and each field is a pair of ranges
/// into it. A parsed head copies its header section once instead of building two `String`s per
/// field, copying the list retains two buffers instead of two strings per field, and the encoder
/// writes parsed fields byte for byte (obs-text included) without checking them a second time.
/// `String`s are built only when a caller reads a name or value.
///
/// `bytes` may be longer than the bytes in use, which end at `end`: the spare zero bytes after it
/// take appended names and values through a pointer. `Array.append(contentsOf:)` measured about
/// 90 instructions per call in its generic machinery, and a proxied request appends a dozen times.
public struct HTTPHeaders: Sendable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    /// One field line.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// One field: ranges of `bytes`. `isChecked` marks a field that the parser has already
    /// checked (the name is a token, the value has no control characters), so encoding skips the check.
    @usableFromInline
    struct Entry: Sendable {
        var name: Range<Int>
        var value: Range<Int>
        var isChecked: Bool
    }

    /// Names and values of the fields, and bytes of replaced or removed fields (see `garbage`),
    /// followed by spare zero bytes from `end` on.
    private(set) var bytes: [UInt8]
    @usableFromInline private(set) var entries: [Entry]
    /// The end of the bytes in use; `bytes[end...]` is spare room for appending.
    private(set) var end = 0
    /// The number of bytes in `bytes` that no entry refers to; they are dropped once they dominate.
    private var garbage = 0

    public init() {
        bytes = []
        entries = []
    }

    public init(_ fields: [(name: String, value: String)]) {
        self.init()
        for field in fields { add(name: field.name, value: field.value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init()
        for (name, value) in elements { add(name: name, value: value) }
    }

    /// A list over already checked bytes, built by the parsers.
    init(checkedBytes bytes: [UInt8], entries: [Entry]) {
        self.bytes = bytes
        self.entries = entries
        end = bytes.count
    }

    /// Returns the byte and entry arrays, for a parser to write the next head's fields into when
    /// no other list still shares them (`FieldLineParser.parse`).
    consuming func takeStorage() -> (bytes: [UInt8], entries: [Entry]) {
        (bytes, entries)
    }

    /// The capacity of the byte storage, for a parser deciding whether to keep it.
    var storageCapacity: Int { bytes.capacity }

    // Inlinable, so that `isEmpty` and `count` in other modules compile to a read of the array
    // instead of a call to `endIndex`. An authenticated request made five such calls.
    @inlinable public var startIndex: Int { entries.startIndex }
    @inlinable public var endIndex: Int { entries.endIndex }
    @inlinable public var isEmpty: Bool { entries.isEmpty }
    @inlinable public var count: Int { entries.count }

    public subscript(position: Int) -> Field {
        let entry = entries[position]
        return Field(name: string(entry.name), value: string(entry.value))
    }

    @inline(__always)
    private func string(_ range: Range<Int>) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    /// The UTF-8 bytes of `text`, read in place. The non-mutating contiguous view comes first:
    /// `withUTF8` is mutating, and the copy it needs retained and released the string each call.
    @inline(__always)
    static func withBytes<Result>(of text: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows
        -> Result
    {
        if let result = try text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var text = text
        return try text.withUTF8(body)
    }

    // MARK: Adding and replacing

    /// Appends a field after all existing ones, keeping any earlier field with the same name.
    public mutating func add(name: String, value: String) {
        let nameStart = end
        Self.withBytes(of: name) { appendBytes($0) }
        let valueStart = end
        Self.withBytes(of: value) { appendBytes($0) }
        entries.append(Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: false))
    }

    /// Inserts a field at `index` (0 makes it the first field; `count` appends), keeping every other
    /// field. The encoder checks it like a field from `add(name:value:)`.
    public mutating func insert(name: String, value: String, at index: Int) {
        precondition(index >= 0 && index <= entries.count, "header field index out of range")
        entries.insert(appendField(name: name, value: value, isChecked: false), at: index)
    }

    /// Inserts a field as `insert(name:value:at:)` does, for a name and value the caller vouches
    /// for as `add(validatedName:value:)` describes.
    public mutating func insert(validatedName name: String, value: String, at index: Int) {
        precondition(index >= 0 && index <= entries.count, "header field index out of range")
        entries.insert(appendField(name: name, value: value, isChecked: true), at: index)
    }

    /// Appends the bytes of a field and returns its entry, which the caller puts in the list.
    private mutating func appendField(name: String, value: String, isChecked: Bool) -> Entry {
        let nameStart = end
        Self.withBytes(of: name) { nameBytes in
            assert(!isChecked || Self.isValidName(nameBytes), "a header field name passed as validated is not a token")
            appendBytes(nameBytes)
        }
        let valueStart = end
        Self.withBytes(of: value) { valueBytes in
            assert(!isChecked || Self.isValidValue(valueBytes), "a header field value passed as validated is not valid")
            appendBytes(valueBytes)
        }
        return Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: isChecked)
    }

    /// Appends a field named `validatedName` (a token, as `add(validatedName:value:)` requires)
    /// with the value bytes of the first field named `sourceName` in `source`, without building a
    /// string. The new field is checked when the source field was. Returns false, adding nothing,
    /// when `source` has no field named `sourceName`.
    @discardableResult
    public mutating func add(
        validatedName name: String, valueOfFirstFieldNamed sourceName: String, in source: HTTPHeaders
    )
        -> Bool
    {
        guard let index = source.index(ofFieldNamed: sourceName) else { return false }
        let sourceEntry = source.entries[index]
        let nameStart = end
        Self.withBytes(of: name) { nameBytes in
            assert(Self.isValidName(nameBytes), "a header field name passed as validated is not a token")
            appendBytes(nameBytes)
        }
        let valueStart = end
        source.bytes.withUnsafeBufferPointer { appendBytes(UnsafeBufferPointer(rebasing: $0[sourceEntry.value])) }
        entries.append(Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: sourceEntry.isChecked))
        return true
    }

    /// Appends the fields of `block` after all existing ones, keeping any earlier field with the
    /// same names. The block's checks carry over: a field that failed them is checked again by
    /// the encoder.
    public mutating func append(_ block: FieldBlock) {
        guard !block.entries.isEmpty else { return }
        let base = end
        block.bytes.withUnsafeBufferPointer { appendBytes($0) }
        if entries.capacity < entries.count + block.entries.count {
            entries.reserveCapacity(Swift.max(entries.count + block.entries.count, entries.count * 2))
        }
        for entry in block.entries {
            entries.append(
                Entry(
                    name: (entry.name.lowerBound + base)..<(entry.name.upperBound + base),
                    value: (entry.value.lowerBound + base)..<(entry.value.upperBound + base),
                    isChecked: entry.isChecked))
        }
    }

    /// Appends a field named `validatedName` (a token, as `add(validatedName:value:)` requires)
    /// with the value bytes of this list's first field named `sourceName`, without building a
    /// string: a proxy's `X-Forwarded-Host` from `Host`. The new field is checked when the source
    /// field was. Returns false, adding nothing, when no field is named `sourceName`.
    @discardableResult
    public mutating func add(validatedName name: String, valueOfFirstFieldNamed sourceName: String) -> Bool {
        guard let index = index(ofFieldNamed: sourceName) else { return false }
        let source = entries[index]
        let nameStart = end
        Self.withBytes(of: name) { nameBytes in
            assert(Self.isValidName(nameBytes), "a header field name passed as validated is not a token")
            appendBytes(nameBytes)
        }
        let valueStart = end
        let needed = valueStart + source.value.count
        if needed > bytes.count { growBytes(toAtLeast: needed) }
        if !source.value.isEmpty {
            // The source bytes lie before `end`, so they do not overlap the bytes written after it.
            bytes.withUnsafeMutableBufferPointer { storage in
                (storage.baseAddress! + valueStart).update(
                    from: storage.baseAddress! + source.value.lowerBound, count: source.value.count)
            }
        }
        end = needed
        entries.append(Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: source.isChecked))
        return true
    }

    /// Appends a field whose name and value the caller vouches for, so that the encoder writes it
    /// without checking it again on every message. Use it for constant names and values, and for
    /// values built only from validated bytes (digits, a parsed and checked field, base64 or
    /// percent-encoded output). Anything taken from a client or an upstream as it arrived must go
    /// through `add(name:value:)`, which the encoder checks.
    ///
    /// The caller guarantees that `validatedName` is a non-empty token (RFC 9110 §5.6.2) and that
    /// `value` contains no CR, LF, NUL or other control character but HTAB. Debug builds check this;
    /// release builds do not, and an invalid field would reach the wire as it is.
    public mutating func add(validatedName name: String, value: String) {
        let nameStart = end
        Self.withBytes(of: name) { nameBytes in
            assert(Self.isValidName(nameBytes), "a header field name passed as validated is not a token")
            appendBytes(nameBytes)
        }
        let valueStart = end
        Self.withBytes(of: value) { valueBytes in
            assert(Self.isValidValue(valueBytes), "a header field value passed as validated is not valid")
            appendBytes(valueBytes)
        }
        entries.append(Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: true))
    }

    /// Appends a field as `add(validatedName:value:)` does, with the value given as bytes, for a
    /// caller that writes the value to a buffer instead of building a string.
    public mutating func add(validatedName name: String, valueBytes: UnsafeRawBufferPointer) {
        let nameStart = end
        Self.withBytes(of: name) { nameBytes in
            assert(Self.isValidName(nameBytes), "a header field name passed as validated is not a token")
            appendBytes(nameBytes)
        }
        let valueStart = end
        let value = valueBytes.assumingMemoryBound(to: UInt8.self)
        assert(Self.isValidValue(value), "a header field value passed as validated is not valid")
        appendBytes(value)
        entries.append(Entry(name: nameStart..<valueStart, value: valueStart..<end, isChecked: true))
    }

    /// Replaces every field named `validatedName` with one field, as `replaceOrAdd(name:value:)`
    /// does, for a name and value the caller vouches for as `add(validatedName:value:)` describes.
    /// The replaced field keeps its name spelling, which equals the token `validatedName` up to
    /// ASCII case and so is a token too.
    public mutating func replaceOrAdd(validatedName name: String, value: String) {
        guard let index = index(ofFieldNamed: name) else {
            add(validatedName: name, value: value)
            return
        }
        let old = entries[index]
        garbage += old.value.count
        let valueStart = end
        Self.withBytes(of: value) { valueBytes in
            assert(Self.isValidValue(valueBytes), "a header field value passed as validated is not valid")
            appendBytes(valueBytes)
        }
        entries[index].value = valueStart..<end
        entries[index].isChecked = true
        if self.index(ofFieldNamed: name, from: index + 1) != nil {
            removeEntries(from: index + 1) { storage, entry in Self.nameEquals(storage, entry, name) }
        }
        compactIfWasteful()
    }

    /// Appends `source` at `end` through a pointer, growing the storage when the spare bytes do not
    /// suffice. Writing through `withUnsafeMutableBufferPointer` copies storage shared with another
    /// list first, as any mutation of an array does.
    @inline(__always)
    private mutating func appendBytes(_ source: UnsafeBufferPointer<UInt8>) {
        guard let sourceStart = source.baseAddress, !source.isEmpty else { return }
        let needed = end + source.count
        if needed > bytes.count { growBytes(toAtLeast: needed) }
        let start = end
        bytes.withUnsafeMutableBufferPointer { storage in
            (storage.baseAddress! + start).update(from: sourceStart, count: source.count)
        }
        end = needed
    }

    /// Replaces the storage with one of at least `count` bytes. It grows geometrically, so a run of
    /// additions reallocates rarely. The bytes in use are kept and the rest is zero.
    private mutating func growBytes(toAtLeast count: Int) {
        let size = Swift.max(count, bytes.count * 2, 256)
        var grown = Self.zeroedStorage(count: size)
        let used = end
        if used > 0 {
            bytes.withUnsafeBufferPointer { old in
                grown.withUnsafeMutableBufferPointer { new in
                    new.baseAddress!.update(from: old.baseAddress!, count: used)
                }
            }
        }
        bytes = grown
    }

    /// Returns a new array of `count` zero bytes. It is built from a reserved array and copies of a constant
    /// block of zeros because `Array(unsafeUninitializedCapacity:)` and `Array(repeating:count:)`
    /// reach an unspecialised allocation in the standard library that measured about 540
    /// instructions, more than twice this.
    private static func zeroedStorage(count: Int) -> [UInt8] {
        var storage: [UInt8] = []
        storage.reserveCapacity(count)
        var remaining = count
        while remaining > 0 {
            let step = Swift.min(remaining, zeros.count)
            zeros.withUnsafeBufferPointer { storage.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<step])) }
            remaining -= step
        }
        return storage
    }

    private static let zeros = [UInt8](repeating: 0, count: 1024)

    /// Reserves room for `fields` more fields with `bytes` more bytes of names and values, so a
    /// caller that edits a copied list (a proxy building the upstream head) copies it once.
    public mutating func reserveCapacity(fields: Int, bytes count: Int) {
        entries.reserveCapacity(entries.count + fields)
        if end + count > bytes.count { growBytes(toAtLeast: end + count) }
    }

    /// Removes every field named `name` and appends one field with `value`. The field keeps the
    /// place and the name spelling of the first one it replaces.
    public mutating func replaceOrAdd(name: String, value: String) {
        guard let index = index(ofFieldNamed: name) else {
            add(name: name, value: value)
            return
        }
        let old = entries[index]
        garbage += old.value.count
        let valueStart = end
        Self.withBytes(of: value) { appendBytes($0) }
        // The name bytes stay as they were checked; only the value needs checking again.
        entries[index].value = valueStart..<end
        entries[index].isChecked = old.isChecked && Self.withBytes(of: value) { Self.isValidValue($0) }
        if self.index(ofFieldNamed: name, from: index + 1) != nil {
            removeEntries(from: index + 1) { storage, entry in Self.nameEquals(storage, entry, name) }
        }
        compactIfWasteful()
    }

    // MARK: Removing

    /// Removes every field named `name`.
    public mutating func remove(name: String) {
        // Checking first keeps a list shared with another copy from being copied when nothing goes.
        guard let first = index(ofFieldNamed: name) else { return }
        removeEntries(from: first) { storage, entry in Self.nameEquals(storage, entry, name) }
    }

    /// Removes every field for which `shouldRemove` returns true.
    public mutating func removeAll(where shouldRemove: (Field) throws -> Bool) rethrows {
        var kept: [Entry] = []
        kept.reserveCapacity(entries.count)
        for index in entries.indices {
            if try shouldRemove(self[index]) {
                garbage += entries[index].name.count + entries[index].value.count
            } else {
                kept.append(entries[index])
            }
        }
        if kept.count != entries.count { entries = kept }
    }

    /// Removes every field whose name bytes (as received, not lowercased) make `shouldRemove`
    /// return true. Unlike `removeAll(where:)` it builds no strings, so the proxy's per-request
    /// header filters use it. Leaves the list untouched, storage included, when nothing matches.
    public mutating func removeFields(whereName shouldRemove: (UnsafeBufferPointer<UInt8>) -> Bool) {
        let first: Int? = bytes.withUnsafeBufferPointer { storage in
            entries.firstIndex { shouldRemove(UnsafeBufferPointer(rebasing: storage[$0.name])) }
        }
        guard let first else { return }
        removeEntries(from: first) { storage, entry in shouldRemove(UnsafeBufferPointer(rebasing: storage[entry.name]))
        }
    }

    /// A new list with the fields whose name bytes make `keep` return true, in order, and room for
    /// `fields` more fields with `bytes` more bytes of names and values. Kept fields stay checked
    /// when they were, and the new list contains no bytes of dropped fields. A proxy builds its
    /// forwarded head with one call instead of a copy followed by removals and replacements,
    /// each of which may copy the storage or leave dead bytes in it.
    public func filtered(
        reservingFields fields: Int, bytes count: Int, keepingName keep: (UnsafeBufferPointer<UInt8>) -> Bool
    ) -> HTTPHeaders {
        var result = HTTPHeaders()
        result.replaceFields(
            withFieldsOf: self, reservingFields: fields, bytes: count, first: nil,
            keepingField: { name, _ in keep(name) })
        return result
    }

    /// `filtered(reservingFields:bytes:keepingName:)` with the field `name: value` first, ahead of
    /// the kept fields: a proxy's replaced `Host`. The encoder checks it unless `isValidated` is
    /// true, which vouches for it as `add(validatedName:value:)` describes. Inserting it after
    /// filtering measured about 300 instructions, most of them in shifting the entries.
    public func filtered(
        reservingFields fields: Int, bytes count: Int, firstName name: String, value: String, isValidated: Bool,
        keepingName keep: (UnsafeBufferPointer<UInt8>) -> Bool
    ) -> HTTPHeaders {
        var result = HTTPHeaders()
        result.replaceFields(
            withFieldsOf: self, reservingFields: fields, bytes: count, first: (name, value, isValidated),
            keepingField: { name, _ in keep(name) })
        return result
    }

    /// Replaces the fields with those that `source.filtered(reservingFields:bytes:keepingName:)`
    /// returns, written into this list's storage when no other list shares it. A proxy that keeps
    /// the list of its previous forwarded head builds the next one without allocating. The spare
    /// room may hold bytes of earlier fields, which no field refers to.
    public mutating func replaceFields(
        withFieldsOf source: HTTPHeaders, reservingFields fields: Int, bytes count: Int,
        keepingName keep: (UnsafeBufferPointer<UInt8>) -> Bool
    ) {
        replaceFields(
            withFieldsOf: source, reservingFields: fields, bytes: count, first: nil,
            keepingField: { name, _ in keep(name) })
    }

    /// `replaceFields(withFieldsOf:reservingFields:bytes:keepingName:)` for a caller that decides
    /// on each field's name and value bytes, such as a proxy that reads the options of
    /// `Connection` while it copies the other fields.
    public mutating func replaceFields(
        withFieldsOf source: HTTPHeaders, reservingFields fields: Int, bytes count: Int,
        keepingField keep: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Bool
    ) {
        replaceFields(withFieldsOf: source, reservingFields: fields, bytes: count, first: nil, keepingField: keep)
    }

    /// `replaceFields(withFieldsOf:reservingFields:bytes:keepingName:)` with the field
    /// `name: value` first, as `filtered(reservingFields:bytes:firstName:value:isValidated:keepingName:)`
    /// puts it.
    public mutating func replaceFields(
        withFieldsOf source: HTTPHeaders, reservingFields fields: Int, bytes count: Int, firstName name: String,
        value: String, isValidated: Bool, keepingName keep: (UnsafeBufferPointer<UInt8>) -> Bool
    ) {
        replaceFields(
            withFieldsOf: source, reservingFields: fields, bytes: count, first: (name, value, isValidated),
            keepingField: { name, _ in keep(name) })
    }

    @inline(__always)
    private mutating func replaceFields(
        withFieldsOf source: HTTPHeaders, reservingFields fields: Int, bytes count: Int,
        first: (name: String, value: String, isValidated: Bool)?,
        keepingField keep: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool
    ) {
        // Both arrays are moved out, so that writing one while appending to the other does not
        // access `self` twice. Unshared, they keep their buffers. Shared, they are copied on write.
        var keptEntries: [Entry] = []
        swap(&keptEntries, &entries)
        keptEntries.removeAll(keepingCapacity: true)
        keptEntries.reserveCapacity(source.entries.count + fields + (first == nil ? 0 : 1))
        // The kept bytes are at most the source's bytes in use. The storage is sized for them, the
        // first field and the additions at once and written through a pointer, so a list without
        // room allocates it once.
        let firstSize = first.map { $0.name.utf8.count + $0.value.utf8.count } ?? 0
        let size = Swift.max(source.end + firstSize + count, 1)
        var keptBytes: [UInt8] = []
        swap(&keptBytes, &bytes)
        if keptBytes.count < size { keptBytes = Self.zeroedStorage(count: size) }
        var written = 0
        source.bytes.withUnsafeBufferPointer { storage in
            keptBytes.withUnsafeMutableBufferPointer { target in
                let base = target.baseAddress!
                if let first {
                    Self.withBytes(of: first.name) { nameBytes in
                        Self.withBytes(of: first.value) { valueBytes in
                            assert(!first.isValidated || Self.isValidName(nameBytes), "a validated name is not a token")
                            assert(
                                !first.isValidated || Self.isValidValue(valueBytes), "a validated value is not valid")
                            precondition(nameBytes.count + valueBytes.count == firstSize, "the first field changed")
                            if let source = nameBytes.baseAddress { base.update(from: source, count: nameBytes.count) }
                            if let source = valueBytes.baseAddress {
                                (base + nameBytes.count).update(from: source, count: valueBytes.count)
                            }
                            keptEntries.append(
                                Entry(
                                    name: 0..<nameBytes.count, value: nameBytes.count..<firstSize,
                                    isChecked: first.isValidated))
                        }
                    }
                    written = firstSize
                }
                for entry in source.entries
                where keep(
                    UnsafeBufferPointer(rebasing: storage[entry.name]),
                    UnsafeBufferPointer(rebasing: storage[entry.value]))
                {
                    precondition(written + entry.name.count + entry.value.count <= size, "header fields overlap")
                    let nameStart = written
                    if !entry.name.isEmpty {
                        (base + written).update(
                            from: storage.baseAddress! + entry.name.lowerBound, count: entry.name.count)
                        written += entry.name.count
                    }
                    if !entry.value.isEmpty {
                        (base + written).update(
                            from: storage.baseAddress! + entry.value.lowerBound, count: entry.value.count)
                        written += entry.value.count
                    }
                    let valueStart = nameStart + entry.name.count
                    keptEntries.append(
                        Entry(name: nameStart..<valueStart, value: valueStart..<written, isChecked: entry.isChecked))
                }
            }
        }
        entries = keptEntries
        bytes = keptBytes
        end = written
        garbage = 0
    }

    /// Calls `body` with the name bytes of every field, in order, read in place.
    public func forEachName(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries { body(UnsafeBufferPointer(rebasing: storage[entry.name])) }
        }
    }

    /// Whether a field's name bytes make `matches` return true.
    public func containsField(whereName matches: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        bytes.withUnsafeBufferPointer { storage in
            entries.contains { matches(UnsafeBufferPointer(rebasing: storage[$0.name])) }
        }
    }

    /// Removes the entries at or after `start` that `matches`, which the caller found to match at `start`.
    private mutating func removeEntries(
        from start: Int, where matches: (UnsafeBufferPointer<UInt8>, Entry) -> Bool
    ) {
        var removedBytes = 0
        bytes.withUnsafeBufferPointer { storage in
            var write = start
            for read in start..<entries.count {
                let entry = entries[read]
                if matches(storage, entry) {
                    removedBytes += entry.name.count + entry.value.count
                } else {
                    entries[write] = entry
                    write += 1
                }
            }
            entries.removeSubrange(write...)
        }
        garbage += removedBytes
        compactIfWasteful()
    }

    /// Copies the live bytes into a fresh array once dead ones make up most of it, so a list that
    /// is edited many times stays bounded.
    private mutating func compactIfWasteful() {
        guard garbage > 4096 && garbage * 2 > end else { return }
        var fresh: [UInt8] = []
        fresh.reserveCapacity(end - garbage)
        for index in entries.indices {
            let entry = entries[index]
            let nameStart = fresh.count
            fresh.append(contentsOf: bytes[entry.name])
            let valueStart = fresh.count
            fresh.append(contentsOf: bytes[entry.value])
            entries[index].name = nameStart..<valueStart
            entries[index].value = valueStart..<fresh.count
        }
        bytes = fresh
        end = fresh.count
        garbage = 0
    }

    // MARK: Lookups

    @inline(__always)
    private static func nameEquals(_ storage: UnsafeBufferPointer<UInt8>, _ entry: Entry, _ name: String) -> Bool {
        entry.name.count == name.utf8.count
            && withBytes(of: name) { ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: storage[entry.name]), $0) }
    }

    /// Returns the index of the first field named `name` at or after `start`. Lookups run dozens of
    /// times per proxied request, so the loop compares lengths before comparing bytes.
    @inline(__always)
    private func index(ofFieldNamed name: String, from start: Int = 0) -> Int? {
        Self.withBytes(of: name) { needle in
            bytes.withUnsafeBufferPointer { storage in
                var index = start
                while index < entries.count {
                    let range = entries[index].name
                    if range.count == needle.count
                        && ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: storage[range]), needle)
                    {
                        return index
                    }
                    index += 1
                }
                return nil
            }
        }
    }

    /// The number of fields whose name equals `lowercaseName` (lowercase ASCII) and the value
    /// bytes of the first. For framing checks, which must not build strings.
    func valueBytes(ofFieldsNamed lowercaseName: [UInt8]) -> (count: Int, first: ArraySlice<UInt8>?) {
        var count = 0
        var first: Range<Int>?
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries
            where HTTPFieldName.matches(UnsafeBufferPointer(rebasing: storage[entry.name]), lowercase: lowercaseName) {
                count += 1
                if first == nil { first = entry.value }
            }
        }
        return (count, first.map { bytes[$0] })
    }

    /// Calls `body` with the value bytes of each field whose name equals `lowercaseName`
    /// (lowercase ASCII), in order.
    func forEachValue(ofFieldsNamed lowercaseName: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries
            where HTTPFieldName.matches(UnsafeBufferPointer(rebasing: storage[entry.name]), lowercase: lowercaseName) {
                body(UnsafeBufferPointer(rebasing: storage[entry.value]))
            }
        }
    }

    /// Returns the value of the first field named `name`.
    public func first(name: String) -> String? {
        index(ofFieldNamed: name).map { string(entries[$0].value) }
    }

    /// Calls `body` with the value bytes of the first field named `name`, read in place without
    /// building a string, and returns its result; nil when no field is named `name`.
    public func withFirstValueBytes<Result>(
        name: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result
    ) rethrows -> Result? {
        guard let index = index(ofFieldNamed: name) else { return nil }
        let range = entries[index].value
        return try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// Calls `body` with the value bytes of each field named `name`, in order, read in place
    /// without building strings.
    public func forEachValueBytes(name: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        var next = 0
        while let index = index(ofFieldNamed: name, from: next) {
            let range = entries[index].value
            try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[range])) }
            next = index + 1
        }
    }

    /// Returns the value of the first field named `name` and whether that field is known to be
    /// valid: parsed from a message, or added with `add(validatedName:value:)`. A caller copying
    /// the value into another list may then add it as validated too.
    public func firstValue(name: String) -> (value: String, isValidated: Bool)? {
        index(ofFieldNamed: name).map { (string(entries[$0].value), entries[$0].isChecked) }
    }

    /// Returns the values of every field named `name`, in order.
    public subscript(name: String) -> [String] {
        var values: [String] = []
        var next = 0
        while let index = index(ofFieldNamed: name, from: next) {
            values.append(string(entries[index].value))
            next = index + 1
        }
        return values
    }

    public func contains(name: String) -> Bool {
        index(ofFieldNamed: name) != nil
    }

    /// Returns the number of fields named `name`.
    public func count(name: String) -> Int {
        var count = 0
        var next = 0
        while let index = index(ofFieldNamed: name, from: next) {
            count += 1
            next = index + 1
        }
        return count
    }

    /// Calls `body` with each comma-separated element of every field named `name`, trimmed of
    /// spaces and tabs, with empty elements skipped (RFC 9110 §5.6.1), until it returns false.
    private func forEachToken(name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) {
        var next = 0
        while let index = index(ofFieldNamed: name, from: next) {
            next = index + 1
            let value = entries[index].value
            let keepGoing = bytes.withUnsafeBufferPointer { storage in
                var start = value.lowerBound
                while start < value.upperBound {
                    var end = start
                    while end < value.upperBound, storage[end] != ASCII.comma { end += 1 }
                    var lower = start
                    var upper = end
                    while lower < upper, ASCII.isWhitespace(storage[lower]) { lower += 1 }
                    while upper > lower, ASCII.isWhitespace(storage[upper - 1]) { upper -= 1 }
                    if lower < upper && !body(UnsafeBufferPointer(rebasing: storage[lower..<upper])) { return false }
                    start = end + 1
                }
                return true
            }
            if !keepGoing { return }
        }
    }

    /// The comma-separated list elements of every field named `name`, trimmed and lowercased, with
    /// empty elements dropped (RFC 9110 §5.6.1). Suits `Connection`, `Transfer-Encoding`, `Upgrade`.
    public func tokens(name: String) -> [String] {
        var result: [String] = []
        forEachToken(name: name) { element in
            result.append(String(decoding: element.map(ASCII.lowercased), as: UTF8.self))
            return true
        }
        return result
    }

    /// Returns whether a comma-separated list field named `name` contains `token`, compared case-insensitively.
    public func containsToken(_ token: String, name: String) -> Bool {
        // Every response and request checks this (`Connection: close`), so it is one pass over the
        // names that walks the elements of a matching field in place, without closures.
        Self.withBytes(of: name) { wantedName in
            Self.withBytes(of: token) { needle in
                bytes.withUnsafeBufferPointer { storage in
                    for entry in entries
                    where entry.name.count == wantedName.count
                        && ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: storage[entry.name]), wantedName)
                    {
                        if Self.list(storage, entry.value, containsIgnoringCase: needle) { return true }
                    }
                    return false
                }
            }
        }
    }

    /// Returns whether a message with these fields lets its connection persist (RFC 9112 §9.3):
    /// HTTP/1.1 and later unless a `Connection` field lists `close`, HTTP/1.0 only when one lists
    /// `keep-alive`. One pass reads each field once. Looking up `Connection` and then each option
    /// read the fields up to three times, about 200 instructions more per proxied response.
    func allowsPersistence(isHTTP11OrLater: Bool) -> Bool {
        var listsClose = false
        var listsKeepAlive = false
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries
            where entry.name.count == 10
                && HTTPFieldName.matches(UnsafeBufferPointer(rebasing: storage[entry.name]), lowercase: "connection")
            {
                // The comma-separated elements, trimmed of spaces and tabs (RFC 9110 §5.6.1).
                let value = entry.value
                var start = value.lowerBound
                while start < value.upperBound {
                    var end = start
                    while end < value.upperBound, storage[end] != ASCII.comma { end += 1 }
                    var lower = start
                    var upper = end
                    while lower < upper, ASCII.isWhitespace(storage[lower]) { lower += 1 }
                    while upper > lower, ASCII.isWhitespace(storage[upper - 1]) { upper -= 1 }
                    let element = UnsafeBufferPointer(rebasing: storage[lower..<upper])
                    if HTTPFieldName.matches(element, lowercase: "close") {
                        listsClose = true
                    } else if HTTPFieldName.matches(element, lowercase: "keep-alive") {
                        listsKeepAlive = true
                    }
                    start = end + 1
                }
            }
        }
        if listsClose { return false }
        return isHTTP11OrLater || listsKeepAlive
    }

    /// Whether the comma-separated elements of `storage[range]`, trimmed of spaces and tabs
    /// (RFC 9110 §5.6.1), include `needle` with ASCII letters folded. An empty needle matches nothing.
    @inline(__always)
    private static func list(
        _ storage: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
        containsIgnoringCase needle: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        guard !needle.isEmpty else { return false }
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start
            while end < range.upperBound, storage[end] != ASCII.comma { end += 1 }
            var lower = start
            var upper = end
            while lower < upper, ASCII.isWhitespace(storage[lower]) { lower += 1 }
            while upper > lower, ASCII.isWhitespace(storage[upper - 1]) { upper -= 1 }
            if upper - lower == needle.count
                && ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: storage[lower..<upper]), needle)
            {
                return true
            }
            start = end + 1
        }
        return false
    }

    // MARK: Encoding

    /// Whether `value` may be written as a field value: no CR, LF, NUL or other control but HTAB.
    @inline(__always)
    static func isValidValue(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        ASCII.allFieldValueCharacters(value)
    }

    /// Whether `name` may be written as a field name: a non-empty token.
    @inline(__always)
    static func isValidName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty else { return false }
        for byte in name where !ASCII.isTokenCharacter(byte) { return false }
        return true
    }

    /// The kind of error of the first field that cannot be written, checking only the fields the
    /// parser did not check; nil when every field is valid.
    func firstInvalidFieldKind() -> HTTPEncodingError.Kind? {
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries where !entry.isChecked {
                guard Self.isValidName(UnsafeBufferPointer(rebasing: storage[entry.name])) else {
                    return .invalidHeaderName
                }
                guard Self.isValidValue(UnsafeBufferPointer(rebasing: storage[entry.value])) else {
                    return .invalidHeaderValue
                }
            }
            return nil
        }
    }

    /// The number of bytes `writeFieldLines` writes: every field as `name: value` CRLF.
    var fieldLinesSize: Int {
        var size = 0
        for entry in entries { size += entry.name.count + entry.value.count + 4 }
        return size
    }

    /// Writes each field as `name: value` CRLF. Call `firstInvalidFieldKind()` first.
    func writeFieldLines(to writer: inout ByteWriter) {
        bytes.withUnsafeBufferPointer { storage in
            writer.writeFieldLines(entries, from: storage)
        }
    }
}

extension HTTPHeaders: Hashable {
    /// Lists are equal when they hold the same fields, byte for byte, in the same order.
    public static func == (left: HTTPHeaders, right: HTTPHeaders) -> Bool {
        guard left.entries.count == right.entries.count else { return false }
        return left.bytes.withUnsafeBufferPointer { leftStorage in
            right.bytes.withUnsafeBufferPointer { rightStorage in
                for (leftEntry, rightEntry) in zip(left.entries, right.entries) {
                    guard leftStorage[leftEntry.name].elementsEqual(rightStorage[rightEntry.name]),
                        leftStorage[leftEntry.value].elementsEqual(rightStorage[rightEntry.value])
                    else { return false }
                }
                return true
            }
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        bytes.withUnsafeBufferPointer { storage in
            for entry in entries {
                hasher.combine(entry.name.count)
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: storage[entry.name])))
                hasher.combine(entry.value.count)
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: storage[entry.value])))
            }
        }
    }
}

extension HTTPHeaders.Field {
    /// Returns whether this field's name equals `name`, compared case-insensitively.
    public func hasName(_ name: String) -> Bool {
        self.name.utf8.count == name.utf8.count && ASCII.equalsIgnoringCase(self.name, name)
    }
}

extension HTTPHeaders {
    /// The hop-by-hop fields of RFC 9110 §7.6.1 plus the legacy `Proxy-Connection` and `Keep-Alive`,
    /// the list Go's `httputil.ReverseProxy` removes.
    public static let hopByHopFieldNames = [
        "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade",
    ]

    /// `hopByHopFieldNames` as lowercase bytes.
    private static let hopByHopLowercaseNames: [[UInt8]] = hopByHopFieldNames.map { Array(ASCII.lowercased($0).utf8) }

    /// Removes the hop-by-hop fields and every field that `Connection` names, as a proxy must before
    /// forwarding a message (RFC 9110 §7.6.1).
    public mutating func removeHopByHopFields() {
        let named = contains(name: "Connection") ? tokens(name: "Connection").map { Array($0.utf8) } : []
        removeFields(whereName: { name in
            for candidate in Self.hopByHopLowercaseNames where HTTPFieldName.matches(name, lowercase: candidate) {
                return true
            }
            for candidate in named where HTTPFieldName.matches(name, lowercase: candidate) { return true }
            return false
        })
    }
}

/// Case-insensitive comparisons of field-name bytes, for the name filters of
/// `HTTPHeaders.removeFields(whereName:)` and `containsField(whereName:)`.
public enum HTTPFieldName {
    /// Returns whether `text` is a non-empty token (RFC 9110 section 5.6.2), as a field name must be.
    public static func isValidName(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in !bytes.isEmpty && bytes.allSatisfy(ASCII.isTokenCharacter) }
    }

    /// Returns whether `text` may be a field value: no control character other than HTAB, no DEL.
    public static func isValidValue(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in bytes.allSatisfy(ASCII.isFieldValueCharacter) }
    }

    /// Returns whether `name` equals `lowercase` (lowercase ASCII) ignoring ASCII case. Only
    /// `A`-`Z` are folded, so no other byte can pass for a letter or a hyphen.
    @inlinable
    public static func matches(_ name: UnsafeBufferPointer<UInt8>, lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { expected in
            guard name.count == expected.count else { return false }
            for index in 0..<expected.count {
                let byte = name[index]
                let folded = byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
                if folded != expected[index] { return false }
            }
            return true
        }
    }

    /// Whether `name` equals `lowercase` (lowercase ASCII bytes) with ASCII letters folded.
    @inline(__always)
    public static func matches(_ name: UnsafeBufferPointer<UInt8>, lowercase: [UInt8]) -> Bool {
        name.count == lowercase.count && hasPrefix(name, lowercase: lowercase)
    }

    /// Whether `name` starts with `lowercase` (lowercase ASCII bytes) with ASCII letters folded.
    @inline(__always)
    public static func hasPrefix(_ name: UnsafeBufferPointer<UInt8>, lowercase: [UInt8]) -> Bool {
        guard name.count >= lowercase.count else { return false }
        return lowercase.withUnsafeBufferPointer { expected in
            guard let nameStart = name.baseAddress, let expectedStart = expected.baseAddress else { return true }
            return ByteMasks.lowercasedEquals(nameStart, expectedStart, count: expected.count)
        }
    }
}
