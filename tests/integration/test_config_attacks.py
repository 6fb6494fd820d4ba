"""Hostile and broken configurations fed to `pomerium -validate`, run as a user would.

Each test writes its own files under tmp_path and runs the binary with a minimal environment.
Nothing here opens a network connection, because the loader only parses the hosts that the
configurations name (under example.test and 127.0.0.1). Tests marked xfail(strict=True) describe
bugs that are still open. Once a bug is fixed its test passes, and strict mode reports that
XPASS as a failure so the mark gets removed.
"""

import base64
import datetime
import json
import os
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Recognizable secret values, so a leak into the output is easy to find.
COOKIE_SECRET = base64.b64encode(b"COOKIESECRETCOOKIESECRETCOOKIE12").decode()
SHARED_SECRET = base64.b64encode(b"SHAREDSECRETSHAREDSECRETSHARED12").decode()
IDP_CLIENT_SECRET = "IDPCANARYSECRET-donotprint-7781"
REDIS_PASSWORD = "REDISCANARYPASS-1234"
URL_PASSWORD = "hunter2canary"
SECRET_MARKERS = [
    COOKIE_SECRET,
    "COOKIESECRET",
    SHARED_SECRET,
    "SHAREDSECRET",
    IDP_CLIENT_SECRET,
    REDIS_PASSWORD,
    URL_PASSWORD,
    "-----BEGIN",
]

# The wall-clock budget of one -validate run. On the two-core development machine, shared with
# other builds, a debug build needed at most 0.2 s for the small inputs here (measured, not a limit).
FAST_SECONDS = 5

# A minimal valid all-in-one configuration. Tests add top-level keys or replace these.
BASE = {
    "insecure_server": "true",
    "cookie_secret": COOKIE_SECRET,
    "authenticate_service_url": "https://authenticate.corp.example.test",
    "idp_provider": "google",
    "idp_client_id": "client-id",
    "idp_client_secret": IDP_CLIENT_SECRET,
}
ROUTE = (
    "policy:\n"
    "  - from: https://app.corp.example.test\n"
    "    to: http://127.0.0.1:8000\n"
    "    allowed_users: [a@example.test]\n"
)


def yaml_text(extra="", drop=(), route=True):
    """Return BASE as YAML without the keys in `drop`, followed by `extra` and a route."""
    lines = [f"{key}: {value}" for key, value in BASE.items() if key not in drop]
    return "\n".join(lines) + "\n" + extra + ("\n" + ROUTE if route else "\n")


