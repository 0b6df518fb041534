"""HTTP client for the Anthropic Admin API endpoints the exporter reads.

Retries with exponential backoff and jitter on 429, 5xx (529 "overloaded" included), timeouts,
connection errors and unreadable bodies, honouring `Retry-After`. The key is sent in a header, only
to the configured origin (exporter/origin.py), and never appears in an exception, a log line or a
metric label."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date

import requests

from . import __version__
from .clock import utc_now
from .origin import Origin, RedirectRefused, parse_origin, send, session_for
from .parse import (
    Member,
    Organization,
    PageError,
    UsagePage,
    parse_organization,
    parse_usage_page,
    parse_users_page,
)

log = logging.getLogger(__name__)

API_VERSION = "2023-06-01"
USER_AGENT = f"claude-code-analytics-exporter/{__version__} (Prometheus exporter; python-requests)"
USAGE_PATH = "/v1/organizations/usage_report/claude_code"
USERS_PATH = "/v1/organizations/users"
ORGANIZATION_PATH = "/v1/organizations/me"
ENDPOINT_USAGE = "claude_code_usage"
ENDPOINT_USERS = "users"
ENDPOINT_ORGANIZATION = "organization"
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
MAX_PAGES = 100_000
# The code of an ApiError for a day or list whose pages make no sense: a repeated cursor, too many
# pages, a malformed page. Another day may still be fine.
BAD_PAGE = "bad_page"
# Pages in a row that say has_more but hold nothing: the data cannot need them.
MAX_EMPTY_PAGES = 3

RequestHook = Callable[[str, str, bool], None]


class ApiError(Exception):
    """A request that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(self, endpoint: str, code: str, message: str):
        super().__init__(message)
        self.endpoint = endpoint
        self.code = code


class AuthError(ApiError):
    """401 or 403: the key is wrong, revoked or lacks the admin role; retrying won't fix it."""


