"""The pomerium listener run as a user would: health checks, TLS, the redirect listener, headers,
graceful stop, startup errors and config reload, against the release binary."""
import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from harness import base_config, free_port


def curl(*arguments):
    result = subprocess.run(
        ["curl", "-s", "-S", "--max-time", "10", *arguments], capture_output=True, text=True, timeout=30)
    return result


def test_health_and_ping_over_tls_with_the_configured_certificate(start_pomerium, server_certificate, oidc_provider):
    port = free_port()
    start_pomerium(base_config(port, server_certificate, issuer=oidc_provider), wait_port=port, scheme="https")
    cert = str(server_certificate[0])
    resolve = f"authenticate.example.test:{port}:127.0.0.1"
    result = curl("--cacert", cert, "--resolve", resolve, "-i", f"https://authenticate.example.test:{port}/healthz")
    assert result.returncode == 0, result.stderr
    head, body = result.stdout.split("\n\n", 1)
    assert head.startswith("HTTP/1.1 200")
    assert body == "OK\n"
    assert "Strict-Transport-Security: max-age=31536000; includeSubDomains; preload" in head
    assert "X-Frame-Options: SAMEORIGIN" in head
    request_id = next(line.split(": ", 1)[1] for line in head.split("\n") if line.startswith("Request-Id: "))
    assert [len(part) for part in request_id.split("-")] == [8, 4, 4, 4, 12]

    ping = curl("--cacert", cert, f"https://127.0.0.1:{port}/ping")
    assert ping.stdout.startswith("pomerium/0.7.")

    refused = curl("--cacert", cert, "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}",
                   f"https://127.0.0.1:{port}/healthz")
    assert refused.stdout == "405"


def test_tls_refuses_plain_http_and_old_protocols(start_pomerium, server_certificate, oidc_provider):
    port = free_port()
    start_pomerium(base_config(port, server_certificate, issuer=oidc_provider), wait_port=port, scheme="https")
    plain = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/healthz")
    assert plain.stdout != "200"
    old = curl("--cacert", str(server_certificate[0]), "--tlsv1.1", "--tls-max", "1.1",
               f"https://127.0.0.1:{port}/healthz")
    assert old.returncode != 0


def test_http_redirect_keeps_path_and_query(start_pomerium, server_certificate, oidc_provider):
    port, redirect_port = free_port(), free_port()
    start_pomerium(
        base_config(port, server_certificate, issuer=oidc_provider, http_redirect_addr=f"127.0.0.1:{redirect_port}"),
        wait_port=port, scheme="https")
    connection = http.client.HTTPConnection("127.0.0.1", redirect_port, timeout=5)
    connection.request("GET", "/reports/2024?page=2&sort=name", headers={"Host": "app.example.test"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://app.example.test:{port}/reports/2024?page=2&sort=name"
    assert response.getheader("Connection") == "close"


def test_insecure_server_and_custom_headers(start_pomerium, oidc_provider):
    port = free_port()
    config = base_config(port, issuer=oidc_provider, headers={"X-Custom": "yes", "X-Frame-Options": "DENY"})
    start_pomerium(config, wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("HEAD", "/healthz")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("X-Custom") == "yes"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Strict-Transport-Security") is None


@pytest.mark.parametrize("host, path", [
    ("authenticate.example.test", "/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fapp.example.test%2F"),
    ("unknown.example.test", "/"),
])
def test_request_id_header_matches_page_and_log(start_pomerium, oidc_provider, host, path):
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, log_level="debug"), wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers={"Host": host, "Accept": "application/json"})
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status >= 400
    request_id = response.getheader("Request-Id")
    assert request_id and len(request_id) == 36
    assert request_id in body
    process.stop()
    logged = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    assert any(line.get("req_id") == request_id or line.get("request_id") == request_id for line in logged)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_cleanly_after_the_running_request(start_pomerium, oidc_provider, sig):
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider), wait_port=port)
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()
    assert process.stop(sig) == 0
    assert time.monotonic() - started < 5, "an idle keep-alive connection must not hold up the stop"
    idle.close()
    output = process.output()
    assert '"message":"stopped"' in output


def test_json_logs_carry_the_service_and_obey_log_level(start_pomerium, oidc_provider):
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, log_level="info"), wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/healthz")
    connection.getresponse().read()
    process.stop()
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    assert lines, process.output()
    assert all(line["service"] == "all" for line in lines)
    assert not [line for line in lines if line["level"] == "debug"]
    assert any(line["message"] == "pomerium started" for line in lines)


def test_pomerium_debug_writes_console_lines(start_pomerium, oidc_provider):
    port = free_port()
    process = start_pomerium(base_config(port, issuer=oidc_provider, pomerium_debug=True), wait_port=port)
    process.stop()
    output = process.output()
    assert "pomerium started" in output
    assert not any(line.startswith("{") for line in output.splitlines())


def test_authorize_mode_is_refused_naming_services(start_pomerium, oidc_provider):
    process = start_pomerium(
        base_config(free_port(), issuer=oidc_provider, services="authorize", grpc_address="127.0.0.1:0"))
    assert process.process.wait(timeout=20) == 1
    assert "services" in process.output()
    assert "gRPC" in process.output()


def test_port_in_use_names_the_address(start_pomerium, oidc_provider):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process = start_pomerium(base_config(port, issuer=oidc_provider))
        assert process.process.wait(timeout=20) == 1
    assert f"address 127.0.0.1:{port}" in process.output()


