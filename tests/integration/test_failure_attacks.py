"""Attacks through servers that die or misbehave around pomerium. Upstreams reset, stall,
truncate or send broken response heads. A Redis session store is killed, frozen and restarted
under traffic, and the identity provider is down or slow. The configuration is reloaded while
requests run. WebSockets, forward-auth through nginx and upstream TLS settings must fail closed.

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

# The route timeout of the misbehaving-upstream routes: short, so that pomerium responds to a
# request for a stalled upstream within the test's own socket timeout.
ROUTE_TIMEOUT_SECONDS = 1


# -------------------------------------------------------------------------------------------------
# An upstream that misbehaves on purpose.


class HostileUpstream(ThreadedUpstream):
    """A raw-socket upstream whose response depends on the request path. Every request head is
    recorded.

    /hang          reads the request and never responds
    /reset         resets the connection (RST)
    /close         closes without a response
    /partial       announces 100000 bytes, sends 1000 and closes
    /chunked-cut   closes after the first chunk
    /huge-head     sends a 2 MiB response head
    /many-fields   sends 20000 short header fields
    /bad-length    sends `Content-Length: abc`
    /two-lengths   sends two different Content-Length fields
    /garbage       sends a line that is no status line
    /obs-fold      folds a header value over two lines
    /nul-value     sends a NUL byte inside a header value
    /unasked-101   switches protocols on a plain request, then sends a response of its own
    /hints-flood   sends 2000 103 responses before the 200
    /late/<s>      waits <s> seconds before the response head
    /trickle       sends six chunks half a second apart
    /stall         sends one chunk, then stalls for five seconds
    anything else  responds `ok`"""

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
        elif path == "/unasked-101":
            send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 8\r\n\r\nsmuggled")
            time.sleep(1)
        elif path == "/chunked-cut":
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        elif path == "/hints-flood":
            for _ in range(2000):
                send("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
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


def test_unasked_switching_protocols_not_tunnelled(hostile_stack):
    """A 101 to a request that asked for no upgrade must not turn the client connection into a
    tunnel: the upstream's bytes after it would reach the client as a response of their own."""
    with socket.create_connection(("127.0.0.1", hostile_stack["port"]), timeout=10) as client:
        client.sendall(b"GET /unasked-101 HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 3
        client.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                chunk = client.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert not received.startswith(b"HTTP/1.1 101"), received[:300]
    assert b"X-Smuggled" not in received, received[:300]
    assert received.startswith(b"HTTP/1.1 502"), received[:300]
    assert_serving(hostile_stack)


def test_early_hints_flood_bounded(hostile_stack):
    """2000 interim responses before the final one: either passed on or dropped, but the final
    response arrives and the process stays up."""
    status, _, body = plain_get(hostile_stack["port"], "/hints-flood")
    assert status in (200, 502)
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


def test_cut_chunked_body_not_terminated(hostile_stack):
    """An upstream that closes after the first chunk: the client must not get the terminating
    zero-length chunk, which would make the cut response look complete, and the connection ends."""
    with socket.create_connection(("127.0.0.1", hostile_stack["port"]), timeout=10) as client:
        client.sendall(b"GET /chunked-cut HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert b"first" in received
    assert not received.endswith(b"0\r\n\r\n"), received[-50:]
    assert time.monotonic() < deadline, "the client connection stayed open after the upstream closed"
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
    JSON naming the client certificate's common name (None without one). With `client_ca` it
    requests a client certificate, and `require_client` makes one mandatory."""

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


def make_expired_leaf(folder, ca):
    """A certificate for upstream.internal signed by `ca` that expired a day ago: (cert, key)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream.internal")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("upstream.internal")]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / "expired.pem", folder / "expired-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_expired_upstream_certificate_gets_502(start_pomerium, oidc_provider, upstream_pki, tmp_path):
    """The right CA signed the upstream's certificate, but it has expired."""
    upstream = TLSUpstream(*make_expired_leaf(tmp_path, upstream_pki["right"]))
    try:
        port = free_port()
        start_pomerium(base_config(port, issuer=oidc_provider, policy=[
            {"from": "https://app.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True,
             "tls_custom_ca_file": str(upstream_pki["right"][0]), "tls_server_name": "upstream.internal"}]),
            wait_port=port)
        assert plain_get(port, "/")[0] == 502
    finally:
        upstream.stop()


@pytest.fixture
def tls_upstreams(upstream_pki):
    """One upstream that requests but does not require a client certificate, one that requires it."""
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


# -------------------------------------------------------------------------------------------------
# A signed-in stack over TLS: the echo upstream, the mock provider, and a store.


class EchoUpstream(ThreadedUpstream):
    """An upstream that responds to every request with its path; keeps connections open."""

    def _serve(self, connection):
        connection.settimeout(20)
        reader = _Reader(connection)
        try:
            while not self.stopping:
                head = reader.read_until(b"\r\n\r\n")
                if head is None:
                    return
                path = head.decode("latin-1").split(" ", 2)[1].encode()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(path)).encode()
                                   + b"\r\n\r\n" + path)
        except OSError:
            return
        finally:
            connection.close()


@pytest.fixture
def echo_upstream():
    server = EchoUpstream()
    yield server
    server.stop()


class RedisServer:
    """redis-server on a fixed free 127.0.0.1 port without persistence, which a test can kill,
    freeze (SIGSTOP) and start again on the same port."""

    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        self.process = None
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        support.wait_for(lambda: support.port_open(self.port), 10, "redis-server did not start")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def tls_config(port, certificate, issuer, upstream_url, **extra):
    """An all-in-one TLS config with app (alice and admin), admin-only and public routes."""

    def route(host, **more):
        return {"from": f"https://{host}.example.test:{port}", "to": upstream_url, **more}

    settings = {
        "authenticate_service_url": f"https://authenticate.example.test:{port}",
        "idp_client_secret": "failure-attacks-client-secret",
        "policy": [
            route("app", allowed_users=["alice@example.com", "admin@example.com"]),
            route("admin", allowed_users=["admin@example.com"]),
            route("public", allow_public_unauthenticated_access=True),
        ],
    }
    settings.update(extra)
    return base_config(port, certificate=certificate, issuer=issuer, **settings)


