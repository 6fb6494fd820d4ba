"""Attacks on the state that pomerium keeps across the requests of one keep-alive connection.
That state is the reused request handler and dispatcher, the head and field storage that the
parsers and the upstream exchange reuse, the per-session identity header memo and the Cookie
header cache.

Each test sends several requests over one raw TLS connection, sequentially or pipelined, mixing
users, routes and failures, and checks what the upstream received and what the client got for
every request. The upstream is a recording server in this module that reports each request's
head, body and trailers. Every server runs on 127.0.0.1."""
import base64
import json
import re
import socket
import ssl
import sys
import threading
import time

import pytest

from harness import ROOT, base_config, free_port

sys.path.insert(0, str(ROOT / "tests/e2e"))
import support  # noqa: E402

support.resolve_test_domains_to_loopback()

USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice", "groups": ["devs"]},
    "admin": {"email": "admin@example.com", "name": "Admin", "groups": ["admins"]},
}

# pomerium accepts a header section of up to 64 KiB and 100 field lines by default. One field of
# this size, 90 short fields and a session cookie stay just below both limits.
LARGE_FIELD_BYTES = 56 * 1024


# -------------------------------------------------------------------------------------------------
# Recording upstream.


class ThreadedUpstream:
    """A raw-socket upstream on 127.0.0.1 that serves each accepted connection on a thread of its
    own with `_serve(connection)`, which subclasses define. A subclass sets its own state before
    calling this `__init__`, because the accept thread starts here."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.listener.close()

    def _accepted(self):
        """Runs on the accept thread for each new connection, before it is served."""

    def _accept(self):
        while not self.stopping:
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._accepted()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        raise NotImplementedError


class RecordingUpstream(ThreadedUpstream):
    """An HTTP/1.1 upstream on a raw socket that records every request it reads (method, target,
    header fields in order, body bytes and trailer fields) and responds with them as JSON.

    Paths: /status/<code> responds with that status, /slow/<seconds> waits first, /drop closes
    the connection without a response, /size/<n> responds with n bytes of 'x'. It sends `100 Continue` when a
    request expects it, and keeps each connection open until the peer closes it."""

    def __init__(self):
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        super().__init__()

    def received(self):
        with self.lock:
            return list(self.requests)

    def clear(self):
        with self.lock:
            self.requests.clear()

    def _accepted(self):
        with self.lock:
            self.connections += 1

    def _serve(self, connection):
        connection.settimeout(30)
        reader = _Reader(connection)
        try:
            while not self.stopping:
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [line.split(":", 1) for line in lines[1:] if line]
                headers = [[name, value.strip()] for name, value in headers]
                names = {name.lower(): value for name, value in headers}
                if "100-continue" in names.get("expect", "").lower():
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, trailers = b"", []
                if "chunked" in names.get("transfer-encoding", "").lower():
                    while True:
                        size_line = reader.read_until(b"\r\n")
                        if size_line is None:
                            return
                        size = int(size_line.split(b";")[0], 16)
                        if size == 0:
                            break
                        body += reader.read_exactly(size)
                        reader.read_exactly(2)
                    while (line := reader.read_until(b"\r\n")) not in (None, b""):
                        name, value = line.decode("latin-1").split(":", 1)
                        trailers.append([name, value.strip()])
                elif "content-length" in names:
                    body = reader.read_exactly(int(names["content-length"]))
                    if body is None:
                        return
                record = {"method": method, "path": target, "headers": headers,
                          "body": body.decode("latin-1"), "trailers": trailers}
                with self.lock:
                    self.requests.append(record)
                if target.startswith("/drop"):
                    connection.close()
                    return
                if target.startswith("/slow/"):
                    time.sleep(float(target.split("/")[2]))
                status = int(target.split("/")[2]) if target.startswith("/status/") else 200
                if target.startswith("/size/"):
                    payload = b"x" * int(target.split("/")[2])
                else:
                    payload = json.dumps(record).encode()
                response = (f"HTTP/1.1 {status} Test\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(payload)}\r\n\r\n").encode()
                connection.sendall(response if method == "HEAD" else response + payload)
        except (OSError, ValueError):
            return
        finally:
            connection.close()


class _Reader:
    """Buffered reads from a socket. A read returns None when the peer closed first."""

    def __init__(self, connection):
        self.connection = connection
        self.buffer = b""

    def _fill(self):
        chunk = self.connection.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def read_until(self, marker):
        while marker not in self.buffer:
            if not self._fill():
                return None
        data, self.buffer = self.buffer.split(marker, 1)
        return data

    def read_exactly(self, count):
        while len(self.buffer) < count:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


# -------------------------------------------------------------------------------------------------
# Client side: one raw TLS connection that reads responses one at a time.


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def all(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def echo(self):
        """The request the recording upstream reported, or None for a response pomerium made."""
        if self.header("X-Pomerium-Intercepted-Response") or not self.body.startswith(b"{"):
            return None
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.headers}, {self.body[:200]!r})"


class Client:
    """A kept-alive TLS connection to pomerium that sends raw bytes and parses responses."""

    def __init__(self, stack, sni="app.example.test", timeout=5):
        context = ssl.create_default_context(cafile=str(stack["ca"]))
        plain = socket.create_connection(("127.0.0.1", stack["port"]), timeout=timeout)
        self.socket = context.wrap_socket(plain, server_hostname=sni)
        self.reader = _Reader(self.socket)

    def send(self, data):
        self.socket.sendall(data if isinstance(data, bytes) else data.encode("latin-1"))

    def read(self, head_request=False):
        """Reads one final response (skipping 1xx); raises socket.timeout when none comes."""
        while True:
            head = self.reader.read_until(b"\r\n\r\n")
            if head is None:
                raise ConnectionError("pomerium closed the connection")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = [[part.strip() for part in line.split(":", 1)] for line in lines[1:] if line]
            if 100 <= status < 200 and status != 101:
                continue
            break
        names = {name.lower(): value for name, value in headers}
        body = b""
        if head_request or status in (101, 204, 304):
            pass
        elif "chunked" in names.get("transfer-encoding", ""):
            while True:
                size = int(self.reader.read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self.reader.read_until(b"\r\n") not in (None, b""):
                        pass
                    break
                body += self.reader.read_exactly(size)
                self.reader.read_exactly(2)
        elif "content-length" in names:
            body = self.reader.read_exactly(int(names["content-length"]))
        return Response(status, headers, body)

    def closed_by_peer(self, wait=2.0):
        """Whether pomerium closes the connection within `wait` seconds without sending more."""
        self.socket.settimeout(wait)
        try:
            return not self.reader.buffer and self.socket.recv(1) == b""
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        self.socket.close()


def request(host, port, path="/", method="GET", cookie=None, headers=(), body=None, close=False):
    """One request's bytes; `body` gets a Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}.example.test:{port}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    lines += list(headers)
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines) + "\r\n\r\n" + (body or "")


