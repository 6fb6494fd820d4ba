import CLinux
import Foundation
import Glibc
import PomeriumCore
import PomeriumLogging
import Synchronization

/// Watches the config file's directory with inotify and reloads after changes settle. Watching the
/// directory, not the file, catches editors that replace the file and the Kubernetes ConfigMap
/// update, which swaps the `..data` symlink and never writes the file itself. The directories of
/// the files that `_file` settings name (certificates, keys) are watched too, so a renewed
/// certificate reloads while config.yaml stays the same.
public final class ConfigWatcher: Sendable {
    public let reloader: ConfigReloader
    /// How long the directory must stay quiet after an event before the reload runs.
    public let debounce: Duration
    private let directory: String
    private let logger: Logger
    private let onOutcome: @Sendable (ReloadOutcome) -> Void
    private let descriptors: Mutex<(inotify: Int32, wake: Int32)?> = Mutex(nil)
    /// The directory paths of each inotify watch descriptor. inotify returns the same descriptor
    /// for one directory named two ways (`.` and its absolute path), so a descriptor may have several.
    private let watchedDirectories = Mutex<[Int32: Set<String>]>([:])
    private let finished = Mutex<Bool>(false)

    /// A watcher for the loader's config file; `onOutcome` runs on the watcher thread after each reload.
    public init(
        reloader: ConfigReloader, debounce: Duration = .milliseconds(250), logger: Logger,
        onOutcome: @escaping @Sendable (ReloadOutcome) -> Void = { _ in }
    ) {
        self.reloader = reloader
        self.debounce = debounce
        self.logger = logger
        self.onOutcome = onOutcome
        let path = reloader.loader.configFile ?? "."
        let parent = (path as NSString).deletingLastPathComponent
        self.directory = parent.isEmpty ? "." : parent
    }

    /// Starts the watcher thread.
    public func start() throws(PomeriumError) {
        let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else {
            throw PomeriumError("config-watch", "inotify_init1 failed: \(String(cString: strerror(CLinux_errno())))")
        }
        let watch = inotify_add_watch(inotify, directory, Self.mask)
        guard watch >= 0 else {
            let reason = String(cString: strerror(CLinux_errno()))
            close(inotify)
            throw PomeriumError("config-watch", "cannot watch directory \"\(directory)\": \(reason)")
        }
        watchedDirectories.withLock { _ = $0[watch, default: []].insert(directory) }
        let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wake >= 0 else {
            close(inotify)
            throw PomeriumError("config-watch", "eventfd failed: \(String(cString: strerror(CLinux_errno())))")
        }
        descriptors.withLock { $0 = (inotify, wake) }
        watchReferencedDirectories(inotify)
        let thread = Thread { [self] in
            self.run(inotify: inotify, wake: wake)
        }
        thread.name = "pomerium-config-watcher"
        thread.start()
        logger.info("watching the config directory for changes", metadata: ["directory": .string(directory)])
    }

    private static let mask = UInt32(
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB)

    /// The directories of the files the current snapshot read through `_file` settings.
    var referencedDirectories: [String] {
        let paths = reloader.holder.current.inputs.referencedFiles.keys
        let directories = Set(
            paths.map { path in
                let parent = (path as NSString).deletingLastPathComponent
                return parent.isEmpty ? "." : parent
            })
        return directories.subtracting([directory]).sorted()
    }

    /// Adds a watch for each referenced directory; inotify keeps one watch per directory, so
    /// calling this again after a reload only adds the new ones. A directory that cannot be
    /// watched is logged; the file is still compared at every reload the config directory triggers.
    private func watchReferencedDirectories(_ inotify: Int32) {
        for path in referencedDirectories {
            let watch = inotify_add_watch(inotify, path, Self.mask)
            if watch >= 0 {
                watchedDirectories.withLock { _ = $0[watch, default: []].insert(path) }
            } else {
                logger.warning(
                    "cannot watch the directory of a referenced file; changes there need a config change or restart",
                    metadata: [
                        "directory": .string(path), "error": .string(String(cString: strerror(CLinux_errno()))),
                    ])
            }
        }
    }

