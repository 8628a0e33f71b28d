"""The exporter-toolkit web configuration: parsing, validation messages, bcrypt, SANs, the SSL context."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config_errors import ConfigError
from exporter.exposition.webconfig import (
    RateLimit,
    TlsServerConfig,
    WebConfig,
    WebConfigError,
    check_password,
    load_web_config,
    parse_web_config,
    san_allowed,
    server_ssl_context,
)

HASH = bcrypt.hashpw(b"hunter2", bcrypt.gensalt(4)).decode()


def test_empty_path_and_empty_file_mean_plain_http_without_auth(tmp_path: Path) -> None:
    assert load_web_config("") == WebConfig()
    empty = tmp_path / "web.yml"
    empty.write_text("")
    assert load_web_config(str(empty)) == WebConfig(
        tls=None, users={}, headers={}, rate_limit=None, http2=True
    )


def test_full_file_with_relative_paths(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    config.write_text(
        f"""
tls_server_config:
  cert_file: certs/server.pem
  key_file: /etc/lagwatch/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  client_allowed_sans: [scraper.example, 10.0.0.1]
  min_version: TLS13
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519]
http_server_config:
  http2: false
  headers:
    Strict-Transport-Security: max-age=31536000
    X-Frame-Options: sameorigin
    X-XSS-Protection: ""
basic_auth_users:
  alice: {HASH}
  bob: '$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG'
rate_limit:
  interval: 1m30s
  burst: 5