def fields(echo):
    """The upstream request's fields as a lower-case name -> list of values map."""
    result = {}
    for name, value in echo["headers"]:
        result.setdefault(name.lower(), []).append(value)
    return result


def assertion_email(echo):
    """The email claim of the X-Pomerium-Jwt-Assertion the upstream got, or None."""
    values = fields(echo).get("x-pomerium-jwt-assertion")
    if not values:
        return None
    assert len(values) == 1, values
    payload = values[0].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["email"]


def identity_names(echo):
    return sorted(name for name in fields(echo) if name.replace("_", "-").startswith("x-pomerium"))


# -------------------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="module")
def upstream():
    server = RecordingUpstream()
    yield server
    server.stop()


@pytest.fixture
def stack(start_pomerium, server_certificate, oidc_provider, upstream):
    """pomerium over TLS with routes that differ in policy, headers and upstream behaviour, and
    the access log on (log_level debug)."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    upstream.clear()
    port = free_port()
    closed_port = free_port()
    to = upstream.url

    def route(host, **extra):
        return {"from": f"https://{host}.example.test:{port}", "to": to, **extra}

    config = base_config(
        port, certificate=server_certificate, issuer=oidc_provider,
        authenticate_service_url=f"https://authenticate.example.test:{port}",
        idp_client_secret="keepalive-client-secret-51c2", log_level="debug",
        jwt_claims_headers=["email", "groups"],
        policy=[
            route("app", prefix="/admin", allowed_users=["admin@example.com"]),
            route("app", allowed_domains=["example.com"]),
            route("other", allowed_users=["admin@example.com"]),
            route("public", allow_public_unauthenticated_access=True),
            route("headers", allowed_domains=["example.com"], preserve_host_header=True,
                  set_request_headers={"X-Route-Secret": "headers-route-only", "X-Pomerium-Claim-Email": "set@x"}),
            route("cors", allowed_domains=["example.com"], cors_allow_preflight=True),
            route("slow", allowed_domains=["example.com"], timeout="1s"),
            {"from": f"https://broken.example.test:{port}", "to": f"http://127.0.0.1:{closed_port}",
             "allowed_domains": ["example.com"]},
        ])
    process = start_pomerium(config, wait_port=port, scheme="https")
    # "sessions" caches the route cookies of this pomerium process. A cache keyed by port alone
    # handed a later test, whose process got the same free port, cookies of a gone process.
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config, "sessions": {}}


def session_cookie(stack, user):
    """Signs `user` in through the mock provider and returns the `Cookie` value for app.example.test.
    The session's audience lists only that host, so `login_on` gets the cookie of another host."""
    return login_on(stack, user, "app")


def login_on(stack, user, host):
    sessions = stack["sessions"]
    key = (user, host)
    if key not in sessions:
        session = requests_session(stack)
        final, _ = support.login(session, f"https://{host}.example.test:{stack['port']}/", user)
        # The broken route's upstream refuses connections, so its sign-in ends in 502.
        assert final.status_code == (502 if host == "broken" else 200), final.text[:300]
        jar = [item for item in session.cookies if item.domain.startswith(host) and item.name.startswith("_pomerium")]
        assert jar, f"no route cookie for {host}"
        sessions[key] = "; ".join(f"{item.name}={item.value}" for item in jar)
    return sessions[key]


def requests_session(stack):
    import requests
    session = requests.Session()
    session.trust_env = False
    session.verify = str(stack["ca"])
    return session


def access_lines(stack):
    """The `http-request` lines of the proxy service's access log, as dicts."""
    lines = []
    for line in stack["process"].output().splitlines():
        if '"http-request"' in line and '"proxy"' in line:
            lines.append(json.loads(line))
    return lines


def sign_out(stack, session):
    """Signs the `requests` session out through the app route and the authenticate service."""
    signed_out = session.get(f"https://app.example.test:{stack['port']}/.pomerium/sign_out", allow_redirects=False,
                             timeout=10)
    assert signed_out.status_code == 302
    assert session.get(signed_out.headers["Location"], allow_redirects=False, timeout=10).status_code == 302


def fresh_login(stack, user):
    """A new sign-in of `user`, not shared with other tests: (requests session, Cookie value)."""
    session = requests_session(stack)
    final, _ = support.login(session, f"https://app.example.test:{stack['port']}/", user)
    assert final.status_code == 200, final.text[:300]
    jar = [item for item in session.cookies if item.domain.startswith("app") and item.name.startswith("_pomerium")]
    return session, "; ".join(f"{item.name}={item.value}" for item in jar)


def upstream_paths(upstream):
    return [record["path"] for record in upstream.received()]


# -------------------------------------------------------------------------------------------------
# Sequential requests on one connection: each response is read before the next request is sent.