def validate(binary, path=None, env=None, timeout=60):
    """Run `pomerium [-config path] -validate` and return (completed process, seconds)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    environment.update(env or {})
    command = [str(binary)] + (["-config", str(path)] if path is not None else []) + ["-validate"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, env=environment, timeout=timeout)
    return result, time.monotonic() - started


def output_of(result):
    return (result.stdout + result.stderr).decode("utf-8", errors="replace")


def problems_of(result):
    """Return the `error:` and `warning:` lines, without those about missing required settings."""
    return [
        line
        for line in output_of(result).splitlines()
        if line.startswith(("error:", "warning:")) and ": default: " not in line
    ]


def effective_settings(result):
    """Return the output from the "effective settings" line on, which every format must reproduce."""
    text = output_of(result)
    return text[text.index("effective settings") :]


def assert_clean_exit(result):
    """Check that the run ended by exit(0) or exit(1), with no signal, Swift runtime trap or backtrace."""
    text = output_of(result)
    assert result.returncode in (0, 1), f"exit status {result.returncode}:\n{text[-2000:]}"
    for marker in ("Fatal error", "Program crashed", "Backtracing", "Signal "):
        assert marker not in text


def assert_no_secret(result):
    text = output_of(result)
    for marker in SECRET_MARKERS:
        assert marker not in text, f"{marker!r} appears in the output"


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def make_certificate(common_name, not_before_days=-1, not_after_days=365):
    """Return (certificate PEM, key PEM) of a self-signed P-256 certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=not_before_days))
        .not_valid_after(now + datetime.timedelta(days=not_after_days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """Write certificate and key files: a valid pair, a second pair, an expired and a future one."""
    directory = tmp_path_factory.mktemp("certificates")
    paths = {}
    for label, before, after in (("good", -1, 365), ("other", -1, 365), ("expired", -30, -1), ("future", 30, 60)):
        certificate, key = make_certificate(label, before, after)
        (directory / f"{label}.crt").write_bytes(certificate)
        (directory / f"{label}.key").write_bytes(key)
        paths[label] = (directory / f"{label}.crt", directory / f"{label}.key")
    signing_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    paths["signing"] = base64.b64encode(signing_key).decode()
    return paths


# ---------------------------------------------------------------------------------------------
# A realistic v0.7 configuration, and the same settings in every format.


def realistic_settings(certificates):
    certificate, key = certificates["good"]
    return {
        "services": "all",
        "address": ":8443",
        "http_redirect_addr": ":8080",
        "metrics_address": "127.0.0.1:9090",
        "certificate_file": str(certificate),
        "certificate_key_file": str(key),
        "shared_secret": SHARED_SECRET,
        "cookie_secret": COOKIE_SECRET,
        "cookie_domain": "corp.example.test",
        "cookie_secure": False,
        "cookie_http_only": True,
        "cookie_expire": "1h30m",
        "authenticate_service_url": "https://authenticate.corp.example.test",
        "idp_provider": "oidc",
        "idp_provider_url": "https://idp.example.test/realms/corp",
        "idp_client_id": "pomerium-client",
        "idp_client_secret": IDP_CLIENT_SECRET,
        "idp_scopes": ["openid", "email"],
        "administrators": ["admin@example.test", "root@example.test"],
        "signing_key": certificates["signing"],
        "headers": {"X-Frame-Options": "DENY", "X-Test": "a b"},
        "jwt_claims_headers": ["email", "groups"],
        "default_upstream_timeout": "45s",
        "timeout_idle": "1.5h",
        "grpc_client_timeout": "300ms",
        "grpc_server_max_connection_age_grace": "2m",
        "cache_store": "redis",
        "cache_store_address": "redis://127.0.0.1:6379/2",
        "cache_store_password": REDIS_PASSWORD,
        "tracing_provider": "jaeger",
        "tracing_jaeger_agent_endpoint": "127.0.0.1:6831",
        "log_level": "warn",
        "pomerium_debug": True,
        "policy": [
            {
                "from": "https://httpbin.corp.example.test",
                "to": "http://127.0.0.1:8000",
                "allowed_domains": ["example.test"],
                "timeout": "30s",
                "cors_allow_preflight": True,
            },
            {
                "from": "https://public.corp.example.test",
                "to": "http://127.0.0.1:8081/static?x=1",
                "allow_public_unauthenticated_access": True,
            },
            {
                "from": "https://ws.corp.example.test:8443",
                "to": "http://127.0.0.1:8082",
                "allowed_users": ["a@example.test", "b@example.test"],
                "allowed_groups": ["ops"],
                "allow_websockets": True,
                "preserve_host_header": True,
                "set_request_headers": {"X-Route": "ws"},
            },
            {
                "from": "https://mtls.corp.example.test",
                "to": "https://127.0.0.1:9443",
                "allowed_users": ["alice@example.test"],
                "tls_server_name": "mtls.internal",
                "tls_custom_ca_file": str(certificates["other"][0]),
                "tls_client_cert_file": str(certificates["other"][0]),
                "tls_client_key_file": str(certificates["other"][1]),
            },
        ],
    }


def scalar_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def to_yaml(settings):
    lines = []
    for key, value in settings.items():
        if key == "policy":
            lines.append("policy:")
            for route in value:
                prefix = "  - "
                for field, field_value in route.items():
                    lines.append(f"{prefix}{field}: {scalar_text(field_value)}")
                    prefix = "    "
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {json.dumps(name)}: {json.dumps(text)}" for name, text in value.items()]
        elif isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {json.dumps(item)}" for item in value]
        else:
            lines.append(f"{key}: {scalar_text(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(name)} = {toml_value(text)}" for name, text in value.items()) + " }"
    return json.dumps(value)


def to_toml(settings):
    lines = [f"{key} = {toml_value(value)}" for key, value in settings.items() if key not in ("policy", "headers")]
    lines.append("[headers]")
    lines += [f"{json.dumps(name)} = {json.dumps(text)}" for name, text in settings["headers"].items()]
    for route in settings["policy"]:
        lines.append("[[policy]]")
        lines += [f"{field} = {toml_value(value)}" for field, value in route.items()]
    return "\n".join(lines) + "\n"


def to_properties(settings):
    lines = []

    def emit(key, value):
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for index, item in enumerate(value):
                emit(f"{key}.{index}", item)
        elif isinstance(value, list):
            lines.append(f"{key} = {', '.join(value)}")
        elif isinstance(value, dict):
            for name, text in value.items():
                emit(f"{key}.{name}", text)
        else:
            lines.append(f"{key} = {value}")

    for key, value in settings.items():
        emit(key, value)
    return "\n".join(lines) + "\n"


def to_environment(settings):
    environment = {}
    for key, value in settings.items():
        name = key.upper()
        if key == "policy":
            environment[name] = base64.b64encode(json.dumps(value).encode()).decode()
        elif key == "headers":
            environment[name] = json.dumps(value)
        elif isinstance(value, bool):
            environment[name] = "true" if value else "false"
        elif isinstance(value, list):
            environment[name] = ",".join(value)
        else:
            environment[name] = value
    return environment


def test_realistic_v07_config_validates(pomerium_binary, tmp_path, certificates):
    path = write(tmp_path, "config.yaml", to_yaml(realistic_settings(certificates)))
    result, seconds = validate(pomerium_binary, path)
    assert result.returncode == 0, output_of(result)
    # This build serves no metrics and exports no traces, so each setting gives a warning.
    problems = problems_of(result)
    assert [line.split(": ")[0] for line in problems] == ["warning", "warning"], problems
    assert any(": metrics_address: " in line for line in problems), problems
    assert any(": tracing_provider: " in line for line in problems), problems
    assert "configuration is valid (2 warnings)" in output_of(result)
    assert_no_secret(result)
    assert seconds < FAST_SECONDS


@pytest.mark.parametrize("form", ["json", "toml", "properties", "environment"])
def test_formats_give_same_settings(pomerium_binary, tmp_path, certificates, form):
    settings = realistic_settings(certificates)
    reference, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", to_yaml(settings)))
    assert reference.returncode == 0, output_of(reference)
    if form == "environment":
        result, _ = validate(pomerium_binary, env=to_environment(settings))
    else:
        writers = {"json": lambda s: json.dumps(s, indent=2), "toml": to_toml, "properties": to_properties}
        result, _ = validate(pomerium_binary, write(tmp_path, f"config.{form}", writers[form](settings)))
    assert result.returncode == 0, output_of(result)
    assert effective_settings(result) == effective_settings(reference)


def test_environment_forms_of_values(pomerium_binary):
    route = "- from: https://app.corp.example.test\n  to: http://127.0.0.1:8000\n  allowed_users: [a@example.test]\n"
    environment = {key.upper(): value for key, value in BASE.items()}
    environment.update(
        {
            "POLICY": base64.b64encode(route.encode()).decode(),
            "HEADERS": "X-Frame-Options:DENY,X-B:c",
            "COOKIE_EXPIRE": "1h30m",
            "COOKIE_SECURE": "F",
            "ADMINISTRATORS": "a@example.test, b@example.test",
            "GRPC_SERVER_MAX_CONNECTION_AGE_GRACE": "7m",
        }
    )
    result, _ = validate(pomerium_binary, env=environment)
    text = output_of(result)
    assert result.returncode == 0, text
    assert 'headers: X-B="c", X-Frame-Options="DENY"' in text
    assert "cookie_expire: 1h30m0s" in text
    assert "cookie_secure: false" in text
    assert "administrators: a@example.test,b@example.test" in text
    assert "grpc_server_max_connection_age_grace: 7m0s" in text
    assert "policy[0]: from=https://app.corp.example.test" in text


# ---------------------------------------------------------------------------------------------
# Breaking changes of the upgrade notes.


@pytest.mark.parametrize(
    ("extra", "drop", "severity", "expected"),
    [
        ("policy_file: policy.yaml", (), "error", "policy_file was removed in v0.0.5"),
        ("authenticate_internal_url: https://authenticate.internal.example.test", (), "warning", "removed in v0.4.0"),
        ("cookie_refresh: 30m", (), "warning", "removed in v0.6.0"),
        ("insecure_server: false", ("insecure_server",), "error", "no server certificate is set"),
        ("cookie_samesite: None\ncookie_secure: false", (), "error", "SameSite=None cookies without Secure"),
        ("service: proxy", (), "warning", 'did you mean "services"?'),
        ("scope: [openid]", (), "warning", 'did you mean "idp_scopes"?'),
    ],
)
def test_upgrade_note_messages(pomerium_binary, tmp_path, extra, drop, severity, expected):
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=drop)))
    text = output_of(result)
    assert result.returncode == (1 if severity == "error" else 0), text
    assert any(line.startswith(severity + ":") and expected in line for line in text.splitlines()), text
    assert_no_secret(result)


