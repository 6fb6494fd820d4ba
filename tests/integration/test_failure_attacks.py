"""Attacks through servers that die or misbehave around pomerium: upstreams that reset, stall,
truncate or send broken response heads, a Redis session store killed and restarted under
traffic, an identity provider that is down or slow, configuration reloads while requests run,
WebSockets, and upstream TLS settings that must fail closed.

Every server runs on 127.0.0.1 and is started by the test. Every loop is bounded in count and
time. Tests of behaviour that is wrong today are marked xfail with the reason."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from harness import base_config, free_port
from test_keepalive_attacks import USERS, ThreadedUpstream, _Reader, requests_session  # noqa: F401

import support  # noqa: E402 (test_keepalive_attacks put tests/e2e on sys.path)

# The route timeout of the misbehaving-upstream routes: short, so that a stalled upstream is
# answered within the test's own socket timeout.
ROUTE_TIMEOUT_SECONDS = 1


# -------------------------------------------------------------------------------------------------
# An upstream that misbehaves on purpose.


class HostileUpstream(ThreadedUpstream):
    """A raw-socket upstream whose response depends on the request path:

    /hang reads the request and never responds; /reset resets the connection (RST);
    /close closes without a response; /partial announces 100000 bytes, sends 1000 and closes;
    /huge-head sends a 2 MiB response head; /many-fields sends 20000 short header fields;
    /bad-length sends `Content-Length: abc`; /two-lengths sends two different Content-Length
    fields; /garbage sends a line that is no status line; /obs-fold folds a header value over
    two lines; /nul-value sends a NUL byte inside a header value; /late/<seconds> waits before
    the response head; /trickle sends six chunks half a second apart; /stall sends one chunk and
    then stalls for five seconds; /ok responds normally. Every request head is recorded."""

    def __init__(self):
        self.heads = []
        self.lock = threading.Lock()
        super().__init__()

    def _serve(self, connection):
        connection.settimeout(20)
        reader = _Reader(connection)
        try:
            head = reader.read_until(b"\r\n\r\n")
            if head is None:
                return
            text = head.decode("latin-1")
            with self.lock:
                self.heads.append(text)
            path = text.split(" ", 2)[1]
            self._respond(connection, path)
        except OSError:
            return
        finally:
            connection.close()

    def _respond(self, connection, path):
        def send(data):
            connection.sendall(data if isinstance(data, bytes) else data.encode("latin-1"))

        if path == "/hang":
            deadline = time.monotonic() + 15
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
        elif path == "/reset":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif path == "/close":
            pass
        elif path == "/partial":
            send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "p" * 1000)
        elif path == "/huge-head":
            send("HTTP/1.1 200 OK\r\nX-Big: " + "h" * (2 * 1024 * 1024) + "\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/many-fields":
            fields = "".join(f"X-F{index}: v\r\n" for index in range(20000))
            send("HTTP/1.1 200 OK\r\n" + fields + "Content-Length: 2\r\n\r\nok")
        elif path == "/bad-length":
            send("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok")
        elif path == "/two-lengths":
            send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nokSMUGG")
        elif path == "/garbage":
            send("SSH-2.0-OpenSSH_9.2\r\n\r\n")
        elif path == "/obs-fold":
            send("HTTP/1.1 200 OK\r\nX-Folded: first\r\n Set-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/nul-value":
            send("HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\nok")
        elif path.startswith("/late/"):
            time.sleep(float(path.split("/")[2]))
            send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        elif path == "/trickle":
            send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for index in range(6):
                piece = f"data: {index}\n\n"
                send(f"{len(piece):x}\r\n{piece}\r\n")
                time.sleep(0.5)
            send("0\r\n\r\n")
        elif path == "/stall":
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            time.sleep(5)
            send("4\r\nlate\r\n0\r\n\r\n")
        else:
            send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def hostile_upstream():
    server = HostileUpstream()
    yield server
    server.stop()


@pytest.fixture
def hostile_stack(start_pomerium, oidc_provider, hostile_upstream):
    """Plain-HTTP pomerium with a public route to the hostile upstream (timeout 1 s) and one
    without a route timeout."""
    port = free_port()
    config = base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://app.example.test", "to": hostile_upstream.url,
         "allow_public_unauthenticated_access": True, "timeout": f"{ROUTE_TIMEOUT_SECONDS}s"},
        {"from": "https://patient.example.test", "to": hostile_upstream.url,
         "allow_public_unauthenticated_access": True, "timeout": "0"},
    ])
    process = start_pomerium(config, wait_port=port)
    return {"port": port, "process": process}


def plain_get(port, path, host="app.example.test", timeout=10):
    """One GET over plain HTTP: (status, headers, body). The body read may raise on a cut."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def header_names(headers):
    return {name.lower() for name, _ in headers}