@pytest.fixture
def make_stack(start_pomerium, server_certificate, oidc_provider, echo_upstream, tmp_path):
    """A factory: make_stack(port=None, **settings) starts pomerium over TLS and returns its
    description."""
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)

    def make(issuer=oidc_provider, port=None, **extra):
        port = port or free_port()
        config = tls_config(port, server_certificate, issuer, echo_upstream.url, **extra)
        process = start_pomerium(config, wait_port=port, scheme="https")
        return {"port": port, "ca": server_certificate[0], "process": process, "config": config,
                "config_path": tmp_path / "config.json", "issuer": issuer}

    return make


def url(stack, host, path="/"):
    return f"https://{host}.example.test:{stack['port']}{path}"


def sign_in(stack, user, host="app", expect=200):
    """A `requests` session signed in as `user` through the mock provider on `host`. The
    route's upstream returns `expect` to the final plain GET."""
    session = requests_session(stack)
    final, _ = support.login(session, url(stack, host), user)
    assert final.status_code == expect, (final.status_code, final.text[:300])
    return session


def route_cookie(session, host="app"):
    """The route's session cookies from a `requests` session, as a Cookie header value."""
    jar = [item for item in session.cookies if item.domain.startswith(host) and item.name.startswith("_pomerium")]
    assert jar, f"no cookie for {host}"
    return "; ".join(f"{item.name}={item.value}" for item in jar)


def fetch(stack, host, cookie=None, path="/", timeout=10):
    """One GET with only the given Cookie header, no redirects: (status, body)."""
    session = requests_session(stack)
    headers = {"Cookie": cookie} if cookie else {}
    response = session.get(url(stack, host, path), headers=headers, allow_redirects=False, timeout=timeout)
    return response.status_code, response.text


def alive(stack):
    return stack["process"].process.poll() is None


# -------------------------------------------------------------------------------------------------
# Redis killed, restarted and frozen under traffic.


def test_redis_killed_and_restarted_under_traffic(make_stack, redis_server):
    stack = make_stack(cache_store="redis", cache_store_address=redis_server.address)
    alice = route_cookie(sign_in(stack, "alice"))
    assert fetch(stack, "app", alice) == (200, "/")

    redis_server.kill()
    statuses = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(statuses) < 60:
        statuses.append(fetch(stack, "app", alice)[0])
        time.sleep(0.05)
    assert alive(stack)
    # A session seen live within the last minute is still served while the store is down.
    assert set(statuses) <= {200, 503}, statuses
    assert fetch(stack, "public") == (200, "/")

    # A sign-in while the store is down cannot save its session: a clear 5xx, no cookie.
    session = requests_session(stack)
    final, _ = support.login(session, url(stack, "app"), "admin")
    assert 500 <= final.status_code < 600, (final.status_code, final.text[:300])
    assert alive(stack)

    # The restarted Redis is empty: alice's session is gone and must not be served any more.
    redis_server.start()
    support.wait_for(lambda: fetch(stack, "app", alice)[0] == 302, 15, "old session rejected after restart")
    assert fetch(stack, "app", alice)[0] == 302
    # Recovery without a restart of pomerium.
    admin = route_cookie(sign_in(stack, "admin"))
    assert fetch(stack, "admin", route_cookie(sign_in(stack, "admin", host="admin"), host="admin")) == (200, "/")
    assert fetch(stack, "app", admin) == (200, "/")
    assert alive(stack)


def test_unseen_session_during_outage_gets_503(make_stack, redis_server):
    """compatibility.md: while the store fails, a session that was not seen live in the last
    minute gets 503 and keeps its cookie. The browser stops right after the route's callback
    set the cookie, so no proxied request has checked the session yet."""
    stack = make_stack(cache_store="redis", cache_store_address=redis_server.address)
    session, callback = login_until_callback(stack, "alice")
    response = session.get(callback, allow_redirects=False, timeout=10)
    for _ in range(6):
        target = urllib.parse.urljoin(response.url, response.headers["Location"])
        if target == url(stack, "app"):
            break
        response = session.get(target, allow_redirects=False, timeout=10)
    assert target == url(stack, "app"), target
    alice = route_cookie(session)
    redis_server.kill()
    response = requests_session(stack).get(url(stack, "app"), headers={"Cookie": alice}, allow_redirects=False,
                                           timeout=10)
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers
    # The restarted Redis is empty, so the session is gone: sign in again, not 503 any more.
    redis_server.start()
    support.wait_for(lambda: fetch(stack, "app", alice)[0] != 503, 15, "store back")
    assert fetch(stack, "app", alice)[0] == 302


def test_store_outage_at_callback_is_503(make_stack, redis_server):
    """With Redis down, the authenticate service responds to the callback with 503, as the proxy
    does for the same outage, and not with a generic 500."""
    stack = make_stack(cache_store="redis", cache_store_address=redis_server.address)
    session, callback = login_until_callback(stack, "alice")
    redis_server.kill()
    response = session.get(callback, allow_redirects=False, timeout=20)
    assert response.status_code == 503, (response.status_code, response.text[:300])


def test_frozen_redis_fails_in_bounded_time(make_stack, redis_server):
    """A Redis that stops responding (SIGSTOP) without closing its connections: a sign-in, which
    must save to the store, ends in bounded time with a 5xx, and service comes back with Redis."""
    stack = make_stack(cache_store="redis", cache_store_address=redis_server.address)
    alice_session = sign_in(stack, "alice")
    alice = route_cookie(alice_session)
    assert fetch(stack, "app", alice) == (200, "/")
    redis_server.freeze()
    try:
        session = requests_session(stack)
        started = time.monotonic()
        try:
            final, _ = support.login(session, url(stack, "app"), "admin")
            status = final.status_code
        except requests.RequestException as error:
            status = repr(error)
        elapsed = time.monotonic() - started
        assert isinstance(status, int) and 500 <= status < 600, status
        assert elapsed < 15, elapsed
        assert fetch(stack, "public") == (200, "/")
    finally:
        redis_server.thaw()
    assert fetch(stack, "app", alice) == (200, "/")
    admin = route_cookie(sign_in(stack, "admin"))
    assert fetch(stack, "app", admin) == (200, "/")
    assert alive(stack)


def test_sign_out_during_redis_outage_not_reported_done(make_stack, redis_server):
    """A sign-out that cannot delete the session from a frozen store must not show success
    while the session lives on: after Redis comes back, a copy of the cookie must stop working
    if the sign-out returned 200."""
    stack = make_stack(cache_store="redis", cache_store_address=redis_server.address)
    alice_session = sign_in(stack, "alice")
    alice = route_cookie(alice_session)
    assert fetch(stack, "app", alice) == (200, "/")
    redis_server.freeze()
    try:
        try:
            signed_out = alice_session.get(url(stack, "app", "/.pomerium/sign_out"), timeout=20)
            outcome = signed_out.status_code
        except requests.RequestException as error:
            outcome = repr(error)
    finally:
        redis_server.thaw()
    time.sleep(6)
    if outcome == 200:
        assert fetch(stack, "app", alice)[0] != 200, "sign-out returned 200 and the copied cookie still works"


