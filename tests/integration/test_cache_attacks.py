"""Attacks on the caches of the request path: the Cookie header cache (whole header value to
session), the opened-cookie cache (sealed cookie text to session), the identity assertion cache
with its per-session memo, and the session liveness memo.

Each test tries to make a cache hand one user's identity, session or decision to a request that
should not get it. Others try to keep a session working after a sign-out, an expiry, a failed
refresh or a configuration reload that should end it. Every server runs on 127.0.0.1, and every loop is
bounded in count and time. The recording upstream, the raw TLS client and the sign-in helpers
come from test_keepalive_attacks.py."""
import base64
import json
import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import jwt
import pytest
import requests

from harness import base_config, free_port
from test_keepalive_attacks import (  # noqa: F401 (fixtures are used by name)
    USERS, Client, assertion_email, fields, requests_session, upstream, upstream_paths)

import support  # noqa: E402 (test_keepalive_attacks put tests/e2e on sys.path)

# A groups claim this long makes a session cookie that is split into chunk cookies, and a
# Cookie header longer than the 4096 bytes the Cookie header cache stores.
MANY_GROUPS = [f"group-with-a-fairly-long-name-{index:04d}" for index in range(150)]


# -------------------------------------------------------------------------------------------------
# Helpers.


def ec_key_pem():
    """A new P-256 private key as PEM bytes."""
    return subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"],
                          capture_output=True, check=True, timeout=30).stdout


def public_pem(private_pem):
    return subprocess.run(["openssl", "ec", "-pubout"], input=private_pem, capture_output=True, check=True,
                          timeout=30).stdout


def request(host, port, path="/", cookie=None, headers=(), close=False):
    """One GET request's bytes for `<host>.example.test:<port>`."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}.example.test:{port}"]
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    lines += list(headers)
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines) + "\r\n\r\n"


def exchange(stack, host, path="/", cookie=None, headers=(), client=None):
    """Sends one request, on `client` or on a new connection, and returns the response."""
    own = client is None
    client = client or Client(stack, sni=f"{host}.example.test")
    try:
        client.send(request(host, stack["port"], path, cookie=cookie, headers=headers, close=own))
        return client.read()
    finally:
        if own:
            client.close()


def assertion_of(response):
    """The X-Pomerium-Jwt-Assertion the upstream got, or None."""
    echo = response.echo()
    if echo is None:
        return None
    values = fields(echo).get("x-pomerium-jwt-assertion", [])
    assert len(values) <= 1, values
    return values[0] if values else None


def unverified_claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def cleared_session_cookie(response):
    """Whether the response expires the base session cookie."""
    return any(value.startswith("_pomerium=;") and ("Max-Age=0" in value or "Max-Age=-" in value)
               for value in response.all("Set-Cookie"))


def cookie_value(session, host):
    """The Cookie value that a `requests` session holds for `host` (product cookies only)."""
    jar = [item for item in session.cookies if item.domain.startswith(host) and item.name.startswith("_pomerium")]
    assert jar, f"no route cookie for {host}"
    return "; ".join(f"{item.name}={item.value}" for item in jar)


def login(stack, user, host="app"):
    """Signs `user` in on `host` through the mock provider: (requests session, Cookie value).
    Each call is a new sign-in with a session id of its own."""
    session = requests_session(stack)
    final, _ = support.login(session, f"https://{host}.example.test:{stack['port']}/", user)
    assert final.status_code == 200, final.text[:300]
    return session, cookie_value(session, host)


def cached_login(stack, user, host="app"):
    """The Cookie value of one sign-in of `user` on `host`, shared by the tests of one process."""
    key = ("cookie", user, host)
    if key not in stack["sessions"]:
        stack["sessions"][key] = login(stack, user, host)[1]
    return stack["sessions"][key]


def programmatic_token(stack, session):
    """The route token that the programmatic login of app.example.test gives `session`, which is
    signed in at the authenticate service already."""
    return programmatic_tokens(stack, session)[0]


def programmatic_tokens(stack, session):
    """The route token and the refresh token that the programmatic login of app.example.test
    gives `session`. Nothing connects to the script's URI: the redirect to it is the last hop read."""
    base = f"https://app.example.test:{stack['port']}"
    script_uri = "http://127.0.0.1:9/done"
    sign_in = session.get(f"{base}/.pomerium/api/v1/login", params={"pomerium_redirect_uri": script_uri},
                          timeout=10)
    assert sign_in.status_code == 200, sign_in.text[:300]
    response = session.get(sign_in.text.strip(), allow_redirects=False, timeout=10)
    for _ in range(15):
        location = urljoin(response.url, response.headers.get("Location", ""))
        if location.startswith(script_uri):
            query = parse_qs(urlsplit(location).query)
            return query["pomerium_jwt"][0], query["pomerium_refresh_token"][0]
        assert response.is_redirect, (response.status_code, response.text[:300])
        response = session.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("the programmatic login did not reach the script's URI")


def sign_out(stack, session):
    """Signs the `requests` session out through the app route and the authenticate service."""
    signed_out = session.get(f"https://app.example.test:{stack['port']}/.pomerium/sign_out", allow_redirects=False,
                             timeout=10)
    assert signed_out.status_code == 302
    assert session.get(signed_out.headers["Location"], allow_redirects=False, timeout=10).status_code == 302


def verify_url(stack, path="/", host="app"):
    """The forward-auth /verify request path for a URL on `host`."""
    return "/verify?uri=" + quote(f"https://{host}.example.test:{stack['port']}{path}", safe="")


def forward_auth(stack, cookie, path="/", host="app", client=None):
    return exchange(stack, "fwdauth", verify_url(stack, path, host), cookie=cookie, client=client)


def write_config(stack, config):
    stack["config_path"].write_text(json.dumps(config))
    stack["config"] = config


def wait_until(predicate, message, timeout=15):
    support.wait_for(predicate, timeout, message)


