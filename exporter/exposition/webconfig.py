"""The Prometheus exporter-toolkit web configuration file: TLS, basic auth, response headers, rate limit.

The format is the one every Prometheus exporter accepts with `--web.config.file` (`tls_server_config`,
`http_server_config`, `basic_auth_users` with bcrypt hashes, `rate_limit`), so an existing file works
unchanged. As in the toolkit, unknown keys are errors and relative paths are relative to the file. Every
problem raises `WebConfigError`, one line starting with `http.web_config_file`, which the CLI prints like any
configuration error.

Where Python's `ssl` module cannot do what Go's `crypto/tls` does, the difference is explicit (see
docs/http-api.md): `RequestClientCert` and `RequireAnyClientCert` ask for a certificate without verifying it,
which `ssl` cannot, so they are rejected; `client_allowed_sans` is checked per request (403), not in the
handshake; several `curve_preferences` keep OpenSSL's own order; `http2` is accepted and ignored (aiohttp
serves HTTP/1.1); and the file is read once at start, not on every request.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from exporter.config_errors import ConfigError

__all__ = [
    "RateLimit",
    "TlsServerConfig",
    "WebConfig",
    "WebConfigError",
    "check_password",
    "load_web_config",
    "parse_web_config",
    "san_allowed",
    "server_ssl_context",
]

_FIELD = "http.web_config_file"

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")

# Go's cipher suite names (crypto/tls) -> OpenSSL's. Go ignores cipher_suites for TLS 1.3; so does lagwatch.
_TLS12_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}

# The toolkit allows these response headers only, and checks the values of the enumerated ones.
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

_BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_DECOY_HASH = b"$2b$10$ttQtafHDBL0QFS.1JD8Lqesl6JS9JwPDrnuGhQvg.Q36.7fN0sCZ."
"""Checked against when the user is unknown, so that timing does not tell which user names exist."""


class WebConfigError(ConfigError):
    """The web configuration file is unreadable or invalid; `str(error)` is one line."""


@dataclass(frozen=True, slots=True)
class TlsServerConfig:
    """`tls_server_config`, paths already made absolute."""

    cert_file: str = ""
    key_file: str = ""
    cert: str = ""
    """Inline PEM certificate, instead of cert_file."""
    key: str = field(default="", repr=False)
    """Inline PEM key, instead of key_file."""
    client_auth_type: str = "NoClientCert"
    client_ca_file: str = ""
    client_ca: str = ""
    """Inline PEM CA bundle, instead of client_ca_file."""
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate_limit`: a token bucket refilled with one token every `interval_s`, holding at most `burst`."""

    interval_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class WebConfig:
    tls: TlsServerConfig | None = None
    """None serves plain HTTP."""
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    """User name -> bcrypt hash; empty means no basic auth."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers set on every response."""
    rate_limit: RateLimit | None = None
    http2: bool = True
    """Accepted for compatibility; aiohttp serves HTTP/1.1 only."""


