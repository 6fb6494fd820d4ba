"""Hot reload of the listener settings against the pomerium binary: certificates and the SNI set,
timeouts, log_level and the signing key change without a restart, and open connections stay up."""
import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

from harness import base_config, free_port

RELOAD_SECONDS = 10


def make_certificate(folder, name):
    """A self-signed P-256 certificate for NAME.example.test and 127.0.0.1: (cert, key) paths."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", f"/CN={name}.example.test",
         "-addext", f"subjectAltName=DNS:{name}.example.test,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


def replace_file(source, target):
    """Copies SOURCE over TARGET by rename, as certbot and cert-manager replace files."""
    temporary = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def der(certificate_path):
    return ssl.PEM_cert_to_DER_cert(certificate_path.read_text())


def presented_certificate(port, server_name):
    """The certificate a new TLS connection with SNI SERVER_NAME gets, in DER."""
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def wait_for(condition):
    deadline = time.monotonic() + RELOAD_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def write_config(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))


def test_renewed_certificate_keeps_open_connections(start_pomerium, oidc_provider, tmp_path):
    # The certificates sit apart from the config, as /etc/ssl is apart from /etc/pomerium.
    certificates = tmp_path / "certs"
    certificates.mkdir()
    first = make_certificate(certificates, "first")
    second = make_certificate(certificates, "second")
    live = (certificates / "live.pem", certificates / "live-key.pem")
    replace_file(first[0], live[0])
    replace_file(first[1], live[1])
    port = free_port()
    process = start_pomerium(base_config(port, live, issuer=oidc_provider), wait_port=port, scheme="https")

    open_connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=5, context=ssl._create_unverified_context())
    open_connection.request("GET", "/healthz")
    assert open_connection.getresponse().read() == b"OK\n"
    local_port = open_connection.sock.getsockname()[1]
    assert open_connection.sock.getpeercert(binary_form=True) == der(first[0])

    replace_file(second[0], live[0])
    replace_file(second[1], live[1])
    assert wait_for(lambda: presented_certificate(port, "app.example.test") == der(second[0])), process.output()
    assert "listener certificates replaced" in process.output()

    open_connection.request("GET", "/healthz")
    assert open_connection.getresponse().read() == b"OK\n"
    assert open_connection.sock.getsockname()[1] == local_port, "the keep-alive connection was replaced"
    assert open_connection.sock.getpeercert(binary_form=True) == der(first[0])


def test_mismatched_certificate_is_rejected(start_pomerium, oidc_provider, tmp_path):
    certificates = tmp_path / "certs"
    certificates.mkdir()
    first = make_certificate(certificates, "first")
    second = make_certificate(certificates, "second")
    live = (certificates / "live.pem", certificates / "live-key.pem")
    replace_file(first[0], live[0])
    replace_file(first[1], live[1])
    port = free_port()
    process = start_pomerium(base_config(port, live, issuer=oidc_provider), wait_port=port, scheme="https")

    # A renewal that replaced the certificate but not its key.
    replace_file(second[0], live[0])
    assert wait_for(lambda: "config reload rejected" in process.output()), process.output()
    rejected = [line for line in process.output().splitlines() if '"level":"error"' in line]
    assert any("certificate_file" in line and str(live[0]) in line for line in rejected), rejected
    assert presented_certificate(port, "app.example.test") == der(first[0])
    assert "listener certificates replaced" not in process.output()


def test_reload_adds_a_certificate_to_the_sni_set(start_pomerium, oidc_provider, tmp_path):
    certificates = tmp_path / "certs"
    certificates.mkdir()
    first = make_certificate(certificates, "first")
    extra = make_certificate(certificates, "extra")
    port = free_port()
    config = base_config(port, first, issuer=oidc_provider)
    process = start_pomerium(config, wait_port=port, scheme="https")
    assert presented_certificate(port, "extra.example.test") == der(first[0])

    config["certificates"] = [{"cert_file": str(extra[0]), "key_file": str(extra[1])}]
    write_config(tmp_path, config)
    assert wait_for(lambda: presented_certificate(port, "extra.example.test") == der(extra[0])), process.output()
    assert presented_certificate(port, "first.example.test") == der(first[0])


def test_timeouts_and_log_level_reload_for_new_connections(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    config = base_config(port, issuer=oidc_provider, log_level="info", timeout_idle="1m")
    process = start_pomerium(config, wait_port=port)
    older = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    older.request("GET", "/healthz")
    older.getresponse().read()
    older_port = older.sock.getsockname()[1]
    assert '"message":"http-request"' not in process.output()

    config.update(log_level="debug", timeout_idle="1s")
    write_config(tmp_path, config)
    assert wait_for(lambda: "listener timeouts changed" in process.output()), process.output()
    assert "log level changed" in process.output()
    assert "needs a restart" not in process.output()

    newer = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    newer.request("GET", "/healthz")
    newer.getresponse().read()
    assert wait_for(lambda: '"message":"http-request"' in process.output()), process.output()

    # The new connection has the 1 s idle timeout; the older one keeps its 1 minute.
    time.sleep(2.5)
    newer.sock.settimeout(2)
    assert newer.sock.recv(1) == b"", "the server kept a connection idle past the reloaded timeout_idle"
    older.request("GET", "/healthz")
    assert older.getresponse().read() == b"OK\n"
    assert older.sock.getsockname()[1] == older_port


def jwks_key_ids(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/.well-known/pomerium/jwks.json", headers={"Host": "authenticate.example.test"})
    response = connection.getresponse()
    assert response.status == 200
    return [key["kid"] for key in json.loads(response.read())["keys"]]


def ec_key():
    pem = subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"],
                         capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(pem).decode()


def test_new_signing_key_is_published_with_the_previous_one(start_pomerium, oidc_provider, tmp_path):
    port = free_port()
    config = base_config(port, issuer=oidc_provider, signing_key=ec_key())
    process = start_pomerium(config, wait_port=port)
    [old_kid] = jwks_key_ids(port)

    config["signing_key"] = ec_key()
    write_config(tmp_path, config)
    assert wait_for(lambda: len(jwks_key_ids(port)) == 2), process.output()
    new_kid, previous_kid = jwks_key_ids(port)
    assert previous_kid == old_kid
    assert new_kid != old_kid
    assert "assertion signing key changed" in process.output()
    assert "needs a restart" not in process.output()