# -------------------------------------------------------------------------------------------------
# The identity provider down or slow during sign-in and refresh.


class ProviderFront:
    """A loopback HTTP front for oidc-provider-mock. It passes requests through with its own
    Host, so the provider's URLs name the front. Token responses get `expires_in` 30, so a
    route session expires 30 seconds after its sign-in. `mode` breaks the token endpoint: "pass",
    "down" (the connection closes without a response), "error" (503 from the provider) or
    "slow" (waits `delay` seconds first)."""

    def __init__(self, backend_port):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        front = self
        self.mode = "pass"
        self.delay = 0.0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *arguments):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/oauth2/token"):
                    if front.mode == "down":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if front.mode == "error":
                        payload = b'{"error":"temporarily_unavailable"}'
                        self.send_response(503)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    if front.mode == "slow":
                        time.sleep(front.delay)

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
        self.server.daemon_threads = True
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
def provider_front(tmp_path):
    port = free_port()
    group = support.ProcessGroup(tmp_path)
    front = None
    try:
        group.start("front-provider", [support.VENV / "oidc-provider-mock", "--host", "127.0.0.1", "--port", port,
                                       "--token-max-age", 30],
                    env={"NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}, port=port)
        front = ProviderFront(port)
        for user, claims in USERS.items():
            support.set_user_claims(front.url, user, claims)
        yield front
    finally:
        if front:
            front.stop()
        group.stop_all()


def login_until_callback(stack, user, host="app"):
    """Signs `user` in at the provider and stops before the callback: (session, callback URL)."""
    session = requests_session(stack)
    page, _ = support.follow(session, session.get(url(stack, host), allow_redirects=False, timeout=10))
    form = support._LoginForm()
    form.feed(page.text)
    assert form.action is not None, page.text[:300]
    posted = session.post(urllib.parse.urljoin(page.url, form.action), data={"sub": user},
                          allow_redirects=False, timeout=10)
    assert posted.is_redirect, posted.status_code
    callback = urllib.parse.urljoin(posted.url, posted.headers["Location"])
    assert "/oauth2/callback" in callback, callback
    return session, callback


@pytest.mark.parametrize("mode", ["down", "error"])
def test_provider_failure_at_callback_then_recovery(make_stack, provider_front, mode):
    """The provider fails between the user's login there and the callback: the callback returns
    502 and sets no session, and a later sign-in works without a restart of pomerium."""
    stack = make_stack(issuer=provider_front.url)
    session, callback = login_until_callback(stack, "alice")
    provider_front.mode = mode
    answer = session.get(callback, allow_redirects=False, timeout=40)
    provider_front.mode = "pass"
    assert answer.status_code == 502, (answer.status_code, answer.text[:300])
    assert not any(item.name == "_pomerium" for item in session.cookies if item.domain.startswith("app"))
    alice = route_cookie(sign_in(stack, "alice"))
    assert fetch(stack, "app", alice) == (200, "/")
    assert alive(stack)


def test_provider_down_or_slow_during_refresh(make_stack, provider_front):
    """Route sessions expire after the provider's 30-second tokens. With the token endpoint
    down, the expired session is not served: the cookie is cleared and the user is sent to sign
    in, and nothing reaches the upstream. An expired global session sends its browser to the
    provider's login instead of into a new route. With the token endpoint slow, only that
    session waits: a public request and a session that needs no refresh get their responses at
    once."""
    stack = make_stack(issuer=provider_front.url)
    alice = route_cookie(sign_in(stack, "alice"))
    admin_session = sign_in(stack, "admin")
    admin = route_cookie(admin_session)
    expires = time.monotonic() + 31
    time.sleep(max(0.0, expires - time.monotonic()))

    provider_front.mode = "down"
    # admin's global session at the authenticate service has expired too: a first visit to
    # another route must not turn it into a route session without a refresh.
    hop = admin_session.get(url(stack, "admin", "/other-route"), allow_redirects=False, timeout=40)
    last, hops = support.follow(admin_session, hop)
    assert last.url.startswith(provider_front.url + "/oauth2/authorize"), hops
    assert not [item for item in admin_session.cookies if item.domain.startswith("admin") and item.name == "_pomerium"]

    response = requests_session(stack).get(url(stack, "app", "/down"), headers={"Cookie": alice},
                                           allow_redirects=False, timeout=40)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    assert "/down" not in response.text
    cleared = [value for name, value in response.raw.headers.items() if name.lower() == "set-cookie"]
    assert any(value.startswith("_pomerium=;") for value in cleared), cleared
    assert alive(stack)

    provider_front.mode = "pass"
    fresh = route_cookie(sign_in(stack, "alice"))
    provider_front.mode = "slow"
    provider_front.delay = 4
    result = {}

    def slow_request():
        started = time.monotonic()
        result["admin"] = fetch(stack, "app", admin, path="/slow", timeout=40)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert fetch(stack, "public", path="/quick") == (200, "/quick")
    assert fetch(stack, "app", fresh, path="/fresh") == (200, "/fresh")
    assert time.monotonic() - started < 1
    thread.join(timeout=40)
    provider_front.mode = "pass"
    assert result["admin"] == (200, "/slow"), result
    assert 3.5 < result["elapsed"] < 10, result
    assert alive(stack)


# -------------------------------------------------------------------------------------------------
# Configuration reloads while requests run.

RELOAD_SECONDS = 10


def rewrite_config(stack, config, name="config.json"):
    """Replaces the config file by rename, as editors and ConfigMaps do."""
    path = stack["config_path"].with_name(name)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(config) if isinstance(config, dict) else config)
    os.replace(temporary, path)


def reloads(stack):
    """How many reloads have swapped in new services. "config reloaded" is logged before the
    swap, so a request right after that line may still meet the previous services."""
    return stack["process"].output().count('"services rebuilt from the reloaded config"')


def without_user(config, email):
    """A copy of `config` whose routes no longer list `email`."""
    copy = json.loads(json.dumps(config))
    for route in copy["policy"]:
        if email in route.get("allowed_users", []):
            route["allowed_users"].remove(email)
    return copy


def test_revoked_grant_applies_to_existing_session(make_stack):
    """A reload that removes alice from the route denies her existing session on the next
    request, also on a connection kept alive from before the reload, while admin keeps access."""
    stack = make_stack()
    alice = route_cookie(sign_in(stack, "alice"))
    admin = route_cookie(sign_in(stack, "admin"))
    kept_alive = requests_session(stack)

    def status_on_kept_alive():
        return kept_alive.get(url(stack, "app"), headers={"Cookie": alice}, allow_redirects=False,
                              timeout=10).status_code

    for _ in range(3):
        assert status_on_kept_alive() == 200
    before = reloads(stack)
    rewrite_config(stack, without_user(stack["config"], "alice@example.com"))
    support.wait_for(lambda: reloads(stack) > before, RELOAD_SECONDS, "reload applied")
    assert status_on_kept_alive() == 403
    assert fetch(stack, "app", alice)[0] == 403
    assert fetch(stack, "app", admin) == (200, "/")


def test_invalid_reload_logs_key_and_file(make_stack):
    """A reload to an invalid file keeps the running routes and names the key and the file."""
    stack = make_stack()
    alice = route_cookie(sign_in(stack, "alice"))
    broken = dict(stack["config"], cookie_secret="c2hvcnQ=")
    rewrite_config(stack, json.dumps(broken, indent=1))
    support.wait_for(lambda: "config reload rejected" in stack["process"].output(), RELOAD_SECONDS, "rejected")
    lines = [json.loads(line) for line in stack["process"].output().splitlines()
             if line.startswith("{") and "config reload:" in line]
    assert any(line.get("key") == "cookie_secret" and "config.json:" in line.get("source", "") for line in lines), \
        lines
    assert all("c2hvcnQ=" not in json.dumps(line) for line in lines)
    assert fetch(stack, "app", alice) == (200, "/")


def test_deleted_config_keeps_serving_then_reloads(make_stack):
    stack = make_stack()
    alice = route_cookie(sign_in(stack, "alice"))
    stack["config_path"].unlink()
    time.sleep(1.5)
    assert alive(stack)
    assert fetch(stack, "app", alice) == (200, "/")
    before = reloads(stack)
    rewrite_config(stack, without_user(stack["config"], "alice@example.com"))
    support.wait_for(lambda: reloads(stack) > before, RELOAD_SECONDS, "reload after the file came back")
    assert fetch(stack, "app", alice)[0] == 403


def test_reload_storm_under_traffic(make_stack):
    """Twenty rewrites alternating between two upstream paths while a client keeps requesting:
    every response is a 200 from one of the two configurations, and the last one wins."""
    stack = make_stack()
    alice = route_cookie(sign_in(stack, "alice"))
    stop = threading.Event()
    seen = []

    def traffic():
        session = requests_session(stack)
        while not stop.is_set() and len(seen) < 2000:
            response = session.get(url(stack, "app", "/x"), headers={"Cookie": alice}, allow_redirects=False,
                                   timeout=10)
            seen.append((response.status_code, response.text))

    thread = threading.Thread(target=traffic)
    thread.start()
    upstream = stack["config"]["policy"][0]["to"]
    try:
        for index in range(20):
            config = json.loads(json.dumps(stack["config"]))
            config["policy"][0]["to"] = f"{upstream}/{'one' if index % 2 else 'two'}"
            rewrite_config(stack, config)
            time.sleep(0.15)
    finally:
        time.sleep(3)
        stop.set()
        thread.join(timeout=20)
    assert alive(stack)
    assert seen, "no request completed"
    assert set(seen) <= {(200, "/x"), (200, "/one/x"), (200, "/two/x")}, set(seen)
    assert fetch(stack, "app", alice, path="/x") == (200, "/one/x")


# -------------------------------------------------------------------------------------------------
# WebSockets.


@pytest.fixture
def websocket_upstream(tmp_path):
    port = free_port()
    group = support.ProcessGroup(tmp_path)
    try:
        group.start("websocket-echo", [support.VENV / "python", support.ROOT / "tests/fixtures/websocket_echo.py",
                                       "--port", port], port=port)
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop_all()


class RefusingUpstream(ThreadedUpstream):
    """Returns 403 with a body to every upgrade request, as a server that rejects the upgrade."""

    def _serve(self, connection):
        connection.settimeout(10)
        try:
            if _Reader(connection).read_until(b"\r\n\r\n") is None:
                return
            connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused")
        except OSError:
            return
        finally:
            connection.close()


@pytest.fixture
def refusing_upstream():
    server = RefusingUpstream()
    yield server
    server.stop()


def open_websocket(stack, host, cookie=None):
    """A websockets client connection to wss://<host>.example.test:<port>/ws over 127.0.0.1."""
    from websockets.sync.client import connect
    context = ssl.create_default_context(cafile=str(stack["ca"]))
    raw = socket.create_connection(("127.0.0.1", stack["port"]), timeout=10)
    headers = {"Cookie": cookie} if cookie else {}
    return connect(url(stack, host, "/ws").replace("https://", "wss://"), sock=raw, ssl=context,
                   server_hostname=f"{host}.example.test", additional_headers=headers, open_timeout=10)


def upgrade_status(stack, host, cookie=None):
    """Sends a WebSocket upgrade request on a raw TLS connection: (status, body bytes so far)."""
    context = ssl.create_default_context(cafile=str(stack["ca"]))
    with socket.create_connection(("127.0.0.1", stack["port"]), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=f"{host}.example.test") as tls:
            lines = [f"GET /ws HTTP/1.1", f"Host: {host}.example.test:{stack['port']}", "Connection: Upgrade",
                     "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                     "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode()]
            if cookie:
                lines.append(f"Cookie: {cookie}")
            tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            reader = _Reader(tls)
            head = reader.read_until(b"\r\n\r\n")
            assert head is not None, "pomerium closed the connection without a response"
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, (reader.read_exactly(length) if length else b"")


def websocket_routes(stack_port, websocket_url, rejecting_url):
    def route(host, to, **more):
        return {"from": f"https://{host}.example.test:{stack_port}", "to": to, **more}

    return [
        route("ws", websocket_url, allowed_users=["alice@example.com", "admin@example.com"], allow_websockets=True),
        route("nows", websocket_url, allowed_users=["alice@example.com"]),
        route("refuse", rejecting_url, allowed_users=["alice@example.com"], allow_websockets=True),
    ]


@pytest.fixture
def websocket_stack(start_pomerium, server_certificate, oidc_provider, echo_upstream, websocket_upstream,
                    refusing_upstream, tmp_path):
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    port = free_port()
    config = tls_config(port, server_certificate, oidc_provider, echo_upstream.url)
    config["policy"] += websocket_routes(port, websocket_upstream, refusing_upstream.url)
    process = start_pomerium(config, wait_port=port, scheme="https")
    return {"port": port, "ca": server_certificate[0], "process": process, "config": config,
            "config_path": tmp_path / "config.json"}


def test_websocket_with_session_echoes(websocket_stack):
    alice = route_cookie(sign_in(websocket_stack, "alice", host="ws", expect=426), host="ws")
    with open_websocket(websocket_stack, "ws", alice) as connection:
        for index in range(5):
            connection.send(f"message {index}")
            assert connection.recv(timeout=5) == f"message {index}"
        connection.send(b"\x00" * 200000)
        assert connection.recv(timeout=5) == b"\x00" * 200000


def test_websocket_without_session_not_upgraded(websocket_stack):
    assert upgrade_status(websocket_stack, "ws")[0] == 302
    assert upgrade_status(websocket_stack, "ws", "_pomerium=v1.forged")[0] == 302


def test_websocket_denied_user_not_upgraded(websocket_stack):
    support.set_user_claims(websocket_stack["config"]["idp_provider_url"], "mallory",
                            {"email": "mallory@other.test", "groups": []})
    mallory = route_cookie(sign_in_denied(websocket_stack, "mallory", "ws"), host="ws")
    assert upgrade_status(websocket_stack, "ws", mallory)[0] == 403


def sign_in_denied(stack, user, host):
    """Signs in a user whom the route denies; returns the session holding the route cookie."""
    session = requests_session(stack)
    final, _ = support.login(session, url(stack, host), user)
    assert final.status_code == 403, final.status_code
    return session


def test_websocket_route_without_flag_refused(websocket_stack):
    alice = route_cookie(sign_in(websocket_stack, "alice", host="nows", expect=426), host="nows")
    assert upgrade_status(websocket_stack, "nows", alice)[0] == 400


def test_upstream_refusing_upgrade_passes_its_answer(websocket_stack):
    alice = route_cookie(sign_in(websocket_stack, "alice", host="refuse", expect=403), host="refuse")
    assert upgrade_status(websocket_stack, "refuse", alice) == (403, b"refused")
    assert fetch(websocket_stack, "refuse", alice)[0] == 403


def test_websocket_upgrade_after_grant_revoked(websocket_stack):
    """A reload that removes alice from the route rejects her next upgrade with 403."""
    alice = route_cookie(sign_in(websocket_stack, "alice", host="ws", expect=426), host="ws")
    with open_websocket(websocket_stack, "ws", alice) as connection:
        connection.send("before")
        assert connection.recv(timeout=5) == "before"
    before = reloads(websocket_stack)
    rewrite_config(websocket_stack, without_user(websocket_stack["config"], "alice@example.com"))
    support.wait_for(lambda: reloads(websocket_stack) > before, RELOAD_SECONDS, "reload applied")
    assert upgrade_status(websocket_stack, "ws", alice)[0] == 403


# -------------------------------------------------------------------------------------------------
# Forward-auth: routes on one host that differ by path, and unlisted hosts.

# Paths that an application resolves to /admin (after decoding, dot-segment removal, slash
# merging or dropping a path parameter), in the raw form nginx puts into $request_uri.
ADMIN_PATH_VARIANTS = [
    "/admin", "/admin/", "/admin/x", "//admin", "/./admin", "/x/../admin", "/x/..//admin", "/%61dmin",
    "/%2e%2e/admin", "/x/%2e%2e/admin", "/x/.%2e/admin", "/admin%2f", "/x%2f..%2fadmin", "/admin;x=1",
    "/admin?x", "/admin#x", "/x/..;/admin", "/.%2fadmin",
]


def test_verify_path_variants_of_admin_route(make_stack):
    """alice may use app but not its /admin prefix. No spelling of /admin in `uri` may make
    /verify return 200 for her."""
    stack = make_stack()
    port = stack["port"]
    config = json.loads(json.dumps(stack["config"]))
    app = f"https://app.example.test:{port}"
    config["forward_auth_url"] = f"https://fwdauth.example.test:{port}"
    config["policy"] = [
        {"from": app, "to": config["policy"][0]["to"], "prefix": "/admin", "allowed_users": ["admin@example.com"]},
    ] + config["policy"]
    before = reloads(stack)
    rewrite_config(stack, config)
    support.wait_for(lambda: reloads(stack) > before, RELOAD_SECONDS, "reload applied")
    alice = route_cookie(sign_in(stack, "alice"))
    session = requests_session(stack)

    def verify(path, encoded):
        target = app + path
        query = "uri=" + (urllib.parse.quote(target, safe="") if encoded else target)
        response = session.get(url(stack, "fwdauth", "/verify?" + query), headers={"Cookie": alice},
                               allow_redirects=False, timeout=10)
        return response.status_code

    assert verify("/other", encoded=True) == 200
    allowed = [(path, encoded) for path in ADMIN_PATH_VARIANTS for encoded in (True, False)
               if verify(path, encoded) == 200]
    assert allowed == [], allowed


def test_verify_unlisted_host_denied(make_stack):
    """A valid session checked against a host, port or name spelling that no route lists gets
    403, and the forward-auth sign-in page gets 404 for it."""
    stack = make_stack(forward_auth_url="https://fwdauth.example.test")
    alice = route_cookie(sign_in(stack, "alice"))
    session = requests_session(stack)
    port = stack["port"]
    for target in [f"https://unlisted.example.test:{port}/", "https://app.example.test/",
                   f"https://app.example.test:{port + 1}/", f"https://app.example.test.:{port}/",
                   f"https://app.example.test@unlisted.example.test:{port}/"]:
        encoded = urllib.parse.quote(target, safe="")
        response = session.get(url(stack, "fwdauth", "/verify?uri=" + encoded), headers={"Cookie": alice},
                               allow_redirects=False, timeout=10)
        assert response.status_code in (400, 403), (target, response.status_code)
        response = session.get(url(stack, "fwdauth", "/?uri=" + encoded), headers={"Cookie": alice},
                               allow_redirects=False, timeout=10)
        assert response.status_code in (400, 404), (target, response.status_code)


# -------------------------------------------------------------------------------------------------
# Forward-auth through a real nginx with the example configuration.


def nginx_block(pomerium_port, nginx_port, upstream_port):
    """config/examples/forward-auth/nginx.conf for plain HTTP on loopback."""
    from test_forward_auth import example_for_loopback
    return example_for_loopback(pomerium_port, nginx_port, upstream_port)


@pytest.fixture
def nginx_stack(start_pomerium, oidc_provider, echo_upstream, tmp_path):
    """pomerium over plain HTTP serving the example nginx, which protects app.example.test on
    its own port. On that host, /admin is for admin only and the rest for example.com users."""
    from test_forward_auth import nginx_main_config
    for user, claims in USERS.items():
        support.set_user_claims(oidc_provider, user, claims)
    port, nginx_port = free_port(), free_port()
    app = f"http://app.example.test:{nginx_port}"
    config = base_config(
        port, issuer=oidc_provider, cookie_secure=False,
        authenticate_service_url=f"http://authenticate.example.test:{port}",
        forward_auth_url=f"http://fwdauth.example.test:{port}",
        policy=[{"from": app, "to": "http://127.0.0.1:9", "prefix": "/admin", "allowed_users": ["admin@example.com"]},
                {"from": app, "to": "http://127.0.0.1:9", "allowed_domains": ["example.com"]}])
    process = start_pomerium(config, wait_port=port)
    folder = tmp_path / "nginx"
    folder.mkdir()
    (folder / "nginx.conf").write_text(nginx_main_config(folder, nginx_block(port, nginx_port, echo_upstream.port)))
    group = support.ProcessGroup(tmp_path)
    try:
        group.start("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-c", folder / "nginx.conf", "-p", folder,
                              "-e", folder / "error.log"], port=nginx_port)
        yield {"port": port, "nginx_port": nginx_port, "app": app, "process": process}
    finally:
        group.stop_all()


