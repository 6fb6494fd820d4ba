import PomeriumConfig
import PomeriumCrypto

/// The HTTP listener's TLS context from `certificate`/`certificate_key` (or their `_file` forms)
/// and `certificates`, or nil with `insecure_server`.
public enum ServerTLS {
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func makeContext(options: Options) throws(Problem) -> TLSServerContext? {
        if options.insecureServer { return nil }
        guard !options.tlsCertificates.isEmpty else {
            throw Problem(
                description:
                    "no server certificate: set certificate_file and certificate_key_file (or certificate and "
                    + "certificate_key, or certificates), or set insecure_server: true behind a TLS-terminating "
                    + "load balancer")
        }
        let sources = options.tlsCertificates.map {
            TLSCertificateSource.pem(
                certificateChain: Array($0.certificatePEM.utf8), privateKey: Array($0.keyPEM.utf8))
        }
        do {
            return try TLSServerContext(
                configuration: TLSServerConfiguration(certificates: sources, applicationProtocols: ["http/1.1"]))
        } catch {
            throw Problem(
                description:
                    "cannot use the server certificate: \(error); check certificate_file and certificate_key_file "
                    + "(or certificate, certificate_key and certificates): the key must match the certificate")
        }
    }
}