"""
    )
    assert load_web_config(str(config)) == WebConfig(
        tls=TlsServerConfig(
            cert_file=str(tmp_path / "certs/server.pem"),
            key_file="/etc/lagwatch/server.key",
            client_auth_type="RequireAndVerifyClientCert",
            client_ca_file=str(tmp_path / "ca.pem"),
            client_allowed_sans=("scraper.example", "10.0.0.1"),
            min_version="TLS13",
            max_version="TLS13",
            cipher_suites=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
            prefer_server_cipher_suites=False,
            curve_preferences=("X25519",),
        ),
        users={"alice": HASH, "bob": "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"},
        # A blank value leaves the header unset, as in the toolkit.
        headers={"Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "sameorigin"},
        rate_limit=RateLimit(interval_s=90.0, burst=5),
        http2=False,
    )


def test_inline_pem_keeps_defaults() -> None:
    config = parse_web_config("tls_server_config:\n  cert: CERT\n  key: KEY\n", "/base")
    assert config.tls == TlsServerConfig(cert="CERT", key="KEY")
    assert config.tls.min_version == "TLS12"
    assert "KEY" not in repr(config.tls)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "the file must be a mapping"),
        ("tls_server_config: [", "invalid YAML"),
        ("web_listen: x", "unknown key 'web_listen'"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c",
            "tls_server_config: unknown key 'certfile'",
        ),
        ("tls_server_config:\n  key_file: b", "missing one of cert or cert_file"),
        ("tls_server_config:\n  cert_file: a", "missing one of key or key_file"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14",
            "unknown TLS version 'TLS14'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12",
            "min_version TLS13 is above max_version TLS12",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert",
            "RequireAnyClientCert (accept a client certificate without verifying it) is not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe",
            "invalid client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca",
            "client CAs are configured without a client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyClientCertIfGiven",
            "needs client_ca_file or client_ca",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyClientCertIfGiven\n"
            "  client_ca_file: ca\n  client_allowed_sans: [x]",
            "client_allowed_sans requires client_auth_type RequireAndVerifyClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_MADE_UP]",
            "unknown cipher: TLS_MADE_UP",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [P256]",
            "unknown curve: P256",
        ),
        ("tls_server_config:\n  cert_file: 3\n  key_file: b", "cert_file must be a string"),
        ("basic_auth_users:\n  alice: hunter2", "the password of 'alice' is not a bcrypt hash"),
        ("basic_auth_users:\n  alice: '$2b$03$" + "a" * 53 + "'", "not a bcrypt hash"),
        ("basic_auth_users:\n  alice: 12", "the password hash of 'alice' is not a string"),
        (
            "http_server_config:\n  headers:\n    Server: lagwatch",
            "HTTP header 'Server' can not be configured",
        ),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow", "invalid value for X-Frame-Options"),
        ("http_server_config:\n  http2: maybe", "http2 must be true or false"),
        ("rate_limit:\n  interval: 5x\n  burst: 1", "'5x' is not a duration"),
        ("rate_limit:\n  interval: 1s\n  burst: -1", "burst must be a non-negative integer"),
    ],
)
def test_invalid_files_fail_with_one_line(text: str, message: str) -> None:
    with pytest.raises(WebConfigError) as raised:
        parse_web_config(text, "/base")
    assert str(raised.value).startswith("http.web_config_file: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, ConfigError)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(
        WebConfigError, match=r"^http\.web_config_file: cannot read '.*missing\.yml': No such file"
    ):
        load_web_config(str(tmp_path / "missing.yml"))


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [("250ms", 0.25), ("1h", 3600.0), ("1.5m", 90.0), ("2s500ms", 2.5), (1_000_000_000, 1.0)],
)
def test_rate_limit_intervals_read_like_go_durations(interval: object, seconds: float) -> None:
    config = parse_web_config(f"rate_limit:\n  interval: {interval}\n  burst: 3\n", "/")
    assert config.rate_limit == RateLimit(interval_s=seconds, burst=3)


def test_rate_limit_of_zero_interval_is_off() -> None:
    assert parse_web_config("rate_limit:\n  interval: 0\n  burst: 3\n", "/").rate_limit is None


@given(
    hours=st.integers(0, 99),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(1, 999),
)
def test_composite_durations_add_up(hours: int, minutes: int, seconds: int, millis: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    limit = parse_web_config(f"rate_limit:\n  interval: {text}\n  burst: 1\n", "/").rate_limit
    assert limit is not None
    assert limit.interval_s == pytest.approx(hours * 3600 + minutes * 60 + seconds + millis / 1000)


def test_check_password() -> None:
    users = {"alice": HASH, "carol": HASH.replace("$2b$", "$2y$", 1)}
    assert check_password(users, "alice", "hunter2")
    # htpasswd writes $2y$ hashes; they verify too.
    assert check_password(users, "carol", "hunter2")
    assert not check_password(users, "alice", "hunter3")
    assert not check_password(users, "mallory", "hunter2")
    assert not check_password(users, "alice", "x" * 73)


def test_san_allowed() -> None:
    cert = {"subjectAltName": (("DNS", "scraper.example"), ("IP Address", "0:0:0:0:0:0:0:1\n"))}
    assert san_allowed(cert, ["scraper.example"])
    assert san_allowed(cert, ["::1"])
    assert not san_allowed(cert, ["other.example", "127.0.0.1"])
    assert not san_allowed(None, ["scraper.example"])
    assert not san_allowed({}, ["scraper.example"])


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("cert")
    cert, key = directory / "server.pem", directory / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
            *("-out", str(cert), "-days", "2", "-subj", "/CN=localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_ssl_context_applies_versions_ciphers_and_client_auth(cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    tls = TlsServerConfig(
        cert_file=str(cert),
        key_file=str(key),
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(cert),
        min_version="TLS12",
        max_version="TLS12",
        cipher_suites=("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    )
    context = server_ssl_context(tls)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-RSA-AES256-GCM-SHA384"]


def test_ssl_context_from_inline_pem(cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    context = server_ssl_context(TlsServerConfig(cert=cert.read_text(), key=key.read_text()))
    assert context.verify_mode == ssl.CERT_NONE


def test_ssl_context_reports_unloadable_files(cert_pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = cert_pair
    with pytest.raises(WebConfigError, match=r"cannot load the certificate and key: No such file"):
        server_ssl_context(TlsServerConfig(cert_file=str(cert), key_file=str(tmp_path / "nope.key")))
    with pytest.raises(WebConfigError, match=r"cannot load the certificate and key"):
        server_ssl_context(TlsServerConfig(cert_file=str(cert), key_file=str(cert)))