def nginx_sign_in(stack, user):
    """Signs `user` in through nginx; returns the app cookie header value."""
    session = requests.Session()
    session.trust_env = False
    session.headers["Accept"] = "text/html"
    final, _ = support.login(session, stack["app"] + "/start", user)
    assert final.status_code == 200, (final.status_code, final.text[:300])
    assert final.text == "/start"
    cookies = [item for item in session.cookies if item.domain.startswith("app") and item.name.startswith("_pomerium")]
    assert cookies
    return "; ".join(f"{item.name}={item.value}" for item in cookies)


def raw_get(port, target, host, cookie=None):
    """One GET with the target byte for byte: (status, body)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        received = b""
        while len(received) < 1_000_000 and (chunk := connection.recv(65536)):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_nginx_admin_path_variants_stay_denied(nginx_stack):
    """Through nginx, alice reaches the application but no raw spelling of /admin: nginx passes
    $request_uri unnormalised to both the check and the application."""
    alice = nginx_sign_in(nginx_stack, "alice")
    host = f"app.example.test:{nginx_stack['nginx_port']}"
    assert raw_get(nginx_stack["nginx_port"], "/other", host, alice) == (200, b"/other")
    reached = []
    for path in ADMIN_PATH_VARIANTS:
        status, body = raw_get(nginx_stack["nginx_port"], path, host, alice)
        if status == 200:
            reached.append((path, body))
    assert reached == [], reached
    admin = nginx_sign_in(nginx_stack, "admin")
    assert raw_get(nginx_stack["nginx_port"], "/admin/x", host, admin) == (200, b"/admin/x")


def test_nginx_forwarded_headers_from_client_ignored(nginx_stack):
    """A client's X-Forwarded-Uri and -Host cannot move the check from /admin to another path."""
    alice = nginx_sign_in(nginx_stack, "alice")
    host = f"app.example.test:{nginx_stack['nginx_port']}"
    lines = [f"GET /admin HTTP/1.1", f"Host: {host}", "Connection: close", f"Cookie: {alice}",
             "X-Forwarded-Uri: /other", f"X-Forwarded-Host: {host}", "X-Forwarded-Proto: http"]
    with socket.create_connection(("127.0.0.1", nginx_stack["nginx_port"]), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    assert int(received.split(b" ", 2)[1]) == 403, received[:300]



def malformed_user_config(stack):
    config = json.loads(json.dumps(stack["config"]))
    config["policy"][0]["allowed_users"].append("bob")
    config["headers"] = {"X-Generation": "two"}
    return config


def test_unservable_reload_keeps_running_services(make_stack):
    """A reload whose allow list contains an entry that is not an email address is rejected: the
    running policy and headers stay."""
    stack = make_stack()
    alice = route_cookie(sign_in(stack, "alice"))
    rewrite_config(stack, malformed_user_config(stack))
    support.wait_for(lambda: "config reload rejected" in stack["process"].output(), RELOAD_SECONDS,
                     "reload rejected")
    response = requests_session(stack).get(url(stack, "app"), headers={"Cookie": alice}, allow_redirects=False,
                                           timeout=10)
    assert response.status_code == 200
    assert "X-Generation" not in response.headers
    assert alive(stack)


def test_unservable_reload_logged_as_rejected(make_stack):
    """The rejected reload is logged as rejected, with the key and the file of the entry, and
    never as reloaded."""
    stack = make_stack()
    rewrite_config(stack, malformed_user_config(stack))
    support.wait_for(lambda: "could not be served" in stack["process"].output()
                     or "config reload rejected" in stack["process"].output(), RELOAD_SECONDS, "reload handled")
    output = stack["process"].output()
    assert '"config reloaded"' not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    named = [line for line in lines if line.get("key") == "policy[0].allowed_users"]
    assert named, [line for line in lines if line.get("level") == "error"]
    assert all("config.json" in line.get("source", "") for line in named), named


def test_rotated_ca_file_applies_to_pooled_connections(start_pomerium, oidc_provider, upstream_pki, tls_upstreams,
                                                       tmp_path):
    """The route's CA file is replaced by one that does not sign the upstream's certificate. The
    kept-alive connection verified under the old CA must not carry the next request."""
    optional, _ = tls_upstreams
    ca_file = tmp_path / "upstream-ca.pem"
    shutil.copyfile(upstream_pki["right"][0], ca_file)
    port = free_port()
    config = base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://app.example.test", "to": optional.url, "allow_public_unauthenticated_access": True,
         "tls_custom_ca_file": str(ca_file), "tls_server_name": "upstream.internal"}])
    process = start_pomerium(config, wait_port=port)
    stack = {"port": port, "process": process}
    for _ in range(3):
        assert plain_get(port, "/")[0] == 200
    handshakes = optional.handshakes
    before = reloads(stack)
    temporary = tmp_path / "upstream-ca.pem.tmp"
    shutil.copyfile(upstream_pki["wrong"][0], temporary)
    os.replace(temporary, ca_file)
    support.wait_for(lambda: reloads(stack) > before, RELOAD_SECONDS, "reload after the CA file changed")
    statuses = [plain_get(port, "/")[0] for _ in range(3)]
    assert statuses == [502, 502, 502], (statuses, optional.handshakes - handshakes)