def make_config(port, certificate, issuer, upstream_url, signing_key, **extra):
    def route(host, **more):
        return {"from": f"https://{host}.example.test:{port}", "to": upstream_url, **more}

    return base_config(
        port, certificate=certificate, issuer=issuer,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        forward_auth_url=f"https://fwdauth.example.test:{port}",
        idp_client_secret="cache-attacks-client-secret-3b7a",
        signing_key=base64.b64encode(signing_key).decode(),
        jwt_claims_headers=["email", "groups"],
        administrators=["admin@example.com"],
        policy=[
            route("app", prefix="/admin", allowed_users=["admin@example.com"]),
            route("app", allowed_domains=["example.com"]),
            route("other", allowed_users=["admin@example.com"]),
            route("public", allow_public_unauthenticated_access=True),
        ],
        **extra)


# -------------------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture
def stack(start_pomerium, server_certificate, oidc_provider, upstream, tmp_path):
    """pomerium over TLS with two routes on one host that differ in policy, a route for admins
    only, a public route, forward-auth, claim headers and a signing key from the config."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    support.set_user_claims(oidc_provider, "many", {"email": "many@example.com", "groups": MANY_GROUPS})
    upstream.clear()
    port = free_port()
    key = ec_key_pem()
    config = make_config(port, server_certificate, oidc_provider, upstream.url, key)
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config,
            "config_path": tmp_path / "config.json", "signing_key": key, "sessions": {}}


# -------------------------------------------------------------------------------------------------
# One user's session never reaches another request.


def test_churn_keeps_each_identity(stack, upstream):
    """3,000 distinct Cookie headers of one user, more than the 2,048 slots of the Cookie header
    cache, replace each other's slots. Another user's requests, sent between them, keep getting
    that user's own identity, and each churn request gets its own kept cookie."""
    alice, admin = cached_login(stack, "alice"), cached_login(stack, "admin")
    client = Client(stack)
    deadline = time.monotonic() + 120
    for index in range(3000):
        assert time.monotonic() < deadline, f"churn too slow, stopped at {index}"
        if index % 250 == 0:
            victim = exchange(stack, "app", f"/victim/{index}", cookie=f"{admin}; v={index % 2}", client=client)
            assert victim.status == 200, (index, victim)
            assert assertion_email(victim.echo()) == "admin@example.com", index
            assert fields(victim.echo())["x-pomerium-claim-email"] == ["admin@example.com"], index
            assert fields(victim.echo())["cookie"] == [f"v={index % 2}"], index
        response = exchange(stack, "app", f"/churn/{index}", cookie=f"{alice}; n={index}", client=client)
        assert response.status == 200, (index, response)
        echo = response.echo()
        assert echo["path"] == f"/churn/{index}"
        assert assertion_email(echo) == "alice@example.com", index
        assert fields(echo)["cookie"] == [f"n={index}"], index
    for cookie, email in [(admin, "admin@example.com"), (alice, "alice@example.com")]:
        response = exchange(stack, "app", "/after-churn", cookie=cookie, client=client)
        assert assertion_email(response.echo()) == email
    client.close()


def test_parallel_users_never_swapped(stack, upstream):
    """Two users send the same header shapes on two connections at once, so both threads hit and
    fill the same caches concurrently. No response carries the other user's identity."""
    cookies = {"alice": cached_login(stack, "alice"), "admin": cached_login(stack, "admin")}
    failures = []

    def run(user):
        client = Client(stack, timeout=10)
        deadline = time.monotonic() + 60
        try:
            for index in range(400):
                if time.monotonic() > deadline:
                    failures.append((user, "timed out", index))
                    return
                cookie = cookies[user] if index % 3 == 0 else f"{cookies[user]}; shared={index % 7}"
                response = exchange(stack, "app", f"/{user}/{index}", cookie=cookie, client=client)
                email = assertion_email(response.echo()) if response.status == 200 else None
                if response.status != 200 or email != USERS[user]["email"]:
                    failures.append((user, index, response.status, email))
                    return
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(user,)) for user in cookies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


@pytest.mark.parametrize("extra", [-2, -1, 0, 1, 2])
def test_header_length_around_cache_limit(stack, upstream, extra):
    """Cookie headers of 4,094 to 4,098 bytes, around the longest header the Cookie header cache
    stores, are each sent twice. The user and the kept cookie are the same on the miss and the
    hit, and a second user's header of the same length is not confused with the first."""
    limit = 4096
    client = Client(stack)
    for user in ("alice", "admin"):
        session_cookie = cached_login(stack, user)
        prefix = f"{session_cookie}; pad="
        padding = "p" * (limit + extra - len(prefix))
        header = prefix + padding
        assert len(header) == limit + extra
        for attempt in range(2):
            response = exchange(stack, "app", f"/length/{extra}/{attempt}", cookie=header, client=client)
            assert response.status == 200, (user, attempt, response)
            assert assertion_email(response.echo()) == USERS[user]["email"], (user, attempt)
            assert fields(response.echo())["cookie"] == [f"pad={padding}"], (user, attempt)
    client.close()


def test_header_variants_decide_by_own_content(stack, upstream):
    """Headers that differ only in other cookies, their order, spacing or a duplicated session
    cookie are separate cache keys. Each gets the identity and kept cookies that its own text
    gives, on the first request and on the repeat."""
    alice, admin = cached_login(stack, "alice"), cached_login(stack, "admin")
    alice_value, admin_value = alice.split("=", 1)[1], admin.split("=", 1)[1]
    cases = [
        (f"theme=dark; {alice}", "alice@example.com", ["theme=dark"]),
        (f"theme=dark; {admin}", "admin@example.com", ["theme=dark"]),
        (f"{alice};theme=dark", "alice@example.com", ["theme=dark"]),
        (f"{admin};theme=dark", "admin@example.com", ["theme=dark"]),
        # The first session cookie that opens decides, and neither reaches the upstream.
        (f"_pomerium={alice_value}; _pomerium={admin_value}", "alice@example.com", None),
        (f"_pomerium={admin_value}; _pomerium={alice_value}", "admin@example.com", None),
        (f"_pomerium=v1.AAAA; _pomerium={admin_value}", "admin@example.com", None),
        (f"_pomerium={alice_value}; _pomerium_1=stale; app=1", "alice@example.com", ["app=1"]),
        (f"_pomerium={alice_value}x", None, None),
        (f"_Pomerium={alice_value}", None, [f"_Pomerium={alice_value}"]),
    ]
    client = Client(stack)
    for attempt in range(2):
        for index, (cookie, email, kept) in enumerate(cases):
            upstream.clear()
            response = exchange(stack, "app", f"/variant/{attempt}/{index}", cookie=cookie, client=client)
            if email is None:
                assert response.status == 302, (attempt, index, response)
                assert upstream.received() == [], (attempt, index)
                continue
            assert response.status == 200, (attempt, index, response)
            assert assertion_email(response.echo()) == email, (attempt, index)
            assert fields(response.echo()).get("cookie") == kept, (attempt, index)
    client.close()


