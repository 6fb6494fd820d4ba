"""Attacks on four fixes of the sign-in, sign-out and cache code.

The authenticate service accepts only a global session from its cookie. A login start stores
nothing, and its state is accepted once at the callback. Sign-out writes a marker that later
saves check. The opened-cookie and assertion caches have byte limits.

Each test either shows that a way around a fix fails or that a legitimate flow still
works with the fix in place. Every server runs on 127.0.0.1, and every loop is bounded in count
and time. The stack, sign-in and raw-request helpers come from test_cache_attacks.py."""
import base64
import json
import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest

from harness import base_config, free_port
from test_cache_attacks import (  # noqa: F401 (fixtures are used by name)
    MANY_GROUPS, REFRESH_DELAY_SECONDS, USERS, assertion_email, cached_login, cookie_value, ec_key_pem, exchange,
    login, make_config, programmatic_tokens, requests_session, sign_out, slow_refresh_provider, stack,
    unverified_claims, upstream, upstream_paths)

import support  # noqa: E402 (test_keepalive_attacks put tests/e2e on sys.path)


# -------------------------------------------------------------------------------------------------
# Helpers.


def provider_redirect(session, url, user):
    """Opens `url`, logs `user` in at the mock provider and returns the provider's redirect to
    the callback without following it."""
    response, _ = support.follow(session, session.get(url, allow_redirects=False, timeout=10))
    form = support._LoginForm()
    form.feed(response.text)
    assert response.status_code == 200, (response.url, response.status_code, response.text[:300])
    assert form.action is not None, response.text[:300]
    posted = session.post(urljoin(response.url, form.action), data={"sub": user}, allow_redirects=False,
                          timeout=10)
    assert posted.is_redirect, (posted.status_code, posted.text[:300])
    location = urljoin(posted.url, posted.headers["Location"])
    assert "/oauth2/callback" in location, location
    return location


def finish(session, callback_url):
    """Follows a callback URL to its end and returns the last response."""
    final, _ = support.follow(session, session.get(callback_url, allow_redirects=False, timeout=10))
    return final


def with_query(url, **changes):
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def app_url(stack, host="app", path="/"):
    return f"https://{host}.example.test:{stack['port']}{path}"


# -------------------------------------------------------------------------------------------------
# A login's state is accepted once, in the browser that started it.


def test_callback_replay_rejected(stack, upstream):
    """The callback of a completed login, sent again with the same code or with a new code from
    another login, gets no session: the state was used."""
    session = requests_session(stack)
    callback = provider_redirect(session, app_url(stack), "alice")
    first = finish(session, callback)
    assert first.status_code == 200, first.text[:300]
    assert assertion_email(first.json()) == "alice@example.com"

    replay = session.get(callback, allow_redirects=False, timeout=10)
    assert replay.status_code == 400, (replay.status_code, replay.text[:300])
    assert not any(value.startswith("_pomerium=") and "Max-Age=0" not in value
                   for value in replay.raw.headers.getlist("Set-Cookie"))

    # A second login in another browser gives a new, unused code. Pasted under the first state,
    # it must still be rejected, and the second login must still complete with its own state.
    other = requests_session(stack)
    second_callback = provider_redirect(other, app_url(stack, path="/second"), "admin")
    code = parse_qs(urlsplit(second_callback).query)["code"][0]
    grafted = session.get(with_query(callback, code=code), allow_redirects=False, timeout=10)
    assert grafted.status_code == 400, (grafted.status_code, grafted.text[:300])
    second = finish(other, second_callback)
    assert second.status_code == 200, second.text[:300]
    assert assertion_email(second.json()) == "admin@example.com"


def test_state_from_other_browser_rejected(stack, upstream):
    """A callback URL that the victim's browser started, opened in the attacker's browser (which
    has a CSRF cookie of its own), is rejected, and the victim can still finish the login."""
    victim = requests_session(stack)
    callback = provider_redirect(victim, app_url(stack), "alice")
    attacker = requests_session(stack)
    started = attacker.get(app_url(stack), allow_redirects=False, timeout=10)
    support.follow(attacker, started, limit=2)
    assert any(cookie.name != "_pomerium" for cookie in attacker.cookies), list(attacker.cookies)
    stolen = attacker.get(callback, allow_redirects=False, timeout=10)
    assert stolen.status_code == 400, (stolen.status_code, stolen.text[:300])
    assert "_pomerium" not in {cookie.name for cookie in attacker.cookies if cookie.domain.startswith("app")}
    final = finish(victim, callback)
    assert final.status_code == 200, final.text[:300]
    assert assertion_email(final.json()) == "alice@example.com"


