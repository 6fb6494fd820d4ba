/// The `idp_provider` setting. Only `oidc` has its own behaviour so far; the others use the generic
/// OpenID Connect flow with their defaults from `ProviderDefaults`.
public enum ProviderKind: String, Sendable, CaseIterable {
    case oidc
    case google
    case azure
    case okta
    case onelogin
    case gitlab

    /// Parses the `idp_provider` setting, case-sensitively as Pomerium does.
    public init(setting: String) throws(IdentityError) {
        guard let kind = ProviderKind(rawValue: setting) else {
            let names = ProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalidConfiguration("idp_provider \"\(setting)\" is not supported; use one of \(names)")
        }
        self = kind
    }

    public var defaults: ProviderDefaults {
        switch self {
        case .oidc: return .oidc
        case .google: return .google
        case .azure: return .azure
        case .okta: return .okta
        case .onelogin: return .onelogin
        case .gitlab: return .gitlab
        }
    }
}

/// The source of a provider's group memberships.
// NOTE: only `claim` is implemented. For every provider, `groups` comes from the ID token and
// userinfo until the Google, Azure, Okta, OneLogin and GitLab group fetchers are built.
public enum GroupSource: Sendable, Equatable {
    /// The `groups` claim of the ID token or userinfo, as the provider sends it.
    case claim
    /// Google Admin SDK Directory `groups.list`, which needs `idp_service_account`; group emails.
    case googleDirectory
    /// Microsoft Graph `me/memberOf` with the user's access token; group object ids.
    case microsoftGraph
    /// Okta `api/v1/users/<sub>/groups` with an API token from `idp_service_account`; group ids.
    case oktaAPI
    /// OneLogin's `me` endpoint with the user's access token; group ids.
    case oneLoginMe
    /// GitLab `api/v4/groups` with the user's access token; numeric group ids as text.
    case gitlabAPI
}

/// Per-provider defaults: the issuer URL when `idp_provider_url` is empty, the scopes when
/// `idp_scopes` is empty, and extra parameters of the authorization request. The values follow
/// Pomerium v0.7's provider packages.
public struct ProviderDefaults: Sendable, Equatable {
    public let kind: ProviderKind
    /// The issuer URL used when `idp_provider_url` is empty; nil means the setting is required.
    public let providerURL: String?
    public let scopes: [String]
    /// Extra authorization request parameters, in order.
    public let authorizationParameters: [(name: String, value: String)]
    public let groupSource: GroupSource

    public static func == (lhs: ProviderDefaults, rhs: ProviderDefaults) -> Bool {
        lhs.kind == rhs.kind
    }

    public static let oidc = ProviderDefaults(
        kind: .oidc,
        providerURL: nil,
        scopes: ["openid", "profile", "email", "offline_access"],
        authorizationParameters: [("access_type", "offline")],
        groupSource: .claim
    )

    /// Google rejects the `offline_access` scope, so `access_type=offline` together with
    /// `prompt=select_account consent` is what makes it issue a refresh token on every login.
    public static let google = ProviderDefaults(
        kind: .google,
        providerURL: "https://accounts.google.com",
        scopes: ["openid", "profile", "email"],
        authorizationParameters: [("access_type", "offline"), ("prompt", "select_account consent")],
        groupSource: .googleDirectory
    )

    public static let azure = ProviderDefaults(
        kind: .azure,
        providerURL: "https://login.microsoftonline.com/common",
        scopes: ["openid", "profile", "email", "offline_access", "Group.Read.All"],
        authorizationParameters: [("access_type", "offline"), ("prompt", "select_account")],
        groupSource: .microsoftGraph
    )

    public static let okta = ProviderDefaults(
        kind: .okta,
        providerURL: nil,
        scopes: ["openid", "profile", "email", "groups", "offline_access"],
        authorizationParameters: [("access_type", "offline")],
        groupSource: .oktaAPI
    )

    public static let onelogin = ProviderDefaults(
        kind: .onelogin,
        providerURL: "https://openid-connect.onelogin.com/oidc",
        scopes: ["openid", "profile", "email", "groups", "offline_access"],
        authorizationParameters: [("access_type", "offline")],
        groupSource: .oneLoginMe
    )

    public static let gitlab = ProviderDefaults(
        kind: .gitlab,
        providerURL: "https://gitlab.com",
        scopes: ["openid", "api", "read_user", "profile", "email"],
        authorizationParameters: [("access_type", "offline")],
        groupSource: .gitlabAPI
    )
}
