/// The identity claims of a route session whose signature the session layer has already verified.
///
/// A request without any session passes nil to the evaluator instead.
public struct SessionIdentity: Sendable, Hashable {
    /// The `email` claim of the signed-in user (the real user, also while impersonating).
    public var email: String
    /// The `groups` claim.
    public var groups: [String]
    /// The `sub` claim. Recorded for callers' logs; the decision does not read it.
    public var subject: String
    /// The `user` claim, if the provider sent one. The decision does not read it: `allowed_users` matches emails
    /// only, as in Pomerium v0.7.
    public var user: String?
    /// The `impersonate_email` claim; nil or empty when not impersonating a user.
    public var impersonatedEmail: String?
    /// The `impersonate_groups` claim; empty when not impersonating groups.
    public var impersonatedGroups: [String]
    /// The `nbf` claim in Unix seconds, if present.
    public var notBefore: Int64?
    /// The `exp` claim in Unix seconds, if present. A session without `exp` does not expire here, as in v0.7.
    public var expiresAt: Int64?

    public init(
        email: String,
        groups: [String] = [],
        subject: String = "",
        user: String? = nil,
        impersonatedEmail: String? = nil,
        impersonatedGroups: [String] = [],
        notBefore: Int64? = nil,
        expiresAt: Int64? = nil
    ) {
        self.email = email
        self.groups = groups
        self.subject = subject
        self.user = user
        self.impersonatedEmail = impersonatedEmail
        self.impersonatedGroups = impersonatedGroups
        self.notBefore = notBefore
        self.expiresAt = expiresAt
    }

    /// Whether an administrator has set an impersonated email or groups. Empty values mean impersonation is off,
    /// because the impersonation form clears it by submitting both empty.
    public var isImpersonating: Bool {
        !(impersonatedEmail ?? "").isEmpty || !impersonatedGroups.isEmpty
    }
}

/// A session identity with its email addresses parsed once, for callers that decide many requests
/// of one session. `evaluate` gives the same decision for it as for `identity`. A class, so
/// handing it to the evaluator costs one reference count.
public final class PreparedSessionIdentity: Sendable {
    public let identity: SessionIdentity
    /// `identity.email` parsed, or nil when it is not an address.
    let email: EmailAddress?
    /// `identity.impersonatedEmail` parsed (an absent one reads as ""), or nil when it is not an address.
    let impersonatedEmail: EmailAddress?
    /// `identity.isImpersonating`, `identity.notBefore` and `identity.expiresAt`, kept apart so the
    /// evaluator reads them without copying `identity`, which measured six retains and six releases.
    let isImpersonating: Bool
    let notBefore: Int64?
    let expiresAt: Int64?

    public init(_ identity: SessionIdentity) {
        self.identity = identity
        email = EmailAddress(identity.email)
        impersonatedEmail = EmailAddress(identity.impersonatedEmail ?? "")
        isImpersonating = identity.isImpersonating
        notBefore = identity.notBefore
        expiresAt = identity.expiresAt
    }
}
