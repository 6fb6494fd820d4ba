"""Attacks on pipelined requests. They cover long pipelines of requests that pomerium responds to
itself, requests pipelined behind early responses and cut-off bodies, HTTP/1.0 keep-alive and
`Connection: close` in the middle of a pipeline. They also cover sessions from several sources on
one connection, WebSocket upgrades, and upstreams that break the usual request and response order.

Each test checks, for every request, what the upstream received and what the client got. The
recording upstream, the client and the `stack` fixture come from test_keepalive_attacks.py. Every
server runs on 127.0.0.1, and every loop is bounded in count and time."""
import json
import socket
import ssl
import threading
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from harness import base_config, free_port
from test_keepalive_attacks import (  # noqa: F401 (fixtures are used by name)
    USERS, Client, ThreadedUpstream, _Reader, assertion_email, fields, request, session_cookie, stack, upstream, upstream_paths)


# -------------------------------------------------------------------------------------------------
# Helpers.


def read_all(client, count, deadline_seconds=30):
    """Reads up to `count` responses. It stops early when pomerium closes or nothing comes in time."""
    responses = []
    deadline = time.monotonic() + deadline_seconds
    while len(responses) < count and time.monotonic() < deadline:
        try:
            responses.append(client.read())
        except (ConnectionError, socket.timeout, ssl.SSLError):
            break
    return responses


def alive(stack):
    """Whether the process runs and serves /ping on a new connection."""
    if stack["process"].process.poll() is not None:
        return False
    probe = Client(stack)
    probe.send(request("app", stack["port"], "/ping", close=True))
    status = probe.read().status
    probe.close()
    return status == 200


# -------------------------------------------------------------------------------------------------
# Long pipelines of requests that pomerium responds to itself, mixed with proxied ones.


def local_step(port, index, alice):
    """One request that pomerium responds to itself, and a check of its response that identifies the
    request, so a reordered, dropped or duplicated response fails the check."""
    kind = index % 6
    if kind == 0:
        return request("app", port, "/ping"), lambda r: r.status == 200 and r.body.startswith(b"pomerium/")
    if kind == 1:
        return (request("app", port, "/healthz"),
                lambda r: r.status == 200 and not r.body.startswith((b"pomerium/", b"User-agent")))
    if kind == 2:
        return (request("app", port, "/robots.txt"),
                lambda r: r.status == 200 and r.body.startswith(b"User-agent"))
    if kind == 3:
        return (request(f"unknown-{index}", port, "/"),
                lambda r: r.status == 404 and f"unknown-{index}.example.test".encode() in r.body)
    if kind == 4:
        return (request("app", port, f"/sign-in/{index}"),
                lambda r: r.status == 302 and f"in%2F{index}" in (r.header("Location") or "").replace("/", "%2F"))
    return request("app", port, f"/admin/denied/{index}", cookie=alice), lambda r: r.status == 403


def test_long_local_pipeline_in_order(stack, upstream):
    """1200 requests that pomerium responds to itself, in one write: each gets its own response, in
    order, and nothing reaches the upstream."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    upstream.clear()
    steps = [local_step(port, index, alice) for index in range(1200)]
    client = Client(stack, timeout=20)
    client.send("".join(data for data, _ in steps))
    responses = read_all(client, len(steps), deadline_seconds=60)
    assert len(responses) == len(steps)
    wrong = [index for index, ((_, check), response) in enumerate(zip(steps, responses)) if not check(response)]
    assert wrong == [], [(index, responses[index]) for index in wrong[:3]]
    assert upstream.received() == []
    client.send(request("app", port, "/after-long", cookie=alice))
    assert client.read().echo()["path"] == "/after-long"
    client.close()
    assert alive(stack)


def test_long_mixed_pipeline_answered(stack, upstream):
    """1200 requests in one write, every 40th of them proxied: each gets its own response, in
    order, and the upstream gets each proxied request once."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    upstream.clear()
    steps = []
    for index in range(1200):
        if index % 40 == 39:
            path = f"/mixed/{index}"
            steps.append((request("app", port, path, cookie=alice),
                          lambda r, path=path: r.status == 200 and r.echo()["path"] == path))
        else:
            steps.append(local_step(port, index, alice))
    client = Client(stack, timeout=10)
    client.send("".join(data for data, _ in steps))
    responses = read_all(client, len(steps), deadline_seconds=60)
    assert len(responses) == len(steps)
    wrong = [index for index, ((_, check), response) in enumerate(zip(steps, responses)) if not check(response)]
    assert wrong == [], [(index, responses[index]) for index in wrong[:3]]
    paths = [path for path in upstream_paths(upstream) if path.startswith("/mixed/")]
    assert paths == [f"/mixed/{index}" for index in range(39, 1200, 40)]
    client.close()


@pytest.fixture
def plain_public(start_pomerium, oidc_provider, upstream):
    """pomerium over plain HTTP with one public route to the recording upstream: (port, upstream)."""
    port = free_port()
    start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://public.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True}]),
        wait_port=port)
    upstream.clear()
    return port, upstream


def read_plain(reader, count):
    """Reads up to `count` responses with a Content-Length from a plain connection: (status, body)
    pairs. It stops when the peer closes or a read times out."""
    responses = []
    try:
        while len(responses) < count:
            head = reader.read_until(b"\r\n\r\n")
            if head is None:
                break
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            responses.append((int(head.split(b" ")[1]), reader.read_exactly(length)))
    except socket.timeout:
        pass
    return responses


