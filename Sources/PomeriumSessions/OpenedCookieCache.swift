import Synchronization

/// Sessions already opened, keyed by the exact cookie text that opened them, so a browser's
/// repeated requests skip the key derivation, decryption and JSON decoding. Only text that once
/// passed authenticated decryption is stored, and a hit requires the whole text to be equal, so
/// the cache cannot admit a value the codec would reject. Bounded; the oldest entries go first.
final class OpenedCookieCache: Sendable {
    private struct Entries {
        var sessions: [String: SessionState] = [:]
        var order: [String] = []
        var head = 0
    }

    private let entries = Mutex(Entries())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func session(for text: String) -> SessionState? {
        guard capacity > 0 else { return nil }
        return entries.withLock { $0.sessions[text] }
    }

    func store(_ session: SessionState, for text: String) {
        guard capacity > 0 else { return }
        entries.withLock { state in
            guard state.sessions.updateValue(session, forKey: text) == nil else { return }
            state.order.append(text)
            while state.sessions.count > capacity, state.head < state.order.count {
                state.sessions[state.order[state.head]] = nil
                state.head += 1
            }
            if state.head > capacity {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    var count: Int { entries.withLock { $0.sessions.count } }
}