def test_mixed_chunk_cookies_rejected(stack, upstream):
    """Chunk cookies of two sign-ins of the same user are never joined into a session, before and
    after each whole chunk set was opened (and so cached by its text)."""
    first = cached_login(stack, "many")
    second = login(stack, "many")[1]
    assert len(first) > 4096
    assert "_pomerium_1=" in first
    parts_first = dict(item.split("=", 1) for item in first.split("; "))
    parts_second = dict(item.split("=", 1) for item in second.split("; "))
    assert set(parts_first) == set(parts_second), (sorted(parts_first), sorted(parts_second))
    mixed = dict(parts_first, _pomerium_1=parts_second["_pomerium_1"])
    duplicated = "; ".join(f"{name}={value}" for name, value in parts_first.items()) + (
        f"; _pomerium_1={parts_first['_pomerium_1']}")
    missing = "; ".join(f"{name}={value}" for name, value in parts_first.items() if name != "_pomerium_1")
    beyond = first + f"; _pomerium_{len(parts_first)}=extra"
    client = Client(stack)
    for attempt in range(2):
        for name, cookie, expected in [
                ("first", first, 200), ("second", second, 200),
                ("mixed", "; ".join(f"{key}={value}" for key, value in mixed.items()), 302),
                ("duplicated", duplicated, 302), ("missing", missing, 302), ("beyond", beyond, 302)]:
            upstream.clear()
            response = exchange(stack, "app", f"/chunks/{attempt}/{name}", cookie=cookie, client=client)
            assert response.status == expected, (attempt, name, response)
            if expected == 200:
                assert assertion_email(response.echo()) == "many@example.com"
            else:
                assert upstream.received() == [], (attempt, name)
    client.close()


def test_one_header_on_routes_with_different_policies(stack, upstream):
    """The same Cookie header, cached after its first use, goes to routes that differ in policy
    and to forward-auth. Each decision is the route's own, and each assertion is valid for the
    host it is sent to."""
    alice, admin = cached_login(stack, "alice"), cached_login(stack, "admin")
    client = Client(stack)
    steps = [
        ("app", "/", alice, 200, "alice@example.com"),
        ("app", "/admin/x", alice, 403, None),
        ("app", "/", admin, 200, "admin@example.com"),
        ("app", "/admin/x", admin, 200, "admin@example.com"),
        ("app", "/admin/y", alice, 403, None),
        ("public", "/", alice, 200, None),
        ("other", "/", admin, 302, None),
        ("app", "/again", alice, 200, "alice@example.com"),
    ]
    for attempt in range(2):
        for index, (host, path, cookie, status, email) in enumerate(steps):
            upstream.clear()
            response = exchange(stack, host, path, cookie=cookie, client=client)
            assert response.status == status, (attempt, index, response)
            if status != 200:
                assert upstream.received() == [], (attempt, index)
                continue
            assertion = assertion_of(response)
            if email is None:
                assert assertion is None, (attempt, index)
                assert fields(response.echo()).get("cookie") is None, (attempt, index)
                continue
            claims = unverified_claims(assertion)
            assert claims["email"] == email, (attempt, index)
            assert f"{host}.example.test:{stack['port']}" in claims["aud"], (attempt, index, claims["aud"])
    for cookie, path, status in [(alice, "/admin/x", 403), (alice, "/", 200), (admin, "/admin/x", 200)]:
        response = forward_auth(stack, cookie, path)
        assert response.status == status, (path, response)
        if status == 200:
            claims = unverified_claims(response.header("X-Pomerium-Jwt-Assertion"))
            assert claims["email"] == ("alice@example.com" if cookie == alice else "admin@example.com")
    client.close()


def test_token_sessions_not_cached_with_cookie_header(stack, upstream):
    """A session from Authorization never enters the Cookie header cache under the request's
    Cookie header: the same Cookie header alone afterwards has no session, and with another
    user's token it gets that user."""
    session, _ = login(stack, "admin")
    admin_token = programmatic_token(stack, session)
    alice_session, alice = login(stack, "alice")
    alice_token = programmatic_token(stack, alice_session)
    client = Client(stack)
    steps = [
        (["Cookie: theme=dark", f"Authorization: Bearer {admin_token}"], "admin@example.com"),
        (["Cookie: theme=dark"], None),
        (["Cookie: theme=dark", f"Authorization: Pomerium {alice_token}"], "alice@example.com"),
        (["Cookie: theme=dark"], None),
        ([f"Cookie: {alice}", f"Authorization: Bearer {admin_token}"], "alice@example.com"),
        ([f"Cookie: {alice}"], "alice@example.com"),
        (["Cookie: _pomerium=v1.AAAA", f"Authorization: Bearer {admin_token}"], None),
        (["Cookie: _pomerium=v1.AAAA"], None),
    ]
    for attempt in range(2):
        for index, (headers, email) in enumerate(steps):
            upstream.clear()
            response = exchange(stack, "app", f"/tokens/{attempt}/{index}", headers=headers, client=client)
            if email is None:
                assert response.status == 302, (attempt, index, response)
                assert upstream.received() == [], (attempt, index)
                continue
            assert response.status == 200, (attempt, index, response)
            assert assertion_email(response.echo()) == email, (attempt, index)
    client.close()