def test_ping_then_proxied_pipeline_not_stalled(plain_public):
    """200 requests of about 1 KB, /ping and a proxied request in turn, in one write (about
    210 KB). Each gets its response. On the failing build the connection stops after 120 to 190
    responses, and a request sent after the stall gets no response either."""
    port, upstream = plain_public
    padding = "p" * 1000
    data = ""
    for index in range(200):
        path = f"/proxied/{index}" if index % 2 else "/ping"
        data += f"GET {path} HTTP/1.1\r\nHost: public.example.test\r\nX-Padding: {padding}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(data.encode())
        responses = read_plain(_Reader(connection), 200)
    assert len(responses) == 200
    assert [status for status, _ in responses] == [200] * 200
    assert [json.loads(body)["path"] for _, body in responses[1::2]] == [f"/proxied/{index}" for index in range(1, 200, 2)]


def test_large_ping_pipelines_on_parallel_connections(stack, upstream):
    """Three connections each send 20000 /ping requests (about 1 MB) at once. The nested starts of
    requests that get a synchronous response do not crash the process, and every request gets one response."""
    port = stack["port"]
    single = request("app", port, "/ping").encode()
    count = 20000
    results = [None] * 3

    def run(slot):
        client = Client(stack, timeout=20)
        client.send(single * count)
        client.socket.settimeout(20)
        received = b""
        deadline = time.monotonic() + 60
        while received.count(b"HTTP/1.1 200") < count and time.monotonic() < deadline:
            try:
                chunk = client.socket.recv(1 << 20)
            except (socket.timeout, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            received += chunk
        results[slot] = (received.count(b"HTTP/1.1 "), received.count(b"HTTP/1.1 200"))
        client.close()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert results == [(count, count)] * 3
    assert alive(stack)


# -------------------------------------------------------------------------------------------------
# Requests pipelined behind early responses, with bodies of every framing.


def early_requests(port, alice):
    """Requests that pomerium responds to before or without reading their body, as (name, head
    lines, expected status). `early_body` gives each its body."""
    host = f"app.example.test:{port}"
    return [
        ("401 xhr", ["POST /xhr HTTP/1.1", f"Host: {host}", "X-Requested-With: XMLHttpRequest"], 401),
        ("403 denied", ["POST /admin/upload HTTP/1.1", f"Host: {host}", f"Cookie: {alice}"], 403),
        ("405 method", ["PUT /.pomerium/ HTTP/1.1", f"Host: {host}", f"Cookie: {alice}"], 405),
        ("400 form", ["POST /.pomerium/sign_out HTTP/1.1", f"Host: {host}", f"Cookie: {alice}",
                      "Content-Type: application/x-www-form-urlencoded"], 400),
        ("403 csrf", ["POST /.pomerium/sign_out HTTP/1.1", f"Host: {host}", f"Cookie: {alice}",
                      "Content-Type: application/x-www-form-urlencoded"], 403),
        ("301 redirect", ["POST /.pomerium HTTP/1.1", f"Host: {host}"], 301),
        ("302 sign-in", ["POST /form HTTP/1.1", f"Host: {host}"], 302),
    ]


def early_body(name):
    if name == "400 form":
        return "csrf=%zz&secret=alice-private"
    if name == "403 csrf":
        return "_pomerium_csrf=forged&secret=alice-private"
    return "secret=alice-private-form-data"


def framed(head_lines, body, framing):
    """The request bytes with `body` framed as `framing`. With "expect" the body follows at once."""
    head = "\r\n".join(head_lines)
    if framing == "length":
        return f"{head}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    if framing == "expect":
        return f"{head}\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    return (f"{head}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Alice-Sum\r\n\r\n"
            f"{len(body):x}\r\n{body}\r\n0\r\nX-Alice-Sum: alice-digest\r\n\r\n")


EARLY_NAMES = ["401 xhr", "403 denied", "405 method", "400 form", "403 csrf", "301 redirect", "302 sign-in"]


@pytest.mark.parametrize("framing", ["length", "chunked", "expect"])
@pytest.mark.parametrize("name", EARLY_NAMES)
def test_early_response_then_pipelined_pieces(stack, upstream, name, framing):
    """A whole request that pomerium responds to early, with admin's chunked POST pipelined behind
    it and its body sent later in pieces. admin's request reaches the upstream with exactly its
    own body and trailers, and nothing of the first request is forwarded."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    upstream.clear()
    head_lines, expected = next((lines, status) for key, lines, status in early_requests(port, alice) if key == name)
    body = early_body(name)
    client = Client(stack)
    client.send(framed(head_lines, body, framing)
                + f"POST /next HTTP/1.1\r\nHost: app.example.test:{port}\r\nCookie: {admin}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n")
    first = client.read()
    assert first.status == expected, first
    for piece in ["4\r\nmi", "ne\r\n", "0\r\nX-Admin", "-Sum: admin-digest\r\n", "\r\n"]:
        time.sleep(0.05)
        client.send(piece)
    second = client.read()
    assert second.status == 200, second
    echo = second.echo()
    assert echo["path"] == "/next"
    assert echo["body"] == "mine"
    assert echo["trailers"] == [["X-Admin-Sum", "admin-digest"]]
    assert assertion_email(echo) == "admin@example.com"
    assert all("alice-private" not in record["body"] for record in upstream.received())
    assert upstream_paths(upstream) == ["/next"]
    client.send(request("app", port, "/third", cookie=alice))
    third = client.read()
    assert third.echo()["path"] == "/third"
    assert assertion_email(third.echo()) == "alice@example.com"
    client.close()


def test_form_too_large_then_pipelined(stack, upstream):
    """A sign-out form over the 64 KiB limit gets 413, sent whole in one write with a request
    pipelined behind it. The pipelined request is served with its own body."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    upstream.clear()
    form = "x=" + "a" * (70 * 1024)
    client = Client(stack, timeout=10)
    client.send(request("app", port, "/.pomerium/sign_out", method="POST", cookie=alice, body=form,
                        headers=["Content-Type: application/x-www-form-urlencoded"])
                + request("app", port, "/after-413", method="POST", cookie=admin, body="own-body"))
    first = client.read()
    assert first.status == 413, first
    try:
        second = client.read()
    except ConnectionError:
        # Closing after an early response is allowed, but forwarding the form is not.
        second = None
    if second is not None:
        assert second.status == 200, second
        assert second.echo()["body"] == "own-body"
        assert assertion_email(second.echo()) == "admin@example.com"
    assert all("aaaa" not in record["body"] for record in upstream.received())
    assert "/.pomerium/sign_out" not in upstream_paths(upstream)
    client.close()