def test_users_alternating_get_own_identity(stack, upstream):
    """Two users, no cookie and a bad cookie take turns on one connection. The assertion, the
    claim headers and the forwarded Cookie belong to the request that carried them."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    tampered = alice[:-6] + ("A" if alice[-6] != "A" else "B") + alice[-5:]
    client = Client(stack)
    plan = [("alice", alice), ("admin", admin), (None, None), ("alice", alice), ("bad", tampered),
            ("admin", admin), ("alice", alice + "; app_pref=dark"), ("admin", admin)]
    for index, (user, cookie) in enumerate(plan):
        upstream.clear()
        client.send(request("app", port, f"/step/{index}", cookie=cookie))
        response = client.read()
        if user in (None, "bad"):
            assert response.status == 302, (index, response)
            assert upstream.received() == [], index
            continue
        assert response.status == 200, (index, response)
        echo = response.echo()
        assert echo["path"] == f"/step/{index}"
        assert assertion_email(echo) == USERS[user]["email"], index
        assert fields(echo)["x-pomerium-claim-email"] == [USERS[user]["email"]], index
        assert fields(echo)["x-pomerium-claim-groups"] == [",".join(USERS[user]["groups"])], index
        kept_cookie = fields(echo).get("cookie")
        assert kept_cookie == (["app_pref=dark"] if "app_pref" in cookie else None), index
    client.close()


def test_identity_headers_not_carried_over(stack, upstream):
    """After an identified request, a public route request with no cookie, with the same cookie
    and with forged identity headers reaches the upstream without any X-Pomerium field."""
    port = stack["port"]
    admin = session_cookie(stack, "admin")
    client = Client(stack, sni="public.example.test")
    forged = ["X-Pomerium-Jwt-Assertion: forged.jwt.value", "X_Pomerium_Claim_Email: root@example.com",
              "x-pomerium-claim-groups: admins"]
    for index, (host, cookie, headers) in enumerate([
            ("app", admin, forged), ("public", None, ()), ("public", admin, ()), ("public", None, forged),
            ("app", admin, forged), ("public", None, forged)]):
        client.send(request(host, port, f"/anon/{index}", cookie=cookie, headers=headers))
        response = client.read()
        assert response.status == 200, (index, response)
        echo = response.echo()
        assert echo["path"] == f"/anon/{index}"
        names = identity_names(echo)
        if host == "app":
            assert names == ["x-pomerium-claim-email", "x-pomerium-claim-groups", "x-pomerium-jwt-assertion"], index
            assert assertion_email(echo) == "admin@example.com"
            assert fields(echo)["x-pomerium-claim-email"] == ["admin@example.com"]
        else:
            assert names == [], (index, names)
    client.close()


def test_denied_responses_between_allowed(stack, upstream):
    """403 and sign-in redirects on one connection do not change the next request's outcome,
    and their Set-Cookie headers do not reach other responses."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    steps = [("/admin/x", alice, 403), ("/ok/1", alice, 200), ("/admin/y", admin, 200), ("/ok/2", None, 302),
             ("/admin/z", alice, 403), ("/ok/3", admin, 200), ("/admin/w", None, 302), ("/ok/4", alice, 200)]
    for index, (path, cookie, expected) in enumerate(steps):
        upstream.clear()
        client.send(request("app", port, path, cookie=cookie))
        response = client.read()
        assert response.status == expected, (index, response)
        if expected == 200:
            assert response.echo()["path"] == path
            assert assertion_email(response.echo()) == ("alice@example.com" if cookie == alice else "admin@example.com")
            assert response.all("Set-Cookie") == [], index
        else:
            assert upstream.received() == [], index
            assert response.header("X-Pomerium-Intercepted-Response") == "true"
        if expected == 302:
            signin = [value for value in response.all("Set-Cookie") if value.startswith("_pomerium_signin=")]
            assert len(signin) <= 1, response.headers
    client.close()


def test_hosts_multiplexed_on_one_connection(stack, upstream):
    """A front proxy sends many hosts over one connection: set_request_headers and
    preserve_host_header apply only to the route that has them."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    headers_cookie = login_on(stack, "alice", "headers")
    other_cookie = login_on(stack, "admin", "other")
    upstream_host = f"127.0.0.1:{upstream.port}"
    client = Client(stack)
    steps = [("headers", headers_cookie, 200, "alice"), ("app", alice, 200, "alice"), ("other", other_cookie, 200, "admin"),
             ("headers", headers_cookie, 200, "alice"), ("public", None, 200, None), ("other", alice, 302, None),
             ("app", admin, 200, "admin"), ("headers", None, 302, None), ("public", None, 200, None)]
    for index, (host, cookie, expected, user) in enumerate(steps):
        client.send(request(host, port, f"/multi/{index}", cookie=cookie))
        response = client.read()
        assert response.status == expected, (index, host, response)
        if expected != 200:
            continue
        echo = response.echo()
        received = fields(echo)
        assert echo["path"] == f"/multi/{index}"
        assert received["x-forwarded-host"] == [f"{host}.example.test:{port}"], index
        if host == "headers":
            assert received["host"] == [f"headers.example.test:{port}"], index
            assert received["x-route-secret"] == ["headers-route-only"], index
            # A setting cannot replace the signed claim header.
            assert received["x-pomerium-claim-email"] == ["alice@example.com"], index
        else:
            assert received["host"] == [upstream_host], index
            assert "x-route-secret" not in received, index
        if user:
            assert assertion_email(echo) == USERS[user]["email"], index
        else:
            assert identity_names(echo) == [], index
    client.close()


def test_cors_preflight_then_identified_request(stack, upstream):
    """A preflight is forwarded without identity. The next request on the connection has it, and
    the request after that, without a cookie, gets the sign-in redirect."""
    port = stack["port"]
    alice = login_on(stack, "alice", "cors")
    client = Client(stack)
    preflight = ["Origin: https://site.example.test", "Access-Control-Request-Method: PUT"]
    for index, (method, cookie, headers, expected, identified) in enumerate([
            ("OPTIONS", None, preflight, 200, False), ("GET", alice, (), 200, True),
            ("OPTIONS", alice, preflight, 200, False), ("GET", None, (), 302, False),
            ("GET", alice, (), 200, True)]):
        client.send(request("cors", port, f"/cors/{index}", method=method, cookie=cookie, headers=headers))
        response = client.read()
        if expected == 302:
            assert response.status == 302, (index, response)
            continue
        assert response.status == 200, (index, response)
        echo = response.echo()
        assert echo["method"] == method
        assert echo["path"] == f"/cors/{index}"
        assert (identity_names(echo) != []) == identified, (index, identity_names(echo))
    client.close()


@pytest.mark.parametrize("failing", ["broken", "slow"])
def test_upstream_failure_then_next_request(stack, upstream, failing):
    """A 502 (upstream refuses connections) or 504 (upstream too slow) leaves the connection
    serving the next request, of another user, with that user's identity."""
    port = stack["port"]
    alice, admin = login_on(stack, "alice", failing), session_cookie(stack, "admin")
    client = Client(stack, timeout=10)
    path = "/slow/3" if failing == "slow" else "/gone"
    client.send(request(failing, port, path, cookie=alice))
    failed = client.read()
    assert failed.status == (504 if failing == "slow" else 502), failed
    assert failed.header("X-Pomerium-Intercepted-Response") == "true"
    client.send(request("app", port, "/after-failure", cookie=admin))
    response = client.read()
    assert response.status == 200, response
    assert response.echo()["path"] == "/after-failure"
    assert assertion_email(response.echo()) == "admin@example.com"
    client.close()