def test_upgrade_note_policy_file_variable(pomerium_binary, tmp_path):
    path = write(tmp_path, "config.yaml", yaml_text())
    result, _ = validate(pomerium_binary, path, env={"POLICY_FILE": "/etc/pomerium/policy.yaml"})
    assert result.returncode == 1
    assert "error: environment variable POLICY_FILE" in output_of(result)


def test_scheme_less_route_from(pomerium_binary, tmp_path):
    route = (
        "policy:\n  - from: httpbin.corp.beyondperimeter.com\n    to: http://httpbin\n"
        "    allowed_domains:\n      - pomerium.io\n"
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert result.returncode == 1
    [problem] = problems_of(result)
    assert "config.yaml:" in problem
    assert "policy[0].from" in problem
    assert "https://httpbin.corp.beyondperimeter.com" in problem


def test_public_route_with_allow_list(pomerium_binary, tmp_path):
    route = (
        "policy:\n  - from: https://app.corp.example.test\n    to: http://127.0.0.1:8000\n"
        "    allow_public_unauthenticated_access: true\n    allowed_users: [a@example.test]\n"
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert result.returncode == 1
    assert any("policy[0].allowed_users" in line for line in problems_of(result))


# ---------------------------------------------------------------------------------------------
# Malformed files: each gives exit 1 with a file:line error, quickly and without a crash.


def alias_bomb():
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [" + ",".join([previous] * 10) + "]")
    lines.append("administrators: *a8")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("tab.yaml", "insecure_server: true\n\tcookie_name: x\n", "tab.yaml:2:"),
        ("unclosed.yaml", 'cookie_name: "abc\nidp_provider: google\n', "invalid yaml"),
        ("duplicate.yaml", "cookie_name: a\ncookie_name: b\n", 'duplicate key "cookie_name"'),
        ("bomb.yaml", alias_bomb(), "expands to more than"),
        ("deep.yaml", "administrators: " + "[" * 50000 + "]" * 50000 + "\n", "nesting deeper than"),
        ("deep.json", '{"administrators": ' + "[" * 50000 + "]" * 50000 + "}", "nesting deeper than"),
        ("deep.toml", "administrators = " + "[" * 50000 + "]" * 50000 + "\n", "nesting deeper than"),
        ("binary.yaml", bytes(range(256)) * 16, "invalid yaml"),
        ("nul.yaml", b"cookie_name: a\x00b\n", "invalid yaml"),
        ("utf8.yaml", b"cookie_name: a\xff\xfeb\n", "invalid yaml"),
        ("list.yaml", "- a\n- b\n", "not a list"),
        ("format.hcl", "cookie_name = x\n", "the .hcl format is not supported"),
        ("latin1.properties", b"cookie_name = caf\xe9\n", "not valid UTF-8"),
    ],
)
def test_malformed_file_rejected(pomerium_binary, tmp_path, name, content, expected):
    result, seconds = validate(pomerium_binary, write(tmp_path, name, content))
    assert_clean_exit(result)
    assert result.returncode == 1
    assert any(expected in line and name in line for line in problems_of(result)), output_of(result)
    assert seconds < FAST_SECONDS


