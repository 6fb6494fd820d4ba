"""Fixtures of the end-to-end tests: the release binary, the mock provider with preset users, the
demo upstream, Redis, and a `stack` factory that starts pomerium in front of them. Every process
is stopped in a finalizer, also when a test fails."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import support  # noqa: E402

support.resolve_test_domains_to_loopback()

ROOT = support.ROOT
ARTIFACTS = ROOT / "artifacts"
VENV = support.VENV
COOKIE_SECRET = support.COOKIE_SECRET
SHARED_SECRET = support.SHARED_SECRET
USERS = {
    "alice": {"email": "alice@example.com", "name": "Alice", "groups": ["devs"]},
    "mallory": {"email": "mallory@other.test", "name": "Mallory", "groups": []},
}


@pytest.fixture(scope="session")
def pomerium_binary():
    path = Path(os.environ.get("POMERIUM_BINARY", ROOT / ".build/release/pomerium"))
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it with: swift build -c release --product pomerium")
    return path


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for *.example.test and 127.0.0.1: (cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=pomerium-e2e",
         "-addext", "subjectAltName=DNS:*.example.test,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="session")
def provider(tmp_path_factory):
    """oidc-provider-mock with the preset users; yields the issuer URL."""
    folder = tmp_path_factory.mktemp("provider")
    group = support.ProcessGroup(folder)
    port = support.free_port()
    try:
        group.start(
            "provider", [VENV / "oidc-provider-mock", "--host", "127.0.0.1", "--port", port],
            env={"NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}, port=port)
        issuer = f"http://127.0.0.1:{port}"
        for user, claims in USERS.items():
            support.set_user_claims(issuer, user, claims)
        yield issuer
    finally:
        group.stop_all()


class Stack:
    """pomerium on one port in front of the demo upstream; hosts are NAME.example.test:PORT."""

    def __init__(self, group, binary, folder, certificate, issuer, upstream_port, port, store, redis_address):
        self.group = group
        self.binary = binary
        self.folder = Path(folder)
        self.certificate = certificate
        self.issuer = issuer
        self.upstream_port = upstream_port
        self.port = port
        self.config_path = self.folder / f"config-{port}.yaml"
        self.routes = [
            {"from": self.url("app"), "to": f"http://127.0.0.1:{upstream_port}", "allowed_domains": ["example.com"]},
            {"from": self.url("other"), "to": f"http://127.0.0.1:{upstream_port}", "allowed_domains": ["example.com"]},
            {"from": self.url("public"), "to": f"http://127.0.0.1:{upstream_port}",
             "allow_public_unauthenticated_access": True},
        ]
        self.settings = {
            "address": f"127.0.0.1:{port}",
            "authenticate_service_url": self.url("authenticate"),
            "idp_provider": "oidc",
            "idp_provider_url": issuer,
            "idp_client_id": "pomerium-e2e",
            "idp_client_secret": "pomerium-e2e-secret",
            "cookie_secret": COOKIE_SECRET,
            "shared_secret": SHARED_SECRET,
            "certificate_file": str(certificate[0]),
            "certificate_key_file": str(certificate[1]),
            "signing_key_file": str(self.folder / "signing-key.pem"),
            "jwt_claims_headers": ["email", "groups"],
        }
        if store == "bolt":
            self.settings.update(cache_store="bolt", cache_store_path=str(self.folder / "sessions.db"))
        elif store == "redis":
            self.settings.update(cache_store="redis", cache_store_address=redis_address)
        self.process = None

    def url(self, name, path="/"):
        return f"https://{name}.example.test:{self.port}{path}"

    def write_config(self):
        # JSON is valid YAML; the .yaml name keeps the file in the form users write.
        self.config_path.write_text(json.dumps({**self.settings, "policy": self.routes}, indent=1))

    def start(self):
        self.write_config()
        self.process = self.group.start(
            f"pomerium-{self.port}", [self.binary, "-config", self.config_path], cwd=self.folder, port=self.port)
        support.wait_for(self.healthy, 20, f"pomerium on {self.port} answering /healthz")
        return self

    def healthy(self):
        try:
            return self.session().get(self.url("app", "/healthz"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        return self.process.stop()

    def session(self):
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.certificate[0])
        session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
        return session


@pytest.fixture
def redis_address(tmp_path):
    group = support.ProcessGroup(tmp_path)
    port = support.free_port()
    try:
        group.start(
            "redis", [shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", port,
                      "--save", "", "--appendonly", "no", "--dir", tmp_path], port=port)
        yield f"127.0.0.1:{port}"
    finally:
        group.stop_all()


@pytest.fixture
def stack(pomerium_binary, certificate, provider, tmp_path):
    """A factory: stack(store=..., redis=...) starts an upstream and pomerium, both stopped at the end."""
    group = support.ProcessGroup(tmp_path)
    upstreams = {}

    def start(store="memory", redis=None, port=None, **overrides):
        """`overrides` replace settings; a value of None removes the setting."""
        port = port or support.free_port()
        upstream_port = support.free_port()
        group.start(
            f"upstream-{upstream_port}",
            [VENV / "python", ROOT / "scripts/demo/upstream.py", "--port", upstream_port,
             "--jwks-url", f"https://authenticate.example.test:{port}/.well-known/pomerium/jwks.json",
             "--ca-file", certificate[0], "--resolve", "authenticate.example.test:127.0.0.1"],
            port=upstream_port)
        upstreams[port] = upstream_port
        app = Stack(group, pomerium_binary, tmp_path, certificate, provider, upstream_port, port, store, redis)
        for key, value in overrides.items():
            if value is None:
                app.settings.pop(key, None)
            else:
                app.settings[key] = value
        return app.start()

    try:
        yield start
    finally:
        group.stop_all()