def test_upstream_drop_then_next_request(stack, upstream):
    """An upstream that closes without a response gives 502, and the next request on the
    connection goes through with its own identity."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/drop", cookie=alice))
    assert client.read().status == 502
    client.send(request("app", port, "/after-drop", cookie=admin))
    response = client.read()
    assert response.status == 200, response
    assert assertion_email(response.echo()) == "admin@example.com"
    client.close()


def test_expect_continue_then_next_request(stack, upstream):
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/upload", method="POST", cookie=alice,
                        headers=["Expect: 100-continue", "Content-Length: 11"]))
    informational = client.reader.read_until(b"\r\n\r\n")
    assert informational.startswith(b"HTTP/1.1 100"), informational
    client.send("hello world")
    upload = client.read()
    assert upload.status == 200, upload
    assert upload.echo()["body"] == "hello world"
    client.send(request("app", port, "/after-upload", cookie=admin))
    response = client.read()
    assert response.status == 200, response
    assert response.echo()["body"] == ""
    assert assertion_email(response.echo()) == "admin@example.com"
    client.close()


def test_head_then_get_framing(stack, upstream):
    """HEAD responses, proxied or made by pomerium, carry no body, so the next response is read
    from the right offset."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    client = Client(stack)
    steps = [("HEAD", "/head/0", alice, 200), ("GET", "/head/1", alice, 200), ("HEAD", "/admin/head/2", alice, 403),
             ("GET", "/head/3", alice, 200), ("HEAD", "/head/4", None, 302), ("HEAD", "/head/5", alice, 200),
             ("GET", "/head/6", alice, 200)]
    for index, (method, path, cookie, expected) in enumerate(steps):
        client.send(request("app", port, path, method=method, cookie=cookie))
        response = client.read(head_request=method == "HEAD")
        assert response.status == expected, (index, response)
        if method == "GET":
            assert response.echo()["path"] == path
            assert response.echo()["method"] == "GET"
    client.close()


def test_rejected_websocket_upgrade_then_request(stack, upstream):
    """A WebSocket upgrade on a route without allow_websockets is rejected with 400, and the bytes
    after it are never relayed as a tunnel: the connection closes or serves them as HTTP."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/socket", cookie=alice, headers=[
        "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]))
    rejected = client.read()
    assert rejected.status == 400, rejected
    assert "/socket" not in upstream_paths(upstream)
    client.send(request("app", port, "/after-socket", cookie=admin))
    try:
        response = client.read()
    except ConnectionError:
        return
    assert response.status == 200, response
    assert response.echo()["path"] == "/after-socket"
    assert assertion_email(response.echo()) == "admin@example.com"
    assert "upgrade" not in fields(response.echo())
    client.close()


def test_largest_head_then_small_heads(stack, upstream):
    """A head near the 64 KiB and 100-field limits, then small heads: no field of the large head
    reaches the upstream with a later request."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    many = [f"X-Field-{index:02d}: value-{index:02d}" for index in range(90)]
    large = ["X-Large: " + "L" * LARGE_FIELD_BYTES] + many
    client.send(request("app", port, "/large", cookie=alice, headers=large))
    response = client.read()
    assert response.status == 200, response
    assert len(fields(response.echo())["x-large"][0]) == LARGE_FIELD_BYTES
    for index, cookie in enumerate([admin, alice, None, admin]):
        host = "app" if cookie else "public"
        client.send(request(host, port, f"/small/{index}", cookie=cookie, headers=[f"X-Small: {index}"]))
        small = client.read()
        assert small.status == 200, (index, small)
        received = fields(small.echo())
        assert received["x-small"] == [str(index)]
        assert not any(name.startswith(("x-large", "x-field-")) for name in received), (index, sorted(received))
        expected = {admin: "admin@example.com", alice: "alice@example.com", None: None}[cookie]
        assert assertion_email(small.echo()) == expected, index
    client.close()


def test_too_large_head_closes_without_forwarding(stack, upstream):
    """A head over the limit gets 431 and closes the connection, so a request pipelined after it
    is never forwarded."""
    port = stack["port"]
    client = Client(stack)
    client.send(request("public", port, "/too-large", headers=["X-Large: " + "L" * (70 * 1024)])
                + request("public", port, "/after-too-large"))
    response = client.read()
    assert response.status == 431, response
    assert client.closed_by_peer()
    assert upstream_paths(upstream) == []


