"""The documentation, checked as a new user would: the example configurations, the command
line and -validate, and the behaviour that README.md, docs/configuration.md and
docs/compatibility.md describe for a running proxy. Each test names the claim it checks.

Every server runs on 127.0.0.1 and is started here. Tests of claims that the product does not
meet today are marked xfail with the reason."""
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import time

import pytest
import requests

from harness import ROOT, Pomerium, base_config, free_port
from test_keepalive_attacks import USERS, ThreadedUpstream, _Reader, requests_session  # noqa: F401

import support  # noqa: E402 (test_keepalive_attacks put tests/e2e on sys.path)

EXAMPLES = ROOT / "config/examples"
EXAMPLE_FILES = ["config.yaml", "config.json", "config.toml", "config.properties", "split/authenticate.yaml",
                 "split/authorize.yaml", "split/cache.yaml", "split/proxy.yaml", "forward-auth/config.yaml"]
SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
OTHER_SECRET = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="


# -------------------------------------------------------------------------------------------------
# The command line, -validate and the example configurations.


def run(binary, *arguments, env=None, cwd=None):
    """Runs pomerium to completion with only the given variables set: (exit code, output)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    result = subprocess.run([str(binary), *arguments], capture_output=True, text=True, env=environment,
                            cwd=cwd, timeout=30)
    return result.returncode, result.stdout + result.stderr


def problems(output):
    """The `severity: source: key: message` lines of -validate."""
    return [line for line in output.splitlines() if line.startswith(("error: ", "warning: "))]


def effective(output):
    """The effective settings that -validate prints, as key -> value text."""
    settings = {}
    for line in output.splitlines():
        match = re.match(r"^  ([a-z_]+(?:\[\d+\])?): ?(.*)$", line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


@pytest.fixture(scope="module")
def example_environment(server_certificate):
    """The secrets and certificate that config/examples/README.md lists for the environment."""
    cert, key = server_certificate
    return {"COOKIE_SECRET": SECRET, "SHARED_SECRET": OTHER_SECRET, "IDP_CLIENT_SECRET": "example-client-secret",
            "CERTIFICATE": base64.b64encode(cert.read_bytes()).decode(),
            "CERTIFICATE_KEY": base64.b64encode(key.read_bytes()).decode()}


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_passes_validate(pomerium_binary, example_environment, name):
    code, output = run(pomerium_binary, "-config", str(EXAMPLES / name), "-validate", env=example_environment)
    assert code == 0, output
    assert problems(output) == [], problems(output)
    assert "configuration is valid" in output


def test_example_formats_are_the_same_settings(pomerium_binary, example_environment):
    """config/examples/README.md: the JSON, TOML and properties files hold the same settings."""
    outputs = {}
    for name in ["config.yaml", "config.json", "config.toml", "config.properties"]:
        code, output = run(pomerium_binary, "-config", str(EXAMPLES / name), "-validate", env=example_environment)
        assert code == 0, output
        outputs[name] = effective(output)
    assert len(outputs["config.yaml"]) > 60
    for name in ["config.json", "config.toml", "config.properties"]:
        assert outputs[name] == outputs["config.yaml"], name


def test_example_without_certificate_variables_names_files(pomerium_binary, example_environment):
    """The example's comment: the certificate_file paths are used when CERTIFICATE is empty."""
    environment = dict(example_environment, CERTIFICATE="", CERTIFICATE_KEY="")
    code, output = run(pomerium_binary, "-config", str(EXAMPLES / "config.yaml"), "-validate", env=environment)
    assert code == 1
    assert any("certificate_file" in line and "/pomerium/fullchain.pem" in line for line in problems(output)), output


def test_command_line_exit_codes(pomerium_binary):
    """README: 0 for a clean stop, 1 for invalid settings, 2 for an invalid command line."""
    assert run(pomerium_binary, "-version")[0] == 0
    assert run(pomerium_binary, "-help")[0] == 0
    assert run(pomerium_binary, "-no-such-flag")[0] == 2
    assert run(pomerium_binary, "-config", "/nonexistent/config.yaml", "-validate")[0] == 1


