"""Helpers the integration tests import: free loopback ports, a base config and the pomerium
process wrapper. They live here, not in conftest.py, because tests/e2e has a conftest.py too and
a test run over both folders would import the wrong one."""
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
        """Polls /healthz until it returns 200; fails with the process output otherwise."""
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