def test_cut_short_chunked_body_closes_connection(stack, upstream):
    """A chunked body that breaks off with an invalid chunk line ends the connection, so a
    request the client pipelined behind it, with forged identity headers, never reaches the upstream."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    client = Client(stack)
    client.send(f"POST /cut HTTP/1.1\r\nHost: app.example.test:{port}\r\nCookie: {alice}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n"
                + request("app", port, "/behind-cut", headers=["X-Pomerium-Claim-Email: admin@example.com"]))
    try:
        while True:
            response = client.read()
            assert response.status in (200, 400, 502), response
    except (ConnectionError, socket.timeout, ssl.SSLError):
        pass
    time.sleep(0.3)
    assert "/behind-cut" not in upstream_paths(upstream)
    for record in upstream.received():
        assert record["body"] != "hello", "a cut-short body must not be forwarded as complete"


def test_client_gone_mid_body(stack, upstream):
    """A client that closes in the middle of a Content-Length body: the upstream never gets a
    complete request, and the next connection's request carries only its own body."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/partial", method="POST", cookie=alice, headers=["Content-Length: 100"])
                + "only-part")
    time.sleep(0.3)
    client.close()
    time.sleep(0.3)
    second = Client(stack)
    second.send(request("app", port, "/complete", method="POST", cookie=admin, body="second-body"))
    response = second.read()
    assert response.status == 200, response
    assert response.echo()["body"] == "second-body"
    assert assertion_email(response.echo()) == "admin@example.com"
    assert "/partial" not in [record["path"] for record in upstream.received() if len(record["body"]) == 100]
    second.close()


def test_signed_out_cookie_on_kept_alive_connection(stack, upstream):
    """A cookie that the Cookie header cache and the liveness memo have seen on this connection
    stops working as soon as its user signs out."""
    port = stack["port"]
    session, cookie = fresh_login(stack, "alice")
    client = Client(stack)
    for index in range(3):
        client.send(request("app", port, f"/before/{index}", cookie=cookie))
        assert client.read().status == 200
    sign_out(stack, session)
    upstream.clear()
    client.send(request("app", port, "/after-sign-out", cookie=cookie))
    response = client.read()
    assert response.status == 302, response
    assert any(value.startswith("_pomerium=;") or "Max-Age=0" in value or "Expires=Thu, 01 Jan 1970" in value
               for value in response.all("Set-Cookie")), response.headers
    assert upstream.received() == []
    client.send(request("app", port, "/after-clear", cookie=session_cookie(stack, "admin")))
    after = client.read()
    assert after.status == 200
    assert after.all("Set-Cookie") == []
    client.close()


def test_cookie_header_variants_not_confused(stack, upstream):
    """The Cookie header cache keys on the whole header: a header that differs by a byte, or
    that adds a second session cookie, is parsed again and decides by its own content."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    variants = [
        (alice, 200, "alice@example.com"),
        (alice + " ", 200, "alice@example.com"),
        (alice[:-1], 302, None),
        (alice.replace("_pomerium=", "_pomerium_x="), 302, None),
        (admin, 200, "admin@example.com"),
        (alice, 200, "alice@example.com"),
    ]
    for index, (cookie, expected, email) in enumerate(variants):
        client.send(request("app", port, f"/variant/{index}", cookie=cookie))
        response = client.read()
        assert response.status == expected, (index, response)
        if email:
            assert assertion_email(response.echo()) == email, index
    client.close()


def test_access_log_per_sequential_request(stack, upstream):
    """Every request on a kept-alive connection gets its own access log line, request id and user."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    steps = [("/log/0", alice, 200, "alice@example.com"), ("/admin/log/1", alice, 403, None),
             ("/log/2", None, 302, None), ("/admin/log/3", admin, 200, "admin@example.com"),
             ("/log/4", alice, 200, "alice@example.com")]
    ids = []
    for path, cookie, expected, _ in steps:
        client.send(request("app", port, path, cookie=cookie))
        response = client.read()
        assert response.status == expected
        ids.append(response.header("Request-Id"))
    client.close()
    assert len(set(ids)) == len(ids)
    time.sleep(0.3)
    lines = {line["req_id"]: line for line in access_lines(stack)}
    for request_id, (path, _, expected, email) in zip(ids, steps):
        line = lines.get(request_id)
        assert line is not None, f"no access log line for {path}"
        assert line["path"] == path
        assert line["status"] == expected
        # A denied request names no user in the access line; the authorize line does.
        if expected == 200:
            assert line.get("email") == email, line
        else:
            assert "email" not in line, line


# -------------------------------------------------------------------------------------------------
# Pipelined requests: the next request is in the server's buffer when the previous response ends.


def test_pipelined_proxied_requests_both_answered(stack, upstream):
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/first", cookie=alice) + request("app", port, "/second", cookie=admin))
    first = client.read()
    assert first.status == 200
    assert assertion_email(first.echo()) == "alice@example.com"
    second = client.read()
    assert second.status == 200
    assert second.echo()["path"] == "/second"
    assert assertion_email(second.echo()) == "admin@example.com"