def test_validate_problem_line_format(pomerium_binary, tmp_path):
    """configuration.md: `severity: source: key: message`, where the source is `file:line`, the
    variable's name, or `default`; warnings alone exit 0, an error exits 1."""
    path = tmp_path / "config.yaml"
    path.write_text("\n".join([
        "address: 127.0.0.1:0", "insecure_server: true",
        "authenticate_service_url: https://authenticate.example.test",
        "idp_provider: oidc", "idp_provider_url: http://127.0.0.1:9", "idp_client_id: client",
        "idp_client_secret: secret", "service: all", "default_upstream_timeout: 30",
        "policy:", "  - from: https://app.example.test", "    to: http://127.0.0.1:9",
        "    allowed_domains: [example.com]", ""]))
    code, output = run(pomerium_binary, "-config", str(path), "-validate", env={"SHARED_SECRET": "short"})
    lines = problems(output)
    assert code == 1
    assert f"warning: {path}:8: service: " in output, lines
    assert '"services"' in next(line for line in lines if ": service: " in line)
    assert f"error: {path}:9: default_upstream_timeout: " in output, lines
    assert any(line.startswith("error: ") and "SHARED_SECRET: shared_secret: " in line for line in lines), lines
    assert any(line.startswith("error: default: cookie_secret: ") for line in lines), lines

    path.write_text(path.read_text().replace("default_upstream_timeout: 30", "default_upstream_timeout: 30s"))
    code, output = run(pomerium_binary, "-config", str(path), "-validate", env={"COOKIE_SECRET": SECRET})
    assert [line.split(":")[0] for line in problems(output)] == ["warning"], problems(output)
    assert code == 0


def config_with(setting, issuer="http://127.0.0.1:9"):
    """A valid YAML config with `setting` appended after the one route's fields."""
    return "\n".join([
        "address: 127.0.0.1:0", "insecure_server: true",
        "authenticate_service_url: https://authenticate.example.test",
        "idp_provider: oidc", f"idp_provider_url: {issuer}", "idp_client_id: client",
        "idp_client_secret: secret", f"cookie_secret: {SECRET}",
        "policy:", "  - from: https://app.example.test", "    to: http://127.0.0.1:9", setting, ""])


# Settings the loader rejects, with the text its error names. Nothing listens on the Redis port:
# the address is checked before the store connects. -validate and the start once disagreed on
# them: the loader passed them and only building the services failed.
REJECTED_SETTINGS = [
    ("    allowed_users: [alice]", 'entry "alice" is not an email address'),
    ("    allowed_domains: ['@example.com']", 'entry "@example.com" is invalid'),
    ("    allowed_domains: [example.com]\nadministrators: [admin]", 'entry "admin" is not an email address'),
    ("    allowed_domains: [example.com]\ncache_store: redis\n"
     "cache_store_address: 'redis://127.0.0.1:9?db=1&db=2'", "parameter db is given twice"),
    ("    allowed_domains: [example.com]\ncache_store: redis\n"
     "cache_store_address: 'rediss://127.0.0.1:9?tls_cert_file=/etc/hostname'", "tls_key_file"),
    ("    allowed_domains: [example.com]\ncache_store: redis\n"
     "cache_store_address: 'rediss://127.0.0.1:9?tls_skip_verify=maybe'", 'tls_skip_verify "maybe"'),
]


REJECTED_IDS = ["allowed-users", "allowed-domains", "administrators", "redis-repeated-db",
                "redis-cert-without-key", "redis-skip-verify-value"]


@pytest.mark.parametrize("setting, named", REJECTED_SETTINGS, ids=REJECTED_IDS)
def test_validate_reports_what_start_rejects(pomerium_binary, tmp_path, setting, named):
    """-validate exits 1 with an error line that names the file and the value."""
    path = tmp_path / "config.yaml"
    path.write_text(config_with(setting))
    code, output = run(pomerium_binary, "-config", str(path), "-validate")
    assert code == 1, output
    errors = [line for line in problems(output) if line.startswith("error: ") and f"{path.name}:" in line]
    assert errors, output
    assert any(named in line for line in errors), output