def test_empty_file_reports_missing_settings(pomerium_binary, tmp_path):
    result, _ = validate(pomerium_binary, write(tmp_path, "empty.yaml", ""))
    assert_clean_exit(result)
    assert result.returncode == 1
    assert "error: default: cookie_secret: is required" in output_of(result)


def test_large_comment_file_loads(pomerium_binary, tmp_path):
    content = yaml_text() + "# " + "x" * (50 * 1024 * 1024) + "\n"
    result, seconds = validate(pomerium_binary, write(tmp_path, "big.yaml", content))
    assert result.returncode == 0, output_of(result)[-2000:]
    assert seconds < 10


@pytest.mark.parametrize("kind", ["directory", "fifo", "dev-zero", "symlink-loop", "missing"])
def test_unusual_config_path_fails_fast(pomerium_binary, tmp_path, kind):
    path = tmp_path / "config.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "symlink-loop":
        path.symlink_to(tmp_path / "other.yaml")
        (tmp_path / "other.yaml").symlink_to(path)
    result, seconds = validate(pomerium_binary, path, timeout=20)
    assert_clean_exit(result)
    assert result.returncode == 1
    assert str(path) in output_of(result) or "config.yaml" in output_of(result)
    assert seconds < FAST_SECONDS


def test_ten_thousand_routes_load_quickly(pomerium_binary, tmp_path):
    routes = "".join(
        f"  - from: https://r{index}.corp.example.test\n    to: http://127.0.0.1:{1024 + index}\n"
        f"    allowed_users: [u{index}@example.test]\n"
        for index in range(10_000)
    )
    result, seconds = validate(
        pomerium_binary, write(tmp_path, "routes.yaml", yaml_text("policy:\n" + routes, route=False))
    )
    assert result.returncode == 0, output_of(result)[-2000:]
    assert "policy: 10000 routes" in output_of(result)
    assert seconds < FAST_SECONDS


# ---------------------------------------------------------------------------------------------
# Wrong types and values: an error that names the key and the file:line, and the fix.


@pytest.mark.parametrize(
    ("extra", "drop", "expected"),
    [
        ("services: [all]", (), "services: expects a single value but has a list"),
        ("administrators: {a: b}", (), "administrators: expects a list but has a map"),
        ("headers: [a, b]", (), "headers: expects a map of names to values but has a list"),
        ("cookie_expire: 30", (), 'cookie_expire: "30" has no unit'),
        ("cookie_expire: -1h", (), 'cookie_expire: "-1h" is negative'),
        ("cookie_expire: 1e999", (), 'cookie_expire: "1e999" is not a duration'),
        ("cookie_expire: 9999999999h", (), 'cookie_expire: "9999999999h" is not a duration'),
        ("cookie_expire: 2562047h47m16.854775808s", (), "is not a duration"),
        ("insecure_server: maybe", ("insecure_server",), 'insecure_server: "maybe" is not a boolean'),
        ("authenticate_service_url: authenticate.corp.example.test", ("authenticate_service_url",), "has no scheme"),
        ("cache_store: memcached", (), '"memcached" is not a cache store'),
        ("tracing_provider: zipkin", (), '"zipkin" is not supported'),
        ("idp_provider: github", ("idp_provider",), '"github" is not a known identity provider'),
    ],
)
def test_wrong_value_names_key_and_line(pomerium_binary, tmp_path, extra, drop, expected):
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=drop)))
    assert_clean_exit(result)
    assert result.returncode == 1
    problems = problems_of(result)
    assert any(expected in line and "config.yaml:" in line for line in problems), output_of(result)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("COOKIE_EXPIRE", "30", "environment variable COOKIE_EXPIRE: cookie_expire"),
        ("COOKIE_SECURE", "yes", "environment variable COOKIE_SECURE: cookie_secure"),
        ("POLICY", "W3siZnJvbSI6!!!", "environment variable POLICY"),
        (
            "POLICY",
            base64.b64encode(b"- from: https://a.example.test\n  to: http://127.0.0.1:1\n  timeout: 30\n").decode(),
            "POLICY, line 3",
        ),
        ("HEADERS", "garbage", "environment variable HEADERS"),
    ],
)
def test_bad_environment_value_names_variable(pomerium_binary, tmp_path, variable, value, expected):
    path = write(tmp_path, "config.yaml", yaml_text())
    result, _ = validate(pomerium_binary, path, env={variable: value})
    assert_clean_exit(result)
    assert result.returncode == 1
    assert any(expected in line for line in problems_of(result)), output_of(result)