def load_web_config(path: str) -> WebConfig:
    """Read and validate the file; an empty path means the defaults (plain HTTP, no auth)."""
    if not path:
        return WebConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise WebConfigError(f"{_FIELD}: cannot read {path!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise WebConfigError(f"{_FIELD}: {path!r} is not UTF-8 text: {error.reason}") from None
    return parse_web_config(text, os.path.dirname(os.path.abspath(path)))


def parse_web_config(text: str, base_dir: str) -> WebConfig:
    """Validate the YAML text of a web configuration; relative paths are joined to `base_dir`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise WebConfigError(f"{_FIELD}: invalid YAML: {' '.join(str(error).split())}") from None
    root = _mapping(data if data is not None else {}, "")
    _known(root, "", ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"))
    tls_data = root.get("tls_server_config")
    http = _http(root.get("http_server_config"))
    return WebConfig(
        tls=None if tls_data is None else _tls(_mapping(tls_data, "tls_server_config"), base_dir),
        users=_users(root.get("basic_auth_users")),
        headers=_headers(http.get("headers")),
        rate_limit=_rate_limit(root.get("rate_limit")),
        http2=http.get("http2", True),
    )


def server_ssl_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """The server-side SSL context of `tls_server_config`; reads the certificate, key and CA files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.maximum_version = _TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_certificate(context, tls)
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    try:
        if tls.client_ca_file:
            context.load_verify_locations(cafile=tls.client_ca_file)
        elif tls.client_ca:
            context.load_verify_locations(cadata=tls.client_ca)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(
            f"{_FIELD}: tls_server_config: cannot load the client CA: {_reason(error)}"
        ) from None
    openssl = [_TLS12_CIPHERS[name] for name in tls.cipher_suites if name in _TLS12_CIPHERS]
    if openssl:
        context.set_ciphers(":".join(openssl))
    if len(tls.curve_preferences) == 1:
        context.set_ecdh_curve(_CURVES[tls.curve_preferences[0]])
    return context


def check_password(users: Mapping[str, str], user: str, password: str) -> bool:
    """Whether `password` matches the bcrypt hash of `user`. Slow by design (about 0.1 s at cost 10): call it
    off the event loop and cache successes."""
    hashed = users.get(user)
    try:
        matches = bcrypt.checkpw(password.encode(), hashed.encode() if hashed else _DECOY_HASH)
    except ValueError:
        # bcrypt refuses passwords longer than 72 bytes rather than truncating them.
        return False
    return matches and hashed is not None


def san_allowed(peercert: Mapping[str, Any] | None, allowed: Sequence[str]) -> bool:
    """Whether the verified client certificate (as `SSLSocket.getpeercert()` returns it) has a Subject
    Alternative Name in `allowed`; DNS names, e-mail addresses and URIs compare exactly, IP addresses by
    value."""
    if not peercert:
        return False
    wanted = {_normal_ip(value) for value in allowed}
    for kind, value in peercert.get("subjectAltName", ()):
        candidate = _normal_ip(value.strip()) if kind == "IP Address" else value
        if candidate in wanted:
            return True
    return False


def _normal_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _load_certificate(context: ssl.SSLContext, tls: TlsServerConfig) -> None:
    try:
        if tls.cert_file and tls.key_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
            return
        # ssl only loads certificates from files: inline PEM goes through a private temporary directory.
        with tempfile.TemporaryDirectory(prefix="lagwatch-tls-") as directory:
            cert_path = tls.cert_file or _write(directory, "cert.pem", tls.cert)
            key_path = tls.key_file or _write(directory, "key.pem", tls.key)
            context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(
            f"{_FIELD}: tls_server_config: cannot load the certificate and key: {_reason(error)}"
        ) from None


def _write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error)
    return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")


def _tls(data: Mapping[str, Any], base_dir: str) -> TlsServerConfig:
    where = "tls_server_config"
    _known(data, where, tuple(TlsServerConfig.__dataclass_fields__))
    paths = {
        name: _path(_string(data, name, where), base_dir)
        for name in ("cert_file", "key_file", "client_ca_file")
    }
    tls = TlsServerConfig(
        cert_file=paths["cert_file"],
        key_file=paths["key_file"],
        cert=_string(data, "cert", where),
        key=_string(data, "key", where),
        client_auth_type=_string(data, "client_auth_type", where) or "NoClientCert",
        client_ca_file=paths["client_ca_file"],
        client_ca=_string(data, "client_ca", where),
        client_allowed_sans=_strings(data, "client_allowed_sans", where),
        min_version=_string(data, "min_version", where) or "TLS12",
        max_version=_string(data, "max_version", where) or "TLS13",
        cipher_suites=_strings(data, "cipher_suites", where),
        prefer_server_cipher_suites=_bool(data, "prefer_server_cipher_suites", where, default=True),
        curve_preferences=_strings(data, "curve_preferences", where),
    )
    _check_tls(tls)
    return tls