@pytest.mark.parametrize("setting, named", REJECTED_SETTINGS, ids=REJECTED_IDS)
def test_start_rejects_what_validate_rejects(pomerium_binary, oidc_provider, tmp_path, setting, named):
    """The settings of the test above stop the start too, naming the value."""
    path = tmp_path / "config.yaml"
    path.write_text(config_with(setting, issuer=oidc_provider))
    code, output = run(pomerium_binary, "-config", str(path))
    assert code == 1, output
    assert named in output, output


def test_environment_wins_over_file(pomerium_binary, tmp_path):
    """configuration.md: a variable replaces the file's value, and POLICY the whole list, in
    base64 or as plain YAML; a variable of only whitespace counts as unset."""
    config = base_config(0, cookie_name="_from_file", policy=[
        {"from": "https://file.example.test", "to": "http://127.0.0.1:9", "allowed_domains": ["example.com"]}])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    policy = "- from: https://env.example.test\n  to: http://127.0.0.1:9\n  allowed_domains: [example.com]\n"
    for value in [base64.b64encode(policy.encode()).decode(), policy]:
        code, output = run(pomerium_binary, "-config", str(path), "-validate",
                           env={"COOKIE_NAME": "_from_env", "POLICY": value})
        assert code == 0, output
        settings = effective(output)
        assert settings["cookie_name"] == "_from_env"
        assert settings["policy"] == "1 routes"
        assert settings["policy[0]"].startswith("from=https://env.example.test ")
    code, output = run(pomerium_binary, "-config", str(path), "-validate", env={"POLICY": "  ", "COOKIE_NAME": ""})
    assert code == 0, output
    assert effective(output)["policy[0]"].startswith("from=https://file.example.test ")
    assert effective(output)["cookie_name"] == "_from_file"


# -------------------------------------------------------------------------------------------------
# A running all-in-one proxy: the route settings and the proxy behaviour that the docs describe.


class ReportingUpstream(ThreadedUpstream):
    """Responds to every request with JSON holding its method, target and header fields. A
    query parameter `respond=Name:Value` (repeatable) adds that field to the response, so a test
    can make the upstream send headers that the proxy should replace or remove."""

    def _serve(self, connection):
        connection.settimeout(20)
        reader = _Reader(connection)
        try:
            while not self.stopping:
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [[part.strip() for part in line.split(":", 1)] for line in lines[1:] if line]
                extra = ""
                query = target.partition("?")[2]
                for pair in query.split("&"):
                    if pair.startswith("respond="):
                        extra += requests.utils.unquote(pair[len("respond="):]) + "\r\n"
                payload = json.dumps({"method": method, "target": target, "headers": headers}).encode()
                connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
                                   f"Content-Length: {len(payload)}\r\n\r\n".encode("latin-1") + payload)
        except OSError:
            return
        finally:
            connection.close()


class Report:
    """What the upstream received, from its JSON."""

    def __init__(self, response):
        self.response = response
        document = response.json()
        self.target = document["target"]
        self.method = document["method"]
        self.headers = document["headers"]

    def values(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]


@pytest.fixture(scope="module")
def reporting_upstream():
    server = ReportingUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def running(pomerium_binary, server_certificate, oidc_provider, reporting_upstream, tmp_path_factory):
    """One pomerium over TLS for the module, with a route per documented setting."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    folder = tmp_path_factory.mktemp("walkthrough")
    port = free_port()
    to = reporting_upstream.url

    def route(name, **settings):
        return {"from": f"https://{name}.example.test:{port}", "to": to, **settings}

    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        jwt_claims_headers=["email", "groups"],
        policy=[
            route("app", allowed_domains=["example.com"]),
            {"from": f"https://base.example.test:{port}", "to": f"{to}/base/?fixed=1",
             "allow_public_unauthenticated_access": True},
            route("public", allow_public_unauthenticated_access=True),
            route("host", allow_public_unauthenticated_access=True, preserve_host_header=True),
            route("headers", allow_public_unauthenticated_access=True,
                  set_request_headers={"X-Route": "headers", "X-Forwarded-For": "configured"}),
            route("regex", allow_public_unauthenticated_access=True, regex="/items/[0-9]+"),
            route("cors", allowed_domains=["example.com"], cors_allow_preflight=True),
        ])
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    process = Pomerium(pomerium_binary, path, cwd=folder)
    try:
        process.wait_ready(port, scheme="https")
        stack = {"port": port, "ca": server_certificate[0], "process": process}
        session = requests_session(stack)
        final, _ = support.login(session, f"https://app.example.test:{port}/", "alice")
        assert final.status_code == 200, final.text[:300]
        stack["alice"] = session
        yield stack
    finally:
        process.stop()


def get(stack, host, path="/", session=None, **options):
    session = session or requests_session(stack)
    options.setdefault("allow_redirects", False)
    options.setdefault("timeout", 10)
    return session.get(f"https://{host}.example.test:{stack['port']}{path}", **options)


def test_default_security_headers(running):
    """configuration.md: the three v0.7 headers plus X-Content-Type-Options while `headers` is
    the default, replacing an upstream's header of the same name instead of adding a second."""
    response = get(running, "public", "/?respond=X-Frame-Options:%20DENY")
    assert response.status_code == 200
    raw = response.raw.headers
    assert raw.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert raw.getlist("X-XSS-Protection") == ["1; mode=block"]
    assert raw.getlist("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains; preload"]
    assert raw.getlist("X-Content-Type-Options") == ["nosniff"]