def assert_serving(stack):
    """pomerium still runs and serves a normal request after the attack."""
    assert stack["process"].process.poll() is None, stack["process"].output()[-3000:]
    status, _, body = plain_get(stack["port"], "/ok")
    assert (status, body) == (200, b"ok")


# -------------------------------------------------------------------------------------------------
# Upstreams that die, stall or send broken heads.


@pytest.mark.parametrize("path", ["/reset", "/close", "/garbage", "/bad-length", "/huge-head", "/many-fields"])
def test_broken_upstream_gets_502(hostile_stack, path):
    status, headers, body = plain_get(hostile_stack["port"], path)
    assert status == 502, (status, body[:300])
    assert "x-big" not in header_names(headers)
    assert_serving(hostile_stack)


def test_conflicting_lengths_not_forwarded(hostile_stack):
    """Two different Content-Length fields make the response's end ambiguous (RFC 9112 6.3):
    pomerium must not pass either reading on."""
    status, _, body = plain_get(hostile_stack["port"], "/two-lengths")
    assert status == 502, (status, body)
    assert b"SMUGG" not in body
    assert_serving(hostile_stack)


def test_folded_header_not_passed_as_field(hostile_stack):
    """An obs-fold continuation line must be rejected or joined to its field, never read as a
    field of its own (a Set-Cookie here)."""
    status, headers, _ = plain_get(hostile_stack["port"], "/obs-fold")
    assert status in (200, 502)
    assert "set-cookie" not in header_names(headers), headers
    assert_serving(hostile_stack)


def test_nul_in_upstream_header_not_forwarded(hostile_stack):
    status, headers, _ = plain_get(hostile_stack["port"], "/nul-value")
    assert status in (200, 502)
    assert all("\x00" not in value for _, value in headers)
    assert_serving(hostile_stack)


def test_truncated_body_cuts_client_connection(hostile_stack):
    """An upstream that closes after 1000 of 100000 announced bytes: the client sees the body cut
    short, never a complete-looking response."""
    connection = http.client.HTTPConnection("127.0.0.1", hostile_stack["port"], timeout=10)
    connection.request("GET", "/partial", headers={"Host": "app.example.test"})
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert len(cut.value.partial) == 1000
    connection.close()
    assert_serving(hostile_stack)


def test_silent_upstream_gets_504_after_timeout(hostile_stack):
    started = time.monotonic()
    status, _, _ = plain_get(hostile_stack["port"], "/hang")
    elapsed = time.monotonic() - started
    assert status == 504
    assert ROUTE_TIMEOUT_SECONDS * 0.8 <= elapsed < ROUTE_TIMEOUT_SECONDS + 3, elapsed
    assert_serving(hostile_stack)


def test_late_head_within_timeout_served(hostile_stack):
    status, _, body = plain_get(hostile_stack["port"], "/late/0.3")
    assert (status, body) == (200, b"late")


def test_zero_timeout_waits_for_late_head(hostile_stack):
    """`timeout: 0` waits without limit, so a head after 2.5 s (past the default of the other
    route) still arrives."""
    status, _, body = plain_get(hostile_stack["port"], "/late/2.5", host="patient.example.test")
    assert (status, body) == (200, b"late")


