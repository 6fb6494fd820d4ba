"""pomerium-cli against the release binaries, oidc-provider-mock and an echo upstream: the
programmatic login through the browser flow, the token cache and its refresh, route calls with
the returned JWT, the redirect allow-list, error messages, and administrator impersonation."""
import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

import cli_browser
from harness import ROOT, Pomerium, base_config, free_port

HERE = Path(__file__).resolve().parent
PYTHON = ROOT / ".build/venv/bin/python"
USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice", "groups": ["devs"]},
    "bob": {"email": "bob@example.com", "name": "Bob", "groups": ["ops"]},
    "admin": {"email": "admin@example.com", "name": "Admin", "groups": ["admins"]},
}


@pytest.fixture(scope="module")
def cli_binary():
    path = Path(os.environ.get("POMERIUM_CLI_BINARY", ROOT / ".build/release/pomerium-cli"))
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it with: swift build -c release --product pomerium-cli")
    return path


@pytest.fixture(scope="module")
def upstream_port(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("upstream") / "upstream.log", "w")
    process = subprocess.Popen(
        [str(PYTHON), str(ROOT / "tests/fixtures/echo_upstream.py"), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the echo upstream did not start")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class Stack:
    """pomerium in front of the echo upstream; hosts are NAME.example.test:PORT on 127.0.0.1."""

    def __init__(self, process, port, certificate):
        self.process = process
        self.port = port
        self.ca = str(certificate[0])

    def url(self, name, path="/"):
        return f"https://{name}.example.test:{self.port}{path}"

    def session(self):
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        return session


def start_stack(binary, certificate, issuer, upstream_port, folder):
    for user, claims in USERS.items():
        response = requests.put(f"{issuer}/users/{user}", json=claims, timeout=10)
        assert response.status_code == 204, response.text
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    config = base_config(
        port, certificate, issuer=issuer,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        administrators=["admin@example.com"],
        policy=[
            {"from": f"https://app.example.test:{port}", "to": upstream, "allowed_domains": ["example.com"]},
            {"from": f"https://admin-only.example.test:{port}", "to": upstream,
             "allowed_users": ["admin@example.com"]},
        ])
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    process = Pomerium(binary, path, cwd=folder)
    process.wait_ready(port, scheme="https")
    return Stack(process, port, certificate)


@pytest.fixture(scope="module")
def stack(pomerium_binary, server_certificate, oidc_provider, upstream_port, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pomerium")
    started = None
    try:
        started = start_stack(pomerium_binary, server_certificate, oidc_provider, upstream_port, folder)
        yield started
    finally:
        if started:
            started.process.stop()


class CLI:
    """Runs pomerium-cli for one test: its own cache directory and stand-in browser log."""

    def __init__(self, binary, stack, folder):
        self.binary = binary
        self.stack = stack
        self.cache = folder / "cache"
        self.browser_log = folder / "browser.log"

    def arguments(self, command, url, *extra, cache=True):
        port = self.stack.port
        extra = list(extra)
        program = extra[extra.index("--"):] if "--" in extra else []
        options = extra[:len(extra) - len(program)]
        arguments = [str(self.binary), command, "--cacert", self.stack.ca,
                     "--resolve", f"app.example.test:{port}:127.0.0.1",
                     "--resolve", f"authenticate.example.test:{port}:127.0.0.1",
                     "--resolve", f"unknown.example.test:{port}:127.0.0.1",
                     "--login-timeout", "30", *options, url, *program]
        if cache:
            arguments[2:2] = ["--cache-dir", str(self.cache)]
        return arguments

    def environment(self, user, browser):
        env = {key: value for key, value in os.environ.items() if key not in ("BROWSER", "XDG_CACHE_HOME")}
        env.update(CLI_BROWSER_USER=user, CLI_BROWSER_CA=self.stack.ca, CLI_BROWSER_LOG=str(self.browser_log))
        if browser:
            env["BROWSER"] = f"{PYTHON} {HERE / 'cli_browser.py'}"
        return env

    def run(self, command, url=None, *extra, user="alice", browser=True, cache=True, timeout=90):
        url = url or self.stack.url("app")
        return subprocess.run(
            self.arguments(command, url, *extra, cache=cache), env=self.environment(user, browser),
            capture_output=True, text=True, timeout=timeout)

    def start(self, command, url=None, *extra, user="alice"):
        url = url or self.stack.url("app")
        return subprocess.Popen(
            self.arguments(command, url, "--no-browser", *extra), env=self.environment(user, browser=False),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def browser_runs(self):
        if not self.browser_log.exists():
            return []
        return [json.loads(line) for line in self.browser_log.read_text().splitlines()]

    def cache_file(self):
        return self.cache / f"https_app.example.test_{self.stack.port}.json"


@pytest.fixture
def cli(cli_binary, stack, tmp_path):
    return CLI(cli_binary, stack, tmp_path)


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def echoed_headers(response):
    return {name.lower(): value for name, value in response.json()["headers"]}


def read_sign_in_url(process, timeout=30):
    """Reads the command's standard error until the sign-in URL line; returns it and the text."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
        if "/.pomerium/sign_in?" in line:
            return line.strip(), seen
    pytest.fail(f"no sign-in URL on standard error:\n{seen}")


# MARK: login and the cache


def test_login_prints_jwt_and_caches_it(cli, stack):
    result = cli.run("login")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2
    payload = claims(token)
    assert payload["email"] == "alice@example.com"
    assert f"app.example.test:{stack.port}" in payload["aud"]
    assert payload["programatic"] is True
    assert len(cli.browser_runs()) == 1
    assert cli.browser_runs()[0]["status"] == 200, cli.browser_runs()
    assert "Open" in result.stderr or "open" in result.stderr

    cached = json.loads(cli.cache_file().read_text())
    assert cached["jwt"] == token
    assert cached["refresh_token"]
    assert cached["authenticate_url"] == f"https://authenticate.example.test:{stack.port}"
    assert stat.S_IMODE(cli.cache_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.cache.stat().st_mode) == 0o700
    assert token not in result.stderr
    assert cached["refresh_token"] not in result.stderr


def test_cached_token_is_reused_without_browser(cli):
    first = cli.run("login")
    assert first.returncode == 0, first.stderr
    second = cli.run("login", None, "--verbose")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert len(cli.browser_runs()) == 1
    assert "using the cached token" in second.stderr
    assert first.stdout.strip() not in second.stderr


def test_expiring_token_is_refreshed(cli, stack):
    first = cli.run("login")
    assert first.returncode == 0, first.stderr
    old = json.loads(cli.cache_file().read_text())
    time.sleep(1.1)  # The new JWT's iat must differ from the old one's.
    refreshed = cli.run("login", None, "--min-validity", "999999999", "--verbose")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "token refreshed" in refreshed.stderr
    assert len(cli.browser_runs()) == 1, "a refresh needs no browser"
    token = refreshed.stdout.strip()
    assert token != old["jwt"]
    new = json.loads(cli.cache_file().read_text())
    assert new["jwt"] == token
    assert new["refresh_token"] != old["refresh_token"]
    assert claims(token)["aud"] == claims(old["jwt"])["aud"]
    assert claims(token)["iat"] > claims(old["jwt"])["iat"]
    response = stack.session().get(
        stack.url("app", "/after-refresh"), headers={"Authorization": f"Pomerium {token}"}, timeout=10)
    assert response.status_code == 200, response.text


def test_failed_refresh_logs_in_again(cli):
    first = cli.run("login")
    assert first.returncode == 0, first.stderr
    document = json.loads(cli.cache_file().read_text())
    document["refresh_token"] = "not-a-refresh-token"
    cli.cache_file().write_text(json.dumps(document))
    os.chmod(cli.cache_file(), 0o600)
    again = cli.run("login", None, "--min-validity", "999999999")
    assert again.returncode == 0, again.stderr
    assert "refreshing the token failed; signing in again" in again.stderr
    assert len(cli.browser_runs()) == 2
    assert json.loads(cli.cache_file().read_text())["refresh_token"] != "not-a-refresh-token"


def test_cache_readable_by_others_is_ignored(cli):
    assert cli.run("login").returncode == 0
    os.chmod(cli.cache_file(), 0o644)
    again = cli.run("login")
    assert again.returncode == 0, again.stderr
    assert "expected 600" in again.stderr
    assert len(cli.browser_runs()) == 2
    assert stat.S_IMODE(cli.cache_file().stat().st_mode) == 0o600


def test_logout_deletes_the_cached_token(cli):
    assert cli.run("login").returncode == 0
    result = cli.run("logout")
    assert result.returncode == 0, result.stderr
    assert "Deleted the cached token" in result.stderr
    assert not cli.cache_file().exists()


def test_printed_url_without_browser(cli, stack):
    process = cli.start("login")
    try:
        line, _ = read_sign_in_url(process)
        url = line[line.index("https://"):]
        parts = urlsplit(url)
        assert parts.netloc == f"authenticate.example.test:{stack.port}"
        query = parse_qs(parts.query)
        assert query["pomerium_programmatic"] == ["true"]
        redirect = urlsplit(query["pomerium_redirect_uri"][0])
        assert redirect.hostname == "127.0.0.1"
        assert redirect.port and redirect.port != stack.port
        env = cli.environment("bob", browser=False)
        browser = subprocess.run([str(PYTHON), str(HERE / "cli_browser.py"), url], env=env, timeout=60)
        assert browser.returncode == 0
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert claims(stdout.strip())["email"] == "bob@example.com"
    assert "Login complete" in cli.browser_runs()[0]["page"]


# MARK: calling routes


@pytest.mark.parametrize("scheme", ["Pomerium", "Bearer"])
def test_route_accepts_jwt_and_hides_it_from_upstream(cli, stack, scheme):
    result = cli.run("login", None, "--no-cache")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    response = stack.session().get(
        stack.url("app", "/data?x=1"), headers={"Authorization": f"{scheme} {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    headers = echoed_headers(response)
    assert "authorization" not in headers
    assert all(token not in value for value in headers.values())
    assert claims(headers["x-pomerium-jwt-assertion"])["email"] == "alice@example.com"
    assert response.json()["path"] == "/data?x=1"


def test_route_rejects_jwt_of_another_route(cli, stack):
    result = cli.run("login")
    token = result.stdout.strip()
    response = stack.session().get(
        stack.url("admin-only", "/"), headers={"Authorization": f"Pomerium {token}", "Accept": "application/json"},
        timeout=10)
    assert response.status_code == 401


@pytest.mark.parametrize("flag", [[], ["--bearer"]])
def test_fetch_sends_the_route_token(cli, stack, flag):
    result = cli.run("fetch", stack.url("app", "/fetched"), *flag, "-H", "X-Test: yes")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    headers = {name.lower(): value for name, value in body["headers"]}
    assert body["path"] == "/fetched"
    assert headers["x-test"] == "yes"
    assert "authorization" not in headers
    assert "x-pomerium-jwt-assertion" in headers


def test_fetch_reports_upstream_error_status(cli, stack):
    result = cli.run("fetch", stack.url("app", "/status/503"))
    assert result.returncode == 1
    assert "returned status 503" in result.stderr


def test_exec_passes_the_token_in_the_environment(cli, stack):
    script = "import os, sys; sys.stdout.write(os.environ['POMERIUM_JWT'])"
    result = cli.run("exec", None, "--", str(PYTHON), "-c", script)
    assert result.returncode == 0, result.stderr
    assert claims(result.stdout)["email"] == "alice@example.com"
    failing = cli.run("exec", None, "--", str(PYTHON), "-c", "raise SystemExit(7)")
    assert failing.returncode == 7


def test_fetch_with_insecure_skips_verification(cli, stack):
    assert cli.run("login").returncode == 0
    arguments = [a for a in cli.arguments("fetch", stack.url("app", "/insecure"), "--insecure") if a != stack.ca]
    arguments.remove("--cacert")
    result = subprocess.run(arguments, env=cli.environment("alice", True), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


# MARK: the server side of programmatic login


@pytest.mark.parametrize("target", [
    "https://evil.example.test/",
    "http://127.0.0.1.evil.example.test/",
    "http://user@127.0.0.1/",
    "javascript:alert(1)",
])
def test_login_redirect_outside_allow_list_is_rejected(stack, target):
    response = stack.session().get(
        stack.url("app", "/.pomerium/api/v1/login"), params={"pomerium_redirect_uri": target}, timeout=10)
    assert response.status_code == 400, response.text


def test_login_endpoint_returns_signed_sign_in_url(stack):
    session = stack.session()
    response = session.get(
        stack.url("app", "/.pomerium/api/v1/login"), params={"pomerium_redirect_uri": "http://127.0.0.1:9/"},
        timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    query = parse_qs(urlsplit(response.text).query)
    assert query["pomerium_callback_uri"] == [stack.url("app", "/.pomerium/callback/")]
    assert query["pomerium_signature"]
    missing = session.get(stack.url("app", "/.pomerium/api/v1/login"), timeout=10)
    assert missing.status_code == 400


def test_refresh_endpoint_rejects_bad_tokens(stack):
    session = stack.session()
    url = stack.url("authenticate", "/api/v1/refresh")
    assert session.get(url, timeout=10).status_code == 401
    bad = session.get(url, headers={"Authorization": "Pomerium garbage"}, timeout=10)
    assert bad.status_code in (400, 401)


# MARK: error messages


def test_url_without_scheme_is_named(cli):
    result = cli.run("login", "app.example.test")
    assert result.returncode == 1
    assert 'invalid URL "app.example.test": add the scheme' in result.stderr


def test_unreachable_host_is_named(cli):
    closed = free_port()
    result = cli.run("login", f"https://127.0.0.1:{closed}", browser=False)
    assert result.returncode == 1
    assert f"cannot connect to https://127.0.0.1:{closed}" in result.stderr


def test_localhost_subdomain_connects_to_loopback(cli_binary, tmp_path):
    # A *.localhost name must reach 127.0.0.1 without a DNS query, as in curl and browsers, so
    # the error is the refused connection and not a failed name lookup.
    closed = free_port()
    result = subprocess.run(
        [str(cli_binary), "login", "--no-browser", "--no-cache", "--login-timeout", "1",
         f"http://app.localhost:{closed}"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "cannot resolve" not in result.stderr
    assert f"cannot connect to http://app.localhost:{closed}" in result.stderr


def test_unknown_route_is_named(cli, stack):
    result = cli.run("login", stack.url("unknown"), browser=False)
    assert result.returncode == 1
    assert "has no Pomerium route (404" in result.stderr


def test_untrusted_certificate_suggests_cacert(cli, stack):
    arguments = cli.arguments("login", stack.url("app"), "--no-cache")
    index = arguments.index("--cacert")
    del arguments[index:index + 2]
    result = subprocess.run(arguments, env=cli.environment("alice", False), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "--cacert FILE" in result.stderr
    assert "--insecure" in result.stderr


def test_missing_ca_file_is_named(cli, stack, tmp_path):
    arguments = cli.arguments("login", stack.url("app"))
    arguments[arguments.index("--cacert") + 1] = str(tmp_path / "missing.pem")
    result = subprocess.run(arguments, env=cli.environment("alice", False), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "missing.pem given with --cacert" in result.stderr


def test_login_times_out(cli):
    result = cli.run("login", None, "--no-browser", "--login-timeout", "1", browser=False)
    assert result.returncode == 1
    assert "did not finish within 1 s" in result.stderr
    assert "--login-timeout" in result.stderr


def test_malformed_callback_fails_the_login(cli, stack):
    process = cli.start("login")
    try:
        line, _ = read_sign_in_url(process)
        query = parse_qs(urlsplit(line[line.index("https://"):]).query)
        redirect = query["pomerium_redirect_uri"][0]
        wrong_state = re.sub(r"pomerium_cli_state=[^&]*", "pomerium_cli_state=wrong", redirect)
        assert requests.get(wrong_state, params={"pomerium_jwt": "a.b.c"}, timeout=10).status_code == 400
        assert process.poll() is None, "a callback of another login must not end this one"
        answer = requests.get(redirect, params={"pomerium_jwt": "not-a-jwt"}, timeout=10)
        assert answer.status_code == 400
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "the login callback is malformed" in stderr
    assert "pomerium_refresh_token" in stderr


def test_bad_command_line_exits_2(cli_binary):
    result = subprocess.run([str(cli_binary), "login"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "login needs a URL" in result.stderr
    result = subprocess.run([str(cli_binary), "login", "--resolve", "x", "https://a.example.test"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "invalid --resolve value" in result.stderr


# MARK: impersonation


def browser_login(stack, user, url):
    """Signs `user` in with cookies, as a browser would; returns the session and the last response."""
    session = stack.session()
    hops = []
    page = cli_browser.follow(session, session.get(url, allow_redirects=False, timeout=10), hops)
    form = cli_browser.LoginForm()
    form.feed(page.text)
    assert form.action is not None, f"{page.url}: {page.status_code} {page.text[:300]}"
    posted = session.post(urljoin(page.url, form.action), data={"sub": user}, allow_redirects=False, timeout=10)
    return session, cli_browser.follow(session, posted, hops)


def csrf_token(page):
    match = re.search(r'name="pomerium_csrf" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def assertion(session, stack, host="app"):
    response = session.get(stack.url(host, "/whoami"), allow_redirects=False, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return claims(echoed_headers(response)["x-pomerium-jwt-assertion"])


def impersonate(session, stack, email, groups, token=None):
    dashboard = session.get(stack.url("app", "/.pomerium/"), timeout=10)
    data = {"pomerium_impersonate_action": "set", "pomerium_impersonate_email": email,
            "pomerium_impersonate_groups": groups}
    if token is not False:
        data["pomerium_csrf"] = token or csrf_token(dashboard.text)
    response = session.post(stack.url("app", "/.pomerium/admin/impersonate"), data=data,
                            allow_redirects=False, timeout=10)
    return cli_browser.follow(session, response, [])


def test_administrator_impersonation_shows_in_assertion_and_log(stack):
    admin, final = browser_login(stack, "admin", stack.url("app", "/start"))
    assert final.status_code == 200
    before = assertion(admin, stack)
    assert before["email"] == "admin@example.com"
    assert "impersonate_email" not in before

    result = impersonate(admin, stack, "bob@example.com", "ops, devs")
    assert result.status_code == 200, result.text[:300]
    assert "bob@example.com" in result.text, "the dashboard shows the impersonated user"
    after = assertion(admin, stack)
    assert after["email"] == "admin@example.com"
    assert after["impersonate_email"] == "bob@example.com"
    assert after["impersonate_groups"] == ["ops", "devs"]
    changes = [json.loads(line) for line in stack.process.output().splitlines()
               if '"impersonation changed"' in line]
    change = next((entry for entry in changes if entry.get("impersonate_email") == "bob@example.com"), None)
    assert change is not None, changes
    assert change.get("email") == "admin@example.com"
    assert change.get("impersonate_groups") == "ops,devs"
    # The policy now evaluates bob, whom the admin-only route does not allow.
    denied = admin.get(stack.url("admin-only", "/"), allow_redirects=True, timeout=10)
    assert denied.status_code == 403
    decisions = [json.loads(line) for line in stack.process.output().splitlines() if '"authorize"' in line]
    denials = [entry for entry in decisions if entry.get("decision") == "deny"]
    assert any(entry.get("impersonate_email") == "bob@example.com" for entry in denials), decisions[-3:]

    # Another session of the same administrator and a session of bob are untouched.
    second_admin, _ = browser_login(stack, "admin", stack.url("app", "/start"))
    assert "impersonate_email" not in assertion(second_admin, stack)
    bob, _ = browser_login(stack, "bob", stack.url("app", "/start"))
    bob_claims = assertion(bob, stack)
    assert bob_claims["email"] == "bob@example.com"
    assert "impersonate_email" not in bob_claims

    cleared = impersonate(admin, stack, "", "")
    assert cleared.status_code == 200
    assert "impersonate_email" not in assertion(admin, stack)


def test_impersonation_needs_csrf_token(stack):
    admin, _ = browser_login(stack, "admin", stack.url("app", "/start"))
    missing = impersonate(admin, stack, "bob@example.com", "", token=False)
    assert missing.status_code == 403
    forged = impersonate(admin, stack, "bob@example.com", "", token="forged")
    assert forged.status_code == 403
    assert "impersonate_email" not in assertion(admin, stack)


def test_impersonation_needs_administrator(stack):
    alice, _ = browser_login(stack, "alice", stack.url("app", "/start"))
    dashboard = alice.get(stack.url("app", "/.pomerium/"), timeout=10)
    assert "/.pomerium/admin/impersonate" not in dashboard.text
    result = impersonate(alice, stack, "bob@example.com", "", token=csrf_token(dashboard.text))
    assert result.status_code == 403
    assert "impersonate_email" not in assertion(alice, stack)


def test_impersonation_through_authenticate_needs_administrator(stack):
    """A signed sign-in link with impersonation parameters, followed by a non-administrator, is
    rejected by the authenticate service too."""
    alice, _ = browser_login(stack, "alice", stack.url("app", "/start"))
    dashboard = alice.get(stack.url("app", "/.pomerium/"), timeout=10)
    admin, _ = browser_login(stack, "admin", stack.url("app", "/start"))
    page = admin.get(stack.url("app", "/.pomerium/"), timeout=10)
    response = admin.post(
        stack.url("app", "/.pomerium/admin/impersonate"),
        data={"pomerium_impersonate_action": "set", "pomerium_impersonate_email": "bob@example.com",
              "pomerium_impersonate_groups": "", "pomerium_csrf": csrf_token(page.text)},
        allow_redirects=False, timeout=10)
    assert response.status_code == 302
    signed = response.headers["Location"]
    replay = alice.get(signed, allow_redirects=False, timeout=10)
    assert replay.status_code == 403
    assert "impersonate_email" not in assertion(alice, stack)
    assert dashboard.status_code == 200
