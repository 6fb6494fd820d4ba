"""Forward-auth end to end: real nginx with auth_request in front of the echo upstream, asking the
release binary, with logins at oidc-provider-mock.

The first set-up runs config/examples/forward-auth/nginx.conf with loopback addresses put in. The
second is the shape of a benchmark set-up: nginx sends the check to the product with its own
Host, and the session cookie comes from logging in at one of the product's own routes."""
import json
import re
import shutil
from pathlib import Path

import jwt
import pytest
import requests

import support
from support import COOKIE_SECRET, SHARED_SECRET, VENV

ROOT = support.ROOT
EXAMPLE = ROOT / "config/examples/forward-auth/nginx.conf"
MAX_HOPS = 12


def nginx_main_config(folder, http_block):
    return f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{http_block}
}}
"""


def example_for_loopback(pomerium_port, nginx_port, upstream_port):
    """The example nginx.conf with the product, the application and nginx itself on loopback."""
    text = EXAMPLE.read_text()
    replacements = [
        ("server fwdauth.corp.example.com:443;", f"server 127.0.0.1:{pomerium_port};"),
        ("https://pomerium_forward_auth/", "http://pomerium_forward_auth/"),
        ("proxy_set_header Host fwdauth.corp.example.com;", f"proxy_set_header Host fwdauth.example.test:{pomerium_port};"),
        ("https://fwdauth.corp.example.com/", f"http://fwdauth.example.test:{pomerium_port}/"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{nginx_port};"),
        ("server_name httpbin.corp.example.com;", "server_name app.example.test;"),
        ("uri=https://httpbin.corp.example.com$request_uri", f"uri=http://app.example.test:{nginx_port}$request_uri"),
        ("proxy_set_header Host httpbin.corp.example.com;", f"proxy_set_header Host app.example.test:{nginx_port};"),
        ("proxy_pass http://httpbin:8000;", f"proxy_pass http://127.0.0.1:{upstream_port};"),
    ]
    for old, new in replacements:
        assert old in text, f"the example no longer contains {old!r}"
        text = text.replace(old, new)
    text = re.sub(r"^\s*(ssl_certificate|ssl_certificate_key|proxy_ssl_server_name|proxy_ssl_name)\s.*$", "",
                  text, flags=re.MULTILINE)
    return text


def bench_style_nginx(pomerium_port, nginx_port, upstream_port, verify_path, sign_in_url):
    """nginx asking the product at verify_path with Host $http_host and the X-Forwarded-* headers;
    a 401 becomes a redirect to sign_in_url, without passing on any cookie."""
    return f"""
upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 8; }}
upstream authsrv {{ server 127.0.0.1:{pomerium_port}; keepalive 8; }}
server {{
    listen 127.0.0.1:{nginx_port};
    location = /_fwd_auth {{
        internal;
        proxy_pass http://authsrv{verify_path};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Method $request_method;
        proxy_set_header X-Forwarded-Uri $request_uri;
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
    }}
    location @signin {{ return 302 "{sign_in_url}"; }}
    location / {{
        auth_request /_fwd_auth;
        auth_request_set $pomerium_jwt $upstream_http_x_pomerium_jwt_assertion;
        auth_request_set $pomerium_email $upstream_http_x_pomerium_claim_email;
        error_page 401 = @signin;
        proxy_pass http://app;
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Pomerium-Jwt-Assertion $pomerium_jwt;
        proxy_set_header X-Pomerium-Claim-Email $pomerium_email;
    }}
}}
"""


class ForwardAuthSetup:
    """pomerium, nginx and the echo upstream, all stopped by the fixture."""

    def __init__(self, group, binary, folder, issuer):
        self.group = group
        self.binary = binary
        self.folder = Path(folder)
        self.issuer = issuer
        self.pomerium_port = support.free_port()
        self.nginx_port = support.free_port()
        self.upstream_port = support.free_port()
        group.start("echo-upstream", [VENV / "python", ROOT / "tests/fixtures/echo_upstream.py",
                                      "--port", self.upstream_port], port=self.upstream_port)

    def start_pomerium(self, authenticate_url, forward_auth_url, routes, **extra):
        settings = {
            "address": f"127.0.0.1:{self.pomerium_port}",
            "insecure_server": True,
            "cookie_secure": False,
            "authenticate_service_url": authenticate_url,
            "forward_auth_url": forward_auth_url,
            "idp_provider": "oidc",
            "idp_provider_url": self.issuer,
            "idp_client_id": "pomerium-e2e",
            "idp_client_secret": "pomerium-e2e-secret",
            "cookie_secret": COOKIE_SECRET,
            "shared_secret": SHARED_SECRET,
            "signing_key_file": str(self.folder / "signing-key.pem"),
            "jwt_claims_headers": ["email", "groups"],
            "policy": routes,
            **extra,
        }
        path = self.folder / "pomerium.yaml"
        path.write_text(json.dumps(settings, indent=1))
        self.pomerium = self.group.start("pomerium", [self.binary, "-config", path], cwd=self.folder,
                                         port=self.pomerium_port)

    def start_nginx(self, http_block):
        nginx_folder = self.folder / "nginx"
        nginx_folder.mkdir(exist_ok=True)
        config = nginx_folder / "nginx.conf"
        config.write_text(nginx_main_config(nginx_folder, http_block))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.group.start("nginx", [nginx, "-c", config, "-p", nginx_folder, "-e", nginx_folder / "error.log"],
                         port=self.nginx_port)

    def key_set(self, url):
        document = requests.get(url, timeout=10).json()
        return {item["kid"]: jwt.PyJWK(item).key for item in document["keys"]}

    def verified_claims(self, assertion, jwks_url, audience):
        """Checks the assertion as an upstream would: ES256 under a key of the JWKS, aud, exp."""
        header = jwt.get_unverified_header(assertion)
        key = self.key_set(jwks_url)[header["kid"]]
        return jwt.decode(assertion, key, algorithms=["ES256"], audience=audience, leeway=60)


@pytest.fixture
def setup(pomerium_binary, provider, tmp_path):
    group = support.ProcessGroup(tmp_path)
    try:
        yield ForwardAuthSetup(group, pomerium_binary, tmp_path, provider)
    finally:
        group.stop_all()


def browser():
    session = requests.Session()
    session.trust_env = False
    session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    return session


def log_in_at_provider(session, response, user):
    """Posts the provider's login form shown by `response`; returns the final response and hops."""
    form = support._LoginForm()
    form.feed(response.text)
    assert form.action is not None, f"no login form at {response.url}: {response.text[:300]}"
    posted = session.post(requests.compat.urljoin(response.url, form.action), data={"sub": user},
                          allow_redirects=False, timeout=10)
    return support.follow(session, posted, limit=MAX_HOPS)