# -------------------------------------------------------------------------------------------------
# Sign-out ends every cached copy of a session.


def test_signed_out_session_rejected_everywhere(stack, upstream):
    """After sign-out, the route cookie and the route token of that sign-in stop working on a
    connection that used them, on new connections, on the user page and at forward-auth, though
    every cache saw them live moments before."""
    session, cookie = login(stack, "alice")
    token, refresh_token = programmatic_tokens(stack, session)
    kept = Client(stack)
    checks = {
        "proxy": lambda client=None: exchange(stack, "app", "/live", cookie=cookie, client=client),
        "proxy-extra": lambda client=None: exchange(stack, "app", "/live", cookie=f"{cookie}; x=1", client=client),
        "dashboard": lambda client=None: exchange(stack, "app", "/.pomerium/", cookie=cookie, client=client),
        "forward-auth": lambda client=None: forward_auth(stack, cookie, "/live"),
        "pomerium-token": lambda client=None: exchange(
            stack, "app", "/live", headers=[f"Authorization: Pomerium {token}"], client=client),
        "bearer-token": lambda client=None: exchange(
            stack, "app", "/live", headers=[f"Authorization: Bearer {token}"], client=client),
        "query-token": lambda client=None: exchange(stack, "app", f"/live?pomerium_session={token}", client=client),
    }
    for name, check in checks.items():
        for _ in range(3):
            assert check(kept).status == 200, name

    sign_out(stack, session)
    upstream.clear()
    for name, check in checks.items():
        for where, client in [("kept", kept), ("new", None)]:
            response = check(client)
            if name == "forward-auth":
                assert response.status == 401, (name, where, response)
            else:
                assert response.status == 302, (name, where, response)
            assert response.header("X-Pomerium-Jwt-Assertion") is None
            if name in ("proxy", "dashboard", "forward-auth"):
                assert cleared_session_cookie(response), (name, where, response.headers)
            assert b"alice@example.com" not in response.body, (name, where)
    assert upstream.received() == []
    kept.close()


def test_signed_out_global_session_not_reopened(stack, upstream):
    """After sign-out, the authenticate service's own session cookie, opened and cached before,
    and the programmatic refresh token of that sign-in no longer give a session. A sign-in with
    the old cookie goes to the identity provider, and the refresh is rejected."""
    port = stack["port"]
    session, _ = login(stack, "alice")
    _, refresh_token = programmatic_tokens(stack, session)
    global_cookies = [(item.name, item.value) for item in session.cookies
                      if item.domain.startswith("authenticate") and item.name.startswith("_pomerium")
                      and item.name != "_pomerium_csrf"]
    assert global_cookies
    refresh_url = f"https://authenticate.example.test:{port}/api/v1/refresh"
    refresh_headers = {"Authorization": f"Pomerium {refresh_token}"}

    def sign_in_with_old_cookie():
        browser = requests_session(stack)
        start = browser.get(f"https://app.example.test:{port}/", allow_redirects=False, timeout=10)
        for name, value in global_cookies:
            browser.cookies.set(name, value, domain="authenticate.example.test", path="/")
        return browser.get(start.headers["Location"], allow_redirects=False, timeout=10)

    for _ in range(2):
        assert sign_in_with_old_cookie().headers["Location"].startswith(f"https://app.example.test:{port}/")
        refreshed = session.get(refresh_url, headers=refresh_headers, timeout=10)
        assert refreshed.status_code == 200, refreshed.text[:300]
    sign_out(stack, session)
    for _ in range(2):
        answer = sign_in_with_old_cookie()
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith(stack["config"]["idp_provider_url"]), answer.headers["Location"]
        assert requests_session(stack).get(refresh_url, headers=refresh_headers, timeout=10).status_code == 401


def test_sign_out_spares_other_sign_in(stack, upstream):
    """Two sign-ins of the same user have different session ids, so their cache entries are
    separate. Signing one out leaves the other working, and the signed-out one stays out."""
    first_session, first = login(stack, "alice")
    _, second = login(stack, "alice")
    client = Client(stack)
    for cookie in (first, second, first, second):
        assert exchange(stack, "app", "/both", cookie=cookie, client=client).status == 200
    sign_out(stack, first_session)
    assert exchange(stack, "app", "/first", cookie=first, client=client).status == 302
    response = exchange(stack, "app", "/second", cookie=second, client=client)
    assert response.status == 200
    assert assertion_email(response.echo()) == "alice@example.com"
    assert exchange(stack, "app", "/first-again", cookie=first, client=client).status == 302
    client.close()


def test_route_cookie_not_accepted_as_global_session(stack, upstream):
    """A route cookie of app.example.test, which a forward-auth application or any holder of that
    cookie can read, is presented to the authenticate service as its own session cookie. The
    authenticate service must not treat it as the user's global session and mint a session for
    another route. It must send the holder to the identity provider instead."""
    port = stack["port"]
    _, admin_app = login(stack, "admin")
    holder = requests_session(stack)
    start = holder.get(f"https://other.example.test:{port}/", allow_redirects=False, timeout=10)
    assert start.status_code == 302
    assert start.headers["Location"].startswith(f"https://authenticate.example.test:{port}/.pomerium/sign_in?")
    for item in admin_app.split("; "):
        name, value = item.split("=", 1)
        holder.cookies.set(name, value, domain="authenticate.example.test", path="/")
    answer = holder.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert not answer.headers["Location"].startswith(f"https://other.example.test:{port}/"), (
        "the authenticate service minted a session for other.example.test from an app.example.test cookie")
    final, _ = support.follow(holder, answer)
    assert "admin@example.com" not in final.text