@pytest.mark.parametrize("name", ["403 denied", "302 sign-in", "405 method", "401 xhr"])
def test_cut_body_after_early_response(stack, upstream, name):
    """A request announces 200 body bytes and sends 10, pomerium responds early, and the client then
    sends a request with forged identity headers where the body should be: the connection closes
    and the hidden request never reaches the upstream. A new connection still works."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    upstream.clear()
    head_lines, expected = next((lines, status) for key, lines, status in early_requests(port, alice) if key == name)
    client = Client(stack)
    client.send("\r\n".join(head_lines) + "\r\nContent-Length: 200\r\n\r\nfirst-part")
    first = client.read()
    assert first.status == expected, first
    assert first.header("Connection") == "close"
    hidden = request("app", port, "/hidden", headers=["X-Pomerium-Claim-Email: admin@example.com"])
    try:
        client.send(hidden + "x" * 200 + request("app", port, "/hidden-2", cookie=admin))
        extra = client.read()
    except (ConnectionError, socket.timeout, ssl.SSLError, OSError):
        extra = None
    assert extra is None, extra
    time.sleep(0.3)
    assert upstream_paths(upstream) == []
    after = Client(stack)
    after.send(request("app", port, "/after-cut", cookie=admin))
    assert assertion_email(after.read().echo()) == "admin@example.com"
    after.close()


def test_expect_body_after_continue_then_pipelined(stack, upstream):
    """A proxied upload waits for 100 Continue, sends its body, and a request pipelined in the
    same write as the body is served after it with its own identity."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    upstream.clear()
    client = Client(stack)
    client.send(request("app", port, "/upload", method="POST", cookie=alice,
                        headers=["Expect: 100-continue", "Content-Length: 11"]))
    informational = client.reader.read_until(b"\r\n\r\n")
    assert informational.startswith(b"HTTP/1.1 100"), informational
    client.send("hello world" + request("app", port, "/behind-upload", cookie=admin))
    upload = client.read()
    assert upload.echo()["body"] == "hello world"
    assert assertion_email(upload.echo()) == "alice@example.com"
    behind = client.read()
    assert behind.echo()["path"] == "/behind-upload"
    assert behind.echo()["body"] == ""
    assert assertion_email(behind.echo()) == "admin@example.com"
    client.close()


# -------------------------------------------------------------------------------------------------
# HTTP/1.0 keep-alive and Connection: close in a pipeline.


def test_http10_keep_alive_pipeline(stack, upstream):
    """HTTP/1.0 requests with Connection: keep-alive, local and proxied, pipelined: each response
    repeats keep-alive, and a final HTTP/1.0 request without it ends the connection."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    upstream.clear()
    host = f"app.example.test:{port}"

    def old(path, keep=True, cookie=alice):
        lines = [f"GET {path} HTTP/1.0", f"Host: {host}"]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        if keep:
            lines.append("Connection: keep-alive")
        return "\r\n".join(lines) + "\r\n\r\n"

    client = Client(stack)
    client.send(old("/old/0") + old("/ping") + old("/old/2") + old("/admin/old/3") + old("/old/4", keep=False)
                + old("/old/5"))
    responses = read_all(client, 6, deadline_seconds=10)
    assert [response.status for response in responses] == [200, 200, 200, 403, 200]
    for response in responses[:4]:
        assert response.header("Connection").lower() == "keep-alive", response.headers
    assert responses[0].echo()["path"] == "/old/0"
    assert responses[2].echo()["path"] == "/old/2"
    assert responses[4].echo()["path"] == "/old/4"
    time.sleep(0.3)
    assert upstream_paths(upstream) == ["/old/0", "/old/2", "/old/4"]


@pytest.mark.parametrize("closing", ["proxied", "local", "denied"])
def test_connection_close_mid_pipeline(stack, upstream, closing):
    """Nothing after a request with Connection: close is processed, whichever kind of response
    it gets."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    upstream.clear()
    closing_request = {
        "proxied": request("app", port, "/closing", cookie=alice, close=True),
        "local": request("app", port, "/ping", close=True),
        "denied": request("app", port, "/admin/closing", cookie=alice, close=True),
    }[closing]
    client = Client(stack)
    client.send(request("app", port, "/before", cookie=alice) + closing_request
                + request("app", port, "/after-close", cookie=alice) + request("app", port, "/ping"))
    responses = read_all(client, 4, deadline_seconds=10)
    assert len(responses) == 2, responses
    assert responses[1].header("Connection") == "close"
    assert client.closed_by_peer()
    time.sleep(0.3)
    assert "/after-close" not in upstream_paths(upstream)


# -------------------------------------------------------------------------------------------------
# Sessions from several sources on one connection.


