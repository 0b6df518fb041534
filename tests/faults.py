"""The simulator with faults: the tests' misbehaving Admin API.

`serve_with_faults()` serves a simulated organization whose faults are switched over HTTP at
/-/faults (`inject()` and `clear()` do it from a test). It lives with the tests, not in the
installed simulator: nothing outside the tests switches faults, and a fault switch is no endpoint
to ship. It changes the simulator's answers only at the points `AdminApi` offers a subclass.
"""

from __future__ import annotations

import copy
import secrets
import socket
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date

import flask
import requests

from exporter.simulator import AdminApi, SimulatedOrganization, SimulatorServer
from exporter.simulator.api import USAGE_PATH, USERS_PATH, ApiFailure, error_response

FAULTS_PATH = "/-/faults"
# Faults answered with the API's documented error instead of data: status and error type.
STATUS_FAULTS = {
    "rate_limit": (429, "rate_limit_error"),
    "server_error": (500, "api_error"),
    "bad_gateway": (502, "api_error"),
    "unavailable": (503, "api_error"),
    "overloaded": (529, "overloaded_error"),
}
# Faults that damage the first record of a usage report page, and how.
RECORD_FAULTS = (
    "unknown_fields",
    "missing_fields",
    "wrong_types",
    "negative_numbers",
    "absurd_numbers",
)
# Faults of the usage report's paging.
PAGING_FAULTS = ("short_pages", "repeat_cursor", "duplicate_records", "endless_empty_pages")
# Faults of the connection or the body, on either endpoint.
TRANSPORT_FAULTS = ("timeout", "reset", "truncated_json")
FAULT_KINDS = (*STATUS_FAULTS, *TRANSPORT_FAULTS, *PAGING_FAULTS, *RECORD_FAULTS, "hostile_names")
ENDPOINTS = ("claude_code_usage", "users")
# Appended to every member's email by "hostile_names": a quote, a backslash, a newline, non-ASCII.
HOSTILE_SUFFIX = '+"o\\brien"\nzoë.日本'
ABSURD_CENTS = 10**15


def hostile_email(email: str) -> str:
    """The email a member has while the "hostile_names" fault is on."""
    local, _, domain = email.partition("@")
    return f"{local}{HOSTILE_SUFFIX}@{domain}"


def inject(url: str, kind: str, **options: object) -> dict:
    """Switch on a fault in the simulator at `url` (served by serve_with_faults())."""
    response = requests.post(url + FAULTS_PATH, json={"kind": kind, **options}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def clear(url: str) -> None:
    assert requests.delete(url + FAULTS_PATH, timeout=5).status_code == 204


@dataclass
class Fault:
    """One switched-on fault: the first `after` matching requests pass, the next `times` of
    them suffer it (None: until cleared)."""

    kind: str
    times: int | None = 1
    after: int = 0
    endpoint: str | None = None
    day: str | None = None
    retry_after: str | None = None
    delay: float = 5.0
    page_size: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            )
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; expected one of {ENDPOINTS}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for a fault that stays on")
        if self.page_size < 1 or self.after < 0:
            raise ValueError("page_size must be at least 1 and after at least 0")

    def matches(self, endpoint: str, day: str | None) -> bool:
        usage_only = self.kind in RECORD_FAULTS or self.kind in PAGING_FAULTS
        if usage_only and endpoint != "claude_code_usage":
            return False
        if self.endpoint not in (None, endpoint):
            return False
        return self.day is None or self.day == day


