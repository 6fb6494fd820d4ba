import PomeriumConfig
import PomeriumCrypto

/// The HTTP listener's TLS context from `certificate`/`certificate_key` (or their `_file` forms)
/// and `certificates`, or nil with `insecure_server`.
public enum ServerTLS {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The settings that name the listener's certificates, for messages.
    static let certificateKeys =
        "certificate_file and certificate_key_file (or certificate and certificate_key, or certificates)"

    public static func makeContext(options: Options) throws(Problem) -> TLSServerContext? {
        if options.insecureServer { return nil }
        let sources = try certificateSources(options: options)
        do {
            return try TLSServerContext(
                configuration: TLSServerConfiguration(certificates: sources, applicationProtocols: ["http/1.1"]))
        } catch {
            throw Problem(
                description:
                    "cannot use the server certificate: \(error); check \(certificateKeys): the key must match the "
                    + "certificate")
        }
    }

    /// Swaps the certificates of a running listener for those of `options`. On an error the
    /// listener keeps the certificates it has.
    public static func replaceCertificates(in context: TLSServerContext, options: Options) throws(Problem) {
        let sources = try certificateSources(options: options)
        do {
            try context.replaceCertificates(sources)
        } catch {
            throw Problem(
                description:
                    "cannot use the reloaded server certificate: \(error); check \(certificateKeys): the key must "
                    + "match the certificate. The listener keeps its previous certificates")
        }
    }

    private static func certificateSources(options: Options) throws(Problem) -> [TLSCertificateSource] {
        guard !options.tlsCertificates.isEmpty else {
            throw Problem(
                description:
                    "no server certificate: set \(certificateKeys), or set insecure_server: true behind a "
                    + "TLS-terminating load balancer")
        }
        return options.tlsCertificates.map {
            TLSCertificateSource.pem(
                certificateChain: Array($0.certificatePEM.utf8), privateKey: Array($0.keyPEM.utf8))
        }
    }
}
