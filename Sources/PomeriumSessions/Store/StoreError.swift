/// A failure of a key-value store. The message names the store and the fix, and never contains a
/// stored value, a password or a lock token.
public struct StoreError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Equatable {
        /// The store cannot be reached or opened; retrying later may succeed.
        case unavailable
        /// The store did not reply within the configured timeout.
        case timeout
        /// The store has no room for the write (Redis `maxmemory`, LMDB map size, memory budget).
        case full
        /// The key is empty, too long or contains a control character.
        case invalidKey
        /// The value is larger than `StoreLimits.maximumValueBytes` or than the store can hold.
        case invalidValue
        /// The TTL is shorter than `StoreLimits.minimumTTL` or too long to represent.
        case invalidTTL
        /// A setting such as `cache_store_address` or `cache_store_path` is invalid.
        case invalidConfiguration
        /// The store rejected the credentials (Redis AUTH).
        case authenticationFailed
        /// The store sent a reply this client does not understand, or failed internally.
        case protocolError
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
