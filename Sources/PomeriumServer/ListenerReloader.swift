import PomeriumConfig
import PomeriumCrypto
import PomeriumHTTPServer
import PomeriumLogging
import Synchronization

/// The HTTP listener's timeouts in seconds, zero meaning none, from `timeout_read_header`,
/// `timeout_read`, `timeout_write` and `timeout_idle`.
public struct ServerTimeouts: Sendable, Equatable {
    public let readHeader: Double
    public let read: Double
    public let write: Double
    public let idle: Double

    public init(options: Options) {
        readHeader = Self.seconds(options.timeoutReadHeader)
        read = Self.seconds(options.timeoutRead)
        write = Self.seconds(options.timeoutWrite)
        idle = Self.seconds(options.timeoutIdle)
    }

    public init(_ configuration: HTTPServerConfiguration) {
        readHeader = configuration.readHeaderTimeout
        read = configuration.readTimeout
        write = configuration.writeTimeout
        idle = configuration.idleTimeout
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Applies the listener settings of a reloaded snapshot to the running HTTP server: the
/// certificates with their SNI names, the timeouts and `log_level`. Connections accepted after
/// the reload get the new values; open connections keep their certificate and timeouts.
public final class ListenerReloader: Sendable {
    private let server: HTTPServer
    private let tls: TLSServerContext?
    private let logLevel: AdjustableLogLevel
    private let logger: Logger
    private let appliedCertificates: Mutex<[TLSCertificatePair]>

    /// `options` are the settings the server was started with.
    public init(
        server: HTTPServer, tls: TLSServerContext?, options: Options,
        logLevel: AdjustableLogLevel = LoggingBootstrap.processLevel, logger: Logger
    ) {
        self.server = server
        self.tls = tls
        self.logLevel = logLevel
        self.logger = logger
        appliedCertificates = Mutex(options.tlsCertificates)
    }

    /// Applies `options`; returns false when the certificates could not be replaced, in which
    /// case the listener keeps its previous ones and the error is logged.
    @discardableResult
    public func apply(_ options: Options) -> Bool {
        let level = LoggingBootstrap.level(options.logLevel)
        if logLevel.level != level {
            logLevel.set(level)
            logger.info("log level changed", metadata: ["log_level": .string(options.logLevel.rawValue)])
        }

        let timeouts = ServerTimeouts(options: options)
        if ServerTimeouts(server.currentConfiguration) != timeouts {
            server.updateTimeouts(
                readHeader: timeouts.readHeader, read: timeouts.read, write: timeouts.write, idle: timeouts.idle)
            logger.info(
                "listener timeouts changed; new connections use them",
                metadata: [
                    "timeout_read_header": .string("\(timeouts.readHeader)s"),
                    "timeout_read": .string("\(timeouts.read)s"),
                    "timeout_write": .string("\(timeouts.write)s"),
                    "timeout_idle": .string("\(timeouts.idle)s"),
                ])
        }

        // A listener started with insecure_server has no TLS to update; that key needs a restart.
        guard let tls, !options.insecureServer else { return true }
        guard appliedCertificates.withLock({ $0 != options.tlsCertificates }) else { return true }
        do throws(ServerTLS.Problem) {
            try ServerTLS.replaceCertificates(in: tls, options: options)
        } catch {
            logger.error("\(error.description)")
            return false
        }
        appliedCertificates.withLock { $0 = options.tlsCertificates }
        logger.info(
            "listener certificates replaced; new connections use them",
            metadata: ["certificates": .string("\(options.tlsCertificates.count)")])
        return true
    }
}