def test_assertion_never_reaches_the_browser(running):
    response = get(running, "app", "/?respond=X-Pomerium-Jwt-Assertion:%20leaked", session=running["alice"])
    assert response.status_code == 200
    assert Report(response).values("X-Pomerium-Jwt-Assertion"), "the upstream got no assertion"
    assert "X-Pomerium-Jwt-Assertion" not in response.headers


def test_product_cookies_stripped_toward_upstream(running):
    """compatibility.md: only the product's cookies are removed from the upstream's Cookie."""
    cookies = "_pomerium=a; _pomerium_2=b; _pomerium_csrf=c; _pomerium_signin=d; _pomerium_app=e; app=f"
    report = Report(get(running, "public", headers={"Cookie": cookies}))
    assert report.values("Cookie") == ["_pomerium_app=e; app=f"]


def test_upstream_cannot_set_product_cookies(running):
    """Set-Cookie fields of the upstream that name the product's cookies (_pomerium, its chunks,
    _pomerium_csrf, _pomerium_signin) do not reach the browser; the application's own pass."""
    planted = ["_pomerium=planted; Domain=example.test; Path=/", "_pomerium_2=planted", "_pomerium_csrf=planted",
               "_pomerium_signin=planted", "app=kept"]
    query = "&".join("respond=" + requests.utils.quote(f"Set-Cookie: {value}", safe="") for value in planted)
    response = get(running, "public", "/?" + query)
    assert response.status_code == 200
    assert response.raw.headers.getlist("Set-Cookie") == ["app=kept"]


def test_claim_headers_reach_the_upstream(running):
    report = Report(get(running, "app", "/", session=running["alice"]))
    assert report.values("X-Pomerium-Claim-Email") == ["alice@example.com"]
    assert report.values("X-Pomerium-Claim-Groups") == ["devs"]


def test_to_path_prefixes_and_query_merges(running):
    """configuration.md: the `to` path prefixes the request path and its query is merged."""
    report = Report(get(running, "base", "/items/1?page=2"))
    path, _, query = report.target.partition("?")
    assert path == "/base/items/1"
    assert sorted(query.split("&")) == ["fixed=1", "page=2"]


def test_preserve_host_header(running, reporting_upstream):
    """Without `preserve_host_header` the upstream gets the `to` host, with it the client's."""
    assert Report(get(running, "host")).values("Host") == [f"host.example.test:{running['port']}"]
    assert Report(get(running, "public")).values("Host") == [f"127.0.0.1:{reporting_upstream.port}"]


def test_set_request_headers(running):
    report = Report(get(running, "headers", headers={"X-Route": "client"}))
    assert report.values("X-Route") == ["headers"]


def test_regex_matches_whole_path(running):
    assert get(running, "regex", "/items/12").status_code == 200
    assert get(running, "regex", "/items/12/edit").status_code == 404
    assert get(running, "regex", "/x/items/12").status_code == 404