def _check_tls(tls: TlsServerConfig) -> None:
    where = f"{_FIELD}: tls_server_config"
    if not (tls.cert_file or tls.cert):
        raise WebConfigError(f"{where}: missing one of cert or cert_file")
    if not (tls.key_file or tls.key):
        raise WebConfigError(f"{where}: missing one of key or key_file")
    for name in ("min_version", "max_version"):
        value = getattr(tls, name)
        if value not in _TLS_VERSIONS:
            raise WebConfigError(
                f"{where}: {name}: unknown TLS version {value!r} (use {', '.join(_TLS_VERSIONS)})"
            )
    if _TLS_VERSIONS[tls.min_version] > _TLS_VERSIONS[tls.max_version]:
        raise WebConfigError(f"{where}: min_version {tls.min_version} is above max_version {tls.max_version}")
    auth = tls.client_auth_type
    if auth in _UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"{where}: client_auth_type {auth} (accept a client certificate without verifying it) is not "
            "supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
        )
    if auth not in _CLIENT_AUTH:
        raise WebConfigError(f"{where}: invalid client_auth_type {auth!r} (use {', '.join(_CLIENT_AUTH)})")
    has_ca = bool(tls.client_ca_file or tls.client_ca)
    if has_ca and auth == "NoClientCert":
        raise WebConfigError(f"{where}: client CAs are configured without a client_auth_type")
    if auth != "NoClientCert" and not has_ca:
        raise WebConfigError(f"{where}: client_auth_type {auth} needs client_ca_file or client_ca")
    if tls.client_allowed_sans and auth != "RequireAndVerifyClientCert":
        raise WebConfigError(
            f"{where}: client_allowed_sans requires client_auth_type RequireAndVerifyClientCert"
        )
    for name in tls.cipher_suites:
        if name not in _TLS12_CIPHERS and name not in _TLS13_CIPHERS:
            raise WebConfigError(f"{where}: unknown cipher: {name}")
    for name in tls.curve_preferences:
        if name not in _CURVES:
            raise WebConfigError(f"{where}: unknown curve: {name}")


def _users(data: object) -> dict[str, str]:
    where = f"{_FIELD}: basic_auth_users"
    users: dict[str, str] = {}
    for user, hashed in _mapping(data if data is not None else {}, "basic_auth_users").items():
        if not isinstance(hashed, str):
            raise WebConfigError(f"{where}: the password hash of {user!r} is not a string")
        match = _BCRYPT_HASH.fullmatch(hashed)
        if match is None or not 4 <= int(match[1]) <= 31:
            raise WebConfigError(
                f"{where}: the password of {user!r} is not a bcrypt hash ($2a$, $2b$ or $2y$)"
            )
        users[str(user)] = hashed
    return users


def _http(data: object) -> Mapping[str, Any]:
    http = _mapping(data if data is not None else {}, "http_server_config")
    _known(http, "http_server_config", ("http2", "headers"))
    if not isinstance(http.get("http2", True), bool):
        raise WebConfigError(f"{_FIELD}: http_server_config: http2 must be true or false")
    return http


def _headers(data: object) -> dict[str, str]:
    where = f"{_FIELD}: http_server_config: headers"
    checked: dict[str, str] = {}
    for name, value in _mapping(data or {}, "http_server_config.headers").items():
        if name not in _HEADERS:
            raise WebConfigError(f"{where}: HTTP header {name!r} can not be configured")
        allowed = _HEADERS[name]
        if not isinstance(value, str) or (allowed and value not in allowed):
            raise WebConfigError(
                f"{where}: invalid value for {name}: expected one of {list(allowed)}, got {value!r}"
            )
        if value:
            checked[name] = value
    return checked


def _rate_limit(data: object) -> RateLimit | None:
    if data is None:
        return None
    where = "rate_limit"
    limit = _mapping(data, where)
    _known(limit, where, ("interval", "burst"))
    interval = _duration(limit.get("interval", 0), f"{where}.interval")
    burst = limit.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise WebConfigError(f"{_FIELD}: {where}: burst must be a non-negative integer")
    if interval == 0:
        return None
    return RateLimit(interval, burst)


def _duration(value: object, where: str) -> float:
    """Go's `time.ParseDuration` (`1m30s`, `250ms`), or an integer of nanoseconds as yaml.v2 reads it."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value * 1e-9
    text = str(value)
    if text == "0":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise WebConfigError(f"{_FIELD}: {where}: {text!r} is not a duration such as 1s, 250ms or 1m30s")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        place = f"{where} " if where else "the file "
        raise WebConfigError(f"{_FIELD}: {place}must be a mapping of keys to values")
    return data


def _known(data: Mapping[str, Any], where: str, keys: Sequence[str]) -> None:
    for key in data:
        if key not in keys:
            place = f"{where}: " if where else ""
            raise WebConfigError(f"{_FIELD}: {place}unknown key {key!r}")


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebConfigError(f"{_FIELD}: {where}: {key} must be a string")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WebConfigError(f"{_FIELD}: {where}: {key} must be a list of strings")
    return tuple(value)


def _bool(data: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise WebConfigError(f"{_FIELD}: {where}: {key} must be true or false")
    return value


def _path(value: str, base_dir: str) -> str:
    return os.path.join(base_dir, value) if value and not os.path.isabs(value) else value
