"""The Flask application: a landing page, the cached /metrics, and health and readiness probes.

With a web config, /metrics requires basic auth (bcrypt or PBKDF2-SHA256 hashed passwords) or the
bearer token; the probes and the landing page stay open, as they reveal no member data and no
secret. The web config's response headers go on every answer, and its rate limit covers every
request."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape

import bcrypt
from flask import Flask, Response, request

from . import __version__
from .collector import EOF_LINE
from .exposition import Exposition
from .poller import Poller
from .runtime import RuntimeMetrics
from .webconfig import RateLimit, WebConfig

REALM = "claude-code-analytics-exporter"
# Password checks that may run at once; more are answered 429 at once rather than queued, so
# that wrong passwords cannot take every CPU and server thread from the scrapes.
VERIFY_SLOTS = 2
# Credentials remembered, verified right or wrong, by an HMAC under a secret of this process.
REMEMBERED = 4096

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
DEFAULT_TELEMETRY_PATH = "/metrics"
# `?target=process` on the telemetry path: the process's own series alone, which the targets of
# several organizations leave out (exporter/runtime.py).
PROCESS_TARGET = "process"
OPENMETRICS_END = Exposition.small(EOF_LINE)
# What /-/ready answers, and the landing page says, for each state of the poller's `ready`.
READINESS = {True: "Ready", False: "Loading history from the Admin API"}
SOURCES = {
    "demo": "Simulated: the built-in organizations of --demo, not real usage",
    "admin_api": "Your organizations, through the Anthropic Admin API",
}
LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Claude Code analytics exporter</title></head>
<body>
<h1>Claude Code analytics exporter</h1>
<p>Exports the Claude Code Analytics Admin API as Prometheus metrics. Data is polled off the
scrape path and served from a cache; the API itself is about an hour behind.</p>
<table>
<tr><th>Data</th><td>{source}</td></tr>
<tr><th>Readiness</th><td>{readiness}</td></tr>
<tr><th>Version</th><td>{version}</td></tr>
</table>
<h2>Organizations</h2>
<table>
<tr><th>Name</th><th>Organization</th><th>Id</th><th>Metrics</th><th>Last successful poll</th>\
<th>Readiness</th></tr>
{organizations}
</table>
<ul>
{process}<li><a href="-/healthy">/-/healthy</a>: 200 while the process runs</li>
<li><a href="-/ready">/-/ready</a>: 200 once every organization's store holds the first history
load</li>
</ul>
<p>Documentation: the README and the docs/ folder of the exporter's repository (docs/metrics.md
for the series, docs/security.md for who may see them). Ask for <code>application/json</code> to
get this page's facts as JSON.</p>
</body></html>
"""


ROW = (
    "<tr><td>{name}</td><td>{organization_name}</td><td>{organization_id}</td>"
    '<td><a href="{metrics_link}">{metrics_path}</a></td><td>{last_success}</td>'
    "<td>{readiness}</td></tr>"
)