def test_forwarded_headers_replaced_for_untrusted_peer(running):
    """compatibility.md: X-Forwarded-For replaced unless the peer is trusted; -Proto added."""
    report = Report(get(running, "public", headers={"X-Forwarded-For": "203.0.113.9",
                                                    "X-Forwarded-Host": "evil.example.test",
                                                    "X-Forwarded-Proto": "http"}))
    assert report.values("X-Forwarded-For") == ["127.0.0.1"]
    assert report.values("X-Forwarded-Proto") == ["https"]
    assert "evil.example.test" not in json.dumps(report.headers)


def test_sign_in_for_scripts_gets_401(running):
    """compatibility.md: XHR and JSON clients get 401 instead of the redirect to sign in."""
    assert get(running, "app").status_code == 302
    assert get(running, "app", headers={"X-Requested-With": "XMLHttpRequest"}).status_code == 401
    assert get(running, "app", headers={"Accept": "application/json"}).status_code == 401
    assert get(running, "app", headers={"Accept": "application/json, text/html"}).status_code == 302


def test_cors_preflight_passes_without_session(running):
    session = requests_session(running)
    url = f"https://cors.example.test:{running['port']}/api"
    preflight = session.options(url, headers={"Origin": "https://web.example.test",
                                              "Access-Control-Request-Method": "PUT"}, timeout=10,
                                allow_redirects=False)
    assert preflight.status_code == 200
    assert Report(preflight).method == "OPTIONS"
    plain_options = session.options(url, timeout=10, allow_redirects=False)
    assert plain_options.status_code == 302


def test_product_endpoints_by_host(running):
    """compatibility.md: /robots.txt on any host; /.pomerium/ and the key set only on route hosts."""
    assert get(running, "unlisted", "/robots.txt").status_code == 200
    assert get(running, "unlisted", "/.pomerium/").status_code == 404
    assert get(running, "unlisted", "/.well-known/pomerium/jwks.json").status_code == 404
    keys = get(running, "public", "/.well-known/pomerium/jwks.json")
    assert keys.status_code == 200
    assert keys.json()["keys"][0]["crv"] == "P-256"


def test_request_line_limit(running):
    """compatibility.md: a request line up to 64 KiB is accepted."""
    long_query = "q=" + "a" * (60 * 1024)
    assert get(running, "public", "/?" + long_query).status_code == 200
    too_long = get(running, "public", "/?" + long_query + "a" * (8 * 1024))
    assert too_long.status_code in (414, 431, 400)


def test_path_normalised_before_upstream(running):
    """compatibility.md: `//` merged and dot segments resolved; encoded separators rejected."""
    with socket.create_connection(("127.0.0.1", running["port"]), timeout=10) as raw:
        context = ssl.create_default_context(cafile=str(running["ca"]))
        with context.wrap_socket(raw, server_hostname="public.example.test") as tls:
            tls.sendall(f"GET //a/./b/../c HTTP/1.1\r\nHost: public.example.test:{running['port']}\r\n"
                        "Connection: close\r\n\r\n".encode())
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
    body = json.loads(received.partition(b"\r\n\r\n")[2])
    assert body["target"] == "/a/c"
    assert get(running, "public", "/a%2Fb").status_code == 400


# -------------------------------------------------------------------------------------------------
# WebSocket timeouts: the route `timeout` does not apply, `timeout_idle` does.


@pytest.fixture
def websocket_echo(tmp_path):
    port = free_port()
    group = support.ProcessGroup(tmp_path)
    try:
        group.start("websocket-echo", [support.VENV / "python", ROOT / "tests/fixtures/websocket_echo.py",
                                       "--port", port], port=port)
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop_all()


def websocket(port, ca, host):
    from websockets.sync.client import connect
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return connect(f"wss://{host}.example.test:{port}/ws", sock=raw, ssl=context,
                   server_hostname=f"{host}.example.test", open_timeout=10)


def test_websocket_timeouts(start_pomerium, server_certificate, oidc_provider, websocket_echo):
    """configuration.md: websocket routes never time out (the route `timeout` is 1 s here), and
    `timeout_idle` (2 s here) closes an upgraded connection with no bytes in either direction."""
    port = free_port()
    config = base_config(port, certificate=server_certificate, issuer=oidc_provider, timeout_idle="2s", policy=[
        {"from": f"https://ws.example.test:{port}", "to": websocket_echo, "timeout": "1s",
         "allow_websockets": True, "allow_public_unauthenticated_access": True}])
    start_pomerium(config, wait_port=port, scheme="https")
    with websocket(port, server_certificate[0], "ws") as connection:
        for index in range(4):
            time.sleep(1.2)
            connection.send(f"after quiet {index}")
            assert connection.recv(timeout=5) == f"after quiet {index}"
        time.sleep(3.5)
        with pytest.raises(Exception):
            connection.send("after idle")
            connection.recv(timeout=3)