    /// The paths whose changes matter: the config file, the files the snapshot read, and for
    /// each of them the first component of a symbolic link target, which is `..data` in a
    /// Kubernetes ConfigMap. Other files in the same directories, such as a log file written
    /// next to config.yaml, are ignored, so they cannot trigger reloads.
    var relevantPaths: Set<String> {
        var files = Array(reloader.holder.current.inputs.referencedFiles.keys)
        if let configFile = reloader.loader.configFile { files.append(configFile) }
        var paths = Set<String>()
        for file in files {
            let parent = (file as NSString).deletingLastPathComponent
            let folder = parent.isEmpty ? "." : parent
            paths.insert(Self.join(folder, (file as NSString).lastPathComponent))
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: file),
                !target.hasPrefix("/"), let first = target.split(separator: "/").first
            {
                paths.insert(Self.join(folder, String(first)))
            }
        }
        return paths
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Returns whether the events in `bytes` (a read from the inotify descriptor) touch a relevant path.
    /// A queue overflow counts as relevant, because events were lost.
    func eventsAreRelevant(_ bytes: ArraySlice<UInt8>) -> Bool {
        let relevant = relevantPaths
        let directories = watchedDirectories.withLock { $0 }
        var offset = bytes.startIndex
        // struct inotify_event: int32 wd, uint32 mask, uint32 cookie, uint32 len, then len name bytes.
        while bytes.endIndex - offset >= 16 {
            func word(_ at: Int) -> UInt32 {
                (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + at + $1]) << (8 * $1) }
            }
            let watch = Int32(bitPattern: word(0))
            let mask = word(4)
            let length = Int(word(12))
            let nameStart = offset + 16
            guard bytes.endIndex - nameStart >= length else { return true }
            if mask & UInt32(IN_Q_OVERFLOW) != 0 { return true }
            let nameBytes = bytes[nameStart..<nameStart + length].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            for directory in directories[watch] ?? [] where relevant.contains(Self.join(directory, name)) {
                return true
            }
            offset = nameStart + length
        }
        return false
    }

    /// Stops the watcher thread; a reload already running completes first.
    public func stop() {
        guard let wake = descriptors.withLock({ $0?.wake }) else { return }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Whether the watcher thread has exited.
    public var hasStopped: Bool { finished.withLock { $0 } }

    private func run(inotify: Int32, wake: Int32) {
        defer {
            close(inotify)
            close(wake)
            descriptors.withLock { $0 = nil }
            finished.withLock { $0 = true }
        }
        // A directory that never goes quiet (a log file next to the config) would postpone the
        // reload forever, so a reload also runs once changes have been pending this long.
        let maximumDelay = debounce * 10
        var firstEvent: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            var timeout: Int32 = -1
            if let firstEvent {
                let remaining = maximumDelay - (ContinuousClock.now - firstEvent)
                timeout = max(1, min(Self.milliseconds(debounce), Self.milliseconds(remaining)))
            }
            var polls = [
                pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&polls, 2, timeout)
            if ready < 0 {
                if CLinux_errno() == EINTR { continue }
                let reason = String(cString: strerror(CLinux_errno()))
                logger.error("config watcher stopped: poll failed", metadata: ["error": .string(reason)])
                return
            }
            if polls[1].revents != 0 { return }
            if polls[0].revents != 0 {
                var relevant = false
                while true {
                    let count = read(inotify, &buffer, buffer.count)
                    if count <= 0 { break }
                    if !relevant { relevant = eventsAreRelevant(buffer[0..<count]) }
                }
                if relevant, firstEvent == nil { firstEvent = .now }
            }
            guard let pendingSince = firstEvent else { continue }
            if ready == 0 || ContinuousClock.now - pendingSince >= maximumDelay {
                firstEvent = nil
                let outcome = reloader.reload()
                watchReferencedDirectories(inotify)
                onOutcome(outcome)
            }
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