def websocket_still_echoes(connection):
    try:
        connection.send("still open?")
        return connection.recv(timeout=3) == "still open?"
    except Exception:  # noqa: BLE001 (any failure means the connection is gone)
        return False


@pytest.mark.parametrize("ending", ["revoked", "signed-out"])
def test_open_websocket_ends_with_its_grant(websocket_stack, ending):
    """An open WebSocket closes within seconds of a reload that removes the user's grant, and of
    the user's sign-out."""
    session = sign_in(websocket_stack, "alice", host="ws", expect=426)
    alice = route_cookie(session, host="ws")
    with open_websocket(websocket_stack, "ws", alice) as connection:
        connection.send("before")
        assert connection.recv(timeout=5) == "before"
        if ending == "revoked":
            before = reloads(websocket_stack)
            rewrite_config(websocket_stack, without_user(websocket_stack["config"], "alice@example.com"))
            support.wait_for(lambda: reloads(websocket_stack) > before, RELOAD_SECONDS, "reload applied")
        else:
            assert session.get(url(websocket_stack, "ws", "/.pomerium/sign_out"), timeout=10).status_code == 200
            assert fetch(websocket_stack, "ws", alice)[0] == 302
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and websocket_still_echoes(connection):
            time.sleep(0.5)
        assert not websocket_still_echoes(connection)


