"""The documented Admin API endpoints over simulated organizations, as a Flask app: the users, one
user, the organization and the Claude Code usage report, with their paging, checks and errors."""

from __future__ import annotations

import base64
import binascii
import bisect
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import date

import flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from ..clock import day_stamp
from .organization import SimulatedOrganization
from .usage import visible_hours

USAGE_PATH = "/v1/organizations/usage_report/claude_code"
USERS_PATH = "/v1/organizations/users"
ORGANIZATION_PATH = "/v1/organizations/me"
HEALTH_PATH = "/-/healthy"
API_VERSIONS = ("2023-01-01", "2023-06-01")
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
CURSOR_PREFIX = "page_"
HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error"}


class ApiFailure(Exception):
    """Turned into the API's error body by the app."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def error_response(status: int, error_type: str, message: str) -> flask.Response:
    """A response in the API's documented error shape (also for request hooks)."""
    request_id = "req_01" + secrets.token_hex(12)
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = flask.jsonify({**body, "request_id": request_id})
    response.status_code = status
    response.headers["request-id"] = request_id
    return response


class AdminApi:
    """The documented endpoints as a Flask app, `app`, serving one organization or several.

    One organization is served to `api_key` (or to any key when it is None); several, given by
    key, each to its own key, as the real API tells organizations apart. Paths under /-/ are the
    simulator's own and need no key.

    A subclass can change the answers at four points, which here leave them as the API gives them:
    `intercept` (an authenticated request, before its endpoint), `usage_page` and `usage_window`
    (what a page of the usage report holds) and `answer` (how a page of records or members is
    sent). The tests' fault injection is such a subclass; the simulator itself has none."""

    def __init__(
        self,
        orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
        api_key: str | None = None,
    ):
        self.by_key = dict(orgs) if isinstance(orgs, Mapping) else {}
        first = next(iter(self.by_key.values())) if self.by_key else orgs
        assert isinstance(first, SimulatedOrganization)
        self.org = first
        self.api_key = api_key
        self.app = flask.Flask("exporter.simulator")
        self.app.json.sort_keys = False  # type: ignore[attr-defined]
        self.app.before_request(self._gate)
        self.app.get(HEALTH_PATH)(lambda: "OK")
        self.app.get(USAGE_PATH)(self._usage_report)
        self.app.get(USERS_PATH)(self._list_users)
        self.app.get(ORGANIZATION_PATH)(self._organization)
        self.app.get(USERS_PATH + "/<user_id>")(self._get_user)
        self.app.errorhandler(ApiFailure)(self._api_failure)
        self.app.errorhandler(HTTPException)(self._http_exception)

    def intercept(
        self, org: SimulatedOrganization, request: flask.Request
    ) -> flask.Response | None:
        """An answer that replaces the endpoint's, or None to let the endpoint answer."""
        return None

    def usage_page(
        self, org: SimulatedOrganization, day: date, limit: int, cursor: str | None
    ) -> dict:
        """A page of the usage report for `day`: the first, or the one after `cursor`."""
        hours = visible_hours(day, org.now())
        after = -1
        if cursor is not None:
            hours, after = _read_cursor(cursor, day, hours)
        records = org.view(day, hours)
        start = bisect.bisect_right([index for index, _ in records], after)
        start, limit = self.usage_window(start, limit, cursor is not None)
        page = records[start : start + limit]
        has_more = start + limit < len(records)
        next_page = _cursor(day, hours, page[-1][0]) if has_more else None
        data = [record for _, record in page]
        return {"data": data, "has_more": has_more, "next_page": next_page}

    def usage_window(self, start: int, limit: int, resumed: bool) -> tuple[int, int]:
        """Where a usage report page starts among the day's visible records and how many it holds;
        `resumed` when the request names a cursor."""
        return start, limit

    def answer(self, page: dict) -> flask.Response:
        """The response of a page of the usage report or of the members. The records of a usage
        page are shared with the organization's cache: a change needs a copy."""
        return flask.jsonify(page)

    def _gate(self) -> flask.Response | None:
        request = flask.request
        if request.path.startswith("/-/"):
            return None
        given = request.headers.get("x-api-key") or ""
        org = self.by_key.get(given, self.org) if self.by_key else self.org
        _count(org, request)
        for hook in list(org.before_request):
            response = hook(request)
            if response is not None:
                return response
        if self.by_key and given not in self.by_key:
            raise ApiFailure(401, "authentication_error", "invalid x-api-key")
        _check_credentials(request, given if self.by_key else self.api_key)
        flask.g.org = org
        return self.intercept(org, request)

    def _usage_report(self) -> flask.Response:
        args = flask.request.args
        day = _starting_day(args.get("starting_at"))
        page = self.usage_page(flask.g.org, day, _limit(args), args.get("page"))
        return self.answer(page)

    def _list_users(self) -> flask.Response:
        return self.answer(_users_page(flask.g.org, flask.request.args))

    def _organization(self) -> flask.Response:
        org = flask.g.org
        return flask.jsonify({"id": org.organization_id, "type": "organization", "name": org.name})

    def _get_user(self, user_id: str) -> flask.Response:
        user = next((u for u in flask.g.org.users() if u["id"] == user_id), None)
        if user is None:
            raise ApiFailure(404, "not_found_error", f"no user with id {user_id!r}")
        return flask.jsonify(user)

    def _api_failure(self, failure: ApiFailure) -> flask.Response:
        return error_response(failure.status, failure.error_type, str(failure))

    def _http_exception(self, exc: HTTPException) -> flask.Response:
        status = exc.code or 500
        return error_response(status, HTTP_ERROR_TYPES.get(status, "api_error"), exc.name)


