"""Shared pytest fixtures: the product binary, a certificate, the identity provider and started
pomerium processes. Plain helpers are in harness.py."""
import http.client
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import ROOT, Pomerium, base_config, free_port  # noqa: F401 (also importable from here)


@pytest.fixture(scope="session")
def pomerium_binary() -> Path:
    """The pomerium executable under test: $POMERIUM_BINARY, else the release build."""
    path = Path(os.environ.get("POMERIUM_BINARY", ROOT / ".build/release/pomerium"))
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it with: swift build -c release --product pomerium")
    return path


@pytest.fixture(scope="session")
def server_certificate(tmp_path_factory):
    """A self-signed P-256 certificate for *.example.test, localhost and 127.0.0.1: (cert, key) paths."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=pomerium-test",
         "-addext", "subjectAltName=DNS:*.example.test,DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """oidc-provider-mock on a free 127.0.0.1 port; yields its issuer URL."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("provider") / "provider.log", "w")
    process = subprocess.Popen(
        [str(ROOT / ".build/venv/bin/oidc-provider-mock"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/.well-known/openid-configuration")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("oidc-provider-mock did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def start_pomerium(pomerium_binary, tmp_path):
    """Starts pomerium with a config dict written as JSON; every process is stopped at the end."""
    started = []

    def start(config, name="config.json", env=None, wait_port=None, scheme="http"):
        import json
        path = tmp_path / name
        path.write_text(json.dumps(config))
        process = Pomerium(pomerium_binary, path, env=env, cwd=tmp_path)
        started.append(process)
        if wait_port:
            process.wait_ready(wait_port, scheme=scheme)
        return process

    yield start
    for process in started:
        process.stop()