def test_silent_provider_at_callback_times_out(make_stack, provider_front):
    """A token endpoint that does not respond within pomerium's 30-second provider timeout:
    the callback ends with a gateway error after about that long, and meanwhile a public
    request is not held up."""
    stack = make_stack(issuer=provider_front.url)
    session, callback = login_until_callback(stack, "alice")
    provider_front.mode = "slow"
    provider_front.delay = 40
    result = {}

    def complete_callback():
        started = time.monotonic()
        result["status"] = session.get(callback, allow_redirects=False, timeout=60).status_code
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=complete_callback)
    thread.start()
    time.sleep(1)
    started = time.monotonic()
    assert fetch(stack, "public", path="/meanwhile") == (200, "/meanwhile")
    assert time.monotonic() - started < 1
    thread.join(timeout=60)
    provider_front.mode = "pass"
    assert result["status"] in (502, 504), result
    assert 25 < result["elapsed"] < 36, result
    assert alive(stack)


class SlowHandshakeUpstream(ThreadedUpstream):
    """An HTTPS upstream that waits `delay` seconds after accepting before its TLS handshake,
    as a distant or overloaded server does, then responds `ok`."""

    def __init__(self, cert, key, delay):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.delay = delay
        super().__init__()

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def _serve(self, connection):
        connection.settimeout(10)
        try:
            time.sleep(self.delay)
            with self.context.wrap_socket(connection, server_side=True) as tls:
                if _Reader(tls).read_until(b"\r\n\r\n") is not None:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except (OSError, ssl.SSLError):
            return
        finally:
            connection.close()