def test_unbuilt_metrics_setting_reported(start_pomerium, oidc_provider):
    """This build serves no metrics and exports no traces, and the start logs a warning that names
    the keys."""
    port, metrics_port = free_port(), free_port()
    config = base_config(port, issuer=oidc_provider, metrics_address=f"127.0.0.1:{metrics_port}",
                         tracing_provider="jaeger", tracing_jaeger_collector_endpoint="http://127.0.0.1:9/api/traces")
    process = start_pomerium(config, wait_port=port)
    served = support.port_open(metrics_port)
    output = process.output()
    assert served or ("metrics_address" in output and "tracing_provider" in output), output[-2000:]


# -------------------------------------------------------------------------------------------------
# forward-auth.md, with the endpoints called directly.


@pytest.fixture
def forward_auth(start_pomerium, server_certificate, oidc_provider):
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    port = free_port()
    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        forward_auth_url=f"https://fwdauth.example.test:{port}", jwt_claims_headers=["email"],
        policy=[{"from": f"https://app.example.test:{port}", "to": "http://127.0.0.1:9",
                 "allowed_domains": ["example.com"]}])
    process = start_pomerium(config, wait_port=port, scheme="https")
    stack = {"port": port, "ca": server_certificate[0], "process": process}
    session = requests_session(stack)
    final, _ = support.login(session, f"https://app.example.test:{port}/", "alice")
    assert final.status_code == 502  # signed in; the route's upstream is closed
    stack["cookie"] = "; ".join(f"{item.name}={item.value}" for item in session.cookies
                                if item.domain.startswith("app") and item.name.startswith("_pomerium"))
    return stack


def test_forward_auth_endpoints_as_documented(forward_auth):
    port = forward_auth["port"]
    session = requests_session(forward_auth)
    base = f"https://fwdauth.example.test:{port}"
    app = f"https://app.example.test:{port}"
    cookie = {"Cookie": forward_auth["cookie"]}

    allowed = session.get(f"{base}/verify?uri={app}/a?b=1&c=2", headers=cookie, allow_redirects=False, timeout=10)
    assert allowed.status_code == 200
    assert allowed.text == f"Access to app.example.test:{port} is allowed."
    assert allowed.headers["X-Pomerium-Claim-Email"] == "alice@example.com"
    assert allowed.headers["X-Pomerium-Jwt-Assertion"].count(".") == 2

    posted = session.post(f"{base}/verify?uri={app}/", headers=cookie, allow_redirects=False, timeout=10)
    assert posted.status_code == 200, "the method of the check must not matter"
    assert session.get(f"{base}/verify?auth_status=403&uri={app}/", headers=cookie, allow_redirects=False,
                       timeout=10).status_code == 403
    assert session.get(f"{base}/verify?uri={app}/", allow_redirects=False, timeout=10).status_code == 401
    assert session.get(f"{base}/verify?uri=/relative", headers=cookie, allow_redirects=False,
                       timeout=10).status_code == 400

    sign_in = session.get(f"{base}/?uri={app}/a?b=1&c=2", allow_redirects=False, timeout=10)
    assert sign_in.status_code == 302
    assert "b%3D1%26c%3D2" in sign_in.headers["Location"], sign_in.headers["Location"]
    assert session.get(f"{base}/?uri={app}/", headers={"X-Requested-With": "XMLHttpRequest"},
                       allow_redirects=False, timeout=10).status_code == 401
    unknown = f"https://unknown.example.test:{port}/"
    assert session.get(f"{base}/?uri={unknown}", headers=cookie, allow_redirects=False,
                       timeout=10).status_code == 404
    assert session.get(f"{base}/verify?uri={unknown}", headers=cookie, allow_redirects=False,
                       timeout=10).status_code == 403
