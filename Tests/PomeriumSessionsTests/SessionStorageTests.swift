import PomeriumCore
import PomeriumCrypto
import Testing

@testable import PomeriumSessions

@Suite("Session storage and derived objects")
struct SessionStorageTests {
    final class Marker: Sendable {
        let email: String

        init(_ session: SessionState) { email = session.email }
    }

    final class OtherMarker: Sendable {
        init(_ session: SessionState) {}
    }

    @Test("a copy shares the claims until one of the two changes")
    func copyOnWrite() {
        let original = SessionFixtures.sampleSession()
        var copy = original
        #expect(copy.isSameStorage(as: original))
        #expect(copy == original)
        copy.email = "changed@example.test"
        copy.groups.append("extra")
        #expect(!copy.isSameStorage(as: original))
        #expect(original.email == "user@example.test")
        #expect(original.groups == ["group-0", "group-1", "group-2"])
        #expect(copy.groups == ["group-0", "group-1", "group-2", "extra"])
        #expect(copy != original)
    }

    @Test("sessions with separate storage compare by their claims")
    func equalityByValue() {
        let first = SessionFixtures.sampleSession()
        let second = SessionFixtures.sampleSession()
        #expect(!first.isSameStorage(as: second))
        #expect(first == second)
    }

    @Test("a session without a token is its own route session")
    func routeSessionShares() {
        let withToken = SessionFixtures.sampleSession()
        let route = withToken.routeSession
        #expect(route.oauthToken == nil)
        #expect(withToken.oauthToken != nil)
        #expect(route.routeSession.isSameStorage(as: route))
    }

    @Test("a derived object is made once and shared by copies")
    func derivedShared() {
        let session = SessionFixtures.sampleSession()
        var made = 0
        let first = session.derived { session -> Marker in
            made += 1
            return Marker(session)
        }
        let copy = session
        let second = copy.derived { session -> Marker in
            made += 1
            return Marker(session)
        }
        #expect(first === second)
        #expect(made == 1)
        #expect(second.email == "user@example.test")
    }

    @Test("changed claims drop the derived object")
    func derivedDropped() {
        var session = SessionFixtures.sampleSession()
        let first = session.derived(Marker.init)
        // The only reference: the claims change in place.
        session.email = "second@example.test"
        let second = session.derived(Marker.init)
        #expect(first !== second)
        #expect(second.email == "second@example.test")
        // A shared storage: the change copies it, and the copy starts without a derived object.
        let kept = session
        session.email = "third@example.test"
        #expect(session.derived(Marker.init).email == "third@example.test")
        #expect(kept.derived(Marker.init) === second)
    }

    @Test("asking for another type replaces the derived object")
    func derivedOtherType() {
        let session = SessionFixtures.sampleSession()
        let first = session.derived(Marker.init)
        _ = session.derived(OtherMarker.init)
        #expect(session.derived(Marker.init) !== first)
    }
}

@Suite("Identity headers cache")
struct IdentityHeadersTests {
    let clock = ManualWallClock(now: SessionFixtures.now)
    let key = try! ECPrivateKey.generate()

    func signer() throws -> IdentityAssertionSigner {
        try IdentityAssertionSigner(signingKey: key, clock: clock)
    }

    static func rendered(_ plan: ClaimHeaderPlan, _ session: SessionState) -> [String] {
        var result: [String] = []
        plan.forEachHeader(for: session) { result.append("\($0): \($1)") }
        return result
    }

    static func rendered(_ headers: IdentityHeaders) -> [String] {
        headers.claimHeaders.map { "\($0.name): \($0.value)" }
    }