def test_sign_in_flood_keeps_idle_sessions(stack, upstream):
    """A client without any session replays one signed sign-in URL 60,000 times on one connection.
    In a measured run, 40,000 starts took about 13 seconds and were enough. Each start redirects to the identity provider. A user who
    signed in before and stayed idle meanwhile still gets through afterwards."""
    port = stack["port"]
    _, idle = login(stack, "alice")
    assert exchange(stack, "app", "/before", cookie=idle).status == 200
    start = exchange(stack, "app", "/anonymous")
    assert start.status == 302
    location = urlsplit(start.header("Location"))
    sign_in = f"GET {location.path}?{location.query} HTTP/1.1\r\nHost: authenticate.example.test:{port}\r\n\r\n"
    client = Client(stack, sni="authenticate.example.test", timeout=30)
    deadline = time.monotonic() + 90
    for batch in range(300):
        assert time.monotonic() < deadline, f"the sign-in starts took too long, stopped at batch {batch}"
        client.send(sign_in * 200)
        statuses = {client.read().status for _ in range(200)}
        assert statuses == {302}, statuses
    client.close()
    # The liveness check reads the store again once its entry is 5 seconds old.
    time.sleep(5.5)
    upstream.clear()
    response = exchange(stack, "app", "/after-flood", cookie=idle)
    assert response.status == 200, response
    assert assertion_email(response.echo()) == "alice@example.com"


def test_sign_in_flood_keeps_pending_login(stack, upstream):
    """A user opens the identity provider's login form, and a client without any session then
    replays one signed sign-in URL 60,000 times. The user's login still completes afterwards."""
    port = stack["port"]
    browser = requests_session(stack)
    page, _ = support.follow(browser, browser.get(f"https://app.example.test:{port}/", allow_redirects=False,
                                                  timeout=10))
    form = support._LoginForm()
    form.feed(page.text)
    assert form.action is not None, page.text[:300]
    start = exchange(stack, "app", "/anonymous")
    location = urlsplit(start.header("Location"))
    sign_in = f"GET {location.path}?{location.query} HTTP/1.1\r\nHost: authenticate.example.test:{port}\r\n\r\n"
    client = Client(stack, sni="authenticate.example.test", timeout=30)
    deadline = time.monotonic() + 90
    for batch in range(300):
        assert time.monotonic() < deadline, f"the sign-in starts took too long, stopped at batch {batch}"
        client.send(sign_in * 200)
        statuses = {client.read().status for _ in range(200)}
        assert statuses == {302}, statuses
    client.close()
    posted = browser.post(urljoin(page.url, form.action), data={"sub": "alice"}, allow_redirects=False, timeout=10)
    final, _ = support.follow(browser, posted)
    assert final.status_code == 200, final.text[:300]
    assert assertion_email(json.loads(final.text)) == "alice@example.com"


# -------------------------------------------------------------------------------------------------
# Configuration reloads end what the old configuration allowed.


def reloaded(stack, config, probe, message):
    """Writes `config` and waits until `probe()` is true on new connections."""
    write_config(stack, config)
    wait_until(probe, message)


def test_cookie_secret_reload_ends_cached_sessions(stack, upstream):
    """A new cookie_secret ends sessions sealed with the old one, although the Cookie header cache,
    the opened-cookie cache and the memos all contain them, on a kept connection and a new one."""
    alice = cached_login(stack, "alice")
    kept = Client(stack)
    for _ in range(3):
        assert exchange(stack, "app", "/warm", cookie=alice, client=kept).status == 200
        assert forward_auth(stack, alice).status == 200
    config = dict(stack["config"], cookie_secret=base64.b64encode(b"n" * 32).decode())
    reloaded(stack, config, lambda: exchange(stack, "app", "/probe", cookie=alice).status == 302,
             "the cookie_secret reload")
    upstream.clear()
    assert exchange(stack, "app", "/after", cookie=alice, client=kept).status == 302
    assert exchange(stack, "app", "/.pomerium/", cookie=alice, client=kept).status == 302
    assert forward_auth(stack, alice).status == 401
    assert upstream.received() == []
    kept.close()


def test_shared_secret_reload_ends_cached_tokens(stack, upstream):
    """A new shared_secret ends route tokens signed with the old one, after each was accepted on
    a kept connection, in every place a script can send one."""
    session, _ = login(stack, "alice")
    token = programmatic_token(stack, session)
    sources = {
        "pomerium": {"headers": [f"Authorization: Pomerium {token}"]},
        "bearer": {"headers": [f"Authorization: Bearer {token}"]},
    }
    kept = Client(stack)
    for _ in range(3):
        for source in sources.values():
            assert exchange(stack, "app", "/warm", client=kept, **source).status == 200
        assert exchange(stack, "app", f"/warm?pomerium_session={token}", client=kept).status == 200
    config = dict(stack["config"], shared_secret=base64.b64encode(b"s" * 32).decode())
    reloaded(stack, config, lambda: exchange(stack, "app", "/probe", **sources["bearer"]).status == 302,
             "the shared_secret reload")
    upstream.clear()
    for name, source in sources.items():
        assert exchange(stack, "app", "/after", client=kept, **source).status == 302, name
    assert exchange(stack, "app", f"/after?pomerium_session={token}", client=kept).status == 302
    assert upstream.received() == []
    kept.close()


def test_cookie_name_reload_ends_cached_sessions(stack, upstream):
    """A new cookie_name ends sessions under the old name, which is also bound into each sealed
    cookie, on a kept connection whose header the cache contains."""
    alice = cached_login(stack, "alice")
    kept = Client(stack)
    for _ in range(3):
        assert exchange(stack, "app", "/warm", cookie=alice, client=kept).status == 200
    config = dict(stack["config"], cookie_name="_renamed")
    reloaded(stack, config, lambda: exchange(stack, "app", "/probe", cookie=alice).status == 302,
             "the cookie_name reload")
    renamed = alice.replace("_pomerium=", "_renamed=", 1)
    upstream.clear()
    assert exchange(stack, "app", "/after", cookie=alice, client=kept).status == 302
    assert exchange(stack, "app", "/after-renamed", cookie=renamed, client=kept).status == 302
    assert upstream.received() == []
    kept.close()