def test_trickling_stream_not_buffered_or_cut(hostile_stack):
    """Six chunks half a second apart (3 s in all) through a route with a 1 s timeout: each
    chunk arrives before the next is sent, and the stream is not cut."""
    with socket.create_connection(("127.0.0.1", hostile_stack["port"]), timeout=10) as client:
        client.sendall(b"GET /trickle HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        received = b""
        arrivals = []
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
            for index in range(6):
                if f"data: {index}".encode() in received and len(arrivals) == index:
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 6, received[-500:]
    assert arrivals[0] < 0.4, arrivals
    assert arrivals[5] > 2.0, arrivals
    assert received.endswith(b"0\r\n\r\n"), received[-100:]


def test_stall_mid_body_cuts_connection(hostile_stack):
    """The upstream sends one chunk and stalls past the route timeout: the response has started,
    so pomerium cuts the connection instead of sending a 504 into the body."""
    with socket.create_connection(("127.0.0.1", hostile_stack["port"]), timeout=10) as client:
        client.sendall(b"GET /stall HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
        started = time.monotonic()
        received = b""
        while time.monotonic() - started < 8:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert b"first" in received
    assert b"504" not in received.split(b"\r\n\r\n", 1)[1]
    assert not received.endswith(b"0\r\n\r\n"), "a cut stream must not look complete"
    assert elapsed < 4.5, elapsed
    assert_serving(hostile_stack)


def test_parallel_hanging_requests_leave_others_served(hostile_stack):
    """Twenty requests stuck on a silent upstream do not hold up a normal request."""
    results = []

    def hang():
        try:
            results.append(plain_get(hostile_stack["port"], "/hang")[0])
        except OSError as error:
            results.append(repr(error))

    threads = [threading.Thread(target=hang) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    status, _, body = plain_get(hostile_stack["port"], "/ok")
    assert (status, body) == (200, b"ok")
    assert time.monotonic() - started < 0.5
    for thread in threads:
        thread.join(timeout=15)
    assert results == [504] * 20, results


# -------------------------------------------------------------------------------------------------
# Upstream TLS settings fail closed.


def openssl(*arguments):
    subprocess.run(["openssl", *arguments], check=True, capture_output=True, timeout=30)


def make_ca(folder, name):
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", str(key), "-out", str(cert))
    return cert, key


def make_leaf(folder, name, ca, subject_alt_name, usage):
    cert, key, request = folder / f"{name}.pem", folder / f"{name}-key.pem", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={subject_alt_name}\nextendedKeyUsage={usage}\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(request))
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(cert))
    return cert, key


class TLSUpstream:
    """An HTTPS upstream on 127.0.0.1 that records the SNI of each handshake and responds with
    JSON naming the client certificate's common name (None without one). `client_ca` asks for a client
    certificate; `require_client` makes one mandatory."""

    def __init__(self, cert, key, client_ca=None, require_client=False):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            self.context.load_verify_locations(str(client_ca))
            self.context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
        self.server_names = []
        self.handshakes = 0
        self.lock = threading.Lock()
        self.context.sni_callback = self._record_sni
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def _record_sni(self, connection, server_name, context):
        with self.lock:
            self.server_names.append(server_name)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.listener.close()

    def _accept(self):
        while not self.stopping:
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        connection.settimeout(10)
        try:
            tls = self.context.wrap_socket(connection, server_side=True)
        except (OSError, ssl.SSLError):
            connection.close()
            return
        with self.lock:
            self.handshakes += 1
        peer = tls.getpeercert()
        common_name = None
        if peer:
            common_name = dict(item[0] for item in peer["subject"]).get("commonName")
        reader = _Reader(tls)
        try:
            while not self.stopping:
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    return
                payload = json.dumps({"client": common_name,
                                      "path": head.decode("latin-1").split(" ", 2)[1]}).encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                            + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        except OSError:
            return
        finally:
            tls.close()


@pytest.fixture(scope="module")
def upstream_pki(tmp_path_factory):
    """Two server CAs (the right one and a wrong one), a server certificate for
    upstream.internal only (no IP address), and a client CA with a client certificate."""
    folder = tmp_path_factory.mktemp("upstream-pki")
    right, wrong, clients = make_ca(folder, "right-ca"), make_ca(folder, "wrong-ca"), make_ca(folder, "client-ca")
    server = make_leaf(folder, "upstream.internal", right, "DNS:upstream.internal", "serverAuth")
    client = make_leaf(folder, "pomerium-client", clients, "DNS:pomerium-client", "clientAuth")
    return {"right": right, "wrong": wrong, "clients": clients, "server": server, "client": client}


@pytest.fixture
def tls_upstreams(upstream_pki):
    """One upstream that asks for (but does not need) a client certificate, one that needs it."""
    optional = TLSUpstream(*upstream_pki["server"], client_ca=upstream_pki["clients"][0])
    required = TLSUpstream(*upstream_pki["server"], client_ca=upstream_pki["clients"][0], require_client=True)
    yield optional, required
    optional.stop()
    required.stop()


@pytest.fixture
def tls_stack(start_pomerium, oidc_provider, upstream_pki, tls_upstreams):
    optional, required = tls_upstreams
    right_ca, wrong_ca = str(upstream_pki["right"][0]), str(upstream_pki["wrong"][0])
    client_cert, client_key = (str(path) for path in upstream_pki["client"])

    def route(name, to, **settings):
        return {"from": f"https://{name}.example.test", "to": to, "allow_public_unauthenticated_access": True,
                "timeout": "5s", **settings}

    port = free_port()
    config = base_config(port, issuer=oidc_provider, policy=[
        route("default", optional.url),
        route("right", optional.url, tls_custom_ca_file=right_ca, tls_server_name="upstream.internal"),
        route("right-inline", optional.url, tls_server_name="upstream.internal",
              tls_custom_ca=base64.b64encode(upstream_pki["right"][0].read_bytes()).decode()),
        route("no-name", optional.url, tls_custom_ca_file=right_ca),
        route("other-name", optional.url, tls_custom_ca_file=right_ca, tls_server_name="other.internal"),
        route("wrong", optional.url, tls_custom_ca_file=wrong_ca, tls_server_name="upstream.internal"),
        route("skip", optional.url, tls_skip_verify=True),
        route("client", optional.url, tls_custom_ca_file=right_ca, tls_server_name="upstream.internal",
              tls_client_cert_file=client_cert, tls_client_key_file=client_key),
        route("required-none", required.url, tls_custom_ca_file=right_ca, tls_server_name="upstream.internal"),
        route("required-client", required.url, tls_custom_ca_file=right_ca, tls_server_name="upstream.internal",
              tls_client_cert_file=client_cert, tls_client_key_file=client_key),
    ])
    process = start_pomerium(config, wait_port=port)
    return {"port": port, "process": process, "optional": optional, "required": required}


def upstream_report(stack, name):
    """(status, the upstream's JSON report or None) for GET / on `<name>.example.test`."""
    status, _, body = plain_get(stack["port"], "/", host=f"{name}.example.test")
    if status != 200:
        return status, None
    return status, json.loads(body)


@pytest.mark.parametrize("name", ["default", "no-name", "other-name", "wrong"])
def test_unverified_upstream_certificate_gets_502(tls_stack, name):
    status, report = upstream_report(tls_stack, name)
    assert status == 502, report


@pytest.mark.parametrize("name", ["right", "right-inline", "skip"])
def test_trusted_upstream_certificate_served(tls_stack, name):
    status, report = upstream_report(tls_stack, name)
    assert status == 200
    assert report["client"] is None


def test_server_name_sent_as_sni(tls_stack):
    assert upstream_report(tls_stack, "right")[0] == 200
    assert tls_stack["optional"].server_names == ["upstream.internal"]


def test_wrong_ca_after_skip_verify_not_pooled(tls_stack):
    """Two routes to one upstream address: after the skip-verify route leaves a kept-alive
    connection, the route with the wrong CA must still fail instead of reusing it."""
    for _ in range(3):
        assert upstream_report(tls_stack, "skip")[0] == 200
        assert upstream_report(tls_stack, "wrong")[0] == 502
        assert upstream_report(tls_stack, "other-name")[0] == 502


def test_client_certificate_not_lent_to_other_routes(tls_stack):
    """The client-certificate route's kept-alive connection carries its identity; a route to the
    same upstream without a client certificate must not reuse it."""
    for _ in range(3):
        status, report = upstream_report(tls_stack, "client")
        assert status == 200
        assert report["client"] == "pomerium-client"
        status, report = upstream_report(tls_stack, "right")
        assert status == 200
        assert report["client"] is None, "the route without a client certificate reused its connection"


def test_required_client_certificate(tls_stack):
    assert upstream_report(tls_stack, "required-none")[0] == 502
    status, report = upstream_report(tls_stack, "required-client")
    assert status == 200
    assert report["client"] == "pomerium-client"
    assert upstream_report(tls_stack, "required-none")[0] == 502
