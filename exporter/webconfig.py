"""`--web.config.file`: the exporter-toolkit web configuration, as node_exporter reads it.

    tls_server_config:   TLS served by the exporter itself, client certificates included
    http_server_config:  response headers (the toolkit's short list) and http2 (accepted; the
                         exporter speaks HTTP/1.1)
    basic_auth_users:    user name to bcrypt hash (a $pbkdf2-sha256$ hash is accepted too)
    rate_limit:          interval and burst of a token bucket over every request
    bearer_token_file:   this exporter's addition: a file whose token opens /metrics

Everything is checked at start-up, so that a mistake is one sentence and an exit, not a server
that runs without the protection the file asked for."""

from __future__ import annotations

import ipaddress
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, parse_duration, read_secret_file, yaml_mapping
from .server import TLS

FLAG = "--web.config.file"
TOP_KEYS = {
    "tls_server_config",
    "http_server_config",
    "basic_auth_users",
    "rate_limit",
    "bearer_token_file",
}
TLS_KEYS = {
    "cert_file",
    "key_file",
    "cert",
    "key",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
}
HTTP_KEYS = {"http2", "headers"}
RATE_KEYS = {"interval", "burst"}
# The headers the exporter-toolkit lets a web config set, with their allowed values (None: any).
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# client_auth_type to how the handshake treats a client certificate. RequestClientCert asks for
# a certificate and ignores it; the exporter never reads it, so not asking lets in the same
# clients. Python's ssl cannot require a certificate without verifying it (RequireAnyClientCert).
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# The TLS 1.2 suites Go offers, by their IANA names (as web configs spell them), in OpenSSL's
# names. TLS 1.3 suites are not configurable, in Go as here, and are accepted and left alone.
CIPHERS = {
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
TLS13_CIPHERS = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
PASSWORD_HASH = re.compile(
    r"^(\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}|\$pbkdf2-sha256\$\d+\$[^$]+\$[^$]+)$"
)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: one request per `interval` seconds on average, `burst` at once."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """Who may read /metrics (users with hashed passwords, one bearer token), TLS, and headers."""

    basic_auth_users: dict[str, str] = field(default_factory=dict)
    bearer_token: str | None = None
    tls: TLS | None = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None

    def __repr__(self) -> str:  # never show the token or the hashes
        tls = "on" if self.tls else "off"
        return f"WebConfig(users={sorted(self.basic_auth_users)}, bearer_token=..., tls={tls})"


def load_web_config(path: str) -> WebConfig:
    data = yaml_mapping(path, FLAG)
    _refuse_unknown(data, TOP_KEYS, "")
    base = Path(path).parent
    tls_data = _section(data, "tls_server_config")
    http_data = _section(data, "http_server_config")
    rate_data = _section(data, "rate_limit")
    web = WebConfig(
        basic_auth_users=_users(data.get("basic_auth_users")),
        bearer_token=_bearer_token(data.get("bearer_token_file"), base),
        tls=_tls(tls_data, base) if tls_data else None,
        headers=_headers(http_data),
        rate_limit=_rate_limit(rate_data) if rate_data else None,
    )
    if not (web.basic_auth_users or web.bearer_token or web.tls or web.headers or web.rate_limit):
        raise ConfigError(
            f"{FLAG} {path!r} sets none of tls_server_config, basic_auth_users,"
            " bearer_token_file, http_server_config headers or rate_limit"
        )
    return web


def _section(data: dict, name: str) -> dict:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{FLAG}: {name} must be a mapping of settings")
    return section


def _refuse_unknown(data: dict, known: set[str], section: str) -> None:
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        where = f"{section} " if section else ""
        raise ConfigError(
            f"{FLAG}: unknown {where}setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _users(users: object) -> dict[str, str]:
    users = users or {}
    if not isinstance(users, dict):
        raise ConfigError(f"{FLAG}: basic_auth_users must map user names to hashes")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not PASSWORD_HASH.match(hashed):
            raise ConfigError(
                f"{FLAG}: the password of {str(user)!r} is not a bcrypt or"
                " $pbkdf2-sha256$ hash (plain passwords are refused)"
            )
    return {str(u): str(h) for u, h in users.items()}


def _bearer_token(path: object, base: Path) -> str | None:
    """The token in the file; a relative path is relative to the web config file."""
    if path is None:
        return None
    token = read_secret_file(base / str(path), "bearer_token_file")
    if len(token) < 16:
        raise ConfigError(f"bearer_token_file {str(path)!r} holds a token under 16 characters")
    return token


def _headers(http: dict) -> dict[str, str]:
    _refuse_unknown(http, HTTP_KEYS, "http_server_config")
    if not isinstance(http.get("http2", True), bool):
        raise ConfigError(f"{FLAG}: http_server_config http2 must be true or false")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"{FLAG}: http_server_config headers must map header names to values")
    for name, value in headers.items():
        if name not in HEADERS:
            raise ConfigError(
                f"{FLAG}: the header {str(name)!r} cannot be set (allowed: {', '.join(HEADERS)})"
            )
        allowed = HEADERS[name]
        if allowed is not None and value not in allowed:
            raise ConfigError(
                f"{FLAG}: the header {name} must be one of {', '.join(allowed)}, not {value!r}"
            )
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise ConfigError(f"{FLAG}: the header {name} must be a one-line string")
    return {str(k): str(v) for k, v in headers.items()}


def _rate_limit(data: dict) -> RateLimit:
    _refuse_unknown(data, RATE_KEYS, "rate_limit")
    interval = parse_duration(data.get("interval", ""), f"{FLAG}: rate_limit interval")
    burst = data.get("burst", 0)
    if interval <= 0 or not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"{FLAG}: rate_limit needs an interval over 0 and a burst of at least 1")
    return RateLimit(interval, burst)


def _tls(data: dict, base: Path) -> TLS:
    _refuse_unknown(data, TLS_KEYS, "tls_server_config")
    if data.get("curve_preferences"):
        raise ConfigError(
            f"{FLAG}: tls_server_config curve_preferences is not supported (Python's ssl module"
            " cannot set a list of curves), so remove it to use OpenSSL's defaults"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_certificate(context, data, base)
    context.minimum_version = _version(data, "min_version", "TLS12")
    context.maximum_version = _version(data, "max_version", "TLS13")
    if data.get("prefer_server_cipher_suites", True):
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    _set_ciphers(context, data.get("cipher_suites") or [])
    return TLS(context, _client_auth(context, data, base))


def _load_certificate(context: ssl.SSLContext, data: dict, base: Path) -> None:
    for name in ("cert", "key"):
        if not data.get(f"{name}_file") and not data.get(name):
            raise ConfigError(f"{FLAG}: tls_server_config needs {name}_file (or {name})")
    with tempfile.TemporaryDirectory() as private:  # inline PEM: load_cert_chain wants files
        files = {}
        for name in ("cert", "key"):
            if data.get(f"{name}_file"):
                files[name] = base / str(data[f"{name}_file"])
            else:
                files[name] = Path(private) / name
                files[name].write_text(str(data[name]))
        for name, path in files.items():
            if not path.is_file():
                raise ConfigError(
                    f"{FLAG}: cannot read tls_server_config {name}_file {str(path)!r}"
                )
        try:
            context.load_cert_chain(files["cert"], files["key"])
        except (ssl.SSLError, OSError):
            raise ConfigError(
                f"{FLAG}: the tls_server_config certificate and key are not a matching PEM"
                " certificate and private key"
            ) from None


def _version(data: dict, name: str, default: str) -> ssl.TLSVersion:
    value = str(data.get(name, default))
    if value not in TLS_VERSIONS:
        raise ConfigError(
            f"{FLAG}: tls_server_config {name} must be one of {', '.join(TLS_VERSIONS)},"
            f" not {value!r}"
        )
    return TLS_VERSIONS[value]


def _set_ciphers(context: ssl.SSLContext, suites: list) -> None:
    unknown = [s for s in suites if s not in CIPHERS and s not in TLS13_CIPHERS]
    if unknown:
        raise ConfigError(f"{FLAG}: tls_server_config cipher_suites has unknown {unknown[0]!r}")
    names = [CIPHERS[s] for s in suites if s in CIPHERS]
    if names:
        context.set_ciphers(":".join(names))


def _client_auth(context: ssl.SSLContext, data: dict, base: Path) -> frozenset[str]:
    """Configures client certificates; the SANs a client certificate must name (empty: any)."""
    auth = str(data.get("client_auth_type") or "NoClientCert")
    if auth in ("RequireAnyClientCert", "RequireClientCert"):
        raise ConfigError(
            f"{FLAG}: client_auth_type {auth} is not supported (Python's ssl module cannot require"
            " a certificate without verifying it), so use RequireAndVerifyClientCert with"
            " client_ca_file"
        )
    if auth not in CLIENT_AUTH:
        raise ConfigError(
            f"{FLAG}: client_auth_type must be one of {', '.join(CLIENT_AUTH)}, not {auth!r}"
        )
    ca_file, ca_text = data.get("client_ca_file"), data.get("client_ca")
    if (ca_file or ca_text) and auth == "NoClientCert":
        raise ConfigError(f"{FLAG}: client_ca_file is set but client_auth_type is NoClientCert")
    context.verify_mode = CLIENT_AUTH[auth]
    if context.verify_mode != ssl.CERT_NONE:
        if not (ca_file or ca_text):
            raise ConfigError(f"{FLAG}: client_auth_type {auth} needs client_ca_file")
        try:
            if ca_file:
                context.load_verify_locations(cafile=base / str(ca_file))
            else:
                context.load_verify_locations(cadata=str(ca_text))
        except (ssl.SSLError, OSError):
            raise ConfigError(
                f"{FLAG}: cannot load client certificate authorities from client_ca_file"
                f" {str(ca_file or 'client_ca')!r}"
            ) from None
    sans = data.get("client_allowed_sans")
    if sans is None:
        return frozenset()
    if auth != "RequireAndVerifyClientCert":
        raise ConfigError(f"{FLAG}: client_allowed_sans needs RequireAndVerifyClientCert")
    if not isinstance(sans, list) or not sans:
        raise ConfigError(f"{FLAG}: client_allowed_sans must be a list of names")
    return frozenset(_san(str(s)) for s in sans)


def _san(name: str) -> str:
    """An IP address in the one spelling the server compares with; other names as they are."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name