def echo_header(answer, name):
    values = [value for key, value in answer["headers"] if key.lower() == name.lower()]
    return values[0] if values else None


def test_example_nginx_config_signs_in_and_keeps_the_url(setup, provider):
    port = setup.pomerium_port
    app = f"http://app.example.test:{setup.nginx_port}"
    setup.start_pomerium(
        f"http://authenticate.example.test:{port}", f"http://fwdauth.example.test:{port}",
        [{"from": app, "to": "http://127.0.0.1:9", "allowed_domains": ["example.com"]}])
    setup.start_nginx(example_for_loopback(port, setup.nginx_port, setup.upstream_port))

    anonymous = requests.get(f"{app}/a?b=1&c=2", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == f"http://fwdauth.example.test:{port}/?uri={app}/a?b=1&c=2"

    session = browser()
    at_provider, hops = support.follow(session, session.get(f"{app}/a?b=1&c=2", allow_redirects=False, timeout=10))
    assert at_provider.status_code == 200
    assert at_provider.url.startswith(f"{provider}/"), hops
    landed, more = log_in_at_provider(session, at_provider, "alice")
    assert landed.status_code == 200, f"{landed.url}: {landed.text[:300]}"
    assert landed.url == f"{app}/a?b=1&c=2", more
    answer = landed.json()
    assert answer["path"] == "/a?b=1&c=2"
    assert echo_header(answer, "X-Pomerium-Claim-Email") == "alice@example.com"
    assert echo_header(answer, "X-Pomerium-Claim-Groups") == "devs"
    claims = setup.verified_claims(
        echo_header(answer, "X-Pomerium-Jwt-Assertion"),
        f"http://authenticate.example.test:{port}/.well-known/pomerium/jwks.json",
        audience=f"app.example.test:{setup.nginx_port}")
    assert claims["email"] == "alice@example.com"
    assert claims["iss"] == f"authenticate.example.test:{port}"

    again = session.get(f"{app}/other?x=%2F", allow_redirects=False, timeout=10)
    assert again.status_code == 200
    assert again.json()["path"] == "/other?x=%2F"

    forged = session.get(f"{app}/", headers={"X-Pomerium-Claim-Email": "root@example.com"}, timeout=10)
    assert echo_header(forged.json(), "X-Pomerium-Claim-Email") == "alice@example.com"


def test_denied_user_gets_403_without_a_loop(setup):
    port = setup.pomerium_port
    app = f"http://app.example.test:{setup.nginx_port}"
    setup.start_pomerium(
        f"http://authenticate.example.test:{port}", f"http://fwdauth.example.test:{port}",
        [{"from": app, "to": "http://127.0.0.1:9", "allowed_domains": ["example.com"]}])
    setup.start_nginx(example_for_loopback(port, setup.nginx_port, setup.upstream_port))

    session = browser()
    at_provider, _ = support.follow(session, session.get(f"{app}/private", allow_redirects=False, timeout=10))
    final, hops = log_in_at_provider(session, at_provider, "mallory")
    assert final.status_code == 403, f"{final.url}: {final.text[:300]}"
    assert final.url == f"{app}/private"
    assert len(hops) < MAX_HOPS, hops
    direct = session.get(f"{app}/private", allow_redirects=False, timeout=10)
    assert direct.status_code == 403


def test_route_cookie_works_through_nginx_on_another_port(setup, provider):
    """The product's own route and nginx share the host name 127.0.0.1 on two ports: the cookie
    from a login at the route is accepted for the nginx URL, whose own route still decides."""
    support.set_user_claims(provider, "bob", {"email": "bob@example.com", "groups": ["admins", "devs"]})
    support.set_user_claims(provider, "eve", {"email": "eve@example.com", "groups": ["devs"]})
    port, nginx_port = setup.pomerium_port, setup.nginx_port
    upstream = f"http://127.0.0.1:{setup.upstream_port}"
    routes = []
    for origin in (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nginx_port}"):
        routes.append({"from": origin, "prefix": "/admin", "to": upstream, "allowed_groups": ["admins"]})
        routes.append({"from": origin, "to": upstream, "allowed_domains": ["example.com"]})
    setup.start_pomerium(f"http://localhost:{port}", "http://127.0.0.1", routes)
    sign_in = f"http://127.0.0.1:{port}/?uri=$scheme://$http_host$request_uri"
    setup.start_nginx(bench_style_nginx(
        port, nginx_port, setup.upstream_port, "/verify?uri=$scheme://$http_host$request_uri", sign_in))
    behind_nginx = f"http://127.0.0.1:{nginx_port}"

    def cookie_for(user):
        session = browser()
        at_provider, _ = support.follow(
            session, session.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=10))
        landed, _ = log_in_at_provider(session, at_provider, user)
        assert landed.status_code == 200, landed.text[:300]
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies if c.domain.startswith("127.0.0.1"))
        assert cookie
        return cookie

    bob, eve = cookie_for("bob"), cookie_for("eve")
    allowed = requests.get(f"{behind_nginx}/a?b=1&c=2", headers={"Cookie": bob}, allow_redirects=False, timeout=10)
    assert allowed.status_code == 200
    assert allowed.json()["path"] == "/a?b=1&c=2"
    assert echo_header(allowed.json(), "X-Pomerium-Claim-Email") == "bob@example.com"
    claims = setup.verified_claims(
        echo_header(allowed.json(), "X-Pomerium-Jwt-Assertion"),
        f"http://localhost:{port}/.well-known/pomerium/jwks.json", audience=f"127.0.0.1:{nginx_port}")
    assert claims["email"] == "bob@example.com"

    admin = requests.get(f"{behind_nginx}/admin/", headers={"Cookie": bob}, allow_redirects=False, timeout=10)
    assert admin.status_code == 200
    refused = requests.get(f"{behind_nginx}/admin/", headers={"Cookie": eve}, allow_redirects=False, timeout=10)
    assert refused.status_code == 403

    anonymous = requests.get(f"{behind_nginx}/a?b=1&c=2", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == f"http://127.0.0.1:{port}/?uri={behind_nginx}/a?b=1&c=2"

    session = browser()
    at_provider, _ = support.follow(session, session.get(f"{behind_nginx}/a?b=1&c=2", allow_redirects=False,
                                                         timeout=10))
    landed, hops = log_in_at_provider(session, at_provider, "bob")
    assert landed.status_code == 200, hops
    assert landed.url == f"{behind_nginx}/a?b=1&c=2"


def test_forwarded_headers_count_from_a_trusted_ingress(setup, provider):
    port, nginx_port = setup.pomerium_port, setup.nginx_port
    upstream = f"http://127.0.0.1:{setup.upstream_port}"
    routes = [{"from": origin, "to": upstream, "allowed_domains": ["example.com"]}
              for origin in (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nginx_port}")]
    setup.start_pomerium(f"http://localhost:{port}", "http://127.0.0.1", routes, trusted_proxies=["127.0.0.1"])
    setup.start_nginx(bench_style_nginx(port, nginx_port, setup.upstream_port, "/verify",
                                        f"http://127.0.0.1:{port}/?uri=$scheme://$http_host$request_uri"))
    session = browser()
    at_provider, _ = support.follow(session, session.get(f"http://127.0.0.1:{port}/", allow_redirects=False,
                                                         timeout=10))
    log_in_at_provider(session, at_provider, "alice")
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies if c.domain.startswith("127.0.0.1"))
    allowed = requests.get(f"http://127.0.0.1:{nginx_port}/x?y=1", headers={"Cookie": cookie}, timeout=10)
    assert allowed.status_code == 200
    assert echo_header(allowed.json(), "X-Pomerium-Claim-Email") == "alice@example.com"
    anonymous = requests.get(f"http://127.0.0.1:{nginx_port}/x?y=1", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