def route_token(stack, user, host="app"):
    """Signs `user` in through the programmatic login of `host`.example.test and returns the route
    session token that the callback hands to the script's redirect URI. Nothing connects to that
    URI: the redirect to it is the last hop read."""
    # Cached with the stack, as the sign-in cookies are: a later process on the same free port
    # would not know the cached token's session.
    tokens = stack.setdefault("tokens", {})
    key = (user, host)
    if key in tokens:
        return tokens[key]
    import support
    from test_keepalive_attacks import requests_session
    session = requests_session(stack)
    base = f"https://{host}.example.test:{stack['port']}"
    script_uri = "http://127.0.0.1:9/done"
    sign_in = session.get(f"{base}/.pomerium/api/v1/login", params={"pomerium_redirect_uri": script_uri},
                          timeout=10)
    assert sign_in.status_code == 200, sign_in.text[:300]
    response, _ = support.follow(session, session.get(sign_in.text.strip(), allow_redirects=False, timeout=10))
    form = support._LoginForm()
    form.feed(response.text)
    assert form.action is not None, response.text[:300]
    response = session.post(urljoin(response.url, form.action), data={"sub": user}, allow_redirects=False,
                            timeout=10)
    for _ in range(15):
        location = urljoin(response.url, response.headers.get("Location", ""))
        if location.startswith(script_uri):
            token = parse_qs(urlsplit(location).query)["pomerium_jwt"][0]
            tokens[key] = token
            return token
        assert response.is_redirect, (response.status_code, response.text[:300])
        response = session.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("the programmatic login did not reach the redirect URI")


