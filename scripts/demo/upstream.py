"""The demo upstream: shows the identity that pomerium forwarded, after verifying it.

It reads X-Pomerium-Jwt-Assertion, verifies the ES256 signature with the public keys that pomerium
publishes at /.well-known/pomerium/jwks.json (fetched from --jwks-url, cached, refetched when a key
id is unknown), checks `exp`/`iat` with one minute of leeway and that `aud` names the host the
browser requested, and returns an HTML page (or JSON for Accept: application/json) with the claims.

usage: upstream.py --port PORT --jwks-url URL [--ca-file FILE] [--resolve HOST:ADDRESS]

--resolve connects to ADDRESS for the JWKS URL's HOST (as curl --resolve does), keeping HOST for
the TLS name check and the Host header: Python cannot resolve *.localhost or *.example.test here.
"""
import argparse
import html
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

LEEWAY_SECONDS = 60


class KeySet:
    """The JWKS document, fetched on demand and again when a token names an unknown key."""

    def __init__(self, url, ca_file, resolve=None):
        self.url = url
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.resolve = resolve or {}
        self.keys = {}
        self.fetched_at = 0.0
        self.lock = threading.Lock()

    def key_for(self, key_id):
        with self.lock:
            if key_id not in self.keys and time.time() - self.fetched_at > 5:
                self.refresh()
            return self.keys.get(key_id)

    def refresh(self):
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.hostname in self.resolve:
            document = json.loads(self.fetch_resolved(parsed))
        else:
            with urllib.request.urlopen(self.url, timeout=5, context=self.context) as response:
                document = json.load(response)
        self.keys = {item["kid"]: jwt.PyJWK(item).key for item in document.get("keys", []) if "kid" in item}
        self.fetched_at = time.time()

    def fetch_resolved(self, parsed):
        """GET the URL from the address that --resolve names for its host."""
        address = self.resolve[parsed.hostname]
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        sock = socket.create_connection((address, port), timeout=5)
        if parsed.scheme == "https":
            context = self.context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=parsed.hostname)
        connection = http.client.HTTPConnection(parsed.hostname, port, timeout=5)
        connection.sock = sock
        connection.request("GET", parsed.path or "/", headers={"Host": parsed.netloc, "Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        if response.status != 200:
            raise OSError(f"JWKS request to {self.url} failed with status {response.status}")
        return body


def make_handler(key_set):
    class DemoHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            assertion = self.headers.get("X-Pomerium-Jwt-Assertion")
            host = (self.headers.get("X-Forwarded-Host") or self.headers.get("Host") or "").lower()
            result = {"verified": False, "host": host}
            if not assertion:
                result["error"] = "no X-Pomerium-Jwt-Assertion header"
            else:
                try:
                    key_id = jwt.get_unverified_header(assertion).get("kid")
                    key = key_set.key_for(key_id)
                    if key is None:
                        raise jwt.InvalidTokenError(f"unknown key id {key_id!r}")
                    claims = jwt.decode(
                        assertion, key, algorithms=["ES256"], audience=host, leeway=LEEWAY_SECONDS
                    )
                    result.update(verified=True, claims=claims)
                except Exception as error:  # every failure is shown, none is fatal
                    result["error"] = f"{type(error).__name__}: {error}"
            if "application/json" in (self.headers.get("Accept") or ""):
                body = json.dumps(result, indent=2).encode()
                content_type = "application/json"
            else:
                body = render_page(result).encode()
                content_type = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return DemoHandler


def render_page(result):
    rows = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(json.dumps(value))}</td></tr>"
        for name, value in sorted(result.get("claims", {}).items())
    )
    status = "verified" if result["verified"] else "NOT verified: " + html.escape(result.get("error", ""))
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Demo upstream</title>"
        "<style>body{font-family:sans-serif;margin:2rem}th{text-align:left;padding-right:1rem}</style>"
        f"<h1>Hello from the demo upstream</h1><p>Identity assertion: <strong>{status}</strong></p>"
        f"<table>{rows}</table><p><a href='/.pomerium/'>Your session</a></p></html>"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--ca-file")
    parser.add_argument("--resolve", action="append", default=[], help="HOST:ADDRESS for the JWKS URL")
    arguments = parser.parse_args()
    resolve = dict(item.rsplit(":", 1) for item in arguments.resolve)
    key_set = KeySet(arguments.jwks_url, arguments.ca_file, resolve)
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), make_handler(key_set))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
