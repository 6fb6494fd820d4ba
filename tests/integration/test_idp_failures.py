"""Logins against an identity provider whose token endpoint sends broken responses.

A small provider runs in this process on a free 127.0.0.1 port. Its discovery document and JWKS
are valid, and its token endpoint picks the broken response by the authorization code it
receives, so each test chooses the failure by the code it sends to the callback. Pomerium must
respond with a gateway or authentication error page, and its log must state the cause without
any token.
"""

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http.client
import pytest

from harness import base_config, free_port

# Larger than the 1 MiB limit that pomerium puts on any identity provider response.
OVERSIZED_BYTES = 2 * 1024 * 1024
TOKEN_CANARY = "TOKENCANARY-do-not-log"


class HostileProvider(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *arguments):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # Pomerium stops reading an oversized response and closes the connection.
            pass

    def do_GET(self):
        issuer = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/.well-known/openid-configuration":
            self.reply(200, {
                "issuer": issuer,
                "authorization_endpoint": issuer + "/auth",
                "token_endpoint": issuer + "/token",
                "jwks_uri": issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })
        elif self.path == "/jwks":
            self.reply(200, {"keys": []})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        code = form.get("code", "")
        if code == "oversized":
            padding = "x" * OVERSIZED_BYTES
            self.reply(200, {"access_token": TOKEN_CANARY, "token_type": "Bearer", "padding": padding})
        elif code == "malformed-id-token":
            self.reply(200, {"access_token": TOKEN_CANARY, "token_type": "Bearer", "id_token": "a.b.c"})
        else:
            self.reply(400, {"error": "invalid_grant"})


@pytest.fixture
def hostile_provider():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), HostileProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def request(port, host, target, cookies=None):
    """Send one GET with `Host: host`; return (status, headers as a list of pairs, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    connection.request("GET", target, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheaders(), body


def set_cookies(headers):
    cookies = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            cookie_name, _, cookie_value = pair.partition("=")
            cookies[cookie_name] = cookie_value
    return cookies


def location(headers):
    return next(value for name, value in headers if name.lower() == "location")


def callback_with_code(port, code):
    """Start a login on the app route and return the callback's (status, body) for `code`."""
    status, headers, _ = request(port, "app.example.test", "/")
    assert status == 302
    sign_in = urllib.parse.urlsplit(location(headers))
    assert sign_in.hostname == "authenticate.example.test"
    status, headers, _ = request(port, "authenticate.example.test", f"{sign_in.path}?{sign_in.query}")
    assert status == 302, f"sign_in answered {status}"
    authorize = urllib.parse.urlsplit(location(headers))
    state = dict(urllib.parse.parse_qsl(authorize.query))["state"]
    query = urllib.parse.urlencode({"code": code, "state": state})
    status, _, body = request(
        port, "authenticate.example.test", f"/oauth2/callback?{query}", cookies=set_cookies(headers))
    return status, body.decode("utf-8", errors="replace")


@pytest.fixture
def pomerium_with_provider(start_pomerium, hostile_provider):
    port = free_port()
    config = base_config(
        port, issuer=hostile_provider, cookie_secure=False,
        policy=[{"from": "https://app.example.test", "to": "http://127.0.0.1:9",
                 "allowed_users": ["user@example.test"]}])
    process = start_pomerium(config, wait_port=port)
    return port, process


def test_oversized_token_response_logged(pomerium_with_provider):
    port, process = pomerium_with_provider
    status, body = callback_with_code(port, "oversized")
    assert status == 502
    # The provider responded, so the page must not tell the user to retry a dead provider.
    assert "unreachable" not in body
    assert "invalid response" in body
    log = process.output()
    assert re.search(r"login failed at the identity provider.*larger than", log), log[-3000:]
    assert TOKEN_CANARY not in log


def test_malformed_id_token_reason_logged(pomerium_with_provider):
    port, process = pomerium_with_provider
    status, _ = callback_with_code(port, "malformed-id-token")
    assert status == 401
    log = process.output()
    assert re.search(r"login failed at the identity provider.*malformed token", log), log[-3000:]
    assert TOKEN_CANARY not in log
