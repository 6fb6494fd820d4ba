"""The main job without a browser: login, policy, public routes, the assertion, session stores,
several proxies and config reload, with `requests` cookie jars."""
import json
import time
from urllib.parse import urlsplit

import jwt
import pytest

import support


def upstream_json(session, url):
    response = session.get(url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=10)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    return response.json()


def provider_hops(hops, issuer):
    return [hop for hop in hops if hop.startswith(issuer)]


def test_login_returns_to_original_url(stack, provider):
    app = stack()
    session = app.session()
    final, hops = support.login(session, app.url("app", "/reports/2024?page=2&sort=name"), "alice")
    assert final.status_code == 200
    assert final.url == app.url("app", "/reports/2024?page=2&sort=name")
    assert provider_hops(hops, provider), "the login did not go through the provider"
    assert "Hello from the demo upstream" in final.text
    # Once logged in, the route responds without another redirect.
    again = session.get(app.url("app", "/other"), allow_redirects=False, timeout=10)
    assert again.status_code == 200


def test_upstream_verifies_the_assertion_with_the_jwks_only(stack):
    app = stack()
    session = app.session()
    support.login(session, app.url("app"), "alice")
    result = upstream_json(session, app.url("app", "/whoami"))
    assert result["verified"] is True, result
    claims = result["claims"]
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["devs"]
    assert f"app.example.test:{app.port}" in claims["aud"]

    # The key set contains public keys only, each usable by PyJWT.
    keys = session.get(app.url("authenticate", "/.well-known/pomerium/jwks.json"), timeout=10).json()["keys"]
    assert keys and all(key["kty"] == "EC" and key["alg"] == "ES256" and "d" not in key for key in keys)
    assert all(jwt.PyJWK(key).key is not None for key in keys)


def test_user_outside_the_policy_gets_403(stack):
    app = stack()
    session = app.session()
    final, _ = support.login(session, app.url("app", "/"), "mallory")
    assert final.status_code == 403
    assert "403" in final.text
    assert "Hello from the demo upstream" not in final.text


def test_public_route_needs_no_login(stack):
    app = stack()
    response = app.session().get(app.url("public", "/open?x=1"), allow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert "Hello from the demo upstream" in response.text


def test_sign_out_asks_for_a_new_login(stack, provider):
    app = stack()
    session = app.session()
    support.login(session, app.url("app"), "alice")
    dashboard = session.get(app.url("app", "/.pomerium/"), timeout=10)
    assert dashboard.status_code == 200
    assert "alice@example.com" in dashboard.text
    token = dashboard.text.split('name="pomerium_csrf" value="', 1)[1].split('"', 1)[0]
    signed_out = session.post(
        app.url("app", "/.pomerium/sign_out"), data={"pomerium_csrf": token}, allow_redirects=False, timeout=10)
    support.follow(session, signed_out)
    _, hops = support.follow(session, session.get(app.url("app"), allow_redirects=False, timeout=10))
    assert provider_hops(hops, provider), f"no new login was asked for: {hops}"


@pytest.mark.parametrize("store", ["bolt", "redis"])
def test_session_survives_a_restart(stack, provider, redis_address, store):
    app = stack(store=store, redis=redis_address)
    session = app.session()
    support.login(session, app.url("app"), "alice")
    assert app.stop() == 0
    app.start()
    assert upstream_json(session, app.url("app", "/after-restart"))["verified"] is True
    # A route this browser has not visited needs the global session from the store: no provider hop.
    final, hops = support.follow(session, session.get(app.url("other"), allow_redirects=False, timeout=10))
    assert final.status_code == 200, hops
    assert not provider_hops(hops, provider), f"the session was lost: {hops}"


def test_memory_store_loses_the_session_on_restart(stack, provider):
    """The control for the test above: without a persistent store the provider is asked again."""
    app = stack()
    session = app.session()
    support.login(session, app.url("app"), "alice")
    app.stop()
    app.start()
    _, hops = support.follow(session, session.get(app.url("other"), allow_redirects=False, timeout=10))
    assert provider_hops(hops, provider)


def test_two_proxies_share_sessions_through_redis(stack, provider, redis_address):
    first = stack(store="redis", redis=redis_address)
    second = stack(store="redis", redis=redis_address)
    session = first.session()
    support.login(session, first.url("app"), "alice")
    final, hops = support.follow(session, session.get(second.url("app", "/x?y=1"), allow_redirects=False, timeout=10))
    assert final.status_code == 200, hops
    assert final.url == second.url("app", "/x?y=1")
    assert not provider_hops(hops, provider), f"the second proxy asked the provider: {hops}"
    assert upstream_json(session, second.url("app"))["verified"] is True


@pytest.mark.parametrize("shared_secret", ["configured", "generated"])
def test_reload_adds_route_mid_session(stack, provider, certificate, shared_secret):
    # v0.7 generated a new shared secret on every reload when none was set, which broke every
    # session. The generated one must last as long as the process.
    app = stack(shared_secret=None) if shared_secret == "generated" else stack()
    session = app.session()
    support.login(session, app.url("app"), "alice")
    cookie_header = "; ".join(f"{cookie.name}={cookie.value}" for cookie in session.cookies
                              if cookie.domain.lstrip(".") == "app.example.test")
    kept = support.raw_https_connection(app.port, "app.example.test", certificate[0])
    headers = {"Host": f"app.example.test:{app.port}", "Cookie": cookie_header, "Accept": "application/json"}
    kept.request("GET", "/before", headers=headers)
    response = kept.getresponse()
    assert json.loads(response.read())["verified"] is True
    local_port = kept.sock.getsockname()[1]

    new_route = app.url("added")
    assert session.get(new_route, allow_redirects=False, timeout=10).status_code == 404
    app.routes.append({"from": new_route, "to": f"http://127.0.0.1:{app.upstream_port}",
                       "allowed_users": ["alice@example.com"]})
    app.write_config()
    support.wait_for(
        lambda: session.get(new_route, allow_redirects=False, timeout=10).status_code != 404, 10,
        "the added route to be served")
    final, hops = support.follow(session, session.get(new_route, allow_redirects=False, timeout=10))
    assert final.status_code == 200, hops
    assert not provider_hops(hops, provider), "the reload ended the session"

    kept.request("GET", "/after", headers=headers)
    response = kept.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["verified"] is True
    assert kept.sock.getsockname()[1] == local_port, "the kept-alive connection was replaced"
    kept.close()
    assert app.process.alive()
    assert "config reloaded" in app.process.output()