def test_pipelined_body_stays_with_its_request(stack, upstream):
    """alice POSTs to a host that her session is not valid for, and pomerium responds with the
    sign-in redirect. admin's pipelined POST announces a body of the same length and sends it
    later. The upstream must get admin's bytes, never alice's."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    secret = "alice-private-form-data"
    client = Client(stack)
    client.send(request("other", port, "/form", method="POST", cookie=alice, body=secret)
                + f"POST /admin-upload HTTP/1.1\r\nHost: app.example.test:{port}\r\nCookie: {admin}\r\n"
                  f"Content-Length: {len(secret)}\r\n\r\n")
    assert client.read().status == 302
    time.sleep(0.3)
    client.send("B" * len(secret))
    response = client.read()
    assert response.status == 200, response
    assert response.echo()["body"] == "B" * len(secret)
    assert all(secret not in record["body"] for record in upstream.received())


def test_pipelined_body_smuggling_blocked(stack, upstream):
    port = stack["port"]
    admin = session_cookie(stack, "admin")
    smuggled = ("GET /smuggled HTTP/1.1\r\nHost: internal\r\nX-Pomerium-Claim-Email: admin@example.com\r\n"
                "X-Pomerium-Jwt-Assertion: forged\r\n\r\n")
    attacker = Client(stack, sni="public.example.test")
    attacker.send(request("app", port, "/no-session", method="POST", body="XXXXX" + smuggled)
                  + f"POST /public-form HTTP/1.1\r\nHost: public.example.test:{port}\r\nContent-Length: 5\r\n\r\n")
    assert attacker.read().status == 302
    time.sleep(0.3)
    attacker.send("BBBBB")
    try:
        attacker.read()
    except (ConnectionError, socket.timeout):
        pass
    time.sleep(0.3)
    victim = Client(stack)
    victim.send(request("app", port, "/victim", cookie=admin))
    response = victim.read()
    assert "/smuggled" not in upstream_paths(upstream)
    assert response.status == 200
    assert response.echo()["path"] == "/victim"
    assert assertion_email(response.echo()) == "admin@example.com"


@pytest.mark.parametrize("order", ["local-then-proxied", "proxied-then-local"])
def test_pipelined_access_log_lines(stack, upstream, order):
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    denied = ("/admin/denied", alice, 403, None)
    allowed = ("/allowed", admin, 200, "admin@example.com")
    steps = [denied, allowed] if order == "local-then-proxied" else [allowed, denied]
    client = Client(stack)
    client.send("".join(request("app", port, path, cookie=cookie) for path, cookie, _, _ in steps))
    ids = []
    for _ in steps:
        try:
            ids.append(client.read().header("Request-Id"))
        except (ConnectionError, socket.timeout):
            ids.append(None)
    client.close()
    time.sleep(0.3)
    lines = access_lines(stack)
    for (path, _, status, email), request_id in zip(steps, ids):
        matching = [line for line in lines if line["path"] == path]
        assert len(matching) == 1, (path, matching)
        assert matching[0]["status"] == status, matching[0]
        assert matching[0].get("email") == email, matching[0]
        assert matching[0]["req_id"] == request_id, matching[0]


def test_pipelined_local_responses_in_order(stack, upstream):
    """Requests that pomerium responds to itself (404 route, sign-in redirect, 403, health),
    pipelined on one connection, get their responses in order."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    upstream.clear()
    client = Client(stack)
    client.send(request("unknown", port, "/a") + request("app", port, "/b") + request("app", port, "/admin/c", cookie=alice)
                + request("app", port, "/healthz") + request("app", port, "/ping"))
    statuses = [client.read().status for _ in range(5)]
    assert statuses == [404, 302, 403, 200, 200]
    assert upstream.received() == []


# -------------------------------------------------------------------------------------------------
# The upstream side of the exchange: pooled upstream connections.


def serve_with_extra_response(listener, paths, stop):
    """Accepts upstream connections. Each connection's first response is followed by a second
    response that no request asked for, in the same write as the first response's body, so
    pomerium reads both at once. Every response body names the request path."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=_respond_with_extra, args=(connection, paths), daemon=True).start()


def _respond_with_extra(connection, paths):
    connection.settimeout(5)
    reader = _Reader(connection)
    first = True
    try:
        while (head := reader.read_until(b"\r\n\r\n")) is not None:
            path = head.split(b" ")[1].decode()
            paths.append(path)
            body = f"answer for {path}".encode()
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            if first:
                # The head went out alone, so pomerium is reading the body when both arrive.
                time.sleep(0.05)
                body += b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Unsolicited: 1\r\n\r\nPOISONED"
                first = False
            connection.sendall(body)
    except OSError:
        pass
    finally:
        connection.close()


def test_unsolicited_upstream_response_not_pooled(start_pomerium, oidc_provider):
    listener = socket.create_server(("127.0.0.1", 0))
    paths, stop = [], threading.Event()
    thread = threading.Thread(target=serve_with_extra_response, args=(listener, paths, stop), daemon=True)
    thread.start()
    port = free_port()
    start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://extra.example.test", "to": f"http://127.0.0.1:{listener.getsockname()[1]}",
         "allow_public_unauthenticated_access": True}]), wait_port=port)
    try:
        # Each request comes on its own client connection, as from another user. Connections
        # land on the event loops at random and each loop has its own pool, so eight requests
        # make it very likely that one of them reuses the poisoned upstream connection.
        bodies = []
        for index in range(8):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(f"GET /request-{index} HTTP/1.1\r\nHost: extra.example.test\r\n"
                               "Connection: close\r\n\r\n".encode())
                response = b""
                try:
                    while chunk := client.recv(65536):
                        response += chunk
                except socket.timeout:
                    response += b" (timed out)"
            bodies.append(response.split(b"\r\n\r\n", 1)[-1].decode("latin-1"))
            time.sleep(0.1)
        assert bodies == [f"answer for /request-{index}" for index in range(8)], paths
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_pipelined_trailers_stay_with_their_request(stack, upstream):
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    upstream.clear()
    client = Client(stack)
    client.send(f"POST /form HTTP/1.1\r\nHost: other.example.test:{port}\r\nCookie: {alice}\r\n"
                "Transfer-Encoding: chunked\r\nTrailer: X-Alice-Checksum\r\n\r\n"
                "6\r\nsecret\r\n0\r\nX-Alice-Checksum: alice-private-digest\r\n\r\n"
                f"POST /admin-stream HTTP/1.1\r\nHost: app.example.test:{port}\r\nCookie: {admin}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
    assert client.read().status == 302
    time.sleep(0.3)
    client.send("4\r\nmine\r\n0\r\nX-Admin-Checksum: admin-digest\r\n\r\n")
    try:
        client.read()
    except (ConnectionError, socket.timeout):
        pass
    time.sleep(0.3)
    records = [record for record in upstream.received() if record["path"] == "/admin-stream"]
    assert records, "the pipelined request was not forwarded"
    assert ["X-Alice-Checksum", "alice-private-digest"] not in records[0]["trailers"]
    assert records[0]["body"] == "mine"
    assert records[0]["trailers"] == [["X-Admin-Checksum", "admin-digest"]]


def test_forwarded_cookie_follows_each_request(stack, upstream):
    """The Cookie header cache stores the upstream Cookie value with the session: on hits and
    misses, in one field or two, the upstream gets exactly the request's own non-product cookies."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    client = Client(stack)
    steps = [
        ([f"Cookie: {alice}; theme=dark"], ["theme=dark"]),
        ([f"Cookie: {alice}"], None),
        ([f"Cookie: {alice}; theme=dark"], ["theme=dark"]),
        ([f"Cookie: {alice}"], None),
        (["Cookie: lang=fr", f"Cookie: {alice}"], ["lang=fr"]),
        ([f"Cookie: {alice}"], None),
        ([f"Cookie: cart=42; {alice}"], ["cart=42"]),
        ([f"Cookie: {alice}; theme=dark"], ["theme=dark"]),
        # A Cookie field that Connection names is hop-by-hop, on a cache hit too.
        ([f"Cookie: {alice}; theme=dark", "Connection: cookie"], None),
        ([f"Cookie: {alice}; theme=dark"], ["theme=dark"]),
    ]
    for index, (headers, expected) in enumerate(steps):
        client.send(request("app", port, f"/cookies/{index}", headers=headers))
        response = client.read()
        assert response.status == 200, (index, response)
        assert fields(response.echo()).get("cookie") == expected, index
        assert assertion_email(response.echo()) == "alice@example.com"
    client.close()