def test_signing_key_reload_resigns_cached_assertions(stack, upstream):
    """After signing_key changes, a session whose assertion is cached and memoised gets an
    assertion signed with the new key, with the new key's kid, on a kept connection."""
    alice = cached_login(stack, "alice")
    kept = Client(stack)
    before = [assertion_of(exchange(stack, "app", "/warm", cookie=alice, client=kept)) for _ in range(3)]
    assert len(set(before)) == 1
    old_kid = jwt.get_unverified_header(before[0])["kid"]
    jwt.decode(before[0], public_pem(stack["signing_key"]), algorithms=["ES256"],
               options={"verify_aud": False})
    new_key = ec_key_pem()
    config = dict(stack["config"], signing_key=base64.b64encode(new_key).decode())

    def new_kid_served():
        served = assertion_of(exchange(stack, "app", "/probe", cookie=alice))
        return jwt.get_unverified_header(served)["kid"] != old_kid

    reloaded(stack, config, new_kid_served, "the signing_key reload")
    for path in ("/after", "/after-again"):
        assertion = assertion_of(exchange(stack, "app", path, cookie=alice, client=kept))
        assert jwt.get_unverified_header(assertion)["kid"] != old_kid
        claims = jwt.decode(assertion, public_pem(new_key), algorithms=["ES256"], options={"verify_aud": False})
        assert claims["email"] == "alice@example.com"
    forwarded = forward_auth(stack, alice).header("X-Pomerium-Jwt-Assertion")
    jwt.decode(forwarded, public_pem(new_key), algorithms=["ES256"], options={"verify_aud": False})
    kept.close()


def test_claim_headers_reload_applies_to_cached_sessions(stack, upstream):
    """A changed jwt_claims_headers list applies to a session whose claim headers are cached and
    memoised; removed claims stop reaching the upstream."""
    alice = cached_login(stack, "alice")
    kept = Client(stack)
    for _ in range(3):
        echo = exchange(stack, "app", "/warm", cookie=alice, client=kept).echo()
        assert fields(echo)["x-pomerium-claim-groups"] == ["devs"]
    config = dict(stack["config"], jwt_claims_headers=["name"])
    reloaded(stack, config,
             lambda: "x-pomerium-claim-name" in fields(exchange(stack, "app", "/probe", cookie=alice).echo()),
             "the jwt_claims_headers reload")
    for path in ("/after", "/after-again"):
        received = fields(exchange(stack, "app", path, cookie=alice, client=kept).echo())
        assert received["x-pomerium-claim-name"] == ["Alice"]
        assert "x-pomerium-claim-email" not in received
        assert "x-pomerium-claim-groups" not in received
    kept.close()


def test_policy_reload_applies_to_forward_auth(stack, upstream):
    """A policy change reaches forward-auth decisions for a cookie that was allowed and cached."""
    alice = cached_login(stack, "alice")
    for _ in range(3):
        assert forward_auth(stack, alice, "/doc").status == 200
    config = json.loads(json.dumps(stack["config"]))
    config["policy"][1] = {key: value for key, value in config["policy"][1].items() if key != "allowed_domains"}
    config["policy"][1]["allowed_users"] = ["admin@example.com"]
    reloaded(stack, config, lambda: forward_auth(stack, alice, "/doc").status == 403, "the policy reload")
    assert exchange(stack, "app", "/doc", cookie=alice).status == 403


def impersonate(stack, session, email):
    """Submits the user page's impersonation form for `email` as the signed-in administrator of
    `session`, follows the sign-in round trip and returns the new route Cookie value."""
    base = f"https://app.example.test:{stack['port']}"
    page = session.get(f"{base}/.pomerium/", timeout=10)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="pomerium_csrf" value="([^"]+)"', page.text).group(1)
    posted = session.post(f"{base}/.pomerium/admin/impersonate", allow_redirects=False, timeout=10, data={
        "pomerium_csrf": token, "pomerium_impersonate_action": "set", "pomerium_impersonate_email": email,
        "pomerium_impersonate_groups": ""})
    assert posted.status_code == 302, posted.text[:300]
    final, _ = support.follow(session, posted)
    assert final.status_code == 200, final.text[:300]
    return cookie_value(session, "app")


def test_administrators_reload_ends_cached_impersonation(stack, upstream):
    """An impersonating session whose decision inputs and assertion are cached is forbidden once
    a reload removes its user from administrators, on a kept connection and at forward-auth."""
    session, admin = login(stack, "admin")
    impersonating = impersonate(stack, session, "alice@example.com")
    assert impersonating != admin
    kept = Client(stack)
    for _ in range(3):
        response = exchange(stack, "app", "/as-alice", cookie=impersonating, client=kept)
        assert response.status == 200, response
        claims = unverified_claims(assertion_of(response))
        assert claims["email"] == "admin@example.com"
        assert claims["impersonate_email"] == "alice@example.com"
        assert exchange(stack, "app", "/admin/as-alice", cookie=impersonating, client=kept).status == 403
        assert forward_auth(stack, impersonating).status == 200
    config = dict(stack["config"], administrators=[])
    reloaded(stack, config, lambda: exchange(stack, "app", "/probe", cookie=impersonating).status == 403,
             "the administrators reload")
    upstream.clear()
    assert exchange(stack, "app", "/after", cookie=impersonating, client=kept).status == 403
    assert forward_auth(stack, impersonating).status == 403
    assert upstream.received() == []
    response = exchange(stack, "app", "/admin/own", cookie=admin, client=kept)
    assert response.status == 200
    assert "impersonate_email" not in unverified_claims(assertion_of(response))
    kept.close()


# -------------------------------------------------------------------------------------------------
# Expiry and failed refresh end cached sessions.

# Lifetime of the short-lived provider's tokens, so route sessions expire within a test. It is
# above the authenticate service's 60-second refresh margin, so sign-in does not refresh the
# tokens at once. The mock provider's refreshed tokens last an hour.
TOKEN_SECONDS = 70