# ---------------------------------------------------------------------------------------------
# Secrets: rejected with a message about the key, and never printed.


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("cookie_secret", base64.b64encode(b"COOKIESECRETCOOKIESECRETCOOKIE1").decode(), "decodes to 31 bytes"),
        ("cookie_secret", base64.b64encode(b"COOKIESECRETCOOKIESECRETCOOKIE123").decode(), "decodes to 33 bytes"),
        ("cookie_secret", f'"{COOKIE_SECRET} "', "contains whitespace"),
        ("cookie_secret", f'"{COOKIE_SECRET[:8]}\\t{COOKIE_SECRET[8:]}"', "contains whitespace"),
        ("cookie_secret", '"COOKIESECRET!!not-base64"', "is not valid base64"),
        ("shared_secret", base64.b64encode(b"SHAREDSECRETSHAREDSECRETSHARED1").decode(), "decodes to 31 bytes"),
        ("shared_secret", f'"{SHARED_SECRET}\\n"', "contains whitespace"),
    ],
)
def test_bad_secret_rejected_without_echo(pomerium_binary, tmp_path, key, value, expected):
    path = write(tmp_path, "config.yaml", yaml_text(f"{key}: {value}", drop=(key,)))
    result, _ = validate(pomerium_binary, path)
    assert result.returncode == 1
    assert any(f"{key}: {expected}" in line for line in problems_of(result)), output_of(result)
    assert_no_secret(result)


def test_secrets_redacted_in_effective_settings(pomerium_binary, tmp_path):
    extra = (
        f"shared_secret: {SHARED_SECRET}\ncache_store: redis\n"
        f'cache_store_address: "redis://admin:{URL_PASSWORD}@127.0.0.1:6379/0"\n'
        f"cache_store_password: {REDIS_PASSWORD}\n"
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra)))
    assert result.returncode == 0, output_of(result)
    text = output_of(result)
    assert "cookie_secret: [redacted]" in text
    assert "idp_client_secret: [redacted]" in text
    assert_no_secret(result)


def test_syntax_error_hides_secret(pomerium_binary, tmp_path):
    content = f'idp_client_secret: "{IDP_CLIENT_SECRET}\nfoo: 1\n'
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", content))
    assert result.returncode == 1
    assert_no_secret(result)


# ---------------------------------------------------------------------------------------------
# Certificates and keys.


def test_certificate_problems(pomerium_binary, tmp_path, certificates):
    good_certificate, good_key = certificates["good"]
    _, other_key = certificates["other"]
    garbage = write(tmp_path, "garbage.pem", "this is not a PEM file\n")
    cases = {
        "mismatch": (good_certificate, other_key, "the private key does not match the certificate"),
        "not-pem": (garbage, good_key, "no certificate could be read"),
        "missing": (tmp_path / "missing.pem", good_key, "does not exist"),
    }
    for label, (certificate, key, expected) in cases.items():
        extra = f"certificate_file: {certificate}\ncertificate_key_file: {key}"
        path = write(tmp_path, f"{label}.yaml", yaml_text(extra, drop=("insecure_server",)))
        result, _ = validate(pomerium_binary, path)
        assert result.returncode == 1, label
        assert any("certificate_file" in line and expected in line for line in problems_of(result)), label
        assert_no_secret(result)


def test_expired_certificate_warns(pomerium_binary, tmp_path, certificates):
    certificate, key = certificates["expired"]
    extra = f"certificate_file: {certificate}\ncertificate_key_file: {key}"
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=("insecure_server",))))
    assert result.returncode == 0
    assert any(line.startswith("warning:") and "has expired" in line for line in problems_of(result))


def test_signing_key_wrong_curve_or_type(pomerium_binary, tmp_path, certificates):
    certificate, _ = certificates["good"]
    extra = f"signing_key: {base64.b64encode(certificate.read_bytes()).decode()}"
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra)))
    assert result.returncode == 1
    assert any("signing_key: is not a P-256 private key" in line for line in problems_of(result))


# ---------------------------------------------------------------------------------------------
# Routes.


def route_text(**fields):
    body = "".join(f"    {name}: {value}\n" for name, value in fields.items())
    return "policy:\n  - " + body.lstrip()


