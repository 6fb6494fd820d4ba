/// The version and source revision of this build. The revision is filled in by `scripts/build-info.sh`
/// at build time through the generated `BuildRevision.swift`.
public enum BuildInfo {
    /// The product version, in the Pomerium line this implementation follows.
    public static let version = "0.7.6-swift.1"

    /// The git revision the binary was built from, or `unknown` outside a git checkout.
    public static var revision: String { buildRevision }

    /// The `User-Agent` and `/ping` text: `pomerium/<version> (+<url>; <revision>; swift)`.
    public static var userAgent: String {
        "pomerium/\(version) (+https://www.pomerium.io; \(revision); swift)"
    }
}
