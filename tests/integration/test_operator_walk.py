"""The proxy and authorize side as its operator runs it, end to end: the example config.yaml run
with its hosts on loopback, the identity header checked the way upstream verifiers check it, the
dashboard with sign-out and impersonation, the product endpoints, programmatic login and refresh,
error statuses, and the access and authorization log lines.

The identity provider is oidc-provider-mock and the upstreams are servers of this module; every
server listens on 127.0.0.1."""
import base64
import json
import re
import socket
import ssl
import subprocess
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness import ROOT, Pomerium, base_config, free_port
from test_keepalive_attacks import requests_session, upstream  # noqa: F401 (a fixture)
from test_walkthrough import Report, reporting_upstream, websocket_echo  # noqa: F401 (fixtures)

import support  # noqa: E402 (test_keepalive_attacks put tests/e2e on sys.path)

USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice", "groups": ["devs"]},
    "admin": {"email": "admin@example.com", "name": "Admin", "groups": ["admins"]},
    "bob": {"email": "bob@example.com", "name": "Bob", "groups": ["Team A"]},
    "mallory": {"email": "mallory@other.test", "name": "Mallory", "groups": []},
    "ops": {"email": "ops@ops.test", "name": "Ops", "groups": ["ops@example.com"]},
}
CLIENT_SECRET = "operator-walk-client-secret-3f9a"
QUERY_SECRET = "operator-walk-query-secret-81d2"


def signing_key(pkcs8=False):
    """A new P-256 key as base64 of its PEM: SEC 1 `EC PRIVATE KEY`, or PKCS#8 `PRIVATE KEY`."""
    key = ec.generate_private_key(ec.SECP256R1())
    form = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    pem = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
    return base64.b64encode(pem).decode()


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def json_lines(process):
    return [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]


class Stack:
    """One pomerium over TLS, whose hosts are NAME.example.test:PORT."""

    def __init__(self, process, port, ca, path, config):
        self.process = process
        self.port = port
        self.ca = ca
        self.path = path
        self.config = config
        self.sessions = {}

    def host(self, name):
        return f"{name}.example.test:{self.port}"

    def url(self, name, path="/"):
        return f"https://{self.host(name)}{path}"

    def browser(self):
        return requests_session({"ca": self.ca})

    def login(self, user, name="app", path="/"):
        """A browser signed in as `user` at route `name`, kept for the stack. The route's own
        response to `path` after the sign-in may be any status."""
        if (user, name) not in self.sessions:
            session = self.browser()
            final, _ = support.login(session, self.url(name, path), user)
            assert not final.is_redirect, final.headers
            self.sessions[(user, name)] = session
        return self.sessions[(user, name)]

    def get(self, name, path="/", session=None, **options):
        options.setdefault("allow_redirects", False)
        options.setdefault("timeout", 15)
        return (session or self.browser()).get(self.url(name, path), **options)

    def rewrite(self, **changes):
        self.config.update(changes)
        self.path.write_text(json.dumps(self.config))


def start_stack(binary, folder, certificate, issuer, policy, port=None, **settings):
    port = port or free_port()
    config = base_config(
        port, certificate=certificate, issuer=issuer, authenticate_service_url=f"https://authenticate.example.test:{port}",
        idp_client_secret=CLIENT_SECRET, policy=policy(port), **settings)
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    process = Pomerium(binary, path, cwd=folder)
    process.wait_ready(port, scheme="https")
    return Stack(process, port, certificate[0], path, config)


@pytest.fixture(scope="module")
def users(oidc_provider):
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    return oidc_provider


@pytest.fixture(scope="module")
def walk(pomerium_binary, server_certificate, users, reporting_upstream, upstream, tmp_path_factory):
    """pomerium with a route per policy kind, an administrator, claim headers and the access log on."""
    closed_port = free_port()

    def policy(port):
        def route(name, to=reporting_upstream.url, **settings):
            return {"from": f"https://{name}.example.test:{port}", "to": to, **settings}

        return [
            route("app", allowed_domains=["example.com"]),
            route("bob", allowed_users=["bob@example.com"]),
            route("team", allowed_groups=["Team A"]),
            route("public", allow_public_unauthenticated_access=True),
            route("exact", path="/only", allow_public_unauthenticated_access=True),
            route("down", to=f"http://127.0.0.1:{closed_port}", allowed_domains=["example.com"]),
            route("slow", to=upstream.url, timeout="1s", allowed_domains=["example.com"]),
        ]

    stack = start_stack(
        pomerium_binary, tmp_path_factory.mktemp("walk"), server_certificate, users, policy,
        administrators=["admin@example.com"], log_level="debug", signing_key=signing_key(),
        jwt_claims_headers=["email", "groups", "user", "exp", "email_verified", "name"])
    try:
        yield stack
    finally:
        stack.process.stop()