def test_authorization_sources_mixed_with_cookies(stack, upstream):
    """Route tokens sent as Authorization: Pomerium and Bearer, cookies and no session alternate
    in one pipeline. Each request carries its own identity, and the product's Authorization
    header never reaches the upstream."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    alice_token, admin_token = route_token(stack, "alice"), route_token(stack, "admin")
    upstream.clear()
    steps = [
        ([f"Authorization: Pomerium {alice_token}"], "alice@example.com"),
        ([f"Cookie: {admin}"], "admin@example.com"),
        ([f"Authorization: Bearer {admin_token}"], "admin@example.com"),
        ([f"Authorization: Pomerium {admin_token}"], "admin@example.com"),
        (["Authorization: Basic dXNlcjpwYXNz"], None),
        ([f"Authorization: Bearer {alice_token}"], "alice@example.com"),
        ([f"Cookie: {alice}", f"Authorization: Bearer {admin_token}"], "alice@example.com"),
        ([f"Authorization: Pomerium {alice_token}x"], None),
        ([f"Authorization: Bearer {admin_token}"], "admin@example.com"),
    ]
    client = Client(stack)
    client.send("".join(request("app", port, f"/auth/{index}", headers=headers)
                        for index, (headers, _) in enumerate(steps)))
    responses = read_all(client, len(steps), deadline_seconds=10)
    assert len(responses) == len(steps)
    for index, ((headers, email), response) in enumerate(zip(steps, responses)):
        if email is None:
            assert response.status == 302, (index, response)
            continue
        assert response.status == 200, (index, response)
        echo = response.echo()
        assert echo["path"] == f"/auth/{index}"
        assert assertion_email(echo) == email, index
        assert fields(echo)["x-pomerium-claim-email"] == [email], index
        authorization = fields(echo).get("authorization", [])
        assert not any(value.lower().startswith("pomerium ") for value in authorization), index
        if len(headers) == 1 and headers[0].startswith("Authorization: Bearer"):
            assert authorization == [], index
    assert "/auth/4" not in upstream_paths(upstream)
    assert "/auth/7" not in upstream_paths(upstream)
    client.close()


# -------------------------------------------------------------------------------------------------
# WebSocket upgrades on a connection that carried other requests.


class UpgradeUpstream(ThreadedUpstream):
    """An upstream that records each request head, responds to Upgrade requests with 101 and then
    echoes the tunnel's bytes with a prefix, and responds to other requests with their path.
    Requests to /refuse get 403, with or without Upgrade."""

    def __init__(self):
        self.heads = []
        super().__init__()

    def _serve(self, connection):
        connection.settimeout(10)
        reader = _Reader(connection)
        try:
            while (head := reader.read_until(b"\r\n\r\n")) is not None:
                text = head.decode("latin-1")
                self.heads.append(text)
                path = text.split(" ")[1]
                if path.startswith("/refuse"):
                    connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nrefused")
                    continue
                if "upgrade: websocket" in text.lower():
                    connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                       b"Connection: Upgrade\r\n"
                                       b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                    data = reader.buffer
                    reader.buffer = b""
                    if data:
                        connection.sendall(b"echo:" + data)
                    while chunk := connection.recv(65536):
                        connection.sendall(b"echo:" + chunk)
                    return
                body = f"plain {path}".encode()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            connection.close()


@pytest.fixture
def socket_stack(start_pomerium, server_certificate, oidc_provider):
    upstream_server = UpgradeUpstream()
    port = free_port()
    for user, claims in USERS.items():
        import support
        support.set_user_claims(oidc_provider, user, claims)
    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        idp_client_secret="pipelining-client-secret-7d1e", jwt_claims_headers=["email"],
        policy=[
            {"from": f"https://app.example.test:{port}", "to": f"http://127.0.0.1:{upstream_server.port}",
             "allowed_domains": ["example.com"], "allow_websockets": True},
        ])
    process = start_pomerium(config, wait_port=port, scheme="https")
    yield {"port": port, "ca": server_certificate[0], "process": process, "config": config,
           "upstream": upstream_server, "sessions": {}}
    upstream_server.stop()


def upgrade_request(port, path, cookie):
    return request("app", port, path, cookie=cookie, headers=[
        "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])


def test_websocket_after_other_users_requests(socket_stack):
    """admin's requests, then alice's upgrade on the same connection: the upgrade head carries
    alice's identity only, and the tunnel echoes alice's bytes."""
    port = socket_stack["port"]
    alice, admin = session_cookie(socket_stack, "alice"), session_cookie(socket_stack, "admin")
    client = Client(socket_stack)
    for index in range(3):
        client.send(request("app", port, f"/plain/{index}", cookie=admin))
        assert client.read().body == f"plain /plain/{index}".encode()
    client.send(upgrade_request(port, "/socket", alice))
    switched = client.read()
    assert switched.status == 101, switched
    client.send("frame-bytes")
    deadline = time.monotonic() + 5
    while b"echo:frame-bytes" not in client.reader.buffer and time.monotonic() < deadline:
        client.reader._fill()
    assert client.reader.buffer == b"echo:frame-bytes"
    head = next(text for text in socket_stack["upstream"].heads if text.startswith("GET /socket "))
    assert "alice@example.com" in head
    assert "admin@example.com" not in head
    client.close()


def test_upgrade_pipelined_behind_request(socket_stack):
    """An upgrade request pipelined behind a plain request, with tunnel bytes in the same write:
    the plain request gets its response first, then the 101, and the tunnel bytes reach the
    upstream as tunnel data, never as a request."""
    port = socket_stack["port"]
    alice, admin = session_cookie(socket_stack, "alice"), session_cookie(socket_stack, "admin")
    client = Client(socket_stack)
    client.send(request("app", port, "/first", cookie=admin) + upgrade_request(port, "/socket-2", alice)
                + "early-tunnel-bytes")
    first = client.read()
    assert first.body == b"plain /first"
    switched = client.read()
    assert switched.status == 101, switched
    deadline = time.monotonic() + 5
    while b"early-tunnel-bytes" not in client.reader.buffer and time.monotonic() < deadline:
        client.reader._fill()
    assert client.reader.buffer == b"echo:early-tunnel-bytes"
    heads = socket_stack["upstream"].heads
    assert not any(text.startswith("early-tunnel-bytes") for text in heads)
    head = next(text for text in heads if text.startswith("GET /socket-2 "))
    assert "alice@example.com" in head
    assert "admin@example.com" not in head
    client.close()


def test_refused_upgrade_keeps_http(socket_stack):
    """The upstream rejects an upgrade with 403, and pomerium parses the bytes pipelined behind
    the upgrade as HTTP. A request without a session and with forged identity headers gets the
    sign-in redirect and never reaches the upstream. A request with a session is forwarded with
    its own identity."""
    port = socket_stack["port"]
    alice, admin = session_cookie(socket_stack, "alice"), session_cookie(socket_stack, "admin")
    client = Client(socket_stack)
    smuggled = request("app", port, "/smuggled", headers=["X-Pomerium-Claim-Email: admin@example.com",
                                                          "X-Pomerium-Jwt-Assertion: forged"])
    client.send(upgrade_request(port, "/refuse", alice) + smuggled + request("app", port, "/own", cookie=admin))
    refused = client.read()
    assert refused.status == 403, refused
    assert refused.body == b"refused"
    try:
        behind = client.read()
    except ConnectionError:
        behind = None
    heads = socket_stack["upstream"].heads
    assert not any(text.startswith("GET /smuggled ") for text in heads)
    if behind is not None:
        assert behind.status == 302, behind
        own = client.read()
        assert own.body == b"plain /own"
        own_head = next(text for text in heads if text.startswith("GET /own "))
        assert "admin@example.com" in own_head
        assert "alice@example.com" not in own_head
    client.close()


# -------------------------------------------------------------------------------------------------
# Upstreams that break the usual order.


class MisbehavingUpstream(ThreadedUpstream):
    """An upstream whose behaviour depends on the request path, recording each request head:
    /early responds at once and then reads the body, /continue sends an unasked 100 Continue
    first, /close closes right after the response, /long/<delay> sends 6 bytes past the
    Content-Length, after `delay` seconds, /hints sends a 103 first, /head-body and /no-content send
    7 body bytes with a HEAD response or a 204, /both-framings sends Content-Length and chunked
    framing together, /chunked-answer responds chunked, /short sends 10 of 100 announced bytes and
    closes. Other paths get their path as the body."""

    def __init__(self):
        self.paths = []
        # The body each request's path came with, as (path, body). Requests on different upstream
        # connections are served by different threads, so the order is that of their ends.
        self.bodies = []
        super().__init__()

    def _serve(self, connection):
        connection.settimeout(10)
        reader = _Reader(connection)
        try:
            while (head := reader.read_until(b"\r\n\r\n")) is not None:
                text = head.decode("latin-1")
                path = text.split(" ")[1]
                self.paths.append(path)
                length = 0
                for line in text.split("\r\n")[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                answer = f"answer {path}".encode()
                response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
                if path.startswith("/early"):
                    connection.sendall(response)
                    self.bodies.append((path, reader.read_exactly(length)))
                    continue
                body = reader.read_exactly(length)
                self.bodies.append((path, body))
                if path.startswith("/continue"):
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + response)
                elif path.startswith("/hints"):
                    connection.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                                       + response)
                elif path.startswith("/head-body") or path.startswith("/no-content"):
                    # A HEAD response or a 204 has no body, whatever its Content-Length field contains.
                    status = b"204 No Content" if path.startswith("/no-content") else b"200 OK"
                    connection.sendall(b"HTTP/1.1 %s\r\nContent-Length: 7\r\n\r\nSTOLEN!" % status)
                elif path.startswith("/chunked-answer"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       b"%x\r\n%s\r\n0\r\n\r\n" % (len(answer), answer))
                elif path.startswith("/short"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part!")
                    return
                elif path.startswith("/both-framings"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       b"6\r\nchunky\r\n0\r\n\r\n")
                elif path.startswith("/close"):
                    connection.sendall(response)
                    return
                elif path.startswith("/long/"):
                    delay = float(path.split("/")[2])
                    if delay == 0:
                        connection.sendall(response + b"EXTRA!")
                    else:
                        connection.sendall(response)
                        time.sleep(delay)
                        connection.sendall(b"EXTRA!")
                else:
                    connection.sendall(response)
        except (OSError, TypeError):
            pass
        finally:
            connection.close()


@pytest.fixture
def odd_upstream_port(start_pomerium, oidc_provider):
    server = MisbehavingUpstream()
    port = free_port()
    start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://odd.example.test", "to": f"http://127.0.0.1:{server.port}",
         "allow_public_unauthenticated_access": True}]), wait_port=port)
    yield port, server
    server.stop()


def plain_exchange(port, data, count, timeout=5):
    """Sends `data` on a new plain connection and returns the bodies of up to `count` responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data.encode())
        reader = _Reader(connection)
        bodies = []
        try:
            while len(bodies) < count:
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    break
                status = int(head.split(b" ")[1])
                if 100 <= status < 200:
                    continue
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                bodies.append((status, reader.read_exactly(length)))
        except socket.timeout:
            pass
        return bodies