def test_route_from_with_path_suggests_prefix(pomerium_binary, tmp_path):
    route = route_text(
        **{
            "from": "https://app.corp.example.test/app",
            "to": "http://127.0.0.1:8000",
            "allowed_users": "[a@example.test]",
        }
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert result.returncode == 1
    assert any("policy[0].from" in line and "prefix: /app" in line for line in problems_of(result))


@pytest.mark.parametrize("regex", ['"^/api/(v1|v2"', '"*"', '"a{1000000000}"'])
def test_route_regex_that_does_not_compile(pomerium_binary, tmp_path, regex):
    route = route_text(
        **{
            "from": "https://app.corp.example.test",
            "to": "http://127.0.0.1:8000",
            "regex": regex,
            "allowed_users": "[a@example.test]",
        }
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert result.returncode == 1
    assert any(
        "policy[0].regex" in line and "is not a valid regular expression" in line for line in problems_of(result)
    )


def test_route_duplicate_by_case_and_port(pomerium_binary, tmp_path):
    routes = (
        "policy:\n"
        "  - from: https://APP.Corp.Example.Test\n    to: http://127.0.0.1:8000\n    allowed_users: [a@example.test]\n"
        "  - from: https://app.corp.example.test:443\n    to: http://127.0.0.1:8001\n"
        "    allowed_users: [a@example.test]\n"
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(routes, route=False)))
    assert result.returncode == 0
    assert any("two routes match the same requests" in line for line in problems_of(result))


def test_route_ipv6_upstream_accepted(pomerium_binary, tmp_path):
    route = route_text(
        **{"from": "https://app.corp.example.test", "to": '"http://[::1]:8000"', "allowed_users": "[a@example.test]"}
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert result.returncode == 0, output_of(result)
    assert "to=http://[::1]:8000" in output_of(result)


# ---------------------------------------------------------------------------------------------
# Open bugs. Each test fails today and is marked strict xfail.


def test_deep_properties_key_does_not_crash(pomerium_binary, tmp_path):
    path = write(tmp_path, "deep.properties", "headers" + ".a" * 100_000 + " = 1\n")
    result, seconds = validate(pomerium_binary, path)
    assert_clean_exit(result)
    assert result.returncode == 1
    assert seconds < FAST_SECONDS


@pytest.mark.parametrize("form", ["yaml", "json", "properties"])
def test_large_map_loads_quickly(pomerium_binary, tmp_path, form):
    # At these sizes the quadratic loader ran past FAST_SECONDS in release on the two-core development
    # machine (90,000 YAML headers took 22 s). A linear loader should need about a second, an estimate
    # from the under 1 s load of 10,000 routes. YAML stays below its 200,000-value limit, which
    # counts each key and each value.
    count = {"yaml": 99_000, "json": 150_000, "properties": 40_000}[form]
    if form == "yaml":
        content = "headers:\n" + "".join(f"  X-H{index}: v\n" for index in range(count))
    elif form == "json":
        content = '{"headers": {' + ",".join(f'"X-H{index}": "v"' for index in range(count)) + "}}"
    else:
        content = "".join(f"headers.X-H{index} = v\n" for index in range(count))
    path = write(tmp_path, f"headers.{form}", content)
    try:
        result, seconds = validate(pomerium_binary, path, timeout=FAST_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{count} headers took more than {FAST_SECONDS} s")
    assert_clean_exit(result)
    assert seconds < FAST_SECONDS


def test_huge_cookie_name_checked_quickly(pomerium_binary, tmp_path):
    # Compared with the same value under cookie_domain, which is only parsed, so machine load
    # slows both runs alike. In release the cookie_name run took 3.7 to 3.9 s for 24 MB, cookie_domain 0.5 to 0.6 s.
    value = "y" * (24 * 1024 * 1024)
    baseline = write(tmp_path, "domain.yaml", yaml_text("cookie_domain: " + value))
    checked = write(tmp_path, "name.yaml", yaml_text("cookie_name: " + value))
    _, baseline_seconds = validate(pomerium_binary, baseline)
    # A debug build of the current code needed 6 s idle and up to 1 s per MB under load, hence the cut-off.
    result, checked_seconds = validate(pomerium_binary, checked, timeout=15)
    assert_clean_exit(result)
    assert checked_seconds < 2 * baseline_seconds + 1.0


@pytest.mark.parametrize(
    "extra",
    [
        f"authenticate_service_url: https://user:{URL_PASSWORD}@authenticate.corp.example.test",
        f"authorize_service_url: https://user:{URL_PASSWORD}@127.0.0.1:5443",
        f"forward_auth_url: https://user:{URL_PASSWORD}@forward.corp.example.test",
        f"idp_provider: oidc\nidp_provider_url: https://user:{URL_PASSWORD}@idp.example.test",
        "tracing_provider: jaeger\n"
        f"tracing_jaeger_collector_endpoint: http://user:{URL_PASSWORD}@127.0.0.1:14268/api/traces",
        f"tracing_provider: jaeger\ntracing_jaeger_agent_endpoint: user:{URL_PASSWORD}@127.0.0.1:6831",
        f'cache_store: redis\ncache_store_address: "redis://127.0.0.1:6379/0?password={URL_PASSWORD}"',
    ],
)
def test_url_password_not_printed(pomerium_binary, tmp_path, extra):
    drop = (extra.split(":", 1)[0],)
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=drop)))
    assert_no_secret(result)


@pytest.mark.parametrize(
    ("source", "upstream"),
    [
        (f"https://user:{URL_PASSWORD}@app.corp.example.test", "http://127.0.0.1:8000"),
        ("https://app.corp.example.test", f"http://user:{URL_PASSWORD}@127.0.0.1:8000"),
    ],
)
def test_route_url_password_not_printed(pomerium_binary, tmp_path, source, upstream):
    route = route_text(**{"from": source, "to": upstream, "allowed_users": "[a@example.test]"})
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert_no_secret(result)


