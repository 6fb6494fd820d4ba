import Foundation
import PomeriumTestSupport

/// `oidc-provider-mock` with three additions that real providers have and the mock lacks: an RFC 7009
/// revocation endpoint (listed in discovery as `revocation_endpoint`), refresh-token rotation (each
/// refresh returns a new refresh token and invalidates the old one), and PKCE enforcement (a code
/// issued with an S256 challenge is redeemed only with the matching verifier). The additions patch
/// the mock's own storage, so a revoked token really stops working at its token and userinfo endpoints.
enum ExtendedMockProvider {
    /// Runs `body` with the extended mock on a free loopback port, passing the port.
    static func run<T>(_ body: (Int) async throws -> T) async throws -> T {
        guard FileManager.default.isExecutableFile(atPath: RepositoryPaths.python.path) else {
            throw FixtureError("\(RepositoryPaths.python.path) is missing; run scripts/bootstrap.sh first")
        }
        let server = try await Fixtures.offCooperativePool {
            try Fixtures.startOnFreePort { port in
                let directory = try RepositoryPaths.makeTemporaryDirectory(prefix: "oidc-extended")
                let process = try ManagedProcess(
                    name: "oidc-provider-mock-extended",
                    executable: RepositoryPaths.python,
                    arguments: ["-c", script, String(port)],
                    environment: ["PYTHONWARNINGS": "ignore"],
                    logDirectory: directory
                )
                try process.waitUntilListening(port: port)
                return RunningServer(port: port, process: process, directory: directory)
            }
        }
        defer { server.process.stop() }
        return try await body(server.port)
    }

    /// The Python program. Its revocation endpoint returns 200 after client authentication also for
    /// unknown tokens, as RFC 7009 section 2.2 requires, and `/test/revocations` lists the hints it received.
    private static let script = """
        import base64
        import hashlib
        import hmac
        import sys
        import authlib.oauth2.rfc6749
        import flask
        from oidc_provider_mock import _app
        from oidc_provider_mock._storage import storage

        challenges = {}
        original_save_code = _app.AuthorizationCodeGrant.save_authorization_code

        def save_authorization_code(self, code, request):
            original_save_code(self, code, request)
            values = flask.request.values
            challenges[code] = (values.get("code_challenge"), values.get("code_challenge_method"))

        _app.AuthorizationCodeGrant.save_authorization_code = save_authorization_code
        original_validate = _app.AuthorizationCodeGrant.validate_token_request

        def validate_token_request(self):
            original_validate(self)
            challenge, method = challenges.pop(flask.request.form.get("code", ""), (None, None))
            if challenge is None:
                return
            verifier = flask.request.form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode("ascii")).digest()
            computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if method != "S256" or not hmac.compare_digest(computed, challenge):
                raise authlib.oauth2.rfc6749.InvalidGrantError("PKCE verification failed")

        _app.AuthorizationCodeGrant.validate_token_request = validate_token_request

        _app.RefreshTokenGrant.INCLUDE_NEW_REFRESH_TOKEN = True
        original_revoke_old = _app.RefreshTokenGrant.revoke_old_credential

        def revoke_old_credential(self, refresh_token):
            original_revoke_old(self, refresh_token)
            storage.remove_refresh_token(refresh_token.token)

        _app.RefreshTokenGrant.revoke_old_credential = revoke_old_credential

        app = _app.app()
        original_config = app.view_functions["oidc-provider-mock.openid_config"]

        def openid_config():
            document = original_config().get_json()
            document["revocation_endpoint"] = flask.request.host_url + "oauth2/revoke"
            document["token_endpoint_auth_methods_supported"] = ["client_secret_basic", "client_secret_post"]
            document["code_challenge_methods_supported"] = ["S256"]
            return flask.jsonify(document)

        app.view_functions["oidc-provider-mock.openid_config"] = openid_config
        revocations = []

        @app.post("/oauth2/revoke")
        def revoke():
            form = flask.request.form
            authenticated = flask.request.authorization is not None or (
                "client_id" in form and "client_secret" in form)
            if not authenticated:
                return flask.jsonify(error="invalid_client"), 401
            token = form.get("token")
            if not token:
                return flask.jsonify(error="invalid_request"), 400
            revocations.append(form.get("token_type_hint", ""))
            storage.remove_access_token(token)
            storage.remove_refresh_token(token)
            return "", 200

        @app.get("/test/revocations")
        def list_revocations():
            return flask.jsonify(revocations=revocations)

        app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader=False, debug=False)
        """
}