class Faults:
    """The faults switched on; each matching request uses one up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(self, kind: str, **options: object) -> Fault:
        fault = Fault(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, endpoint: str, day: str | None) -> list[Fault]:
        """The faults a request suffers, with one use of each counted off."""
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(endpoint, day):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                taken.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
        return taken


class FaultyApi(AdminApi):
    """The simulator's API with `faults`, switched over HTTP at /-/faults, applied to every
    organization it serves."""

    def __init__(
        self,
        orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
        api_key: str | None = None,
    ):
        super().__init__(orgs, api_key)
        self.faults = Faults()
        self.app.get(FAULTS_PATH)(self._list_faults)
        self.app.post(FAULTS_PATH)(self._inject_fault)
        self.app.delete(FAULTS_PATH)(self._clear_faults)

    def intercept(
        self, org: SimulatedOrganization, request: flask.Request
    ) -> flask.Response | None:
        flask.g.faults = self._faults_for(request)
        return _fail_request(flask.g.faults)

    def usage_page(
        self, org: SimulatedOrganization, day: date, limit: int, cursor: str | None
    ) -> dict:
        faults = flask.g.faults
        if _first(faults, ("endless_empty_pages",)):
            return {"data": [], "has_more": True, "next_page": secrets.token_urlsafe(12)}
        page = super().usage_page(org, day, limit, cursor)
        if page["has_more"] and cursor is not None and _first(faults, ("repeat_cursor",)):
            page["next_page"] = cursor
        return page

    def usage_window(self, start: int, limit: int, resumed: bool) -> tuple[int, int]:
        faults = flask.g.faults
        short = _first(faults, ("short_pages",))
        if short is not None:
            limit = min(limit, short.page_size)
        if resumed and start > 0 and _first(faults, ("duplicate_records",)):
            start -= 1  # the page repeats the previous page's last record
        return start, limit

    def answer(self, page: dict) -> flask.Response:
        faults = flask.g.faults
        if faults:
            page = copy.deepcopy(page)
            _damage_records(page, faults)
        if _first(faults, ("hostile_names",)):
            _hostile_names(page)
        response = super().answer(page)
        if _first(faults, ("truncated_json",)):
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
        return response

    def _faults_for(self, request: flask.Request) -> list[Fault]:
        if request.path == USAGE_PATH:
            return self.faults.take("claude_code_usage", request.args.get("starting_at"))
        if request.path == USERS_PATH:
            return self.faults.take("users", None)
        return []

    def _list_faults(self) -> flask.Response:
        return flask.jsonify([asdict(fault) for fault in self.faults.active()])

    def _inject_fault(self) -> tuple[flask.Response, int]:
        options = flask.request.get_json(silent=True)
        if not isinstance(options, dict) or "kind" not in options:
            raise ApiFailure(400, "invalid_request_error", "send a JSON object with a 'kind'")
        try:
            fault = self.faults.inject(**options)
        except (TypeError, ValueError) as exc:
            raise ApiFailure(400, "invalid_request_error", str(exc)) from None
        return flask.jsonify(asdict(fault)), 201

    def _clear_faults(self) -> tuple[str, int]:
        self.faults.clear()
        return "", 204


def serve_with_faults(
    orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
    api_key: str | None = None,
) -> SimulatorServer:
    """serve() of the simulator, with fault switches."""
    return SimulatorServer(FaultyApi(orgs, api_key))


def _first(faults: Sequence[Fault], kinds: Iterable[str]) -> Fault | None:
    return next((fault for fault in faults if fault.kind in kinds), None)


def _fail_request(faults: list[Fault]) -> flask.Response | None:
    """The answer of a fault that replaces the normal one, if any."""
    fault = _first(faults, (*STATUS_FAULTS, "timeout", "reset"))
    if fault is None:
        return None
    if fault.kind == "timeout":
        threading.Event().wait(fault.delay)  # the client has given up by now
        return None
    if fault.kind == "reset":
        _reset_connection(flask.request)
        return flask.Response(b"")
    status, error_type = STATUS_FAULTS[fault.kind]
    response = error_response(status, error_type, f"simulated {fault.kind.replace('_', ' ')}")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response


def _reset_connection(request: flask.Request) -> None:
    """Drop the TCP connection (with a reset where the OS allows) before any byte of the answer."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.shutdown(socket.SHUT_RDWR)


def _damage_records(page: dict, faults: list[Fault]) -> None:
    for fault in faults:
        if fault.kind in RECORD_FAULTS and page["data"]:
            _damage(page["data"][0], fault.kind)
            if fault.kind == "unknown_fields":
                page["future_envelope_field"] = {"added": "later"}


def _damage(record: dict, kind: str) -> None:
    core = record["core_metrics"]
    if kind == "unknown_fields":
        record["future_field"] = [1, {"nested": True}]
        core["future_metric"] = 7
        record["actor"]["future_actor_field"] = "x"
    elif kind == "missing_fields":
        del record["core_metrics"]
    elif kind == "wrong_types":
        core["num_sessions"] = str(core["num_sessions"])
    elif kind == "negative_numbers":
        core["lines_of_code"]["added"] = -5
    elif kind == "absurd_numbers":
        absurd = {"currency": "USD", "amount": ABSURD_CENTS}
        models = record["model_breakdown"]
        first = models[0] if models else {"model": "claude-sonnet-4-20250514", "tokens": {}}
        record["model_breakdown"] = [{**first, "estimated_cost": absurd}]


def _hostile_names(page: dict) -> None:
    for item in page["data"]:
        actor = item.get("actor")
        if isinstance(actor, dict) and "email_address" in actor:
            actor["email_address"] = hostile_email(actor["email_address"])
        elif "email" in item:
            item["email"] = hostile_email(item["email"])