def create_app(
    pollers: Poller | Sequence[Poller],
    web: WebConfig | None = None,
    *,
    demo: bool = False,
    telemetry_path: str = DEFAULT_TELEMETRY_PATH,
) -> Flask:
    """The app over one poller per organization. With one, the telemetry path (`/metrics`) serves
    it and the process's own series; with several, a scrape names the organization
    (`/metrics?organization=NAME`), each a target of its own, and the process's own series are a
    target of their own (`/metrics?target=process`). `demo`: the pollers read the built-in
    simulated organizations, which the page says."""
    pollers = [pollers] if isinstance(pollers, Poller) else list(pollers)
    by_name = {poller.name: poller for poller in pollers}
    runtime = RuntimeMetrics()
    app = Flask("exporter")
    guard = Guard(web) if web and (web.basic_auth_users or web.bearer_token) else None
    bucket = TokenBucket(web.rate_limit) if web and web.rate_limit else None

    @app.before_request
    def rate_limit() -> Response | None:
        if bucket is not None and not bucket.take():
            return Response("Too Many Requests\n", status=429, mimetype="text/plain")
        return None

    @app.after_request
    def extra_headers(response: Response) -> Response:
        for name, value in (web.headers if web else {}).items():
            response.headers[name] = value
        return response

    @app.get("/")
    def landing() -> Response:
        facts = Status.of(pollers, demo, telemetry_path)
        wanted = request.accept_mimetypes.best_match(["text/html", "application/json"])
        if wanted == "application/json":
            response = Response(facts.as_json(), mimetype="application/json")
        else:
            response = Response(facts.as_html(), mimetype="text/html")
        response.headers["Vary"] = "Accept"
        return response

    @app.get(telemetry_path)
    def metrics() -> Response:
        if guard is not None:
            try:
                allowed = guard.allows(request.headers.get("Authorization", ""))
            except Busy:
                return Response(
                    "Too many password checks at once; retry shortly\n",
                    status=429,
                    mimetype="text/plain",
                    headers={"Retry-After": "1"},
                )
            if not allowed:
                return Response(
                    "Unauthorized\n",
                    status=401,
                    mimetype="text/plain",
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
                )
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        if request.args.get("target") == PROCESS_TARGET:
            return _exposition(runtime.part({}, openmetrics), openmetrics)
        wanted = request.args.get("organization")
        if wanted is None and len(pollers) > 1:
            return _plain(
                "This exporter reads several organizations, each a scrape target of its own: "
                f"scrape {telemetry_path}?organization=NAME for each of {_names(by_name)}, and "
                f"{telemetry_path}?target={PROCESS_TARGET} for the process's own series.\n",
                400,
            )
        poller = pollers[0] if wanted is None else by_name.get(wanted)
        if poller is None:
            return _plain(
                f"No organization is configured under the name {wanted!r}; "
                f"the names are {_names(by_name)}.\n",
                404,
            )
        # One read: a poll may swap in a new one meanwhile.
        exposition = poller.openmetrics if openmetrics else poller.exposition
        if len(pollers) == 1:  # the process's own series go with its only organization
            labels = exposition.labels or poller.labels
            exposition = exposition.then(runtime.part(labels, openmetrics))
        elif openmetrics:
            exposition = exposition.then(OPENMETRICS_END)
        return _exposition(exposition, openmetrics)

    @app.get("/-/healthy")
    def healthy() -> Response:
        return Response("OK\n", mimetype="text/plain")

    @app.get("/-/ready")
    def ready() -> Response:
        is_ready = all(poller.ready.is_set() for poller in pollers)
        return Response(
            READINESS[is_ready] + "\n", status=200 if is_ready else 503, mimetype="text/plain"
        )

    return app


def wants_openmetrics(accept: str) -> bool:
    """Whether an Accept header prefers OpenMetrics 1.x to the text format, by its q-values, as
    client_golang's negotiation reads them. Prometheus sends
    `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`;
    a header that accepts neither gets the text format."""
    best: tuple[float, bool] | None = None
    for media_range in accept.split(","):
        media, *params = (field.strip() for field in media_range.split(";"))
        values = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params)}
        try:
            quality = float(values.get("q", "1"))
        except ValueError:
            continue
        media = media.lower()
        if media == "application/openmetrics-text":
            version = values.get("version", "1.0.0")
            if version.split(".")[0] != "1":
                continue
            offered = True
        elif media in ("text/plain", "text/*", "*/*"):
            offered = False
        else:
            continue
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, offered)
    return best is not None and best[1]


def _exposition(exposition: Exposition, openmetrics: bool) -> Response:
    """The answer of a scrape: gzipped when asked, else decompressed as it is sent (the text is
    30 times the gzip, exporter/exposition.py); each gzip member sent as it is, never joined."""
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response = Response(
            exposition.gzipped_pieces(),
            content_type=content_type,
            headers={"Content-Length": str(exposition.gzipped_length), "Content-Encoding": "gzip"},
        )
    else:
        response = Response(
            exposition.plain_pieces(),
            content_type=content_type,
            headers={"Content-Length": str(exposition.length)},
        )
    response.headers["Vary"] = "Accept, Accept-Encoding"
    return response


def _names(by_name: dict[str, Poller]) -> str:
    return ", ".join(sorted(by_name))


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


@dataclass(frozen=True)
class OrganizationStatus:
    """One organization on the landing page."""

    name: str  # as the configuration names it
    organization_id: str | None  # as the API names it; None until it has
    organization_name: str | None
    metrics_path: str  # what Prometheus scrapes for it
    last_success: str | None  # when the last fully successful poll ended, UTC, ISO 8601
    last_success_age_seconds: int | None
    ready: bool

    @classmethod
    def of(cls, poller: Poller, alone: bool, telemetry_path: str) -> OrganizationStatus:
        last_success = poller.stats.last_success
        return cls(
            name=poller.name,
            organization_id=poller.organization_id,
            organization_name=poller.organization_name,
            metrics_path=telemetry_path
            if alone
            else f"{telemetry_path}?organization={poller.name}",
            last_success=None if last_success is None else _iso(last_success),
            last_success_age_seconds=(
                None if last_success is None else int(poller.clock().timestamp() - last_success)
            ),
            ready=poller.ready.is_set(),
        )

    def as_html(self) -> str:
        last_success = "never"
        if self.last_success is not None and self.last_success_age_seconds is not None:
            last_success = f"{self.last_success} ({ago(self.last_success_age_seconds)})"
        values = {
            "name": self.name,
            "organization_name": self.organization_name or "Not known yet",
            "organization_id": self.organization_id or "Not known yet: the API has not named it",
            "metrics_path": self.metrics_path,
            "metrics_link": self.metrics_path.lstrip("/"),
            "last_success": last_success,
            "readiness": READINESS[self.ready],
        }
        return ROW.format(**{name: escape(value) for name, value in values.items()})