def test_trusted_proxy_headers_per_request(start_pomerium, oidc_provider, upstream):
    """Behind a trusted front proxy every request on the shared connection carries its own
    X-Forwarded-* values; nothing of the previous request's values is kept."""
    port = free_port()
    start_pomerium(base_config(port, issuer=oidc_provider, trusted_proxies=["127.0.0.1"], policy=[
        {"from": "https://front.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True}]),
        wait_port=port)
    steps = [
        (["X-Forwarded-For: 198.51.100.1", "X-Forwarded-Host: one.example.test", "X-Forwarded-Proto: https"],
         ["198.51.100.1, 127.0.0.1"], ["one.example.test"], ["https"]),
        ([], ["127.0.0.1"], ["front.example.test"], ["http"]),
        (["X-Forwarded-For: 198.51.100.2"], ["198.51.100.2, 127.0.0.1"], ["front.example.test"], ["http"]),
        (["X-Forwarded-Host: three.example.test"], ["127.0.0.1"], ["three.example.test"], ["http"]),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        reader = _Reader(plain)
        for index, (headers, forwarded_for, forwarded_host, proto) in enumerate(steps):
            head = "\r\n".join([f"GET /front/{index} HTTP/1.1", "Host: front.example.test", *headers]) + "\r\n\r\n"
            plain.sendall(head.encode())
            response_head = reader.read_until(b"\r\n\r\n").decode("latin-1")
            assert response_head.startswith("HTTP/1.1 200"), response_head
            length = int(re.search(r"(?i)content-length: (\d+)", response_head).group(1))
            received = fields(json.loads(reader.read_exactly(length)))
            assert received["x-forwarded-for"] == forwarded_for, index
            assert received["x-forwarded-host"] == forwarded_host, index
            assert received["x-forwarded-proto"] == proto, index


def test_reload_applies_to_kept_alive_connection(stack, upstream, tmp_path):
    """A policy change reaches a connection that stayed open across the reload: the reused
    handler of the old configuration does not serve its next request."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    for index in range(2):
        client.send(request("app", port, f"/before-reload/{index}", cookie=alice))
        assert client.read().status == 200
    config = json.loads(json.dumps(stack["config"]))
    config["policy"][1] = {**config["policy"][1], "allowed_users": ["admin@example.com"]}
    del config["policy"][1]["allowed_domains"]
    (tmp_path / "config.json").write_text(json.dumps(config))

    def reloaded():
        probe = Client(stack)
        probe.send(request("app", port, "/probe", cookie=alice, close=True))
        status = probe.read().status
        probe.close()
        return status == 403

    support.wait_for(reloaded, 15, "the policy reload")
    client.send(request("app", port, "/after-reload", cookie=alice))
    assert client.read().status == 403
    client.send(request("app", port, "/after-reload-admin", cookie=admin))
    response = client.read()
    assert response.status == 200
    assert assertion_email(response.echo()) == "admin@example.com"
    client.close()


def test_dashboard_pages_alternating_users(stack, upstream):
    """The user page (/.pomerium/) on one connection shows each request's own user only."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    for index, (cookie, shown, hidden) in enumerate([
            (alice, "alice@example.com", "admin@example.com"), (admin, "admin@example.com", "alice@example.com"),
            (None, None, "@example.com"), (alice, "alice@example.com", "admin@example.com")]):
        client.send(request("app", port, "/.pomerium/", cookie=cookie))
        response = client.read()
        if shown is None:
            assert response.status == 302, index
            assert b"@example.com" not in response.body
            continue
        assert response.status == 200, (index, response)
        assert shown.encode() in response.body, index
        assert hidden.encode() not in response.body, index
    client.close()


def test_dashboard_rejects_signed_out_cookie(stack, upstream):
    """After sign-out, the copied route cookie no longer opens the user page on a kept connection."""
    port = stack["port"]
    session, cookie = fresh_login(stack, "alice")
    client = Client(stack)
    client.send(request("app", port, "/.pomerium/", cookie=cookie))
    assert client.read().status == 200
    sign_out(stack, session)
    client.send(request("app", port, "/.pomerium/", cookie=cookie))
    response = client.read()
    assert response.status == 302, response
    assert b"alice@example.com" not in response.body
    client.close()


def test_late_upstream_response_dropped(stack, upstream):
    """After a 504, the slow upstream's late response never reaches the next request on the
    connection, which is still waiting for its own upstream when the late response comes."""
    port = stack["port"]
    alice, admin = login_on(stack, "alice", "slow"), session_cookie(stack, "admin")
    client = Client(stack, timeout=10)
    client.send(request("slow", port, "/slow/2.5", cookie=alice))
    assert client.read().status == 504
    client.send(request("app", port, "/slow/2", cookie=admin))
    response = client.read()
    assert response.status == 200, response
    assert response.echo()["path"] == "/slow/2"
    assert assertion_email(response.echo()) == "admin@example.com"
    client.send(request("app", port, "/after-late-answer", cookie=admin))
    after = client.read()
    assert after.status == 200
    assert after.echo()["path"] == "/after-late-answer"
    client.close()


def test_request_ids_across_destinations(stack, upstream):
    """Proxy, health, authenticate and 404 responses on one connection each carry one Request-Id
    of their own, because the reused proxy handler draws a new one every time."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    client = Client(stack)
    steps = [("app", "/ids/0", alice, 200), ("app", "/healthz", None, 200), ("app", "/ids/1", alice, 200),
             ("authenticate", "/.well-known/pomerium/jwks.json", None, 200), ("app", "/ids/2", alice, 200),
             ("unknown", "/", None, 404), ("app", "/ids/3", alice, 200), ("app", "/ids/4", alice, 200)]
    ids = []
    for index, (host, path, cookie, expected) in enumerate(steps):
        client.send(request(host, port, path, cookie=cookie))
        response = client.read()
        assert response.status == expected, (index, response)
        assert len(response.all("Request-Id")) == 1, (index, response.headers)
        if path.startswith("/ids/"):
            assert response.header("X-Pomerium-Intercepted-Response") is None, index
            assert response.echo()["path"] == path
        ids.append(response.header("Request-Id"))
    assert len(set(ids)) == len(ids), ids
    client.close()


def test_denied_expect_body_not_parsed(stack, upstream):
    """A request with Expect: 100-continue that is denied before its body is read: whatever the
    client sends next is never parsed as a new request, so a request hidden there with forged
    identity headers does not reach the upstream."""
    port = stack["port"]
    alice = session_cookie(stack, "alice")
    hidden = request("app", port, "/hidden-after-expect", headers=["X-Pomerium-Claim-Email: admin@example.com"])
    client = Client(stack)
    client.send(request("app", port, "/admin/upload", method="POST", cookie=alice,
                        headers=["Expect: 100-continue", f"Content-Length: {len(hidden)}"]))
    response = client.read()
    assert response.status == 403, response
    try:
        client.send(hidden)
        client.read()
    except (ConnectionError, socket.timeout, ssl.SSLError, OSError):
        pass
    time.sleep(0.3)
    assert "/hidden-after-expect" not in upstream_paths(upstream)
    assert "/admin/upload" not in upstream_paths(upstream)


def test_body_framing_not_carried_to_next_request(stack, upstream):
    """Chunked, Content-Length and bodiless requests alternate on one connection. Each upstream
    head has its own framing fields, and the upstream reads each body whole."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    large = "z" * (512 * 1024)
    client = Client(stack, timeout=10)
    chunked = (f"POST /frame/0 HTTP/1.1\r\nHost: app.example.test:{port}\r\nCookie: {alice}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\nX-Sum: 1\r\n\r\n")
    steps = [
        (chunked, "first", [["X-Sum", "1"]], "alice@example.com"),
        (request("app", port, "/frame/1", cookie=admin), "", [], "admin@example.com"),
        (request("app", port, "/frame/2", method="POST", cookie=alice, body=large), large, [], "alice@example.com"),
        (request("app", port, "/frame/3", method="POST", cookie=admin, body="small"), "small", [], "admin@example.com"),
        (request("app", port, "/frame/4", cookie=alice), "", [], "alice@example.com"),
    ]
    for index, (data, body, trailers, email) in enumerate(steps):
        client.send(data)
        response = client.read()
        assert response.status == 200, (index, response)
        echo = response.echo()
        received = fields(echo)
        assert echo["path"] == f"/frame/{index}"
        assert echo["body"] == body, index
        assert echo["trailers"] == trailers, index
        assert assertion_email(echo) == email, index
        if body == "":
            assert "transfer-encoding" not in received, index
            assert received.get("content-length", ["0"]) == ["0"], index
        elif trailers:
            assert received["transfer-encoding"] == ["chunked"], index
        else:
            assert received["content-length"] == [str(len(body))], index
            assert "transfer-encoding" not in received, index
    client.close()


def test_ignored_h2c_upgrade_then_request(stack, upstream):
    """An h2c upgrade offer is ignored and the request served as HTTP/1.1 without Upgrade. The
    next request on the connection, of another user, is served as usual."""
    port = stack["port"]
    alice, admin = session_cookie(stack, "alice"), session_cookie(stack, "admin")
    client = Client(stack)
    client.send(request("app", port, "/h2c", cookie=alice, headers=[
        "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]))
    first = client.read()
    assert first.status == 200, first
    received = fields(first.echo())
    assert "upgrade" not in received
    assert "http2-settings" not in received
    client.send(request("app", port, "/after-h2c", cookie=admin))
    second = client.read()
    assert second.status == 200, second
    assert second.echo()["path"] == "/after-h2c"
    assert assertion_email(second.echo()) == "admin@example.com"
    client.close()


def test_chunked_session_cookies_alternating(stack, upstream, oidc_provider):
    """A session split into chunk cookies (a Cookie header too long for the Cookie header cache)
    alternates with a short cached one. Each request gets its own groups claim header."""
    port = stack["port"]
    groups = [f"group-with-a-fairly-long-name-{index:04d}" for index in range(150)]
    support.set_user_claims(oidc_provider, "many", {"email": "many@example.com", "groups": groups})
    many, alice = session_cookie(stack, "many"), session_cookie(stack, "alice")
    assert len(many) > 4096
    assert "_pomerium_1=" in many
    client = Client(stack)
    for index, (cookie, email, expected_groups) in enumerate([
            (many, "many@example.com", groups), (alice, "alice@example.com", ["devs"]),
            (many, "many@example.com", groups), (many + "; extra=1", "many@example.com", groups),
            (alice, "alice@example.com", ["devs"])]):
        client.send(request("app", port, f"/chunks/{index}", cookie=cookie))
        response = client.read()
        assert response.status == 200, (index, response)
        received = fields(response.echo())
        assert received["x-pomerium-claim-email"] == [email], index
        assert received["x-pomerium-claim-groups"][0].split(",") == expected_groups, index
        assert received.get("cookie") == (["extra=1"] if "extra=1" in cookie else None), index
    client.close()