    @Test("claim headers equal the plan's, from the cache and after a change of claims")
    func claimsMatchPlan() throws {
        let signer = try signer()
        let plan = ClaimHeaderPlan(names: ["email", "groups", "exp", "unknown"])
        var session = SessionFixtures.sampleSession().routeSession
        let first = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        #expect(Self.rendered(first) == Self.rendered(plan, session))
        let second = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        #expect(second.assertion == first.assertion)
        #expect(Self.rendered(second) == Self.rendered(plan, session))
        session.groups = ["other"]
        let changed = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        #expect(changed.assertion != first.assertion)
        #expect(
            Self.rendered(changed) == [
                "X-Pomerium-Claim-Email: user@example.test",
                "X-Pomerium-Claim-Groups: other", "X-Pomerium-Claim-Exp: \(session.expiry!)",
            ])
    }

    @Test("another plan renders its own headers for a cached assertion")
    func otherPlan() throws {
        let signer = try signer()
        let session = SessionFixtures.sampleSession().routeSession
        let emailOnly = ClaimHeaderPlan(names: ["email"])
        let groupsOnly = ClaimHeaderPlan(names: ["groups"])
        let first = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: emailOnly)
        let second = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: groupsOnly)
        #expect(second.assertion == first.assertion)
        #expect(Self.rendered(first) == ["X-Pomerium-Claim-Email: user@example.test"])
        #expect(Self.rendered(second) == ["X-Pomerium-Claim-Groups: group-0,group-1,group-2"])
        let none = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: nil)
        #expect(none.claimHeaders.isEmpty)
    }

    @Test("token claim rendered per session")
    func oauthTokenClaim() throws {
        let signer = try signer()
        let plan = ClaimHeaderPlan(names: ["act"])
        var session = SessionFixtures.sampleSession()
        let first = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        #expect(Self.rendered(first) == Self.rendered(plan, session))
        session.oauthToken?.accessToken = "another-access-value"
        let second = try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan)
        // The route session is unchanged, so the assertion is the cached one; the claim is not.
        #expect(second.assertion == first.assertion)
        #expect(Self.rendered(second) == Self.rendered(plan, session))
        #expect(Self.rendered(second) != Self.rendered(first))
    }

    @Test("memo reuse until stale")
    func memo() throws {
        let signer = try signer()
        let plan = ClaimHeaderPlan(names: ["email"])
        let session = SessionFixtures.sampleSession().routeSession
        let memo = IdentityHeadersMemo()
        let first = try signer.identityHeaders(
            for: session, sessionID: "s1", route: "app", claimHeaders: plan, memo: memo)
        #expect(
            try signer.identityHeaders(for: session, sessionID: "s1", route: "app", claimHeaders: plan, memo: memo)
                .assertion == first.assertion)
        // Another route, another plan or another signer is not served from the memo, and a
        // fresh signer signs anew.
        let otherSigner = try self.signer()
        let fromOther = try otherSigner.identityHeaders(
            for: session, sessionID: "s1", route: "app", claimHeaders: plan, memo: memo)
        #expect(fromOther.assertion != first.assertion)
        let otherPlan = ClaimHeaderPlan(names: ["groups"])
        let withOtherPlan = try otherSigner.identityHeaders(
            for: session, sessionID: "s1", route: "app", claimHeaders: otherPlan, memo: memo)
        #expect(Self.rendered(withOtherPlan) == ["X-Pomerium-Claim-Groups: group-0,group-1,group-2"])
        // Within the refresh margin the memo returns nothing and the signer signs again.
        clock.set(Double(session.expiry! - 60))
        let late = try otherSigner.identityHeaders(
            for: session, sessionID: "s1", route: "app", claimHeaders: otherPlan, memo: memo)
        #expect(late.assertion != withOtherPlan.assertion)
        #expect(
            try otherSigner.identityHeaders(
                for: session, sessionID: "s1", route: "app", claimHeaders: otherPlan, memo: memo
            ).assertion != late.assertion)
    }

    @Test("memo ignores a signer at a reused address")
    func memoAfterSignerReleased() throws {
        let plan = ClaimHeaderPlan(names: ["email"])
        let session = SessionFixtures.sampleSession().routeSession
        let memo = IdentityHeadersMemo()
        let newKey = try ECPrivateKey.generate()
        var releasedAddress: ObjectIdentifier?
        var releasedAssertion = ""
        do {
            let released = try signer()
            releasedAssertion =
                try released.identityHeaders(
                    for: session, sessionID: "s1", route: "app", claimHeaders: plan, memo: memo
                ).assertion
            releasedAddress = ObjectIdentifier(released)
        }
        // A reload with a new key builds a new signer; the allocator often hands it the old one's
        // memory. The headers it returns must carry its own key's signature.
        var reused = false
        for _ in 0..<64 where !reused {
            let replacement = try IdentityAssertionSigner(signingKey: newKey, clock: clock)
            guard ObjectIdentifier(replacement) == releasedAddress else { continue }
            reused = true
            let answer = try replacement.identityHeaders(
                for: session, sessionID: "s1", route: "app", claimHeaders: plan, memo: memo)
            #expect(answer.assertion != releasedAssertion)
            let headerPart = answer.assertion.split(separator: ".").first.map(String.init) ?? ""
            let header = try JSONParser.parseObject(Base64.urlUnpadded.decode(headerPart) ?? [])
            #expect(header["kid"]?.stringValue == replacement.keyID)
        }
        #expect(reused, "no new signer took the released signer's address, so the case was not exercised")
    }
}