class AdminClient:
    def __init__(
        self,
        base_url: Origin | str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        page_limit: int = 1000,
        on_request: RequestHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if isinstance(base_url, str):
            base_url = parse_origin(base_url, "the Admin API URL")
        self.origin = base_url
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.page_limit = page_limit
        self.on_request = on_request or (lambda endpoint, code, failed: None)
        # time.monotonic() after which no request starts and no retry waits (the poll's timeout).
        self.deadline: float | None = None
        self._sleep = sleep
        self._session = session_for(self.origin)
        self._session.headers.update(
            {
                "anthropic-version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            }
        )

    def __repr__(self) -> str:
        return f"AdminClient(base_url={str(self.origin)!r})"

    def clone(self) -> AdminClient:
        """Another client on the same API and key, with its own session, for another thread."""
        return AdminClient(
            self.origin,
            self._api_key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            page_limit=self.page_limit,
            sleep=self._sleep,
        )

    def usage_pages(self, day: date) -> Iterator[UsagePage]:
        """Every page of the Claude Code usage report for one UTC day."""
        params: dict[str, str | int] = {"starting_at": day.isoformat(), "limit": self.page_limit}
        seen: set[str] = set()
        empty = 0
        for _ in range(MAX_PAGES):
            payload = self._get(ENDPOINT_USAGE, USAGE_PATH, params)
            try:
                page = parse_usage_page(payload, day)
            except PageError as exc:
                raise ApiError(ENDPOINT_USAGE, BAD_PAGE, f"usage report for {day}: {exc}") from exc
            yield page
            if not page.has_more:
                return
            empty = 0 if page.records or page.rejected else empty + 1
            if empty == MAX_EMPTY_PAGES:
                raise ApiError(
                    ENDPOINT_USAGE,
                    BAD_PAGE,
                    f"usage report for {day} gave {empty} empty pages in a row that say has_more",
                )
            if page.next_page in seen:
                raise ApiError(ENDPOINT_USAGE, BAD_PAGE, f"usage report for {day} repeats a cursor")
            seen.add(page.next_page)  # type: ignore[arg-type]
            params["page"] = page.next_page  # type: ignore[assignment]
        raise ApiError(ENDPOINT_USAGE, BAD_PAGE, f"usage report for {day} has too many pages")

    def organization(self) -> Organization | None:
        """The key's organization, or None where the API does not answer `/v1/organizations/me`
        (404: the reference lists the endpoint but no source confirms it for every key)."""
        try:
            payload = self._get(ENDPOINT_ORGANIZATION, ORGANIZATION_PATH, {})
        except ApiError as exc:
            if exc.code == "404":
                return None
            raise
        try:
            return parse_organization(payload)
        except PageError as exc:
            raise ApiError(ENDPOINT_ORGANIZATION, BAD_PAGE, f"organization: {exc}") from exc

    def list_users(self) -> list[Member]:
        """Every member of the organization with their role."""
        members: list[Member] = []
        params: dict[str, str | int] = {"limit": self.page_limit}
        seen: set[str] = set()
        empty = 0
        for _ in range(MAX_PAGES):
            try:
                page = parse_users_page(self._get(ENDPOINT_USERS, USERS_PATH, params))
            except PageError as exc:
                raise ApiError(ENDPOINT_USERS, BAD_PAGE, f"users list: {exc}") from exc
            members.extend(page.members)
            if not page.has_more:
                return members
            empty = 0 if page.members else empty + 1
            if empty == MAX_EMPTY_PAGES:
                raise ApiError(
                    ENDPOINT_USERS,
                    BAD_PAGE,
                    f"users list gave {empty} empty pages in a row that say has_more",
                )
            if page.last_id in seen:
                raise ApiError(ENDPOINT_USERS, BAD_PAGE, "users list repeats a cursor")
            seen.add(page.last_id)  # type: ignore[arg-type]
            params["after_id"] = page.last_id  # type: ignore[assignment]
        raise ApiError(ENDPOINT_USERS, BAD_PAGE, "users list has too many pages")

    def _remaining(self, endpoint: str) -> float:
        """Seconds left before the deadline (infinite without one); ApiError once it passed."""
        if self.deadline is None:
            return math.inf
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ApiError(endpoint, "poll_timeout", f"{endpoint}: the poll ran out of time")
        return left

    def _get(self, endpoint: str, path: str, params: dict) -> object:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = send(
                    self._session,
                    self.origin,
                    "GET",
                    path,
                    params=params,
                    headers={"x-api-key": self._api_key},
                    timeout=min(self.timeout, self._remaining(endpoint)),
                )
            except RedirectRefused as exc:
                self.on_request(endpoint, "redirect_refused", True)
                message = f"{endpoint}: {self._redact(str(exc))}"
                raise ApiError(endpoint, "redirect_refused", message) from None
            except requests.Timeout:
                self._failed(endpoint, "timeout", f"{endpoint}: request timed out", last)
                self._wait(endpoint, self._delay(attempt, None))
                continue
            except requests.RequestException as exc:
                message = f"{endpoint}: cannot reach {self.origin} ({type(exc).__name__})"
                self._failed(endpoint, "connection_error", message, last)
                self._wait(endpoint, self._delay(attempt, None))
                continue
            code = str(response.status_code)
            if response.status_code == 200:
                try:
                    payload = response.json()
                except ValueError:
                    self._failed(
                        endpoint, "invalid_json", f"{endpoint}: response is not JSON", last
                    )
                    self._wait(endpoint, self._delay(attempt, None))
                    continue
                self.on_request(endpoint, code, False)
                return payload
            message = f"{endpoint}: HTTP {code} {self._redact(_error_message(response))[:200]}"
            if response.status_code in (401, 403):
                self.on_request(endpoint, code, True)
                raise AuthError(endpoint, code, message)
            if response.status_code not in RETRYABLE_STATUS:
                self.on_request(endpoint, code, True)
                raise ApiError(endpoint, code, message)
            self._failed(endpoint, code, message, last)
            self._wait(endpoint, self._delay(attempt, response.headers.get("Retry-After")))
        raise AssertionError("unreachable")

    def _wait(self, endpoint: str, seconds: float) -> None:
        """Wait before a retry, but not past the deadline."""
        self._sleep(min(seconds, self._remaining(endpoint)))

    def _redact(self, text: str) -> str:
        """The server's words on one line and without the key, should an error page echo it."""
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return "".join(char if char.isprintable() else " " for char in text)

    def _failed(self, endpoint: str, code: str, message: str, last: bool) -> None:
        self.on_request(endpoint, code, True)
        if last:
            raise ApiError(endpoint, code, f"{message}; gave up after {self.max_retries + 1} tries")
        log.warning("%s; retrying", message)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """Full-jitter exponential backoff, but never sooner than the server's Retry-After."""
        delay = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
        wait = _retry_after_seconds(retry_after)
        if wait is not None:
            delay = max(delay, min(wait, self.max_backoff * 5))
        return delay


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utc_now()).total_seconds())


def _error_message(response: requests.Response) -> str:
    """The API's error type and message."""
    try:
        error = response.json().get("error", {})
        text = f"{error.get('type', 'error')}: {error.get('message', '')}"
    except (ValueError, AttributeError):
        text = response.reason or ""
    return text