def test_authorization_header_value_hidden(pomerium_binary, tmp_path):
    route = route_text(
        **{
            "from": "https://app.corp.example.test",
            "to": "http://127.0.0.1:8000",
            "allowed_users": "[a@example.test]",
            "set_request_headers": f"{{Authorization: Basic {URL_PASSWORD}}}",
        }
    )
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert_no_secret(result)


@pytest.mark.parametrize(
    "extra",
    [
        'headers: {X-A: "v\\r\\nSet-Cookie: injected=1"}',
        'headers: {"X A": v}',
        'headers: {"": v}',
        "policy:\n  - from: https://app.corp.example.test\n    to: http://127.0.0.1:8000\n"
        '    allowed_users: [a@example.test]\n    set_request_headers: {X-A: "a\\r\\nHost: other.example.test"}',
    ],
)
def test_invalid_header_rejected(pomerium_binary, tmp_path, extra):
    result, _ = validate(
        pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, route="policy:" not in extra))
    )
    assert result.returncode == 1


def test_invalid_headers_variable_rejected(pomerium_binary, tmp_path):
    path = write(tmp_path, "config.yaml", yaml_text())
    result, _ = validate(pomerium_binary, path, env={"HEADERS": "X-A:b\r\nSet-Cookie: injected=1"})
    assert result.returncode == 1


@pytest.mark.parametrize(
    "extra",
    [
        'address: ":99999"',
        'metrics_address: "not an address"',
        "authenticate_service_url: https://authenticate.corp.example.test:99999",
        "policy:\n  - from: https://app.corp.example.test\n    to: http://127.0.0.1:70000\n"
        "    allowed_users: [a@example.test]",
        "policy:\n  - from: https://app.corp.example.test:0\n    to: http://127.0.0.1:8000\n"
        "    allowed_users: [a@example.test]",
    ],
)
def test_invalid_port_rejected(pomerium_binary, tmp_path, extra):
    key = extra.split(":", 1)[0]
    result, _ = validate(
        pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=(key,), route=key != "policy"))
    )
    assert result.returncode == 1


@pytest.mark.parametrize(
    "url", ["ftp://authenticate.corp.example.test", "https://authenticate.corp.example.test/?a=b#fragment"]
)
def test_authenticate_url_scheme_and_parts_checked(pomerium_binary, tmp_path, url):
    extra = f"authenticate_service_url: {url}"
    result, _ = validate(
        pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=("authenticate_service_url",)))
    )
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("source", "upstream"),
    [
        ("https://app.corp.example.test#fragment", "http://127.0.0.1:8000"),
        ("https://app.corp.example.test", "http://127.0.0.1:8000/base#fragment"),
        ("https://*.corp.example.test", "http://127.0.0.1:8000"),
    ],
)
def test_route_url_oddities_reported(pomerium_binary, tmp_path, source, upstream):
    route = route_text(**{"from": f'"{source}"', "to": f'"{upstream}"', "allowed_users": "[a@example.test]"})
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(route, route=False)))
    assert any("policy[0]" in line for line in problems_of(result)), output_of(result)


@pytest.mark.parametrize(
    "extra",
    [
        "Cookie_Name: first\ncookie_name: second",
        "policy:\n  - from: https://app.corp.example.test\n"
        "    To: http://127.0.0.1:8001\n    to: http://127.0.0.1:8000\n"
        "    allowed_users: [a@example.test]",
    ],
)
def test_case_duplicate_key_rejected(pomerium_binary, tmp_path, extra):
    result, _ = validate(
        pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, route="policy:" not in extra))
    )
    assert result.returncode == 1
    assert any("duplicate" in line for line in problems_of(result))


def test_blank_policy_variable_keeps_file_routes(pomerium_binary, tmp_path):
    path = write(tmp_path, "config.yaml", yaml_text())
    result, _ = validate(pomerium_binary, path, env={"POLICY": "   "})
    assert "policy: 1 routes" in output_of(result)