def test_parallel_tab_logins_complete(stack, upstream):
    """Two logins started in one browser before either finishes (two tabs) both complete, in
    either order of their callbacks, each landing on its own page."""
    session = requests_session(stack)
    first = provider_redirect(session, app_url(stack, path="/tab-one"), "alice")
    second = provider_redirect(session, app_url(stack, path="/tab-two"), "alice")
    for callback, path in [(second, "/tab-two"), (first, "/tab-one")]:
        final = finish(session, callback)
        assert final.status_code == 200, (path, final.status_code, final.url, re.findall(r'<p>.*?</p>', final.text, re.S))
        assert final.json()["path"] == path
        assert assertion_email(final.json()) == "alice@example.com"


def test_parallel_tab_retry_link_works(stack, upstream):
    """Both tabs' callbacks at the authenticate service succeed, because each state is used once
    in the browser that started it. The retry link of the tab that the route rejected then leads
    to its page with the session that the other tab stored."""
    session = requests_session(stack)
    first = provider_redirect(session, app_url(stack, path="/tab-one"), "alice")
    second = provider_redirect(session, app_url(stack, path="/tab-two"), "alice")
    assert finish(session, second).status_code == 200
    at_authenticate = session.get(first, allow_redirects=False, timeout=10)
    assert at_authenticate.status_code == 302, (at_authenticate.status_code, at_authenticate.text[:300])
    retry = session.get(app_url(stack, path="/tab-one"), allow_redirects=False, timeout=10)
    assert retry.status_code == 200, retry.status_code
    assert retry.json()["path"] == "/tab-one"
    assert assertion_email(retry.json()) == "alice@example.com"


def test_sign_in_start_flood_keeps_browser_working(stack, upstream):
    """40 sign-ins started in one browser without a callback leave a small sign-in cookie with the
    newest 8 entries, and that browser's next login still completes."""
    session = requests_session(stack)
    for index in range(40):
        started = session.get(app_url(stack, path=f"/start/{index}"), allow_redirects=False, timeout=10)
        assert started.status_code == 302, (index, started.status_code)
    values = [item.value for item in session.cookies if item.name == "_pomerium_signin"]
    assert len(values) == 1, values
    assert len(values[0].split("~")) == 8, values[0]
    assert len(values[0]) <= 415, len(values[0])
    final, _ = support.login(session, app_url(stack, path="/after-flood"), "alice")
    assert final.status_code == 200, final.text[:300]
    assert final.json()["path"] == "/after-flood"
    assert assertion_email(final.json()) == "alice@example.com"


def test_route_cookie_as_pomerium_authorization_rejected(stack, upstream):
    """A route cookie's value sent to the authenticate service as `Authorization: Pomerium` is no
    refresh token: the signed sign-in link then starts a login at the provider instead of
    handing out a route session for another host."""
    alice = cached_login(stack, "alice")
    route_value = alice.split("=", 1)[1]
    session = requests_session(stack)
    to_authenticate = session.get(app_url(stack, host="other"), allow_redirects=False, timeout=10)
    assert to_authenticate.status_code == 302
    sign_in = to_authenticate.headers["Location"]
    assert "/.pomerium/sign_in" in sign_in
    for value in [route_value, f"{route_value}x"]:
        response = session.get(sign_in, headers={"Authorization": f"Pomerium {value}"}, allow_redirects=False,
                               timeout=10)
        assert response.status_code == 302, response.status_code
        assert response.headers["Location"].startswith(stack["config"]["idp_provider_url"]), response.headers[
            "Location"]