@pytest.fixture
def short_provider(tmp_path):
    """Starts oidc-provider-mock with tokens that expire after TOKEN_SECONDS and yields its issuer URL."""
    port = free_port()
    group = support.ProcessGroup(tmp_path)
    try:
        group.start("short-provider", [support.VENV / "oidc-provider-mock", "--host", "127.0.0.1", "--port", port,
                                       "--token-max-age", TOKEN_SECONDS],
                    env={"NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}, port=port)
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop_all()


@pytest.fixture
def short_stack(start_pomerium, server_certificate, short_provider, upstream, tmp_path):
    for user, claims in USERS.items():
        support.set_user_claims(short_provider, user, claims)
    upstream.clear()
    port = free_port()
    key = ec_key_pem()
    config = make_config(port, server_certificate, short_provider, upstream.url, key)
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config,
            "config_path": tmp_path / "config.json", "signing_key": key, "sessions": {},
            "provider": short_provider}


def test_expiry_and_failed_refresh_end_cached_sessions(short_stack, upstream):
    """Two users' sessions expire while every cache contains them. The user whose tokens the
    provider still accepts is renewed by backend refresh and gets a new assertion. The user whose
    tokens were revoked is sent to sign in with the cookie cleared on the proxy, the user page and
    forward-auth, and nothing of that user's reaches the upstream."""
    stack = short_stack
    _, alice = login(stack, "alice")
    _, admin = login(stack, "admin")
    kept = Client(stack)
    first = {}
    for cookie, name in [(alice, "alice"), (admin, "admin")]:
        for _ in range(3):
            response = exchange(stack, "app", "/fresh", cookie=cookie, client=kept)
            assert response.status == 200
            first[name] = unverified_claims(assertion_of(response))
        assert forward_auth(stack, cookie).status == 200
    requests.post(f"{stack['provider']}/users/alice/revoke-tokens", timeout=10).raise_for_status()
    expiry = max(claims["exp"] for claims in first.values())
    assert expiry - time.time() < TOKEN_SECONDS + 5
    time.sleep(max(0.0, expiry - time.time()) + 1.5)

    upstream.clear()
    for where, client in [("kept", kept), ("new", None)]:
        response = exchange(stack, "app", "/expired", cookie=alice, client=client)
        assert response.status == 302, (where, response)
        assert cleared_session_cookie(response), (where, response.headers)
        assert exchange(stack, "app", "/.pomerium/", cookie=alice, client=client).status == 302, where
    assert forward_auth(stack, alice).status == 401
    assert upstream.received() == []

    renewed = exchange(stack, "app", "/renewed", cookie=admin, client=kept)
    assert renewed.status == 200, renewed
    claims = unverified_claims(assertion_of(renewed))
    assert claims["email"] == "admin@example.com"
    assert claims["exp"] > time.time() + 60
    assert claims["ati"] == first["admin"]["ati"]
    assert any(value.startswith("_pomerium=v1") for value in renewed.all("Set-Cookie")), renewed.headers
    kept.close()


# -------------------------------------------------------------------------------------------------
# Cache bounds under many sessions.

PREFIX_ROUTES = 500


@pytest.fixture
def wide_stack(start_pomerium, server_certificate, oidc_provider, upstream, tmp_path):
    """pomerium with PREFIX_ROUTES prefix routes on app.example.test whose upstream refuses
    connections, so a request signs its assertion and ends in a quick 502, and a catch-all
    route to the recording upstream for sign-in."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    port = free_port()
    closed = free_port()
    routes = [{"from": f"https://app.example.test:{port}", "to": f"http://127.0.0.1:{closed}", "prefix": f"/r{index}/",
               "allowed_domains": ["example.com"]} for index in range(PREFIX_ROUTES)]
    routes.append({"from": f"https://app.example.test:{port}", "to": upstream.url, "allowed_domains": ["example.com"]})
    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        idp_client_secret="cache-attacks-wide-secret-90c4", policy=routes)
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}


def pipelined_statuses(stack, client, cookie, paths):
    """Sends one GET per path in one write and returns the statuses in order."""
    client.send("".join(request("app", stack["port"], path, cookie=cookie) for path in paths))
    return [client.read().status for _ in paths]


def rss_kib(process):
    for line in open(f"/proc/{process.process.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


# A groups claim of this size still fits the six session cookie chunks: a 20 KB Cookie header.
LARGE_GROUPS = [f"group-with-a-fairly-long-name-{index:04d}" for index in range(400)]
# The maximum growth of the assertion cache while it takes the entries of one test below. The
# Cookie header cache, for comparison, is bounded at about 24 MiB by its header length limit.
ASSERTION_CACHE_BUDGET_KIB = 128 * 1024


def test_assertion_cache_memory_bounded(wide_stack, upstream, oidc_provider):
    """A user with a large groups claim fills the assertion cache with 15,000 (session, route)
    pairs, 30 sign-ins times 500 routes. The process grows by at most
    ASSERTION_CACHE_BUDGET_KIB, counted from after the first 1,000 pairs."""
    stack = wide_stack
    support.set_user_claims(oidc_provider, "large", {"email": "large@example.com", "groups": LARGE_GROUPS})
    cookies = [login(stack, "large")[1] for _ in range(32)]
    assert len(cookies[0]) > 16_000
    client = Client(stack, timeout=30)
    deadline = time.monotonic() + 180

    def fill(cookie):
        for start in range(0, PREFIX_ROUTES, 50):
            assert time.monotonic() < deadline, "filling the assertion cache took too long"
            paths = [f"/r{index}/fill" for index in range(start, start + 50)]
            assert pipelined_statuses(stack, client, cookie, paths) == [502] * len(paths)

    for cookie in cookies[:2]:
        fill(cookie)
    base = rss_kib(stack["process"])
    for cookie in cookies[2:]:
        fill(cookie)
    grown = rss_kib(stack["process"]) - base
    client.close()
    print(f"assertion cache growth: {grown} KiB for {30 * PREFIX_ROUTES} entries")
    assert grown <= ASSERTION_CACHE_BUDGET_KIB, grown


# The maximum growth of the opened-cookie cache while it takes the cookies of the test below.
OPENED_CACHE_BUDGET_KIB = 64 * 1024


def test_opened_cookie_cache_memory_bounded(wide_stack, upstream, oidc_provider):
    """One sign-in of a user with a large groups claim mints 1,500 distinct route cookies by
    signing in to the route again and again, which needs only the authenticate service's session
    cookie, and sends each once. The process grows by at most OPENED_CACHE_BUDGET_KIB, counted
    from after the first 20 cookies."""
    stack = wide_stack
    support.set_user_claims(oidc_provider, "large", {"email": "large@example.com", "groups": LARGE_GROUPS})
    session, _ = login(stack, "large")
    url = f"https://app.example.test:{stack['port']}/"
    deadline = time.monotonic() + 120

    def mint():
        for item in list(session.cookies):
            if item.domain.startswith("app") and item.name != "_pomerium_signin":
                session.cookies.clear(item.domain, item.path, item.name)
        final, _ = support.follow(session, session.get(url, allow_redirects=False, timeout=10))
        assert final.status_code == 200, final.text[:300]

    for _ in range(20):
        mint()
    assert len(cookie_value(session, "app")) > 16_000
    base = rss_kib(stack["process"])
    for index in range(1500):
        assert time.monotonic() < deadline, f"minting cookies took too long, stopped at {index}"
        mint()
    grown = rss_kib(stack["process"]) - base
    print(f"opened-cookie cache growth: {grown} KiB for 1,500 cookies")
    assert grown <= OPENED_CACHE_BUDGET_KIB, grown


# -------------------------------------------------------------------------------------------------
# A refresh that races a sign-out.

# How long the slow token endpoint delays its response to a refresh-token grant.
REFRESH_DELAY_SECONDS = 3.0


class SlowRefreshProvider:
    """A loopback HTTP front for oidc-provider-mock. It passes every request through with the
    front's own Host, so the provider's URLs name the front. It delays refresh-token grants by
    REFRESH_DELAY_SECONDS and sets `expires_in` to 30 in token responses, so every sign-in finds
    the session within the authenticate service's 60-second refresh margin and refreshes it."""

    def __init__(self, backend_port):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *arguments):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if b"grant_type=refresh_token" in body:
                    time.sleep(REFRESH_DELAY_SECONDS)
                connection = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=30)
                headers = {name: value for name, value in self.headers.items()
                           if name.lower() not in ("connection", "content-length")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                if self.path.startswith("/oauth2/token") and answer.status == 200:
                    document = json.loads(payload)
                    document["expires_in"] = 30
                    payload = json.dumps(document).encode()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

            do_GET = forward
            do_POST = forward
            do_PUT = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_refresh_provider(tmp_path):
    """oidc-provider-mock with 30-second tokens behind a SlowRefreshProvider; yields the front."""
    port = free_port()
    group = support.ProcessGroup(tmp_path)
    front = None
    try:
        group.start("slow-provider", [support.VENV / "oidc-provider-mock", "--host", "127.0.0.1", "--port", port,
                                      "--token-max-age", 30],
                    env={"NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}, port=port)
        front = SlowRefreshProvider(port)
        yield front
    finally:
        if front:
            front.stop()
        group.stop_all()


def test_refresh_racing_sign_out_stays_ended(start_pomerium, server_certificate, slow_refresh_provider, upstream,
                                             tmp_path):
    """A copy of the browser's cookies starts a sign-in on another route, which makes the
    authenticate service refresh the session at the slow provider. The user signs out while that
    refresh waits. After pomerium restarts on the same session file, the signed-out route cookie
    must still be sent to sign in."""
    provider = slow_refresh_provider.url
    for user, claims in USERS.items():
        support.set_user_claims(provider, user, claims)
    port = free_port()
    config = make_config(port, server_certificate, provider, upstream.url, ec_key_pem(), cache_store="bolt",
                         cache_store_path=str(tmp_path / "sessions.db"))
    process = start_pomerium(config, wait_port=port, scheme="https")
    stack = {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}
    session, alice = login(stack, "alice")
    assert exchange(stack, "app", "/before", cookie=alice).status == 200
    copy = requests_session(stack)
    for item in session.cookies:
        copy.cookies.set(item.name, item.value, domain=item.domain, path=item.path)
    start = copy.get(f"https://other.example.test:{port}/", allow_redirects=False, timeout=10)
    assert start.status_code == 302
    results = {}

    def sign_in_elsewhere():
        # The authenticate service refreshes the session at the provider before it responds.
        results["status"] = copy.get(start.headers["Location"], allow_redirects=False, timeout=30).status_code

    racer = threading.Thread(target=sign_in_elsewhere)
    racer.start()
    time.sleep(REFRESH_DELAY_SECONDS / 3)
    sign_out(stack, session)
    racer.join(timeout=30)
    assert not racer.is_alive()
    assert results["status"] == 302
    assert exchange(stack, "app", "/after-sign-out", cookie=alice).status == 302

    process.stop()
    stack["process"] = start_pomerium(config, name="config-restarted.json", wait_port=port, scheme="https")
    upstream.clear()
    response = exchange(stack, "app", "/after-restart", cookie=alice)
    assert response.status == 302, response
    assert upstream.received() == []


def test_sign_out_survives_restart(start_pomerium, server_certificate, slow_refresh_provider, upstream, tmp_path):
    """The control for the race above: without a refresh in flight, a signed-out route cookie is
    still sent to sign in after pomerium restarts on the same session file."""
    provider = slow_refresh_provider.url
    for user, claims in USERS.items():
        support.set_user_claims(provider, user, claims)
    port = free_port()
    config = make_config(port, server_certificate, provider, upstream.url, ec_key_pem(), cache_store="bolt",
                         cache_store_path=str(tmp_path / "sessions.db"))
    process = start_pomerium(config, wait_port=port, scheme="https")
    stack = {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}
    session, alice = login(stack, "alice")
    assert exchange(stack, "app", "/before", cookie=alice).status == 200
    sign_out(stack, session)
    process.stop()
    stack["process"] = start_pomerium(config, name="config-restarted.json", wait_port=port, scheme="https")
    assert exchange(stack, "app", "/after-restart", cookie=alice).status == 302