def _count(org: SimulatedOrganization, request: flask.Request) -> None:
    if request.path == USAGE_PATH:
        org.count_request("claude_code_usage", request.args.get("starting_at"))
    elif request.path == USERS_PATH or request.path.startswith(USERS_PATH + "/"):
        org.count_request("users", None)
    elif request.path == ORGANIZATION_PATH:
        org.count_request("organization", None)


def _check_credentials(request: flask.Request, api_key: str | None) -> None:
    if api_key is not None:
        given = request.headers.get("x-api-key")
        if not given:
            raise ApiFailure(401, "authentication_error", "x-api-key header is required")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiFailure(401, "authentication_error", "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if not version:
        raise ApiFailure(400, "invalid_request_error", "anthropic-version header is required")
    if version not in API_VERSIONS:
        raise ApiFailure(400, "invalid_request_error", "anthropic-version is not a known version")


def _limit(args: MultiDict[str, str]) -> int:
    raw = args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,7}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiFailure(
            400, "invalid_request_error", f"limit must be an integer from 1 to {MAX_LIMIT}"
        )
    return int(raw)


def _starting_day(raw: str | None) -> date:
    if raw is None:
        raise ApiFailure(400, "invalid_request_error", "starting_at is required")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiFailure(
            400, "invalid_request_error", "starting_at must be a date in YYYY-MM-DD format"
        ) from None


def _cursor(day: date, hours: int, last_index: int) -> str:
    """Encodes the day, its data boundary (visible hours) and the position of the last record."""
    text = f"{day_stamp(day)}|{hours}|{last_index}"
    return CURSOR_PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def _read_cursor(cursor: str, day: date, hours_now: int) -> tuple[int, int]:
    """The data boundary and last position a cursor for `day` encodes; a 400 for anything else."""
    bad = ApiFailure(400, "invalid_request_error", "page is not a cursor for this starting_at")
    if not cursor.startswith(CURSOR_PREFIX):
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor[len(CURSOR_PREFIX) :].encode()).decode()
        stamp, hours_text, last_text = text.split("|")
        hours, last = int(hours_text), int(last_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if stamp != day_stamp(day) or not 0 <= hours <= hours_now or last < 0:
        raise bad
    return hours, last


def _users_page(org: SimulatedOrganization, args: MultiDict[str, str]) -> dict:
    after_id, before_id = args.get("after_id"), args.get("before_id")
    if after_id is not None and before_id is not None:
        raise ApiFailure(400, "invalid_request_error", "pass after_id or before_id, not both")
    limit = _limit(args)
    roles = args.getlist("roles") + args.getlist("roles[]")
    try:
        users, has_more = org.user_page(limit, after_id, before_id, args.get("email"), roles)
    except KeyError:
        raise ApiFailure(400, "invalid_request_error", "after_id or before_id is unknown") from None
    return {
        "data": users,
        "has_more": has_more,
        "first_id": users[0]["id"] if users else None,
        "last_id": users[-1]["id"] if users else None,
    }
