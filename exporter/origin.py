"""The one origin a secret may be sent to, and requests that never carry it anywhere else.

The Admin API key and the Grafana token travel in request headers, so the URL they go to is
checked once, at start, and every request URL is then built from that one parsed URL. A URL is
refused unless it is a plain `https://host[:port][/path]` (or `http://` to a loopback address)
that `urllib3`, which `requests` connects with, and the standard library read the same way.
Redirects are never followed to another origin, and an `http://` origin never goes through a
proxy, which would see the secret in clear text (docs/security.md, "Where the key goes")."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.utils import get_environ_proxies
from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

from . import cutoff

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_REDIRECTS = 3
FORM = "https://host[:port][/path], or http:// to a loopback address"


class UnsafeUrl(ValueError):
    """A URL that a secret may not be sent to, stated as one sentence (without the secret)."""


class RedirectRefused(Exception):
    """A redirect that was not followed, so that the secret stays with its origin."""


@dataclass(frozen=True)
class Origin:
    """A checked base URL: `scheme://host[:port]` plus an optional path prefix."""

    scheme: str
    host: str  # lower case; an IPv6 address in brackets
    port: int | None  # as written; None for the scheme's default
    path: str  # "" or "/prefix", without a trailing slash

    def __str__(self) -> str:
        return self.url("")

    @property
    def authority(self) -> tuple[str, str, int]:
        """Scheme, host and port: what a redirect may not change."""
        return self.scheme, self.host, self.port or DEFAULT_PORTS[self.scheme]

    @property
    def site(self) -> str:
        """`scheme://host[:port]`, without the path."""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}"

    def url(self, path: str) -> str:
        """The URL of `path` (starting with /) under this origin, built from the checked parts."""
        return f"{self.site}{self.path}{path}"

    def same_origin(self, url: str) -> bool:
        """Whether `url` is unambiguously on this origin (same scheme, host and port)."""
        try:
            parsed = _parse(url, "the redirect target", allow_query=True)
        except UnsafeUrl:
            return False
        return Origin(parsed.scheme, _host(parsed), parsed.port, "").authority == self.authority


def parse_origin(text: str, name: str) -> Origin:
    """Check the URL that `name` (a variable or flag) holds; UnsafeUrl says what is wrong."""
    parsed = _parse(text, name, allow_query=False)
    host = _host(parsed)
    if parsed.scheme == "http" and not _loopback(host):
        raise UnsafeUrl(
            f"{name} {text!r} is plain http to another host, which would send the secret in"
            f" clear text; it must be {FORM}"
        )
    return Origin(parsed.scheme, host, parsed.port, (parsed.path or "").rstrip("/"))


def session_for(origin: Origin) -> requests.Session:
    """A session that reads no proxy, credentials or CA bundle from the environment by itself.

    An https origin may go through `HTTPS_PROXY` (or `ALL_PROXY`) unless `NO_PROXY` names it: the
    proxy sees only a CONNECT tunnel, the key travels inside TLS. An http (loopback) origin never
    goes through a proxy. `.netrc` is never read; `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` still
    name the certificate authorities, as `requests` would by itself."""
    session = cutoff.session()
    session.trust_env = False
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    if origin.scheme == "https":
        found = get_environ_proxies(origin.url("/"))
        proxy = found.get("https") or found.get("all")
        if proxy:
            session.proxies = {"https": proxy}
    return session


def send(
    session: requests.Session, origin: Origin, method: str, path: str, **kwargs: Any
) -> requests.Response:
    """Send a request to `path` under `origin` without ever following a redirect elsewhere.

    A GET follows up to MAX_REDIRECTS redirects on the same origin; a redirect to another origin
    (another host or port, or https to http), of another method, or one too many, raises
    RedirectRefused. `timeout` bounds each request as a whole, from connecting to the last byte
    of the body (exporter/cutoff.py), and raises requests.Timeout when it runs out."""
    url = origin.url(path)
    for _ in range(MAX_REDIRECTS + 1):
        response = _within_timeout(session, method, url, **kwargs)
        if not response.is_redirect:
            return response
        response.close()
        target = urljoin(url, response.headers["Location"])
        where = f"HTTP {response.status_code} redirect to {_describe(target)}"
        if not origin.same_origin(target):
            raise RedirectRefused(f"{where} refused: it is another origin than {origin.site}")
        if method != "GET":
            raise RedirectRefused(f"{where} refused: only GET requests follow redirects")
        url = target
        kwargs.pop("params", None)
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects from {origin.url(path)}")


def _within_timeout(
    session: requests.Session, method: str, url: str, *, timeout: float, **kwargs: Any
) -> requests.Response:
    with cutoff.within(timeout) as limit:
        try:
            return session.request(method, url, allow_redirects=False, timeout=timeout, **kwargs)
        except requests.RequestException:
            if limit.fired:
                raise requests.Timeout(f"no complete answer within {timeout:g}s") from None
            raise


def _parse(text: str, name: str, *, allow_query: bool) -> Url:
    """The URL as urllib3 reads it, once the standard library is seen to read it the same way."""
    if not text:
        raise UnsafeUrl(f"{name} is empty; it must be {FORM}")
    # A URL with an @ may hold a password: such a URL is never repeated in a message.
    label = name if "@" in text else f"{name} {text!r}"
    if any(char.isspace() or not char.isprintable() for char in text):
        raise UnsafeUrl(f"{label} contains whitespace or a control character")
    if "\\" in text:
        raise UnsafeUrl(f"{label} contains a backslash")
    if not text.isascii():
        raise UnsafeUrl(f"{label} contains a non-ASCII character (write a domain in its xn-- form)")
    if not allow_query and ("?" in text or "#" in text):
        raise UnsafeUrl(f"{label} has a query or a fragment; it must be {FORM}")
    try:
        parsed, split = parse_url(text), urlsplit(text)
        split_port = split.port
    except (LocationParseError, ValueError):
        raise UnsafeUrl(f"{label} is not a URL; it must be {FORM}") from None
    if "@" in split.netloc or parsed.auth is not None:
        raise UnsafeUrl(f"{name} has a user name or password in it (not shown); remove them")
    if parsed.scheme not in DEFAULT_PORTS or not parsed.host or parsed.port == 0:
        raise UnsafeUrl(f"{label} is not an http(s) URL with a host; it must be {FORM}")
    ours = (parsed.scheme, _host(parsed).strip("[]"), parsed.port, parsed.path or "")
    if ours != (split.scheme, split.hostname, split_port, split.path):
        raise UnsafeUrl(f"{label} is read differently by different URL parsers; it must be {FORM}")
    return parsed


def _host(parsed: Url) -> str:
    return (parsed.host or "").lower()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _describe(url: str) -> str:
    """Where a redirect points, as scheme://host[:port] only (its path may hold anything)."""
    try:
        parsed = parse_url(url)
    except LocationParseError:
        return "an unreadable location"
    if parsed.scheme is None or parsed.host is None or not url.isprintable():
        return "an unreadable location"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"