def test_bolt_store_in_a_missing_folder_names_cache_store_path(start_pomerium, oidc_provider, tmp_path):
    path = tmp_path / "missing" / "bolt.db"
    process = start_pomerium(
        base_config(free_port(), issuer=oidc_provider, cache_store="bolt", cache_store_path=str(path)))
    assert process.process.wait(timeout=20) == 1
    assert "cache_store_path" in process.output()


def test_unreachable_redis_names_cache_store_address(start_pomerium, oidc_provider):
    process = start_pomerium(
        base_config(free_port(), issuer=oidc_provider, cache_store="redis",
                    cache_store_address=f"127.0.0.1:{free_port()}"))
    assert process.process.wait(timeout=30) == 1
    assert "cache_store_address" in process.output()


def test_generated_signing_key_is_stored_once_and_reused(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    key_file = tmp_path / "signing-key.pem"
    config = base_config(port, issuer=oidc_provider, signing_key_file=str(key_file))
    start_pomerium(config, wait_port=port).stop()
    assert key_file.is_file()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    first = key_file.read_text()
    assert "PRIVATE KEY" in first
    start_pomerium(config, name="again.json", wait_port=port).stop()
    assert key_file.read_text() == first


def test_reload_applies_new_headers_and_keeps_open_connections(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    config = base_config(port, issuer=oidc_provider, headers={"X-Generation": "one"})
    process = start_pomerium(config, wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert response.getheader("X-Generation") == "one"
    local_port = connection.sock.getsockname()[1]

    config["headers"] = {"X-Generation": "two"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    deadline = time.monotonic() + 10
    seen = "one"
    while time.monotonic() < deadline and seen != "two":
        time.sleep(0.1)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        seen = response.getheader("X-Generation")
    assert seen == "two", process.output()
    assert connection.sock.getsockname()[1] == local_port, "the keep-alive connection was replaced"
    assert '"message":"config reloaded"' in process.output()


def test_invalid_reload_keeps_the_running_config(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    config = base_config(port, issuer=oidc_provider, headers={"X-Generation": "one"})
    process = start_pomerium(config, wait_port=port)
    (tmp_path / "config.json").write_text('{"policy": [{"from": "not a url"}]')
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "config reload rejected" not in process.output():
        time.sleep(0.1)
    assert "config reload rejected" in process.output()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().getheader("X-Generation") == "one"


def test_restart_only_key_is_logged_as_needing_a_restart(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    config = base_config(port, issuer=oidc_provider)
    process = start_pomerium(config, wait_port=port)
    config["idp_scopes"] = ["openid", "email"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "needs a restart" not in process.output():
        time.sleep(0.1)
    assert "needs a restart" in process.output()


def test_clients_that_hang_up_early_do_not_stop_the_process(start_pomerium, server_certificate, oidc_provider):
    port = free_port()
    process = start_pomerium(base_config(port, server_certificate, issuer=oidc_provider), wait_port=port,
                             scheme="https")
    context = ssl._create_unverified_context()
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        tls = context.wrap_socket(raw, server_hostname="app.example.test")
        tls.sendall(b"GET /ping HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
        # Reset instead of a clean close, while the response is on its way.
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        tls.close()
    time.sleep(0.2)
    assert process.process.poll() is None, process.output()
    process.wait_ready(port, scheme="https")


def test_unreachable_provider_names_idp_provider_url(start_pomerium):
    dead = f"http://127.0.0.1:{free_port()}"
    process = start_pomerium(base_config(free_port(), issuer=dead))
    assert process.process.wait(timeout=60) == 1
    assert "idp_provider_url" in process.output()
    assert dead in process.output()
    # The fatal line gives the hint once, not once per layer.
    fatal = next(line for line in process.output().splitlines() if line.startswith("pomerium:"))
    assert fatal.count("check idp_provider_url") == 1, fatal


def test_proxy_mode_starts_without_the_provider_and_reloads(start_pomerium, tmp_path):
    port = free_port()
    config = base_config(port, services="proxy", headers={"X-Generation": "one"}, grpc_insecure=True,
                         authorize_service_url="http://127.0.0.1:5443", signing_key_file=str(tmp_path / "key.pem"))
    process = start_pomerium(config, wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/", headers={"Host": "app.example.test"})
    response = connection.getresponse()
    response.read()
    assert response.status != 404, "the proxy does not serve its route"
    # v0.7 crashed when an instance without the authorize service reloaded.
    config["headers"] = {"X-Generation": "two"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline and seen != "two":
        time.sleep(0.1)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        seen = response.getheader("X-Generation")
    assert seen == "two", process.output()
    assert process.process.poll() is None
    assert "PRIVATE KEY" in (tmp_path / "key.pem").read_text()


def test_proxy_mode_without_a_signing_key_names_the_settings(start_pomerium):
    config = base_config(free_port(), services="proxy", grpc_insecure=True,
                         authorize_service_url="http://127.0.0.1:5443")
    process = start_pomerium(config)
    assert process.process.wait(timeout=20) == 1
    assert "signing_key_file" in process.output()


def test_authenticate_mode_answers_only_its_host(start_pomerium, oidc_provider):
    port = free_port()
    key = subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"],
                         capture_output=True, check=True, timeout=30).stdout
    start_pomerium(base_config(port, issuer=oidc_provider, services="authenticate", grpc_insecure=True,
                               cache_service_url="http://127.0.0.1:5443",
                               signing_key=base64.b64encode(key).decode()), wait_port=port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/", headers={"Host": "app.example.test"})
    response = connection.getresponse()
    assert response.status == 404
    assert response.read() == b"404 page not found\n"
    connection.request("GET", "/.well-known/pomerium/jwks.json", headers={"Host": "authenticate.example.test"})
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["keys"]
