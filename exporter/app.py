"""The Flask application: a landing page, the cached /metrics, and health and readiness probes.

With a web config, /metrics requires basic auth (bcrypt or PBKDF2-SHA256 hashed passwords) or the
bearer token; the probes and the landing page stay open, as they reveal no member data."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

import bcrypt
from flask import Flask, Response, request

from .config import WebConfig
from .poller import Poller

REALM = "claude-code-analytics-exporter"
# Verified against when the user is unknown, so a wrong name costs as much time as a wrong password.
DUMMY_HASH = (
    "$pbkdf2-sha256$600000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LANDING = """<!doctype html>
<html><head><title>Claude Code analytics exporter</title></head>
<body>
<h1>Claude Code analytics exporter</h1>
<p>Exports the Claude Code Analytics Admin API as Prometheus metrics. Data is polled off the
scrape path and served from a cache; the API itself is about an hour behind.</p>
<ul>
<li><a href="metrics">/metrics</a>: the metrics</li>
<li><a href="-/healthy">/-/healthy</a>: 200 while the process runs</li>
<li><a href="-/ready">/-/ready</a>: 200 once the store holds the first history load</li>
</ul>
</body></html>
"""


def create_app(poller: Poller, web: WebConfig | None = None) -> Flask:
    app = Flask("exporter")
    guard = Guard(web) if web else None

    @app.get("/")
    def landing() -> Response:
        return Response(LANDING, mimetype="text/html")

    @app.get("/metrics")
    def metrics() -> Response:
        if guard is not None and not guard.allows(request.headers.get("Authorization", "")):
            return Response(
                "Unauthorized\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        exposition = poller.exposition  # one read: a poll may swap in a new one meanwhile
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            response = Response(exposition.gzipped, content_type=CONTENT_TYPE)
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = Response(exposition.plain, content_type=CONTENT_TYPE)
        response.headers["Vary"] = "Accept-Encoding"
        return response

    @app.get("/-/healthy")
    def healthy() -> Response:
        return Response("OK\n", mimetype="text/plain")

    @app.get("/-/ready")
    def ready() -> Response:
        if poller.ready.is_set():
            return Response("Ready\n", mimetype="text/plain")
        return Response("Loading history from the Admin API\n", status=503, mimetype="text/plain")

    return app


class Guard:
    """Checks an Authorization header against the web config.

    Hashing is slow on purpose, so credentials that verified once are remembered (by a digest,
    never in the clear) and later scrapes with them cost one HMAC.
    """

    def __init__(self, web: WebConfig):
        self._users = web.basic_auth_users
        self._token = web.bearer_token
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def allows(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self._token is not None:
            return hmac.compare_digest(credentials.strip().encode(), self._token.encode())
        if scheme.lower() == "basic" and self._users:
            return self._basic(credentials.strip())
        return False

    def _basic(self, credentials: str) -> bool:
        try:
            user, sep, password = (
                base64.b64decode(credentials, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        with self._lock:
            if hashed is not None and key in self._verified:
                return True
        if not sep:
            return False
        verified = verify_password(password, hashed or DUMMY_HASH) and hashed is not None
        if verified:
            with self._lock:
                self._verified.add(key)
        return verified


def verify_password(password: str, hashed: str) -> bool:
    """A password against a bcrypt hash or a `$pbkdf2-sha256$rounds$salt$hash` (passlib) one."""
    if hashed.startswith("$2"):
        try:
            return bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False
    _, _, rounds, salt, digest = hashed.split("$")
    expected = hashlib.pbkdf2_hmac("sha256", password.encode(), _ab64_decode(salt), int(rounds))
    return hmac.compare_digest(expected, _ab64_decode(digest))


def hash_password(password: str, rounds: int = 600_000) -> str:
    """A `$pbkdf2-sha256$` hash of the password, in the format basic_auth_users accepts."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return f"$pbkdf2-sha256${rounds}${_ab64_encode(salt)}${_ab64_encode(digest)}"


def _ab64_encode(data: bytes) -> str:
    """passlib's "adapted base64": standard base64 with '.' for '+' and no padding."""
    return base64.b64encode(data).decode().rstrip("=").replace("+", ".")


def _ab64_decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.replace(".", "+") + "=" * (-len(text) % 4))
    except binascii.Error:
        return b""