def test_login_across_cookie_secret_reload(stack, upstream):
    """A login whose state was sealed under the old cookie_secret and whose callback arrives after
    a reload is rejected with a 400 that sets no session, and the same browser's next login, with
    a state under the new secret, completes."""
    session = requests_session(stack)
    callback = provider_redirect(session, app_url(stack, path="/before-reload"), "alice")
    alice = cached_login(stack, "admin")
    config = dict(stack["config"], cookie_secret=base64.b64encode(b"r" * 32).decode())
    stack["config_path"].write_text(json.dumps(config))
    support.wait_for(lambda: exchange(stack, "app", "/probe", cookie=alice).status == 302, 15,
                     "the cookie_secret reload")
    stale = session.get(callback, allow_redirects=False, timeout=10)
    assert stale.status_code == 400, (stale.status_code, stale.text[:300])
    assert not any(value.startswith("_pomerium=") and "Max-Age=0" not in value
                   for value in stale.raw.headers.getlist("Set-Cookie"))
    final, _ = support.login(session, app_url(stack, path="/after-reload"), "alice")
    assert final.status_code == 200, final.text[:300]
    assert final.json()["path"] == "/after-reload"
    assert assertion_email(final.json()) == "alice@example.com"


def rss_kib(process):
    for line in open(f"/proc/{process.process.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def flood_logins(stack, count, send_callbacks):
    """Starts `count` logins in one attacker browser and, with `send_callbacks`, sends each state
    to the callback with an invented code. Returns the attacker's session, the process growth in
    KiB counted from after 50 warm-up rounds, the callback statuses and the states."""
    attacker = requests_session(stack)
    to_authenticate = attacker.get(app_url(stack, path="/flood"), allow_redirects=False, timeout=10)
    sign_in = to_authenticate.headers["Location"]
    callback = f"https://authenticate.example.test:{stack['port']}/oauth2/callback"
    deadline = time.monotonic() + 60

    def one_round(index):
        started = attacker.get(sign_in, allow_redirects=False, timeout=10)
        assert started.status_code == 302, started.status_code
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        if not send_callbacks:
            return state, None
        response = attacker.get(callback, params={"state": state, "code": f"invented-{index}"},
                                allow_redirects=False, timeout=10)
        return state, response.status_code

    for index in range(50):
        one_round(index)
    base = rss_kib(stack["process"])
    statuses, states = {}, []
    for index in range(count):
        assert time.monotonic() < deadline, f"the flood took too long, stopped at {index}"
        state, status = one_round(index)
        states.append(state)
        statuses[status] = statuses.get(status, 0) + 1
    return attacker, rss_kib(stack["process"]) - base, statuses, states


def test_sign_in_start_flood_stores_nothing(stack, upstream):
    """6,000 login starts without callbacks grow the process by at most 2 MiB: a start keeps no
    nonce, verifier or lock on the server."""
    _, grown, _, _ = flood_logins(stack, 6000, send_callbacks=False)
    print(f"sign-in start flood growth: {grown} KiB for 6,000 starts")
    assert grown <= 2 * 1024, grown


def test_callback_flood_states_used_once(stack, upstream):
    """An attacker starts 1,500 logins in its own browser and sends each state to the callback
    with an invented code. Each callback is rejected by the provider's token endpoint, each state
    is used up by its callback, and a real user's login still completes."""
    attacker, _, statuses, states = flood_logins(stack, 1500, send_callbacks=True)
    assert statuses == {401: 1500}, statuses
    callback = f"https://authenticate.example.test:{stack['port']}/oauth2/callback"
    for state in (states[0], states[-1]):
        again = attacker.get(callback, params={"state": state, "code": "another"}, allow_redirects=False, timeout=10)
        assert again.status_code == 400, again.status_code
    victim = requests_session(stack)
    final, _ = support.login(victim, app_url(stack, path="/victim"), "alice")
    assert final.status_code == 200, final.text[:300]
    assert assertion_email(final.json()) == "alice@example.com"


def test_callback_flood_memory_bounded(stack, upstream):
    """8,000 callbacks with states that the attacker started itself and invented codes grow the
    process by at most 4 MiB."""
    _, grown, statuses, _ = flood_logins(stack, 8000, send_callbacks=True)
    print(f"callback flood growth: {grown} KiB for 8,000 callbacks")
    assert statuses == {401: 8000}, statuses
    assert grown <= 4 * 1024, grown


# -------------------------------------------------------------------------------------------------
# Sign-out markers.


def test_sign_in_after_sign_out_works(stack, upstream):
    """After a sign-out the same user signs in again in the same browser and gets a working
    session, and the old route cookie stays ended."""
    session = requests_session(stack)
    final, _ = support.login(session, app_url(stack), "alice")
    assert final.status_code == 200
    old_cookie = cookie_value(session, "app")
    sign_out(stack, session)
    ended = exchange(stack, "app", "/old", cookie=old_cookie)
    assert ended.status == 302, ended
    for attempt in range(2):
        again, _ = support.login(session, app_url(stack, path=f"/again/{attempt}"), "alice")
        assert again.status_code == 200, (attempt, again.status_code, again.text[:300])
        assert assertion_email(again.json()) == "alice@example.com"
        new_cookie = cookie_value(session, "app")
        assert new_cookie != old_cookie
        response = exchange(stack, "app", "/new", cookie=new_cookie)
        assert response.status == 200, (attempt, response)
        if attempt == 0:
            sign_out(stack, session)
            assert exchange(stack, "app", "/new", cookie=new_cookie).status == 302


def test_sign_out_finds_global_cookie_after_route_cookie(stack, upstream):
    """A sign-out request whose Cookie header has a route cookie before the global session cookie,
    both named `_pomerium`, ends the global session: the authenticate service skips the route
    cookie and tries the next one. The route cookie of that sign-in is then rejected too."""
    session = requests_session(stack)
    final, _ = support.login(session, app_url(stack), "alice")
    assert final.status_code == 200
    route = cookie_value(session, "app")
    global_cookie = "; ".join(f"{item.name}={item.value}" for item in session.cookies
                              if item.domain.startswith("authenticate") and item.name == "_pomerium")
    assert global_cookie.startswith("_pomerium=")
    assert exchange(stack, "app", "/before", cookie=route).status == 200
    signed_out = session.get(app_url(stack, path="/.pomerium/sign_out"), allow_redirects=False, timeout=10)
    assert signed_out.status_code == 302
    location = urlsplit(signed_out.headers["Location"])
    assert location.hostname == "authenticate.example.test"
    path = f"{location.path}?{location.query}"
    response = exchange(stack, "authenticate", path, cookie=f"{route}; {global_cookie}")
    assert response.status == 302, response
    assert exchange(stack, "app", "/after", cookie=route).status == 302


# -------------------------------------------------------------------------------------------------
# cookie_domain shared by the authenticate service and the routes.


@pytest.fixture
def parent_domain_stack(start_pomerium, server_certificate, oidc_provider, upstream, tmp_path):
    """The stack of test_cache_attacks.py with `cookie_domain` set to example.test, the parent of
    the authenticate host and every route, so their `_pomerium` cookies overwrite each other."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    upstream.clear()
    port = free_port()
    config = make_config(port, server_certificate, oidc_provider, upstream.url, ec_key_pem(),
                         cookie_domain="example.test")
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config,
            "config_path": tmp_path / "config.json", "sessions": {}}


def test_parent_cookie_domain_route_hops(parent_domain_stack, upstream):
    """With one cookie for all hosts, a user signs in on one route, then opens a second route and
    goes back to the first. Each hop ends at the upstream without a redirect loop, as the right
    user, and the provider's login form is shown at most once."""
    stack = parent_domain_stack
    session = requests_session(stack)
    final, _ = support.login(session, app_url(stack, host="app"), "admin")
    assert final.status_code == 200, final.text[:300]
    assert assertion_email(final.json()) == "admin@example.com"
    for index, host in enumerate(["other", "app", "other", "app"]):
        response, hops = support.follow(
            session, session.get(app_url(stack, host=host, path=f"/hop/{index}"), allow_redirects=False, timeout=10))
        assert response.status_code == 200, (index, host, response.status_code, hops, response.text[-600:])
        assert len(hops) <= 6, (index, host, hops)
        assert response.headers['Content-Type'].startswith('application/json'), (index, host, hops, response.text[:1500])
        echo = response.json()
        assert echo["path"] == f"/hop/{index}", (index, host)
        assert assertion_email(echo) == "admin@example.com", (index, host)


def test_parent_cookie_domain_sign_out_ends_session(parent_domain_stack, upstream):
    """Signing out ends the session on the server, so a copy of the cookie taken before the
    sign-out (another tab's, or a stolen one) is rejected afterwards."""
    stack = parent_domain_stack
    session = requests_session(stack)
    final, _ = support.login(session, app_url(stack), "alice")
    assert final.status_code == 200
    copy = cookie_value(session, ".example.test")
    assert exchange(stack, "app", "/before", cookie=copy).status == 200
    sign_out(stack, session)
    after = exchange(stack, "app", "/after", cookie=copy)
    assert after.status == 302, after


def test_sign_out_with_route_cookie_only_ends_session(stack, upstream):
    """A browser that lost its cookie at the authenticate host (cleared by the user, or never
    stored because the browser blocks it) signs out from a route. The route session ends on the
    server, so a copy of its cookie is rejected afterwards."""
    session = requests_session(stack)
    final, _ = support.login(session, app_url(stack), "alice")
    assert final.status_code == 200
    copy = cookie_value(session, "app")
    for item in list(session.cookies):
        if item.domain.startswith("authenticate"):
            session.cookies.clear(item.domain, item.path, item.name)
    assert exchange(stack, "app", "/before", cookie=copy).status == 200
    sign_out(stack, session)
    after = exchange(stack, "app", "/after", cookie=copy)
    assert after.status == 302, after


# -------------------------------------------------------------------------------------------------
# Two processes that share one Redis store.


@pytest.fixture
def redis_address(tmp_path):
    """A redis-server on a free 127.0.0.1 port without persistence; yields host:port."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        support.wait_for(lambda: support.port_open(port), 10, "redis-server did not start")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_shared_redis_refresh_racing_sign_out(start_pomerium, server_certificate, slow_refresh_provider, upstream,
                                              redis_address, tmp_path):
    """Processes A and B share one Redis store. A copy of the user's browser signs in on B's
    second route, so B refreshes the session at the slow provider and saves it, while the user
    signs out at A. Afterwards A's route cookie and the route session that B handed out are
    both rejected, on both processes."""
    provider = slow_refresh_provider.url
    for user, claims in USERS.items():
        support.set_user_claims(provider, user, claims)
    stacks = []
    for name in ("a", "b"):
        port = free_port()
        config = make_config(port, server_certificate, provider, upstream.url, ec_key_pem(), cache_store="redis",
                             cache_store_address=redis_address)
        process = start_pomerium(config, name=f"config-{name}.json", wait_port=port, scheme="https")
        stacks.append({"port": port, "ca": server_certificate[0], "process": process, "config": config,
                       "sessions": {}})
    a, b = stacks
    session, admin = login(a, "admin")
    assert exchange(a, "app", "/before", cookie=admin).status == 200
    copy = requests_session(b)
    for item in session.cookies:
        copy.cookies.set(item.name, item.value, domain=item.domain, path=item.path)
    start = copy.get(app_url(b, host="other"), allow_redirects=False, timeout=10)
    assert start.status_code == 302
    results = {}

    def sign_in_at_b():
        response = copy.get(start.headers["Location"], allow_redirects=False, timeout=30)
        results["status"] = response.status_code
        results["location"] = response.headers.get("Location", "")

    racer = threading.Thread(target=sign_in_at_b)
    racer.start()
    time.sleep(REFRESH_DELAY_SECONDS / 3)
    sign_out(a, session)
    racer.join(timeout=30)
    assert not racer.is_alive()
    assert results["status"] == 302, results
    assert exchange(a, "app", "/after-sign-out", cookie=admin).status == 302

    # Whatever B handed out during the race must not open B's route either.
    if "/.pomerium/callback" in results["location"]:
        copy.get(results["location"], allow_redirects=False, timeout=10)
    handed_out = [item for item in copy.cookies if item.domain.startswith("other") and item.name == "_pomerium"]
    upstream.clear()
    for item in handed_out:
        response = exchange(b, "other", "/after-race", cookie=f"_pomerium={item.value}")
        assert response.status == 302, response
    assert upstream.received() == []
    # B has not seen A's route cookie before, and its store lookup must find the sign-out.
    b_cookie = exchange(b, "app", "/a-cookie-at-b", cookie=admin)
    assert b_cookie.status in (302, 403), b_cookie


def test_shared_redis_sign_in_after_sign_out(start_pomerium, server_certificate, oidc_provider, upstream,
                                            redis_address):
    """With a shared Redis store, a user who signed out at A signs in again at B and gets a
    working session, although A wrote the sign-out marker of the old session."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    stacks = []
    for name in ("a", "b"):
        port = free_port()
        config = make_config(port, server_certificate, oidc_provider, upstream.url, ec_key_pem(),
                             cache_store="redis", cache_store_address=redis_address)
        process = start_pomerium(config, name=f"config-{name}.json", wait_port=port, scheme="https")
        stacks.append({"port": port, "ca": server_certificate[0], "process": process, "config": config,
                       "sessions": {}})
    a, b = stacks
    session, alice = login(a, "alice")
    sign_out(a, session)
    assert exchange(a, "app", "/old", cookie=alice).status == 302
    final, _ = support.login(session, app_url(b, path="/again"), "alice")
    assert final.status_code == 200, final.text[:300]
    assert assertion_email(final.json()) == "alice@example.com"


def test_shared_redis_programmatic_refresh_racing_sign_out(start_pomerium, server_certificate,
                                                          slow_refresh_provider, upstream, redis_address):
    """Processes A and B share one Redis store. A script's refresh at B waits for the slow
    provider while the user signs out at A. The refresh then fails, or whatever it returned is
    rejected: its route token gets no response from the route's upstream, and its refresh token
    and the old one are rejected at both processes."""
    provider = slow_refresh_provider.url
    for user, claims in USERS.items():
        support.set_user_claims(provider, user, claims)
    stacks = []
    for name in ("a", "b"):
        port = free_port()
        config = make_config(port, server_certificate, provider, upstream.url, ec_key_pem(), cache_store="redis",
                             cache_store_address=redis_address)
        process = start_pomerium(config, name=f"config-{name}.json", wait_port=port, scheme="https")
        stacks.append({"port": port, "ca": server_certificate[0], "process": process, "config": config,
                       "sessions": {}})
    a, b = stacks
    session, _ = login(a, "alice")
    route_token, refresh_token = programmatic_tokens(a, session)
    assert exchange(a, "app", "/script", headers=[f"Authorization: Pomerium {route_token}"]).status == 200
    results = {}

    def refresh_at_b():
        response = requests_session(b).get(f"https://authenticate.example.test:{b['port']}/api/v1/refresh",
                                           headers={"Authorization": f"Pomerium {refresh_token}"}, timeout=30)
        results["status"] = response.status_code
        results["body"] = response.json() if response.status_code == 200 else None

    racer = threading.Thread(target=refresh_at_b)
    racer.start()
    time.sleep(REFRESH_DELAY_SECONDS / 3)
    sign_out(a, session)
    racer.join(timeout=30)
    assert not racer.is_alive()
    print(f"refresh racing sign-out: {results['status']}")
    assert results["status"] in (200, 401), results
    upstream.clear()
    tokens = [refresh_token]
    if results["body"]:
        tokens.append(results["body"]["refresh_token"])
        response = exchange(a, "app", "/after-race", headers=[f"Authorization: Pomerium {results['body']['jwt']}"])
        assert response.status in (302, 401), response
    assert exchange(a, "app", "/old-token", headers=[f"Authorization: Pomerium {route_token}"]).status in (302, 401)
    assert upstream.received() == []
    for stack in (a, b):
        for token in tokens:
            refreshed = requests_session(stack).get(
                f"https://authenticate.example.test:{stack['port']}/api/v1/refresh",
                headers={"Authorization": f"Pomerium {token}"}, timeout=30)
            assert refreshed.status_code == 401, (stack["port"], refreshed.status_code)


def test_impersonation_racing_sign_out_bolt(start_pomerium, server_certificate, slow_refresh_provider,
                                           upstream, tmp_path):
    """With the bolt store, an administrator's impersonation change, which makes the authenticate
    service refresh the session at the slow provider and save it, races the same user's
    sign-out from a copy of the browser. Afterwards neither the old route cookie nor whatever
    the impersonation handed out opens the route, before and after a restart."""
    provider = slow_refresh_provider.url
    for user, claims in USERS.items():
        support.set_user_claims(provider, user, claims)
    port = free_port()
    config = make_config(port, server_certificate, provider, upstream.url, ec_key_pem(), cache_store="bolt",
                         cache_store_path=str(tmp_path / "sessions.db"))
    process = start_pomerium(config, wait_port=port, scheme="https")
    stack = {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}
    session, admin = login(stack, "admin")
    page = session.get(app_url(stack, path="/.pomerium/"), timeout=10)
    assert page.status_code == 200, page.text[:300]
    csrf = re.search(r'name="pomerium_csrf" value="([^"]+)"', page.text).group(1)
    copy = requests_session(stack)
    for item in session.cookies:
        copy.cookies.set(item.name, item.value, domain=item.domain, path=item.path)
    results = {}

    def impersonate():
        posted = session.post(app_url(stack, path="/.pomerium/admin/impersonate"), allow_redirects=False, timeout=30,
                              data={"pomerium_csrf": csrf, "pomerium_impersonate_action": "set",
                                    "pomerium_impersonate_email": "alice@example.com",
                                    "pomerium_impersonate_groups": ""})
        results["posted"] = posted.status_code
        if posted.is_redirect:
            final, hops = support.follow(session, posted)
            results["final"] = final.status_code

    racer = threading.Thread(target=impersonate)
    racer.start()
    time.sleep(REFRESH_DELAY_SECONDS / 3)
    sign_out(stack, copy)
    racer.join(timeout=40)
    assert not racer.is_alive()
    print(f"impersonation racing sign-out: {results}")
    handed_out = [f"{item.name}={item.value}" for item in session.cookies
                  if item.domain.startswith("app") and item.name.startswith("_pomerium")
                  and item.name != "_pomerium_signin"]
    upstream.clear()
    for attempt in ("before-restart", "after-restart"):
        if attempt == "after-restart":
            stack["process"].stop()
            stack["process"] = start_pomerium(config, name="config-restarted.json", wait_port=port, scheme="https")
        assert exchange(stack, "app", f"/{attempt}/old", cookie=admin).status == 302, attempt
        if handed_out:
            response = exchange(stack, "app", f"/{attempt}/handed-out", cookie="; ".join(handed_out))
            assert response.status == 302, (attempt, response)
    assert upstream.received() == []


# -------------------------------------------------------------------------------------------------
# Byte limits of the opened-cookie and assertion caches.

# Users with groups claims of their own, each large enough for a chunked session cookie.
LARGE_USERS = {f"large{index}": [f"user{index}-group-with-a-fairly-long-name-{group:04d}" for group in range(300)]
               for index in range(6)}


def assertion_of_echo(echo):
    values = [value for name, value in echo["headers"] if name.lower() == "x-pomerium-jwt-assertion"]
    assert len(values) == 1, values
    return unverified_claims(values[0])


def test_eviction_keeps_each_large_identity(stack, upstream, oidc_provider):
    """Six users with large groups claims of their own send requests in parallel while a seventh
    mints hundreds of large route cookies, far more than the 16 MiB opened-cookie cache holds, so
    entries are evicted throughout. Every response carries its own user's email and groups, in
    the assertion and in the claim header."""
    for user, groups in LARGE_USERS.items():
        support.set_user_claims(oidc_provider, user, {"email": f"{user}@example.com", "groups": groups})
    support.set_user_claims(oidc_provider, "churn", {"email": "churn@example.com", "groups": MANY_GROUPS * 2})
    cookies = {user: login(stack, user)[1] for user in LARGE_USERS}
    assert all(len(cookie) > 8000 for cookie in cookies.values())
    churn_session, _ = login(stack, "churn")
    failures = []
    stop = threading.Event()
    deadline = time.monotonic() + 60

    def victim(user):
        index = 0
        while not stop.is_set() and time.monotonic() < deadline and index < 400:
            response = exchange(stack, "app", f"/{user}/{index}", cookie=cookies[user])
            index += 1
            if response.status != 200:
                failures.append((user, index, response.status))
                return
            echo = response.echo()
            claims = assertion_of_echo(echo)
            header = [value for name, value in echo["headers"] if name.lower() == "x-pomerium-claim-groups"]
            if claims["email"] != f"{user}@example.com" or claims.get("groups") != LARGE_USERS[user]:
                failures.append((user, index, claims["email"], (claims.get("groups") or [])[:1]))
                return
            if len(header) != 1 or LARGE_USERS[user][-1] not in header[0] or "churn" in header[0]:
                failures.append((user, index, "claim header", [value[:80] for value in header]))
                return

    threads = [threading.Thread(target=victim, args=(user,)) for user in LARGE_USERS]
    for thread in threads:
        thread.start()
    minted = 0
    url = app_url(stack, path="/churn")
    try:
        while minted < 600 and time.monotonic() < deadline and not failures:
            for item in list(churn_session.cookies):
                if item.domain.startswith("app") and item.name != "_pomerium_signin":
                    churn_session.cookies.clear(item.domain, item.path, item.name)
            final, _ = support.follow(churn_session, churn_session.get(url, allow_redirects=False, timeout=10))
            assert final.status_code == 200, final.text[:300]
            assert assertion_email(final.json()) == "churn@example.com"
            minted += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert minted >= 450, f"only {minted} cookies minted in 60 s"
    for user, cookie in cookies.items():
        response = exchange(stack, "app", "/after-churn", cookie=cookie)
        assert response.status == 200, (user, response)
        assert assertion_of_echo(response.echo())["groups"] == LARGE_USERS[user]


# Prefix routes of the assertion eviction test. Six large-group users make 1,200 (session, route)
# pairs, each with an assertion of an estimated 19 KB (300 groups of about 47 bytes, base64url).
# With the per-entry overhead, that estimate is more than the 32 MiB assertion cache stores.
# The test does not observe evictions.
PREFIX_ROUTES = 200


@pytest.fixture
def prefix_stack(start_pomerium, server_certificate, oidc_provider, upstream):
    """pomerium with PREFIX_ROUTES prefix routes on one host, all to the recording upstream, and
    the email and groups claim headers."""
    for user, groups in LARGE_USERS.items():
        support.set_user_claims(oidc_provider, user, {"email": f"{user}@example.com", "groups": groups})
    port = free_port()
    routes = [{"from": f"https://app.example.test:{port}", "to": upstream.url, "prefix": f"/r{index}/",
               "allowed_domains": ["example.com"]} for index in range(PREFIX_ROUTES)]
    routes.append({"from": f"https://app.example.test:{port}", "to": upstream.url, "allowed_domains": ["example.com"]})
    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        idp_client_secret="fix-attacks-prefix-secret-51d2", jwt_claims_headers=["email", "groups"], policy=routes)
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}


