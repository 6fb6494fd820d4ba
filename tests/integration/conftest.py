"""Shared pytest fixtures: the product binary and free loopback ports."""
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pomerium_binary() -> Path:
    """The pomerium executable under test: $POMERIUM_BINARY, else the release build."""
    path = Path(os.environ.get("POMERIUM_BINARY", ROOT / ".build/release/pomerium"))
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it with: swift build -c release --product pomerium")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


import signal
import ssl
import subprocess
import time
import http.client


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


def base_config(port, certificate=None, issuer="http://127.0.0.1:9", **extra):
    """A valid all-in-one config as a dict; `certificate` is a (cert, key) pair, else plain HTTP."""
    config = {
        "address": f"127.0.0.1:{port}",
        "authenticate_service_url": "https://authenticate.example.test",
        "idp_provider": "oidc",
        "idp_provider_url": issuer,
        "idp_client_id": "client",
        "idp_client_secret": "secret",
        "cookie_secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "shared_secret": "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
        "policy": [{"from": "https://app.example.test", "to": "http://127.0.0.1:9",
                    "allow_public_unauthenticated_access": True}],
    }
    if certificate:
        config["certificate_file"], config["certificate_key_file"] = str(certificate[0]), str(certificate[1])
    else:
        config["insecure_server"] = True
    config.update(extra)
    return config


class Pomerium:
    """One pomerium process; stop() sends SIGTERM and waits, kill() is the fallback."""

    def __init__(self, binary, config_path, env=None, cwd=None):
        self.log_path = Path(str(config_path) + ".log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(binary), "-config", str(config_path)], stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd)

    def output(self):
        return self.log_path.read_text()

    def wait_ready(self, port, scheme="http", timeout=20.0):
        """Polls /healthz until it answers 200; fails with the process output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"pomerium exited with {self.process.returncode}:\n{self.output()}")
            try:
                if scheme == "https":
                    connection = http.client.HTTPSConnection(
                        "127.0.0.1", port, timeout=2, context=ssl._create_unverified_context())
                else:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
                connection.close()
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail(f"pomerium did not answer /healthz on port {port} within {timeout}s:\n{self.output()}")

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops the process and returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not self.log.closed:
            self.log.close()
        return self.process.returncode


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