# -------------------------------------------------------------------------------------------------
# The example config.yaml, unchanged except for its hosts, which point at loopback.


def test_example_config_yaml_serves_its_routes(pomerium_binary, server_certificate, users, reporting_upstream,
                                               websocket_echo, tmp_path):
    """config/examples/config.yaml with its hosts on loopback, and the secrets, certificate and
    provider in the environment as its comments describe: every route behaves as documented there."""
    port = free_port()
    text = (ROOT / "config/examples/config.yaml").read_text()
    text = text.replace('address: ":443"', f'address: "127.0.0.1:{port}"')
    text = text.replace(".corp.example.com", f".example.test:{port}")
    for placeholder in ("http://httpbin:8000", "http://static-site:8080", "http://api:9000"):
        text = text.replace(placeholder, reporting_upstream.url)
    text = text.replace("http://grafana:3000", websocket_echo)
    assert "corp.example.com" not in text
    assert "http://grafana" not in text
    path = tmp_path / "config.yaml"
    path.write_text(text)
    environment = {
        "COOKIE_SECRET": support.COOKIE_SECRET, "IDP_CLIENT_SECRET": CLIENT_SECRET,
        "CERTIFICATE": base64.b64encode(server_certificate[0].read_bytes()).decode(),
        "CERTIFICATE_KEY": base64.b64encode(server_certificate[1].read_bytes()).decode(),
        # The file names Google; the mock provider on loopback takes its place.
        "IDP_PROVIDER": "oidc", "IDP_PROVIDER_URL": users,
    }
    process = Pomerium(pomerium_binary, path, env=environment, cwd=tmp_path)
    try:
        process.wait_ready(port, scheme="https")
        stack = Stack(process, port, server_certificate[0], path, {})

        alice = stack.login("alice", "httpbin")
        report = Report(stack.get("httpbin", "/get", session=alice))
        assert report.values("X-Pomerium-Claim-Email") == ["alice@example.com"]
        assert report.values("X-Pomerium-Claim-Groups") == ["devs"]
        assert len(report.values("X-Pomerium-Jwt-Assertion")) == 1

        assert stack.get("public").status_code == 200

        api = stack.login("alice", "apps", "/api/")
        assert stack.get("apps", "/", session=api).status_code == 404, "only /api/ is routed"
        report = Report(stack.get("apps", "/api/items", session=api))
        assert report.values("X-Pomerium-Route") == ["api"]

        denied = stack.get("grafana", "/", session=stack.login("alice", "grafana"))
        assert denied.status_code == 403, "alice is not in ops@example.com"
        ops = stack.login("ops", "grafana")
        from websockets.sync.client import connect
        cookie = "; ".join(f"{item.name}={item.value}" for item in ops.cookies if item.domain.startswith("grafana"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with connect(f"wss://{stack.host('grafana')}/live", sock=raw,
                     ssl=ssl.create_default_context(cafile=str(server_certificate[0])),
                     server_hostname="grafana.example.test", additional_headers={"Cookie": cookie},
                     open_timeout=10) as connection:
            connection.send("hello")
            assert connection.recv(timeout=5) == "hello"
    finally:
        process.stop()


def split_example(name, port, replacements, tmp_path):
    """config/examples/split/NAME.yaml with its address, hosts, upstreams and paths on this machine."""
    text = (ROOT / f"config/examples/split/{name}.yaml").read_text()
    text = text.replace('address: ":443"', f'address: "127.0.0.1:{port}"')
    text = text.replace("/var/lib/pomerium/", f"{tmp_path}/")
    for old, new in replacements.items():
        text = text.replace(old, new)
    assert "corp.example.com" not in text, text
    assert ".internal" not in text, text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_split_examples_sign_in(pomerium_binary, server_certificate, users, reporting_upstream, tmp_path):
    """config/examples/README.md: split/authenticate.yaml and split/proxy.yaml run, each with
    its own file and the same SHARED_SECRET and COOKIE_SECRET, and sign a user in together."""
    authenticate_port, proxy_port = free_port(), free_port()
    hosts = {"https://authenticate.corp.example.com": f"https://authenticate.example.test:{authenticate_port}",
             ".corp.example.com": f".example.test:{proxy_port}",
             "https://pomerium-authorize.internal:443": "http://127.0.0.1:9",
             "https://pomerium-cache.internal:443": "http://127.0.0.1:9",
             "http://httpbin:8000": reporting_upstream.url, "http://static-site:8080": reporting_upstream.url,
             "https://login.example.com": users}
    environment = {
        "COOKIE_SECRET": support.COOKIE_SECRET, "SHARED_SECRET": support.SHARED_SECRET,
        "IDP_CLIENT_SECRET": CLIENT_SECRET,
        "CERTIFICATE": base64.b64encode(server_certificate[0].read_bytes()).decode(),
        "CERTIFICATE_KEY": base64.b64encode(server_certificate[1].read_bytes()).decode(),
    }
    processes = []
    try:
        for name, port in (("authenticate", authenticate_port), ("proxy", proxy_port)):
            process = Pomerium(pomerium_binary, split_example(name, port, hosts, tmp_path), env=environment,
                               cwd=tmp_path)
            processes.append(process)
            process.wait_ready(port, scheme="https")
        stack = Stack(processes[1], proxy_port, server_certificate[0], None, {})
        alice = stack.browser()
        final, _ = support.login(alice, stack.url("httpbin", "/get"), "alice")
        assert final.status_code == 200, final.text[:300]
        report = Report(final)
        assert report.values("X-Pomerium-Claim-Email") == ["alice@example.com"]
        assert len(report.values("X-Pomerium-Jwt-Assertion")) == 1
        assert stack.get("public").status_code == 200
    finally:
        for process in processes:
            process.stop()


def test_split_authenticate_without_routes_warns(pomerium_binary, tmp_path):
    """A v0.7 authenticate service ignored `policy`. Here it redirects only to route hosts, so a
    split authenticate config without routes would reject every sign-in with 400, and -validate
    warns about it."""
    text = (ROOT / "config/examples/split/authenticate.yaml").read_text()
    path = tmp_path / "authenticate.yaml"
    path.write_text(text[:text.index("# The routes")])
    environment = {"PATH": "/usr/bin:/bin", "COOKIE_SECRET": support.COOKIE_SECRET,
                   "SHARED_SECRET": support.SHARED_SECRET, "IDP_CLIENT_SECRET": CLIENT_SECRET,
                   "INSECURE_SERVER": "true", "GRPC_INSECURE": "true"}
    result = subprocess.run([str(pomerium_binary), "-config", str(path), "-validate"], capture_output=True,
                            text=True, env=environment, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("warning:") and "policy" in line]
    assert len(warnings) == 1, result.stdout + result.stderr
    assert "copy the proxy's policy" in warnings[0]


# -------------------------------------------------------------------------------------------------
# X-Pomerium-Jwt-Assertion, checked as an upstream checks it: PyJWT with the key set of the route
# host, ES256 only, `aud` the route host, `iss` the authenticate host.


def key_client(stack, name="app"):
    """A PyJWKClient for the key set on host `name`, as an upstream keeps one. The connection
    goes to 127.0.0.1 with `Host` naming the route, since urllib resolves names itself."""
    context = ssl.create_default_context(cafile=str(stack.ca))
    return jwt.PyJWKClient(f"https://127.0.0.1:{stack.port}/.well-known/pomerium/jwks.json",
                           headers={"Host": stack.host(name)}, ssl_context=context, cooldown_duration=0)


def verify(token, stack, client, route="app"):
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=stack.host(route),
                      issuer=stack.host("authenticate"), leeway=60,
                      options={"require": ["exp", "iat", "iss", "aud", "sub"]})


def assertion_of(stack, name, session, path="/"):
    response = stack.get(name, path, session=session)
    assert response.status_code == 200, response.text[:300]
    values = Report(response).values("X-Pomerium-Jwt-Assertion")
    assert len(values) == 1, values
    return values[0]


def key_ids(stack, name="app"):
    response = stack.get(name, "/.well-known/pomerium/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


def test_assertion_verifies_like_an_upstream(walk):
    alice = walk.login("alice")
    token = assertion_of(walk, "app", alice)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key_ids(walk)[0]
    claims = verify(token, walk, key_client(walk))
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["devs"]
    assert claims["sub"] == "alice"
    assert walk.host("app") in claims["aud"]
    assert claims["iat"] <= time.time() + 5
    assert claims["exp"] > time.time()
    assert "act" not in claims, "the OAuth token never reaches the upstream"
    # The authenticate host publishes the same keys.
    assert verify(token, walk, key_client(walk, "authenticate"))["email"] == "alice@example.com"
    # An assertion for one route is no good at another.
    with pytest.raises(jwt.InvalidAudienceError):
        verify(token, walk, key_client(walk), route="bob")


def test_claim_headers_formats(walk):
    """compatibility.md: integral numbers as integers, lists comma-joined, Booleans true/false."""
    report = Report(walk.get("app", session=walk.login("alice")))
    assert report.values("X-Pomerium-Claim-Email") == ["alice@example.com"]
    assert report.values("X-Pomerium-Claim-Groups") == ["devs"]
    assert report.values("X-Pomerium-Claim-Name") == ["Alice"]
    [expiry] = report.values("X-Pomerium-Claim-Exp")
    assert re.fullmatch(r"[0-9]{10}", expiry), expiry


def test_assertion_verifies_after_signing_key_reload(pomerium_binary, server_certificate, users, reporting_upstream,
                                                     tmp_path):
    """configuration.md: a new `signing_key` (here PKCS#8) signs at once, and the key set keeps the
    previous key, so an upstream's JWKS client verifies both."""
    stack = start_stack(pomerium_binary, tmp_path, server_certificate, users,
                        lambda port: [{"from": f"https://app.example.test:{port}", "to": reporting_upstream.url,
                                       "allowed_domains": ["example.com"]}],
                        signing_key=signing_key())
    try:
        alice = stack.login("alice")
        client = key_client(stack)
        old = assertion_of(stack, "app", alice)
        assert verify(old, stack, client)["email"] == "alice@example.com"

        stack.rewrite(signing_key=signing_key(pkcs8=True))
        assert wait_until(lambda: len(key_ids(stack)) == 2), stack.process.output()[-2000:]
        new = assertion_of(stack, "app", alice)
        assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
        assert verify(new, stack, client)["email"] == "alice@example.com"
        assert verify(old, stack, client)["email"] == "alice@example.com"
    finally:
        stack.process.stop()


def test_assertion_without_signing_key(pomerium_binary, server_certificate, users, reporting_upstream, tmp_path):
    """configuration.md: without `signing_key` a key is generated once per process; with
    `signing_key_file` it is stored and the next start signs with the same key."""
    def policy(port):
        return [{"from": f"https://app.example.test:{port}", "to": reporting_upstream.url, "allowed_domains": ["example.com"]}]

    port = free_port()
    kids = []
    for index, settings in enumerate([{}, {}, {"signing_key_file": str(tmp_path / "key.pem")},
                                      {"signing_key_file": str(tmp_path / "key.pem")}]):
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        stack = start_stack(pomerium_binary, folder, server_certificate, users, policy, port=port, **settings)
        try:
            token = assertion_of(stack, "app", stack.login("alice"))
            assert verify(token, stack, key_client(stack))["email"] == "alice@example.com"
            kids.append(jwt.get_unverified_header(token)["kid"])
        finally:
            stack.process.stop()
    assert kids[0] != kids[1], "a generated key without a file lasts one process"
    assert kids[2] == kids[3], "signing_key_file keeps the key across a restart"


# -------------------------------------------------------------------------------------------------
# The dashboard, sign-out and impersonation.


class Forms(HTMLParser):
    """The page's forms: action -> {field name: value}."""

    def __init__(self, text):
        super().__init__()
        self.forms = {}
        self._action = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._action = attributes.get("action")
            self.forms[self._action] = {}
        elif tag == "input" and self._action is not None and attributes.get("name"):
            self.forms[self._action][attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._action = None


def fresh_login(stack, user, name="app"):
    session = stack.browser()
    final, _ = support.login(session, stack.url(name, "/"), user)
    assert not final.is_redirect, final.headers
    return session


def test_dashboard_shows_the_session(walk):
    alice = walk.login("alice")
    page = walk.get("app", "/.pomerium/", session=alice)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for expected_text in ("alice@example.com", "devs", "Alice", walk.host("authenticate"), walk.host("app"), "Expires"):
        assert expected_text in page.text, expected_text
    forms = Forms(page.text).forms
    assert set(forms) == {"/.pomerium/sign_out"}, "only administrators get the impersonation form"
    assert forms["/.pomerium/sign_out"]["pomerium_csrf"]

    admin_forms = Forms(walk.get("app", "/.pomerium/", session=walk.login("admin")).text).forms
    assert set(admin_forms) == {"/.pomerium/sign_out", "/.pomerium/admin/impersonate"}

    assert walk.get("app", "/.pomerium").headers["Location"] == "/.pomerium/"
    anonymous = walk.get("app", "/.pomerium/")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith(walk.url("authenticate", "/.pomerium/sign_in?"))
    assert walk.get("app", "/.pomerium/", headers={"X-Requested-With": "XMLHttpRequest"}).status_code == 401
    assert walk.browser().post(walk.url("app", "/.pomerium/"), timeout=10).status_code == 405


def test_sign_out_form_ends_the_session(walk):
    alice = fresh_login(walk, "alice")
    cookie = "; ".join(f"{item.name}={item.value}" for item in alice.cookies if item.domain.startswith("app"))
    form = Forms(walk.get("app", "/.pomerium/", session=alice).text).forms["/.pomerium/sign_out"]

    forged = alice.post(walk.url("app", "/.pomerium/sign_out"), data={"pomerium_csrf": "x"}, allow_redirects=False,
                        timeout=10)
    assert forged.status_code == 403
    assert walk.get("app", session=alice).status_code == 200, "a refused sign-out leaves the session"

    signed_out = alice.post(walk.url("app", "/.pomerium/sign_out"), data=form, allow_redirects=False, timeout=10)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"].startswith(walk.url("authenticate", "/.pomerium/sign_out?"))
    # compatibility.md: the authenticate service goes through the provider's end_session_endpoint,
    # which is to return the browser to the route.
    ended = alice.get(signed_out.headers["Location"], allow_redirects=False, timeout=10)
    assert ended.status_code == 302
    end_session = urlsplit(ended.headers["Location"])
    assert end_session.path == "/oauth2/end_session"
    assert parse_qs(end_session.query)["post_logout_redirect_uri"] == [walk.url("app", "/")]
    assert walk.get("app", session=alice).status_code == 302
    assert walk.get("app", headers={"Cookie": cookie}).status_code == 302, "a copy of the old cookie is void"


def impersonate(stack, session, email, groups):
    form = Forms(stack.get("app", "/.pomerium/", session=session).text).forms["/.pomerium/admin/impersonate"]
    form.update(pomerium_impersonate_email=email, pomerium_impersonate_groups=groups)
    response = session.post(stack.url("app", "/.pomerium/admin/impersonate"), data=form, allow_redirects=False,
                            timeout=10)
    final, _ = support.follow(session, response)
    assert final.status_code == 200, final.text[:300]
    return final


def test_impersonated_group_with_space(walk):
    """Impersonating a group whose name has a space (`Team A`: a provider's `groups` claim may
    hold such names) grants what that group grants, and the assertion names it as written."""
    admin = fresh_login(walk, "admin")
    impersonate(walk, admin, "", "Team A, ops")
    team = walk.get("team", session=admin, allow_redirects=True)
    assert team.status_code == 200, "the impersonated group Team A is allowed on the team route"
    claims = jwt.decode(Report(team).values("X-Pomerium-Jwt-Assertion")[0], options={"verify_signature": False})
    assert claims["impersonate_groups"] == ["Team A", "ops"]


def test_impersonation_changes_policy_not_identity_headers(walk):
    """compatibility.md: only the impersonated identity is evaluated; the assertion and the claim
    headers keep the administrator's own identity and add the impersonated one."""
    admin = fresh_login(walk, "admin")
    assert walk.get("bob", session=fresh_login(walk, "admin"), allow_redirects=True).status_code == 403
    dashboard = impersonate(walk, admin, "bob@example.com", "")
    assert "bob@example.com" in dashboard.text
    report = Report(walk.get("bob", session=admin, allow_redirects=True))
    assert report.response.status_code == 200
    assert report.values("X-Pomerium-Claim-Email") == ["admin@example.com"]
    claims = jwt.decode(report.values("X-Pomerium-Jwt-Assertion")[0], options={"verify_signature": False})
    assert claims["email"] == "admin@example.com"
    assert claims["impersonate_email"] == "bob@example.com"
    impersonate(walk, admin, "", "")
    cleared = Report(walk.get("app", session=admin))
    claims = jwt.decode(cleared.values("X-Pomerium-Jwt-Assertion")[0], options={"verify_signature": False})
    assert "impersonate_email" not in claims
    # configuration.md, as in v0.7: the form changes the route session of the host it was sent
    # from, and another host keeps the route session it has until it expires.
    assert walk.get("bob", session=admin).status_code == 200, "bob's host keeps the impersonating session"


# -------------------------------------------------------------------------------------------------
# Product endpoints, programmatic login and error statuses.


def test_product_endpoints_on_each_host(walk):
    for name in ("app", "authenticate", "unknown"):
        ping = walk.get(name, "/ping")
        assert ping.status_code == 200, name
        assert ping.text.startswith("pomerium/0.7"), ping.text
        health = walk.get(name, "/healthz")
        assert (health.status_code, health.text) == (200, "OK\n"), name
        assert walk.browser().head(walk.url(name, "/healthz"), timeout=10).status_code == 200
        assert walk.browser().post(walk.url(name, "/healthz"), timeout=10).status_code == 405
        robots = walk.get(name, "/robots.txt")
        assert (robots.status_code, robots.text) == (200, "User-agent: *\nDisallow: /\n"), name
    keys = [walk.get(name, "/.well-known/pomerium/jwks.json").json() for name in ("app", "public", "authenticate")]
    assert keys[0] == keys[1] == keys[2]
    assert walk.get("unknown", "/.well-known/pomerium/jwks.json").status_code == 404


def test_programmatic_login_and_refresh(walk):
    """The flow of v0.7's programmatic access: the login URL, the browser sign-in, the tokens on
    the loopback callback, the route token as `Authorization: Pomerium`, and /api/v1/refresh."""
    browser = fresh_login(walk, "alice")
    local = f"http://127.0.0.1:{free_port()}/callback"
    login = walk.get("app", "/.pomerium/api/v1/login?pomerium_redirect_uri=" + quote(local, safe=""), session=browser)
    assert login.status_code == 200
    assert login.headers["Content-Type"].startswith("text/plain")
    assert login.text.startswith(walk.url("authenticate", "/.pomerium/sign_in?"))
    response = browser.get(login.text, allow_redirects=False, timeout=10)
    for _ in range(5):
        if response.headers["Location"].startswith(local):
            break
        response = browser.get(response.headers["Location"], allow_redirects=False, timeout=10)
    tokens = parse_qs(urlsplit(response.headers["Location"]).query)
    route_token, refresh_token = tokens["pomerium_jwt"][0], tokens["pomerium_refresh_token"][0]

    report = Report(walk.get("app", headers={"Authorization": f"Pomerium {route_token}"}))
    assert report.response.status_code == 200
    assert report.values("Authorization") == []
    assert report.values("X-Pomerium-Claim-Email") == ["alice@example.com"]

    refreshed = walk.get("authenticate", "/api/v1/refresh", headers={"Authorization": f"Pomerium {refresh_token}"})
    assert refreshed.status_code == 200, refreshed.text[:300]
    assert refreshed.headers["Content-Type"].startswith("application/json")
    body = refreshed.json()
    assert set(body) >= {"jwt", "refresh_token"}
    renewed = walk.get("app", headers={"Authorization": f"Pomerium {body['jwt']}"})
    assert renewed.status_code == 200
    assert walk.get("authenticate", "/api/v1/refresh",
                    headers={"Authorization": "Pomerium not-a-token"}).status_code == 400


def test_error_statuses(walk):
    """Sign in first (302 for a browser, 401 for XHR and JSON clients), denied (403 with nothing
    about the policy), upstream down (502) and slow (504), unknown host (404)."""
    browser = walk.get("app")
    assert browser.status_code == 302
    assert browser.headers["Location"].startswith(walk.url("authenticate", "/.pomerium/sign_in?"))
    assert walk.get("app", headers={"X-Requested-With": "XMLHttpRequest"}).status_code == 401
    script = walk.get("app", headers={"Accept": "application/json"})
    assert script.status_code == 401
    assert set(script.json()) == {"Status", "Error", "RequestID"}
    assert script.json()["RequestID"] == script.headers["Request-Id"]

    mallory = walk.login("mallory")
    denied = walk.get("app", session=mallory)
    assert denied.status_code == 403
    for hidden in ("example.com", "allowed", "no-allow-rule-matched", "domain"):
        assert hidden not in denied.text, hidden

    assert walk.get("down", session=walk.login("alice", "down")).status_code == 502
    started = time.monotonic()
    assert walk.get("slow", "/slow/4", session=walk.login("alice", "slow")).status_code == 504
    assert time.monotonic() - started < 3.5
    unknown = walk.get("unknown")
    assert unknown.status_code == 404
    for response in (browser, script, denied, unknown):
        assert response.headers.get("X-Pomerium-Intercepted-Response") == "true"
        assert "X-Pomerium-Jwt-Assertion" not in response.headers


def test_path_route_matches_exactly(walk):
    """configuration.md: `path` must equal the request path; other paths of the host are unknown."""
    assert walk.get("exact", "/only").status_code == 200
    assert walk.get("exact", "/only/").status_code == 404
    assert walk.get("exact", "/only/more").status_code == 404
    assert walk.get("exact", "/").status_code == 404


def test_headers_disable_and_replace(pomerium_binary, server_certificate, users, reporting_upstream, tmp_path):
    """configuration.md: a `disable` key clears the response headers; a configured header
    replaces the upstream's header of the same name."""
    def policy(port):
        return [{"from": f"https://public.example.test:{port}", "to": reporting_upstream.url,
                 "allow_public_unauthenticated_access": True}]

    for settings, expected in [({"disable": "true"}, None), ({"X-Frame-Options": "DENY"}, ["DENY"])]:
        folder = tmp_path / str(len(settings) + len(expected or []))
        folder.mkdir()
        stack = start_stack(pomerium_binary, folder, server_certificate, users, policy, headers=settings)
        try:
            response = stack.get("public", "/?respond=X-Frame-Options:%20SAMEORIGIN")
            assert response.status_code == 200
            raw = response.raw.headers
            assert raw.getlist("X-Frame-Options") == (expected or ["SAMEORIGIN"])
            if expected is None:
                for name in ("Strict-Transport-Security", "X-XSS-Protection", "X-Content-Type-Options", "disable"):
                    assert raw.getlist(name) == [], name
        finally:
            stack.process.stop()


# -------------------------------------------------------------------------------------------------
# The access log and the authorization log.


def log_line(stack, request_id, message):
    """The one log line with `message` for the request whose `Request-Id` is `request_id`."""
    def matching():
        return [line for line in json_lines(stack.process)
                if line.get("req_id") == request_id and line.get("message") == message]

    assert wait_until(lambda: matching()), f"no {message} line with req_id {request_id}"
    [line] = matching()
    return line


def test_access_log_fields(walk):
    """The `http-request` line of a proxied request carries the fields that v0.7 logged, with
    numbers as JSON numbers: duration (as `duration_ms`), size, status, method, service, host,
    path, ip, user_agent, req_id, and the user's email and groups. It never carries the query."""
    alice = walk.login("alice")
    response = walk.get("app", f"/logged?key={QUERY_SECRET}", session=alice,
                        headers={"User-Agent": "operator-walk-agent", "X-Forwarded-For": "203.0.113.7",
                                 "Referer": f"https://web.example.test/from?key={QUERY_SECRET}"})
    assert response.status_code == 200
    line = log_line(walk, response.headers["Request-Id"], "http-request")
    assert line["level"] == "debug"
    assert line["method"] == "GET"
    assert line["host"] == walk.host("app")
    assert line["path"] == "/logged"
    assert line["ip"] == "127.0.0.1"
    assert line["user_agent"] == "operator-walk-agent"
    assert line["email"] == "alice@example.com"
    assert line["service"] == "proxy"
    assert line["status"] == 200, line
    assert isinstance(line["size"], int), line
    assert isinstance(line["duration_ms"], (int, float)), line
    assert line.get("groups") == ["devs"], line
    assert line.get("X-Forwarded-For") == ["203.0.113.7"], "behind a load balancer, the client's address"
    assert "referer" not in line, "a Referer carries another page's query"


def test_authenticate_access_log_line(walk):
    """Requests to the authenticate host get an `http-request` line with the proxy's field
    names, so one log query finds every request by `req_id`."""
    response = walk.get("authenticate", f"/.pomerium/sign_in?key={QUERY_SECRET}",
                        headers={"User-Agent": "operator-walk-authenticate"})
    assert response.status_code == 400
    line = log_line(walk, response.headers["Request-Id"], "http-request")
    assert line["service"] == "authenticate"
    assert line["host"] == walk.host("authenticate")
    assert line["path"] == "/.pomerium/sign_in"
    assert line["status"] == 400
    assert line["user_agent"] == "operator-walk-authenticate"


def test_authorization_log_lines(walk):
    """v0.7 logged denials at warn with the reason, so `log_level: warn` still shows them."""
    mallory = walk.login("mallory")
    denied = walk.get("app", session=mallory)
    assert denied.status_code == 403
    line = log_line(walk, denied.headers["Request-Id"], "authorize")
    assert line["decision"] == "deny"
    assert line["email"] == "mallory@other.test"
    assert line["reason"] == "no-allow-rule-matched"
    assert line["level"] == "warn", line


SECRET_PARAMETERS = {"state", "code", "nonce", "code_challenge", "pomerium_session_encrypted", "pomerium_signature",
                     "pomerium_jwt", "pomerium_refresh_token", "pomerium_signin_binding"}


def secrets_of_urls(urls):
    found = set()
    for url in urls:
        for name, values in parse_qs(urlsplit(url).query).items():
            if name in SECRET_PARAMETERS:
                found.update(value for value in values if len(value) >= 8)
    return found


@pytest.mark.parametrize("console", [False, True], ids=["json", "console"])
def test_logs_hold_no_secret_at_debug(pomerium_binary, server_certificate, users, reporting_upstream, tmp_path, console):
    """Every flow at log_level debug, in both log formats: no query string, token, cookie, CSRF
    token, provider secret or configured secret appears in the output."""
    key = signing_key()

    def policy(port):
        return [{"from": f"https://app.example.test:{port}", "to": reporting_upstream.url, "allowed_domains": ["example.com"]}]

    stack = start_stack(pomerium_binary, tmp_path, server_certificate, users, policy, log_level="debug",
                        pomerium_debug=console, administrators=["admin@example.com"], signing_key=key,
                        jwt_claims_headers=["email"])
    secrets = {CLIENT_SECRET, QUERY_SECRET, support.COOKIE_SECRET, support.SHARED_SECRET, key[40:80]}
    try:
        sessions = []
        for user in ("alice", "admin", "mallory"):
            session = stack.browser()
            _, hops = support.login(session, stack.url("app", f"/start?key={QUERY_SECRET}"), user)
            secrets |= secrets_of_urls(hops)
            sessions.append(session)
        alice, admin, _ = sessions
        report = Report(stack.get("app", f"/page?key={QUERY_SECRET}", session=alice,
                                  headers={"Referer": f"https://ref.example.test/?key={QUERY_SECRET}"}))
        secrets.update(report.values("X-Pomerium-Jwt-Assertion"))
        page = stack.get("app", "/.pomerium/", session=admin).text
        secrets.update(value for form in Forms(page).forms.values() for name, value in form.items()
                       if name == "pomerium_csrf")
        impersonate(stack, admin, "bob@example.com", "ops")

        local = f"http://127.0.0.1:{free_port()}/callback"
        login = stack.get("app", "/.pomerium/api/v1/login?pomerium_redirect_uri=" + quote(local, safe=""),
                          session=alice)
        secrets |= secrets_of_urls([login.text])
        response = alice.get(login.text, allow_redirects=False, timeout=10)
        for _ in range(5):
            secrets |= secrets_of_urls([response.headers["Location"]])
            if response.headers["Location"].startswith(local):
                break
            response = alice.get(response.headers["Location"], allow_redirects=False, timeout=10)
        tokens = parse_qs(urlsplit(response.headers["Location"]).query)
        refreshed = stack.get("authenticate", "/api/v1/refresh",
                              headers={"Authorization": f"Pomerium {tokens['pomerium_refresh_token'][0]}"})
        assert refreshed.status_code == 200
        secrets.update(refreshed.json().values())
        stack.get("app", headers={"Authorization": f"Bearer {tokens['pomerium_jwt'][0]}"})
        stack.get("app", "/?pomerium_session=" + tokens["pomerium_jwt"][0])

        for session in sessions:
            secrets.update(item.value for item in session.cookies if len(item.value) >= 8)
        signed_out = alice.get(stack.url("app", "/.pomerium/sign_out"), allow_redirects=False, timeout=10)
        secrets |= secrets_of_urls([signed_out.headers["Location"]])
        alice.get(signed_out.headers["Location"], allow_redirects=False, timeout=10)
    finally:
        stack.process.stop()
    log = stack.process.output()
    assert "http-request" in log or "http_request" in log, log[-1000:]
    assert len(secrets) > 20
    for secret in secrets:
        # A slice, so a secret that a log line cut or escaped is still found.
        middle = secret[len(secret) // 4:len(secret) // 4 + 24] if len(secret) > 32 else secret
        assert middle not in log, f"secret in the log: {secret[:12]}..."