def test_assertion_eviction_keeps_each_identity(prefix_stack, upstream):
    """Six users with large groups claims walk PREFIX_ROUTES routes twice, in parallel, so the
    assertion cache fills past its limit while entries are signed and read. Every assertion names its
    own user, groups and host, and each user's claim header carries only that user's groups."""
    from test_keepalive_attacks import Client
    stack = prefix_stack
    cookies = {user: login(stack, user)[1] for user in LARGE_USERS}
    failures = []
    deadline = time.monotonic() + 60

    def walk(user):
        client = Client(stack, timeout=10)
        try:
            for attempt in range(2):
                for index in range(PREFIX_ROUTES):
                    if time.monotonic() > deadline:
                        failures.append((user, "timed out", attempt, index))
                        return
                    path = f"/r{index}/{user}/{attempt}"
                    response = exchange(stack, "app", path, cookie=cookies[user], client=client)
                    if response.status != 200:
                        failures.append((user, attempt, index, response.status))
                        return
                    echo = response.echo()
                    claims = assertion_of_echo(echo)
                    header = [value for name, value in echo["headers"] if name.lower() == "x-pomerium-claim-groups"]
                    if echo["path"] != path or claims["email"] != f"{user}@example.com":
                        failures.append((user, attempt, index, echo["path"], claims["email"]))
                        return
                    if claims.get("groups") != LARGE_USERS[user] or f"app.example.test:{stack['port']}" not in str(
                            claims["aud"]):
                        failures.append((user, attempt, index, "groups or audience", claims["aud"]))
                        return
                    if len(header) != 1 or LARGE_USERS[user][-1] not in header[0]:
                        failures.append((user, attempt, index, "claim header"))
                        return
        finally:
            client.close()

    threads = [threading.Thread(target=walk, args=(user,)) for user in LARGE_USERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