def test_zero_timeout_waits_for_slow_handshake(start_pomerium, oidc_provider, upstream_pki):
    """timeout: 0 waits without limit for the response and gives connecting 10 s, so a TLS
    handshake that takes 2 s is served."""
    upstream = SlowHandshakeUpstream(*upstream_pki["server"], delay=2)
    try:
        port = free_port()
        config = base_config(port, issuer=oidc_provider, policy=[
            {"from": "https://patient.example.test", "to": upstream.url, "timeout": "0",
             "allow_public_unauthenticated_access": True, "tls_custom_ca_file": str(upstream_pki["right"][0]),
             "tls_server_name": "upstream.internal"}])
        start_pomerium(config, wait_port=port)
        status, _, body = plain_get(port, "/", host="patient.example.test", timeout=20)
        assert (status, body) == (200, b"ok")
    finally:
        upstream.stop()


def test_slow_handshake_within_route_timeout(start_pomerium, oidc_provider, upstream_pki):
    """The same upstream behind a route with `timeout: 5s` is served, and with `timeout: 1s`
    gets 504 after about a second."""
    upstream = SlowHandshakeUpstream(*upstream_pki["server"], delay=2)
    try:
        port = free_port()

        def route(host, timeout):
            return {"from": f"https://{host}.example.test", "to": upstream.url, "timeout": timeout,
                    "allow_public_unauthenticated_access": True,
                    "tls_custom_ca_file": str(upstream_pki["right"][0]), "tls_server_name": "upstream.internal"}

        start_pomerium(base_config(port, issuer=oidc_provider, policy=[route("five", "5s"), route("one", "1s")]),
                       wait_port=port)
        assert plain_get(port, "/", host="five.example.test", timeout=20)[:3:2] == (200, b"ok")
        started = time.monotonic()
        assert plain_get(port, "/", host="one.example.test", timeout=20)[0] == 504
        assert time.monotonic() - started < 1.8
    finally:
        upstream.stop()


@pytest.mark.parametrize("replacement", ["fifo", "device", "directory"])
def test_config_replaced_by_special_file(start_pomerium, oidc_provider, tmp_path, replacement):
    """The config file is replaced by a FIFO, a link to /dev/zero or a directory. The reload must
    reject it without blocking on it, keep serving, and apply the next valid file."""
    port = free_port()
    config = base_config(port, issuer=oidc_provider, headers={"X-Generation": "one"})
    process = start_pomerium(config, wait_port=port)
    path = tmp_path / "config.json"
    special = tmp_path / "special"
    if replacement == "fifo":
        os.mkfifo(special)
    elif replacement == "device":
        special.symlink_to("/dev/zero")
    else:
        special.mkdir()
    if replacement == "directory":
        path.unlink()
        special.rename(path)
    else:
        os.replace(special, path)
    support.wait_for(lambda: "config reload rejected" in process.output(), RELOAD_SECONDS, "reload rejected")
    reasons = [line.lower() for line in process.output().splitlines() if "cannot read config file" in line]
    assert any(replacement in line for line in reasons), reasons
    assert plain_get(port, "/healthz")[0] == 200
    if replacement == "directory":
        path.rmdir()
    temporary = tmp_path / "config.json.tmp"
    temporary.write_text(json.dumps(dict(config, headers={"X-Generation": "two"})))
    os.replace(temporary, path)
    support.wait_for(lambda: dict(plain_get(port, "/healthz")[1]).get("X-Generation") == "two", RELOAD_SECONDS,
                     f"the valid file applied after the {replacement}:\n{process.output()[-2000:]}")