def odd(path, method="GET", body=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: odd.example.test"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + (body or "")


def test_upstream_responds_before_body(odd_upstream_port):
    """The upstream responds before it reads the body. The client gets that response, the next
    pipelined request gets its own, and the upstream reads each body whole."""
    port, server = odd_upstream_port
    body = "B" * 200_000
    bodies = plain_exchange(port, odd("/early", "POST", body) + odd("/after-early"), 2, timeout=10)
    assert bodies == [(200, b"answer /early"), (200, b"answer /after-early")]
    assert server.paths == ["/early", "/after-early"]
    # The client may have both responses before the upstream has read the whole first body on
    # its connection; /after-early may come on another connection meanwhile.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(server.bodies) < 2:
        time.sleep(0.05)
    early = [received for path, received in server.bodies if path == "/early"]
    assert [len(received) for received in early] == [len(body)]


def test_upstream_unasked_continue(odd_upstream_port):
    """An upstream 100 Continue that no request asked for is not taken as the final response."""
    port, server = odd_upstream_port
    bodies = plain_exchange(port, odd("/continue/1") + odd("/continue/2", "POST", "data") + odd("/plain"), 3)
    assert bodies == [(200, b"answer /continue/1"), (200, b"answer /continue/2"), (200, b"answer /plain")]


def test_upstream_closing_after_response(odd_upstream_port):
    """An upstream that closes after each response: pipelined and later requests each get their
    own response, none a 502 from reusing the closed connection."""
    port, server = odd_upstream_port
    data = "".join(odd(f"/close/{index}") for index in range(6))
    bodies = plain_exchange(port, data, 6)
    assert bodies == [(200, f"answer /close/{index}".encode()) for index in range(6)]
    later = []
    for index in range(6):
        time.sleep(0.05)
        later += plain_exchange(port, odd(f"/close/later-{index}"), 1)
    assert later == [(200, f"answer /close/later-{index}".encode()) for index in range(6)]


@pytest.mark.parametrize("delay", ["0", "0.2"])
def test_upstream_body_past_length_not_delivered(odd_upstream_port, delay):
    """An upstream sends 6 bytes past its Content-Length, at once or after a pause. The extra bytes
    never reach the client or any later client's response."""
    port, server = odd_upstream_port
    first = plain_exchange(port, odd(f"/long/{delay}"), 1)
    assert first == [(200, f"answer /long/{delay}".encode())]
    time.sleep(float(delay) + 0.2)
    later = []
    for index in range(8):
        later += plain_exchange(port, odd(f"/victim-{index}"), 1)
    assert later == [(200, f"answer /victim-{index}".encode()) for index in range(8)]


def test_upstream_early_hints_then_pipelined(odd_upstream_port):
    """A 103 from the upstream is not taken as the final response of its request."""
    port, server = odd_upstream_port
    bodies = plain_exchange(port, odd("/hints/1") + odd("/plain-after-hints"), 2)
    assert bodies == [(200, b"answer /hints/1"), (200, b"answer /plain-after-hints")]


@pytest.mark.parametrize("path,method", [("/head-body", "HEAD"), ("/no-content", "GET")])
def test_upstream_bodiless_response_bytes_dropped(odd_upstream_port, path, method):
    """Bytes after a HEAD response or a 204 are not a body: they never reach the client, the next
    pipelined response or a later client's response."""
    port, server = odd_upstream_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall((odd(path, method) + odd("/after-bodiless")).encode())
        reader = _Reader(connection)
        head = reader.read_until(b"\r\n\r\n")
        assert head.split(b" ")[1] in (b"200", b"204"), head
        rest = read_plain(reader, 1)
    assert rest == [(200, b"answer /after-bodiless")]
    later = []
    for index in range(8):
        later += plain_exchange(port, odd(f"/bodiless-victim-{index}"), 1)
    assert later == [(200, f"answer /bodiless-victim-{index}".encode()) for index in range(8)]


def test_upstream_conflicting_framing_not_pooled(odd_upstream_port):
    """A response with Content-Length and chunked framing is either rejected or read as chunked,
    and what remains of it never reaches a later client."""
    port, server = odd_upstream_port
    first = plain_exchange(port, odd("/both-framings"), 1)
    assert first in ([(200, b"chunky")], [(502, first[0][1] if first else b"")]), first
    later = []
    for index in range(8):
        later += plain_exchange(port, odd(f"/framing-victim-{index}"), 1)
    assert later == [(200, f"answer /framing-victim-{index}".encode()) for index in range(8)]


# -------------------------------------------------------------------------------------------------
# Session state across a pipeline.


def test_dashboard_pipeline_alternating_users(stack, upstream):
    """User pages of alice, admin and no session, 30 in one write: each response shows only the
    user of its own request, in order."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    plan = [(alice, "alice@example.com"), (admin, "admin@example.com"), (None, None)] * 10
    client = Client(stack, timeout=10)
    client.send("".join(request("app", port, "/.pomerium/", cookie=cookie) for cookie, _ in plan))
    responses = read_all(client, len(plan), deadline_seconds=20)
    assert len(responses) == len(plan)
    for index, ((_, email), response) in enumerate(zip(plan, responses)):
        if email is None:
            assert response.status == 302, (index, response)
            assert b"@example.com" not in response.body
            continue
        assert response.status == 200, (index, response)
        assert email.encode() in response.body, index
        other = "admin@example.com" if email.startswith("alice") else "alice@example.com"
        assert other.encode() not in response.body, index
    client.close()


def test_requests_pipelined_behind_sign_out(stack, upstream):
    """The authenticate service's sign-out and requests with the signed-out cookie, pipelined on
    one connection that used the cookie before: every request behind the sign-out is rejected."""
    from test_keepalive_attacks import fresh_login
    port = stack["port"]
    session, cookie = fresh_login(stack, "alice")
    client = Client(stack)
    client.send(request("app", port, "/warm", cookie=cookie) + request("app", port, "/.pomerium/sign_out", cookie=cookie))
    assert client.read().status == 200
    signed_out = client.read()
    assert signed_out.status == 302, signed_out
    location = urlsplit(signed_out.header("Location"))
    assert location.hostname == "authenticate.example.test"
    authenticate_cookie = "; ".join(f"{item.name}={item.value}" for item in session.cookies
                                    if item.domain.startswith("authenticate"))
    upstream.clear()
    target = location.path + "?" + location.query
    client.send(request("authenticate", port, target, cookie=authenticate_cookie)
                + request("app", port, "/behind-sign-out", cookie=cookie)
                + request("app", port, "/.pomerium/", cookie=cookie)
                + request("app", port, "/behind-sign-out-2", cookie=cookie))
    responses = read_all(client, 4, deadline_seconds=10)
    assert len(responses) == 4
    assert responses[0].status == 302, responses[0]
    assert [response.status for response in responses[1:]] == [302, 302, 302]
    assert b"alice@example.com" not in responses[2].body
    assert upstream.received() == []
    client.close()


def read_until_closed(connection, seconds=5):
    """Returns the bytes read from a plain socket until the peer closes or `seconds` pass."""
    connection.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    except socket.timeout:
        received += b"(timed out)"
    except ConnectionResetError:
        pass
    return received


def test_http10_close_delimited_response_ends_pipeline(odd_upstream_port):
    """An HTTP/1.0 keep-alive client gets a chunked upstream response close-delimited, so the
    connection closes after it and the request pipelined behind it is never forwarded."""
    port, server = odd_upstream_port
    first = "GET /chunked-answer HTTP/1.0\r\nHost: odd.example.test\r\nConnection: keep-alive\r\n\r\n"
    behind = "GET /behind-close-delimited HTTP/1.0\r\nHost: odd.example.test\r\nConnection: keep-alive\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall((first + behind).encode())
        received = read_until_closed(connection)
    assert received.endswith(b"answer /chunked-answer"), received
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert b"keep-alive" not in received.lower()
    assert "/behind-close-delimited" not in server.paths


def test_truncated_upstream_body_ends_pipeline(odd_upstream_port):
    """The upstream announces 100 bytes, sends 10 and closes. The client connection closes without
    more bytes, so the response of the request pipelined behind it is never read as the rest of
    the body."""
    port, server = odd_upstream_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall((odd("/short") + odd("/behind-short")).encode())
        received = read_until_closed(connection)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.1 502"), received
    if head.startswith(b"HTTP/1.1 200"):
        assert body == b"only-part!", received
    assert b"answer /behind-short" not in received


def test_upstream_early_response_mid_body(odd_upstream_port):
    """The upstream responds while the client is still sending a 20000-byte body. The client gets
    the response with Connection: close, and a request sent after the rest of the body is never
    forwarded. Later clients get their own responses."""
    port, server = odd_upstream_port
    head = "POST /early-stream HTTP/1.1\r\nHost: odd.example.test\r\nContent-Length: 20000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall((head + "a" * 5000).encode())
        reader = _Reader(connection)
        response_head = reader.read_until(b"\r\n\r\n")
        assert response_head.startswith(b"HTTP/1.1 200"), response_head
        assert b"connection: close" in response_head.lower()
        try:
            connection.sendall(("b" * 15000 + odd("/behind-early-stream")).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = reader.buffer + read_until_closed(connection)
    assert b"answer /behind-early-stream" not in received
    assert "/behind-early-stream" not in server.paths
    later = []
    for index in range(4):
        later += plain_exchange(port, odd(f"/after-early-stream-{index}"), 1)
    assert later == [(200, f"answer /after-early-stream-{index}".encode()) for index in range(4)]


def test_slow_request_then_deep_ping_pipeline(plain_public):
    """A slow proxied request with 4000 /ping requests (about 200 KB) pipelined behind it. Reading
    pauses while the slow request runs, and when it ends the buffered pings get their responses in one
    nested chain of calls, which must not exhaust the event loop thread's stack. On the failing
    build about 2700 responses arrive, then the connection stalls: each nested level performs the
    pauseReading of its own action list after the deeper levels resumed reading."""
    port, upstream = plain_public
    ping = "GET /ping HTTP/1.1\r\nHost: public.example.test\r\n\r\n"
    data = "GET /slow/1 HTTP/1.1\r\nHost: public.example.test\r\n\r\n" + ping * 4000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data.encode())
        responses = read_plain(_Reader(connection), 4001)
    assert len(responses) == 4001
    assert json.loads(responses[0][1])["path"] == "/slow/1"
    assert all(status == 200 and body.startswith(b"pomerium/") for status, body in responses[1:])
    assert upstream_paths(upstream) == ["/slow/1"]


def test_plain_ping_pipeline_of_30000(plain_public):
    """30000 /ping requests of 31 bytes (about 930 KB) in one write over plain HTTP, where each
    64 KiB read contains about 2100 requests that get their responses in one nested chain of calls. Every
    request gets its response and the process keeps serving."""
    port, upstream = plain_public
    count = 30000
    data = b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n" * count
    assert len(data) == 31 * count
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = read_until_closed(connection, seconds=30)
    assert received.count(b"HTTP/1.1 200 ") == count
    assert not received.endswith(b"(timed out)")
    assert plain_exchange(port, "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0][0] == 200


def test_expect_pipelined_behind_slow_request(plain_public):
    """A POST with Expect: 100-continue and its body, pipelined behind a slow request. The first
    bytes of the connection are the slow request's final response, not a 100 Continue for the
    request behind it, and each request gets its own response."""
    port, upstream = plain_public
    data = ("GET /slow/0.5 HTTP/1.1\r\nHost: public.example.test\r\n\r\n"
            "POST /expecting HTTP/1.1\r\nHost: public.example.test\r\nExpect: 100-continue\r\n"
            "Content-Length: 5\r\n\r\nhello"
            "GET /third HTTP/1.1\r\nHost: public.example.test\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data.encode())
        received = read_until_closed(connection, seconds=10)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    first_end = received.index(b"/slow/0.5")
    assert b"HTTP/1.1 100" not in received[:first_end]
    reader = _Reader(None)
    reader.buffer = received.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b"")
    responses = read_plain(reader, 3)
    assert [json.loads(body)["path"] for _, body in responses] == ["/slow/0.5", "/expecting", "/third"]
    assert json.loads(responses[1][1])["body"] == "hello"


def test_signed_out_dashboard_cookie_clearing_stays(stack, upstream):
    """User pages and proxied requests with a signed-out cookie, pipelined between admin's
    requests: only the signed-out requests clear the session cookie, and admin's responses carry
    no Set-Cookie and show admin's identity."""
    from test_keepalive_attacks import fresh_login, sign_out
    port = stack["port"]
    session, stale = fresh_login(stack, "alice")
    admin = session_cookie(stack, "admin")
    sign_out(stack, session)
    plan = [("/.pomerium/", stale), ("/.pomerium/", admin), ("/proxied/2", admin), ("/.pomerium/", stale),
            ("/proxied/4", admin), ("/proxied/5", stale), ("/proxied/6", admin), ("/.pomerium/", admin)] * 2
    client = Client(stack, timeout=10)
    for repeat in range(2):
        upstream.clear()
        client.send("".join(request("app", port, path, cookie=cookie) for path, cookie in plan))
        responses = read_all(client, len(plan), deadline_seconds=20)
        assert len(responses) == len(plan), repeat
        for index, ((path, cookie), response) in enumerate(zip(plan, responses)):
            if cookie == stale:
                assert response.status == 302, (repeat, index, response)
                assert b"alice@example.com" not in response.body
                continue
            assert response.status == 200, (repeat, index, response)
            assert response.all("Set-Cookie") == [], (repeat, index, response.headers)
            if path.startswith("/proxied/"):
                assert response.echo()["path"] == path
                assert assertion_email(response.echo()) == "admin@example.com"
            else:
                assert b"admin@example.com" in response.body
        assert len(upstream.received()) == 6, repeat
    client.close()


def resident_megabytes(pid):
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024


def test_unread_responses_bound_memory(start_pomerium, oidc_provider, upstream):
    """A client pipelines 150000 requests for an unknown host (4 MB, each getting a 404 page
    of about 1 KB) and never reads. pomerium must stop reading once its output is backed up, so
    its resident memory grows by less than 24 MB. The failing build grows by about 100 MB."""
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://public.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True}]),
        wait_port=port)
    target = process.process.pid
    before = resident_megabytes(target)
    single = b"GET / HTTP/1.1\r\nHost: unknown.example.test\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deadline = time.monotonic() + 20
        sent = 0
        try:
            while sent < 150_000 and time.monotonic() < deadline:
                connection.sendall(single * 1000)
                sent += 1000
        except socket.timeout:
            pass
        time.sleep(1)
        grown = resident_megabytes(target) - before
    assert grown < 24, f"resident memory grew by {grown} MB after {sent} unread requests"


