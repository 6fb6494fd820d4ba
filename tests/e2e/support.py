"""Helpers of the end-to-end tests: name resolution to 127.0.0.1, a browserless login through
oidc-provider-mock, and processes that are always stopped."""
import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3.util.connection

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".build/venv/bin"
# Test-only secrets, base64 of 32 bytes, shared by every end-to-end config.
COOKIE_SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
SHARED_SECRET = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
TEST_DOMAINS = (".example.test", ".localhost")

_original_create_connection = urllib3.util.connection.create_connection


def _loopback_create_connection(address, *args, **kwargs):
    host, port = address
    if host.endswith(TEST_DOMAINS) or host == "localhost":
        host = "127.0.0.1"
    return _original_create_connection((host, port), *args, **kwargs)


def resolve_test_domains_to_loopback():
    """Makes `requests` connect to 127.0.0.1 for *.example.test, keeping the name for TLS and Host."""
    urllib3.util.connection.create_connection = _loopback_create_connection


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout, message):
    """Polls `predicate` every 50 ms until it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process with its output in a file; `stop` is safe to call twice."""

    def __init__(self, name, arguments, folder, env=None, cwd=None):
        self.name = name
        self.log_path = Path(folder) / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.popen = subprocess.Popen(
            [str(item) for item in arguments], stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode


class ProcessGroup:
    """Every process a test starts; `stop_all` runs in the fixture finalizer, even on failure."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.processes = []

    def start(self, name, arguments, env=None, cwd=None, port=None, timeout=30):
        process = Process(name, arguments, self.folder, env=env, cwd=cwd)
        self.processes.append(process)
        if port is not None:
            wait_for(lambda: port_open(port) or not process.alive(), timeout, f"{name} listening on {port}")
            assert process.alive(), f"{name} exited:\n{process.output()}"
        return process

    def stop_all(self):
        for process in reversed(self.processes):
            process.stop()


class _LoginForm(HTMLParser):
    """The first POST form with a `sub` input: the mock provider's login form."""

    def __init__(self):
        super().__init__()
        self.action = None
        self._current = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and (attributes.get("method") or "get").lower() == "post":
            self._current = {"action": attributes.get("action") or "", "fields": set()}
        elif tag in ("input", "button") and self._current is not None and attributes.get("name"):
            self._current["fields"].add(attributes["name"])

    def handle_endtag(self, tag):
        if tag == "form" and self._current is not None:
            if "sub" in self._current["fields"] and self.action is None:
                self.action = self._current["action"]
            self._current = None


def follow(session, response, limit=15):
    """Follows redirects one hop at a time; returns the last response and the URLs visited."""
    hops = []
    while response.is_redirect and len(hops) < limit:
        target = urljoin(response.url, response.headers["Location"])
        hops.append(target)
        response = session.get(target, allow_redirects=False, timeout=10)
    return response, hops


def set_user_claims(issuer, user, claims):
    """Stores the claims the mock provider releases for `user`."""
    response = requests.put(f"{issuer}/users/{quote(user, safe='')}", json=claims, timeout=10)
    assert response.status_code == 204, response.text


def login(session, url, user):
    """Opens `url`, logs `user` in at the mock provider and returns the final response and all hops."""
    response, hops = follow(session, session.get(url, allow_redirects=False, timeout=10))
    form = _LoginForm()
    form.feed(response.text)
    assert response.status_code == 200, f"{response.url}: {response.status_code} {response.text[:300]}"
    assert form.action is not None, f"no provider login form at {response.url}: {response.text[:300]}"
    login_url = urljoin(response.url, form.action)
    posted = session.post(login_url, data={"sub": user}, allow_redirects=False, timeout=10)
    final, more = follow(session, posted)
    return final, hops + more


def tls_context(ca_file):
    return ssl.create_default_context(cafile=str(ca_file))


def raw_https_connection(port, host, ca_file):
    """A kept-alive HTTPS connection to 127.0.0.1:port that sends `host` as SNI and Host."""
    connection = http.client.HTTPSConnection(host, port, timeout=10, context=tls_context(ca_file))
    connection.sock = tls_context(ca_file).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=host)
    return connection