def test_bolt_store_survives_killed_process(make_stack, tmp_path):
    """pomerium is killed with SIGKILL while sign-ins write to the LMDB store. The process
    restarted on the same port opens the same file, and sessions saved before the kill work."""
    store = tmp_path / "sessions.db"
    stack = make_stack(cache_store="bolt", cache_store_path=str(store))
    alice = route_cookie(sign_in(stack, "alice"))
    stop = threading.Event()
    completed = []

    def sign_ins():
        while not stop.is_set() and len(completed) < 50:
            try:
                session = requests_session(stack)
                final, _ = support.login(session, url(stack, "app"), "admin")
            except (requests.RequestException, AssertionError):
                return
            completed.append((final.status_code, route_cookie(session)))

    thread = threading.Thread(target=sign_ins)
    thread.start()
    time.sleep(1.5)
    stack["process"].process.send_signal(signal.SIGKILL)
    stack["process"].process.wait(timeout=10)
    stop.set()
    thread.join(timeout=30)
    assert completed, "no sign-in finished before the kill"
    assert {status for status, _ in completed} == {200}

    restarted = make_stack(cache_store="bolt", cache_store_path=str(store), port=stack["port"])
    assert fetch(restarted, "app", alice) == (200, "/")
    assert fetch(restarted, "app", completed[-1][1]) == (200, "/")
    failures = [line for line in restarted["process"].output().splitlines()
                if '"level":"error"' in line or '"level":"fatal"' in line]
    assert failures == []


class IdleClosingUpstream(ThreadedUpstream):
    """Keeps each connection open after a response (no `Connection: close`), but closes it when
    no new request arrives within `idle` seconds, as servers with a short keep-alive timeout do.
    `idle` 0 closes right after each response."""

    def __init__(self, idle):
        self.idle = idle
        self.connections_served = 0
        super().__init__()

    def _serve(self, connection):
        self.connections_served += 1
        reader = _Reader(connection)
        try:
            while not self.stopping:
                connection.settimeout(self.idle or 5)
                try:
                    head = reader.read_until(b"\r\n\r\n")
                except socket.timeout:
                    return
                if head is None:
                    return
                path = head.decode("latin-1").split(" ", 2)[1].encode()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(path)).encode() + b"\r\n\r\n"
                                   + path)
                if self.idle == 0:
                    return
        except OSError:
            return
        finally:
            connection.close()


@pytest.mark.parametrize("idle", [0, 0.3])
def test_upstream_closing_idle_connections(start_pomerium, oidc_provider, idle):
    """An upstream that closes kept-alive connections after each response, or after 0.3 s idle:
    requests spaced around that idle time get 200, never a 502 from a connection the upstream
    closed while it sat in the pool."""
    upstream = IdleClosingUpstream(idle)
    try:
        port = free_port()
        start_pomerium(base_config(port, issuer=oidc_provider, policy=[
            {"from": "https://app.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True}]),
            wait_port=port)
        statuses = []
        for index in range(12):
            statuses.append(plain_get(port, f"/{index}")[0])
            time.sleep(0.28 + 0.01 * (index % 5))
        assert statuses == [200] * 12, statuses
    finally:
        upstream.stop()


class StallingTunnelUpstream(ThreadedUpstream):
    """Accepts any upgrade with 101 and then never reads from the connection."""

    def _serve(self, connection):
        try:
            if _Reader(connection).read_until(b"\r\n\r\n") is None:
                return
            connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               b"Sec-WebSocket-Accept: x\r\n\r\n")
            deadline = time.monotonic() + 20
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
        except OSError:
            return
        finally:
            connection.close()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_stalled_tunnel(port):
    """Opens an upgraded connection to the stalling upstream and pushes zero bytes into it for
    up to 15 s, until pomerium stops reading: (client socket, bytes sent)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"GET /ws HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = _Reader(client).read_until(b"\r\n\r\n")
    assert head is not None and head.startswith(b"HTTP/1.1 101"), head
    client.settimeout(2)
    piece = b"\x00" * (1024 * 1024)
    sent = 0
    deadline = time.monotonic() + 15
    try:
        while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
            sent += client.send(piece)
    except (socket.timeout, BlockingIOError):
        pass
    return client, sent


def connections_of(pid):
    """The TCP connections (not listeners) that process `pid` holds, as `ss` lines."""
    output = subprocess.run(["ss", "-tnp", "state", "connected"], capture_output=True, text=True, timeout=10).stdout
    return [line for line in output.splitlines() if f"pid={pid}," in line]


@pytest.fixture
def tunnel_stack(start_pomerium, oidc_provider):
    upstream = StallingTunnelUpstream()
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, policy=[
        {"from": "https://app.example.test", "to": upstream.url, "allow_public_unauthenticated_access": True,
         "allow_websockets": True}]), wait_port=port)
    yield {"port": port, "process": process, "upstream": upstream}
    upstream.stop()
    process.stop(sig=signal.SIGKILL)


def test_tunnel_to_stalled_upstream_bounded(tunnel_stack):
    """A client pushes up to 64 MiB into an upgraded connection whose upstream never reads:
    pomerium stops reading from the client instead of buffering it all."""
    pid = tunnel_stack["process"].process.pid
    before = rss_kib(pid)
    client, sent = open_stalled_tunnel(tunnel_stack["port"])
    grown = rss_kib(pid) - before
    client.close()
    assert sent < 48 * 1024 * 1024, f"pomerium accepted {sent >> 20} MiB for a stalled upstream"
    assert grown < 32 * 1024, f"RSS grew by {grown >> 10} MiB"


def test_tunnel_closed_when_both_peers_gone(tunnel_stack):
    """After the client and then the upstream of a stalled tunnel close, pomerium closes both
    sockets at once, not after timeout_idle."""
    client, _ = open_stalled_tunnel(tunnel_stack["port"])
    client.close()
    tunnel_stack["upstream"].stop()
    pid = tunnel_stack["process"].process.pid
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and connections_of(pid):
        time.sleep(0.2)
    assert connections_of(pid) == []