def test_access_log_lines_for_long_pipeline(stack, upstream):
    """300 pipelined requests that pomerium responds to itself: every response has its own
    Request-Id, and the log has exactly one http-request line for each, with that request's path."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    steps = [local_step(port, index, alice) for index in range(300)]
    paths = [data.split(" ", 2)[1] for data, _ in steps]
    client = Client(stack, timeout=10)
    client.send("".join(data for data, _ in steps))
    responses = read_all(client, len(steps), deadline_seconds=20)
    client.close()
    assert len(responses) == len(steps)
    ids = [response.header("Request-Id") for response in responses]
    assert len(set(ids)) == len(ids)
    time.sleep(0.5)
    lines = {}
    for line in stack["process"].output().splitlines():
        if '"http-request"' in line:
            entry = json.loads(line)
            lines.setdefault(entry.get("req_id"), []).append(entry)
    for index, (request_id, path) in enumerate(zip(ids, paths)):
        entries = lines.get(request_id, [])
        assert len(entries) == 1, (index, path, entries)
        assert entries[0]["path"] == path, (index, entries[0])


def test_unread_proxied_responses_bound_memory(start_pomerium, oidc_provider, upstream):
    """A client pipelines 20 requests for 1 MB upstream responses and never reads. Backpressure
    from the client connection stops the upstream reads, so resident memory grows by less than
    24 MB and not every request reaches the upstream."""
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://public.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True}]),
        wait_port=port)
    upstream.clear()
    before = resident_megabytes(process.process.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.sendall(b"GET /size/1000000 HTTP/1.1\r\nHost: public.example.test\r\n\r\n" * 20)
        time.sleep(3)
        grown = resident_megabytes(process.process.pid) - before
        forwarded = len(upstream.received())
    assert grown < 24, f"resident memory grew by {grown} MB"
    assert forwarded < 20
