"""Request size limits of the authenticate service, seen from a raw socket."""

import socket
import time

import pytest

from harness import base_config, free_port


@pytest.fixture
def authenticate_port(start_pomerium, oidc_provider):
    port = free_port()
    start_pomerium(base_config(port, issuer=oidc_provider), wait_port=port)
    return port


def read_status_line(connection, timeout):
    """Return the first line that the server sends within `timeout` seconds, or None."""
    connection.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = connection.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0] if b"\r\n" in data else None


def test_declared_oversized_body_rejected_at_once(authenticate_port):
    # The head declares 200 000 bytes and no body byte follows, so the 413 must not wait for them.
    with socket.create_connection(("127.0.0.1", authenticate_port), timeout=10) as connection:
        connection.sendall(
            b"POST /.pomerium/sign_out HTTP/1.1\r\n"
            b"Host: authenticate.example.test\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 200000\r\n\r\n")
        status_line = read_status_line(connection, timeout=3)
    assert status_line is not None, "no response while the declared body was outstanding"
    assert status_line.startswith(b"HTTP/1.1 413 ")


def test_small_body_still_reaches_endpoint(authenticate_port):
    body = b"pomerium_csrf=x"
    with socket.create_connection(("127.0.0.1", authenticate_port), timeout=10) as connection:
        connection.sendall(
            b"POST /.pomerium/sign_out HTTP/1.1\r\n"
            b"Host: authenticate.example.test\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = read_status_line(connection, timeout=5)
    assert status_line is not None
    assert not status_line.startswith(b"HTTP/1.1 413 ")
