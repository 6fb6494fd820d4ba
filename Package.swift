// swift-tools-version:6.0
// The Pomerium access proxy in Swift. The package has no package dependencies: C libraries come
// from Debian through the system-library targets at the top of the graph.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// Settings of the modules every request runs through (PomeriumHTTP, PomeriumNet,
/// PomeriumHTTPServer, PomeriumHTTPClient, PomeriumReverseProxy, and for authenticated requests
/// PomeriumServer, PomeriumProxy, PomeriumAuthorize, PomeriumSessions). Release builds drop the
/// runtime exclusivity checks there: callgrind counted 78,100 instructions per proxied request
/// with them and 72,400 without (`NetBench proxy --loops 1`, 5,000 keep-alive requests, x86-64),
/// and 106,100 against 105,300 per authenticated request through the pomerium binary. Debug builds
/// keep the checks, so the tests still trap on an overlapping access; the compile-time checks stay
/// in both.
let hotPathSwiftSettings: [SwiftSetting] =
    swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "pomerium",
    products: [
        .executable(name: "pomerium", targets: ["pomerium"]),
        .executable(name: "pomerium-cli", targets: ["pomerium-cli"]),
    ],
    targets: [
        // MARK: C libraries from Debian

        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // No pkgConfig: hiredis's .pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM drops with a warning.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // Linux headers that Glibc's module map leaves out: epoll, eventfd, timerfd, inotify, accept4.
        .systemLibrary(name: "CLinux"),

        // MARK: Foundation layers

        .target(name: "PomeriumLogging", swiftSettings: swiftSettings),
        .target(name: "PomeriumCore", dependencies: ["PomeriumLogging"], swiftSettings: swiftSettings),
        .target(
            name: "PomeriumCrypto",
            dependencies: ["COpenSSL", "PomeriumCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PomeriumConfig",
            dependencies: [
                "CYAML", "CLinux", "PomeriumAuthorize", "PomeriumCore", "PomeriumCrypto", "PomeriumLogging",
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Network core

        .target(name: "PomeriumHTTP", dependencies: ["PomeriumCore"], swiftSettings: hotPathSwiftSettings),
        .target(
            name: "PomeriumNet",
            dependencies: ["CLinux", "PomeriumCore", "PomeriumCrypto", "PomeriumLogging"],
            swiftSettings: hotPathSwiftSettings
        ),
        .target(
            name: "PomeriumHTTPServer",
            dependencies: ["PomeriumNet", "PomeriumHTTP", "PomeriumCore", "PomeriumLogging"],
            swiftSettings: hotPathSwiftSettings
        ),
        .target(
            name: "PomeriumHTTPClient",
            dependencies: ["PomeriumNet", "PomeriumHTTP", "PomeriumCore", "PomeriumCrypto", "PomeriumLogging"],
            swiftSettings: hotPathSwiftSettings
        ),
        .target(
            name: "PomeriumReverseProxy",
            dependencies: [
                "PomeriumHTTPServer", "PomeriumHTTPClient", "PomeriumHTTP", "PomeriumNet", "PomeriumLogging",
            ],
            swiftSettings: hotPathSwiftSettings
        ),
        .executableTarget(
            name: "NetBench",
            dependencies: [
                "PomeriumReverseProxy", "PomeriumHTTPServer", "PomeriumHTTPClient", "PomeriumHTTP", "PomeriumNet",
                "PomeriumCrypto", "PomeriumLogging", "PomeriumProxy", "PomeriumConfig", "PomeriumSessions",
                "PomeriumCore",
            ],
            path: "Benchmarks/NetBench",
            exclude: ["scripts"],
            swiftSettings: swiftSettings
        ),

        // MARK: Identity providers

        .target(
            name: "PomeriumIdentity",
            dependencies: ["PomeriumCore", "PomeriumCrypto", "PomeriumHTTP", "PomeriumLogging"],
            swiftSettings: swiftSettings
        ),

        // MARK: Sessions and stores

        .target(
            name: "PomeriumSessions",
            dependencies: ["PomeriumCore", "PomeriumCrypto", "PomeriumHTTP", "PomeriumLogging"],
            swiftSettings: hotPathSwiftSettings
        ),
        .target(
            name: "PomeriumSessionsLMDB",
            dependencies: ["CLMDB", "PomeriumSessions", "PomeriumCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PomeriumSessionsRedis",
            dependencies: [
                "CHiredis", "CLinux", "PomeriumSessions", "PomeriumCore", "PomeriumCrypto", "PomeriumLogging",
                "PomeriumNet",
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Authenticate service

        .target(
            name: "PomeriumAuthenticate",
            dependencies: [
                "PomeriumConfig", "PomeriumCore", "PomeriumCrypto", "PomeriumHTTP", "PomeriumHTTPClient",
                "PomeriumHTTPServer", "PomeriumIdentity", "PomeriumLogging", "PomeriumNet", "PomeriumSessions",
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Policy

        .target(
            name: "PomeriumAuthorize", dependencies: ["CPCRE2", "PomeriumCore", "PomeriumLogging"],
            swiftSettings: hotPathSwiftSettings),

        // MARK: Proxy

        .target(
            name: "PomeriumProxy",
            dependencies: [
                "CXXHash", "PomeriumAuthorize", "PomeriumConfig", "PomeriumSessions", "PomeriumReverseProxy",
                "PomeriumHTTPServer", "PomeriumHTTPClient", "PomeriumHTTP", "PomeriumNet", "PomeriumCrypto",
                "PomeriumCore", "PomeriumLogging",
            ],
            swiftSettings: hotPathSwiftSettings
        ),

        // MARK: The executable

        // The executable's testable parts: the top-level dispatcher, the redirect listener, the
        // shared dependencies and the reload swap.
        .target(
            name: "PomeriumServer",
            dependencies: [
                "PomeriumLogging", "PomeriumCore", "PomeriumConfig", "PomeriumCrypto", "PomeriumHTTP", "PomeriumNet",
                "PomeriumHTTPServer", "PomeriumSessions", "PomeriumSessionsLMDB", "PomeriumSessionsRedis",
            ],
            swiftSettings: hotPathSwiftSettings
        ),
        .executableTarget(
            name: "pomerium",
            dependencies: [
                "PomeriumLogging", "PomeriumCore", "PomeriumConfig", "PomeriumCrypto",
                "PomeriumHTTP", "PomeriumNet", "PomeriumHTTPServer", "PomeriumHTTPClient",
                "PomeriumSessions", "PomeriumSessionsLMDB", "PomeriumSessionsRedis", "PomeriumServer",
                "PomeriumIdentity", "PomeriumProxy", "PomeriumAuthenticate",
            ],
            swiftSettings: swiftSettings
        ),

        // The programmatic-login client: a library for the tests and a second, small executable.
        .target(
            name: "PomeriumCLI",
            dependencies: [
                "PomeriumCore", "PomeriumCrypto", "PomeriumHTTP", "PomeriumHTTPClient", "PomeriumHTTPServer",
                "PomeriumLogging", "PomeriumNet",
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pomerium-cli",
            dependencies: ["PomeriumCLI", "PomeriumCore", "PomeriumLogging"],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        .target(
            name: "PomeriumTestSupport",
            dependencies: ["CLinux", "PomeriumLogging", "PomeriumCore", "PomeriumSessions"],
            path: "Tests/PomeriumTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SystemLibraryTests",
            dependencies: ["COpenSSL", "CNghttp2", "CYAML", "CLMDB", "CHiredis", "CXXHash", "CPCRE2", "CLinux"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "PomeriumLoggingTests", dependencies: ["PomeriumLogging"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PomeriumCoreTests",
            dependencies: ["PomeriumCore", "PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumCryptoTests",
            dependencies: ["PomeriumCrypto", "PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumConfigTests",
            dependencies: ["PomeriumConfig", "PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumHTTPTests",
            dependencies: ["PomeriumHTTP", "PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumNetTests",
            dependencies: [
                "PomeriumNet", "PomeriumHTTPServer", "PomeriumHTTPClient", "PomeriumReverseProxy",
                "PomeriumTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumSessionsTests",
            dependencies: [
                "PomeriumSessions", "PomeriumSessionsLMDB", "PomeriumSessionsRedis", "PomeriumTestSupport",
                "StoreCrashHelper",
            ],
            swiftSettings: swiftSettings
        ),
        // Writes LMDB entries until a test kills it with SIGKILL.
        .executableTarget(
            name: "StoreCrashHelper",
            dependencies: ["PomeriumSessions", "PomeriumSessionsLMDB"],
            path: "Tests/StoreCrashHelper",
            swiftSettings: swiftSettings
        ),
        // Get and set throughput of each store: swift run -c release StoreBench
        .executableTarget(
            name: "StoreBench",
            dependencies: ["PomeriumSessions", "PomeriumSessionsLMDB", "PomeriumSessionsRedis", "PomeriumTestSupport"],
            path: "Benchmarks/StoreBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumAuthorizeTests",
            dependencies: ["PomeriumAuthorize"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumIdentityTests",
            dependencies: ["PomeriumIdentity", "PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumServerTests",
            dependencies: [
                "PomeriumServer", "PomeriumConfig", "PomeriumCore", "PomeriumHTTP", "PomeriumHTTPServer",
                "PomeriumHTTPClient", "PomeriumLogging", "PomeriumNet", "PomeriumTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumProxyTests",
            dependencies: [
                "PomeriumProxy", "PomeriumTestSupport", "PomeriumConfig", "PomeriumSessions", "PomeriumAuthorize",
                "PomeriumHTTPServer", "PomeriumHTTPClient", "PomeriumHTTP", "PomeriumNet", "PomeriumCrypto",
                "PomeriumCore", "PomeriumLogging",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumAuthenticateTests",
            dependencies: [
                "PomeriumAuthenticate", "PomeriumConfig", "PomeriumCore", "PomeriumCrypto", "PomeriumHTTP",
                "PomeriumHTTPClient", "PomeriumHTTPServer", "PomeriumIdentity", "PomeriumLogging", "PomeriumNet",
                "PomeriumSessions", "PomeriumTestSupport",
            ],
            exclude: ["Resources"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PomeriumCLITests",
            dependencies: [
                "PomeriumCLI", "PomeriumCore", "PomeriumCrypto", "PomeriumHTTP", "PomeriumHTTPClient",
                "PomeriumHTTPServer", "PomeriumLogging", "PomeriumNet", "PomeriumTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FixtureTests",
            dependencies: ["PomeriumTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