def test_syntax_error_reported_alone(pomerium_binary, tmp_path):
    content = yaml_text().replace("idp_client_id", "\tidp_client_id")
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", content))
    assert result.returncode == 1
    errors = [line for line in output_of(result).splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors


@pytest.mark.parametrize("bad", [b"a\x00b", b"a\xff\xfeb"])
def test_byte_error_names_its_line(pomerium_binary, tmp_path, bad):
    content = yaml_text().encode().replace(b"idp_client_id: client-id", b"idp_client_id: " + bad)
    line = content.split(b"\n").index(b"idp_client_id: " + bad) + 1
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", content))
    assert any(f"config.yaml:{line}:" in problem for problem in problems_of(result)), output_of(result)


def test_directory_config_names_reason(pomerium_binary, tmp_path):
    path = tmp_path / "config.yaml"
    path.mkdir()
    result, _ = validate(pomerium_binary, path)
    message = output_of(result).replace(str(path), "FILE")
    assert "is a directory" in message.lower(), message


@pytest.mark.parametrize("name", ["pomerium.d", "conf"])
def test_directory_without_extension_names_reason(pomerium_binary, tmp_path, name):
    # A directory such as /etc/pomerium has no config extension, but the message must still state
    # that it is a directory rather than ask for a rename.
    path = tmp_path / name
    path.mkdir()
    result, _ = validate(pomerium_binary, path)
    assert_clean_exit(result)
    assert result.returncode == 1
    message = output_of(result).lower()
    assert "is a directory" in message, message
    assert "rename the file" not in message, message


def test_device_without_extension_names_reason(pomerium_binary):
    result, _ = validate(pomerium_binary, "/dev/null")
    assert_clean_exit(result)
    assert result.returncode == 1
    message = output_of(result).lower()
    assert "is a device" in message, message
    assert "rename the file" not in message, message


def test_oversized_config_file_rejected_unread(pomerium_binary, tmp_path):
    # A sparse 1 GiB file costs no disk space. Before the limit, a release build on a shared
    # two-core machine needed about 10 s and 2 GB of memory to read it.
    path = tmp_path / "config.yaml"
    with open(path, "wb") as file:
        file.truncate(1 << 30)
    result, seconds = validate(pomerium_binary, path, timeout=60)
    assert_clean_exit(result)
    assert result.returncode == 1
    assert "more than the 64 MiB" in output_of(result)
    assert seconds < FAST_SECONDS


def test_oversized_certificate_file_rejected_unread(pomerium_binary, tmp_path, certificates):
    _, key = certificates["good"]
    huge = tmp_path / "fullchain.pem"
    with open(huge, "wb") as file:
        file.truncate(1 << 30)
    extra = f"certificate_file: {huge}\ncertificate_key_file: {key}"
    result, seconds = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra)), timeout=60)
    assert_clean_exit(result)
    assert any("certificate_file" in line and "more than the 64 MiB" in line for line in problems_of(result)), \
        output_of(result)
    assert seconds < FAST_SECONDS


def test_config_file_under_size_limit_loads(pomerium_binary, tmp_path):
    content = yaml_text() + "# " + "x" * (60 * 1024 * 1024) + "\n"
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", content))
    assert result.returncode == 0, output_of(result)[-2000:]


def test_future_certificate_warns(pomerium_binary, tmp_path, certificates):
    certificate, key = certificates["future"]
    extra = f"certificate_file: {certificate}\ncertificate_key_file: {key}"
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra, drop=("insecure_server",))))
    assert any(line.startswith("warning:") and "certificate_file" in line for line in problems_of(result))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("c.json", '{"cookie_secure": "yes"}'),
        ("c.toml", 'cookie_secure = "on"\n'),
        ("c.properties", "cookie_secure = yes\n"),
    ],
)
def test_yaml_bool_spellings_outside_yaml(pomerium_binary, tmp_path, name, content):
    result, _ = validate(pomerium_binary, write(tmp_path, name, content))
    assert any("cookie_secure" in line and "not a boolean" in line for line in problems_of(result)), output_of(result)


def test_properties_index_with_leading_zeros(pomerium_binary, tmp_path):
    lines = [f"{key} = {value}" for key, value in BASE.items()]
    lines += [
        "policy.0.from = https://app.corp.example.test",
        "policy.00.to = http://127.0.0.1:8000",
        "policy.000.allowed_users = a@example.test",
    ]
    result, _ = validate(pomerium_binary, write(tmp_path, "config.properties", "\n".join(lines) + "\n"))
    assert result.returncode == 0, output_of(result)
    assert "policy: 1 routes" in output_of(result)


@pytest.mark.parametrize(
    "line", [f"cookie_secret = {COOKIE_SECRET}", f"idp_client_secret = {IDP_CLIENT_SECRET}"], ids=["cookie", "idp"]
)
def test_toml_syntax_error_hides_secret(pomerium_binary, tmp_path, line):
    result, _ = validate(pomerium_binary, write(tmp_path, "config.toml", line + "\n"))
    assert result.returncode == 1
    assert any("invalid toml" in problem for problem in problems_of(result))
    assert COOKIE_SECRET[:16] not in output_of(result)
    assert "IDPCANARY" not in output_of(result)


@pytest.mark.parametrize("domain", ['"corp.example.test; SameSite=None"', '"corp example.test"'])
def test_invalid_cookie_domain_rejected(pomerium_binary, tmp_path, domain):
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(f"cookie_domain: {domain}")))
    assert result.returncode == 1
    assert any("cookie_domain" in line for line in problems_of(result))


def test_invalid_claim_header_name_rejected(pomerium_binary, tmp_path):
    extra = 'jwt_claims_headers: ["a b", "x\\r\\ny"]'
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra)))
    assert result.returncode == 1
    assert any("jwt_claims_headers" in line for line in problems_of(result))


@pytest.mark.parametrize("extra", ['grpc_address: "junk:port"', 'http_redirect_addr: "junk"'])
def test_invalid_listen_address_rejected(pomerium_binary, tmp_path, extra):
    result, _ = validate(pomerium_binary, write(tmp_path, "config.yaml", yaml_text(extra)))
    assert result.returncode == 1
    key = extra.split(":", 1)[0]
    assert any(line.startswith("error:") and key in line for line in problems_of(result))