@dataclass(frozen=True)
class Status:
    """What the landing page tells, from the pollers' memory: no store read, nothing secret and
    nothing that names a member."""

    source: str  # a key of SOURCES
    ready: bool  # what /-/ready answers
    version: str
    organizations: list[OrganizationStatus]
    # The target of the process's own series, with several organizations; None with one, whose
    # target has them.
    process_metrics_path: str | None

    @classmethod
    def of(cls, pollers: Sequence[Poller], demo: bool, telemetry_path: str) -> Status:
        alone = len(pollers) == 1
        return cls(
            source="demo" if demo else "admin_api",
            ready=all(poller.ready.is_set() for poller in pollers),
            version=__version__,
            organizations=[OrganizationStatus.of(p, alone, telemetry_path) for p in pollers],
            process_metrics_path=None if alone else f"{telemetry_path}?target={PROCESS_TARGET}",
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def as_html(self) -> str:
        """The landing page; every value in it is escaped."""
        values = {
            "source": escape(SOURCES[self.source]),
            "readiness": escape(READINESS[self.ready]),
            "version": escape(self.version),
            "organizations": "\n".join(org.as_html() for org in self.organizations),
            "process": "",
        }
        if self.process_metrics_path is not None:
            path = escape(self.process_metrics_path)
            values["process"] = (
                f'<li><a href="{path.lstrip("/")}">{path}</a>: the exporter process\'s own'
                " series (process_*, python_*), served apart from every organization's</li>\n"
            )
        return LANDING.format(**values)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(seconds: int) -> str:
    """An age in words, in its largest whole unit: "12 minutes ago"; "just now" under a minute."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


class Busy(Exception):
    """Every password-check slot is taken."""


class Guard:
    """Checks an Authorization header against the web config, at a bounded cost.

    Hashing is slow on purpose. Credentials checked once are remembered, right or wrong, by an
    HMAC of user, password and hash under a random key of this process (never in the clear), so
    a scraper's later requests, and a repeated wrong password, cost one HMAC. New credentials
    take one of VERIFY_SLOTS slots, or raise Busy when all are taken. An unknown user is checked
    against a dummy hash of the same scheme and cost as the file's, so it costs what a wrong
    password costs.
    """

    def __init__(self, web: WebConfig):
        self._users = web.basic_auth_users
        self._token = web.bearer_token
        self._secret = secrets.token_bytes(32)
        self._remembered: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(VERIFY_SLOTS)
        self._dummy = dummy_hash(list(self._users.values())) if self._users else ""

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
        if not sep:
            return False
        hashed = self._users.get(user)
        key = hmac.digest(
            self._secret, f"{user}\0{password}\0{hashed or ''}".encode(), hashlib.sha256
        )
        with self._lock:
            known = self._remembered.get(key)
            if known is not None:
                self._remembered.move_to_end(key)
                return known
        if not self._slots.acquire(blocking=False):
            raise Busy
        try:
            verified = verify_password(password, hashed or self._dummy) and hashed is not None
        finally:
            self._slots.release()
        with self._lock:
            self._remembered[key] = verified
            if len(self._remembered) > REMEMBERED:
                self._remembered.popitem(last=False)
        return verified


class TokenBucket:
    """The web config's rate_limit: `burst` tokens, refilled at one per `interval`."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            refill = (now - self._last) / self._limit.interval
            self._tokens = min(float(self._limit.burst), self._tokens + refill)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def dummy_hash(hashes: list[str]) -> str:
    """A hash of a random password in the most common scheme and cost among `hashes`."""
    settings = Counter(_scheme_and_cost(h) for h in hashes).most_common(1)[0][0]
    scheme, cost = settings
    password = secrets.token_bytes(16).hex()
    if scheme == "bcrypt":
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=int(cost))).decode()
    return hash_password(password, rounds=int(cost))


def _scheme_and_cost(hashed: str) -> tuple[str, str]:
    if hashed.startswith("$2"):
        return "bcrypt", hashed.split("$")[2]
    return "pbkdf2-sha256", hashed.split("$")[2]


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
