"""An independent implementation of the documented Admin API endpoints, serving fixed JSON pages.

Unlike the simulator it computes nothing: it serves the documented example responses (and hand-
written pages in the same shape) from `tests/fixtures/api/`, so the tests can compare the
exporter with hand-computed sums."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "api"
EMPTY_DAY = {"data": [], "has_more": False, "next_page": None}


def error_body(kind: str, message: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_test"}
    ).encode()


def fixtures_on(folder: Path, days: dict[str, date]) -> Path:
    """The fixture pages in `folder`, with each fixture day in `days` moved to the date it maps
    to, so a test at any instant (or at the real one) serves the hand-written days it needs."""
    for page in [*FIXTURES.glob("users_page*.json"), FIXTURES / "organization.json"]:
        shutil.copy(page, folder / page.name)
    for source, target in days.items():
        for page in FIXTURES.glob(f"usage_{source}_page*.json"):
            text = page.read_text().replace(source, target.isoformat())
            (folder / page.name.replace(source, target.isoformat())).write_text(text)
    return folder


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (a test's short timeout) is no error of the fake API: say nothing
        rather than print a traceback into the test run's output."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAdminApi:
    """Serves `usage_<day>_page<N>.json` and `users_page<N>.json`; any other day is empty. Serves
    `/v1/organizations/me` from `organization.json` when the folder holds one, else answers 404,
    as an API without that endpoint would."""

    def __init__(self, api_key: str, fixtures: Path = FIXTURES):
        self.api_key = api_key
        self.usage = self._pages(fixtures, "usage_")
        self.users = [json.loads(p.read_text()) for p in sorted(fixtures.glob("users_page*.json"))]
        me = fixtures / "organization.json"
        self.organization: dict | None = json.loads(me.read_text()) if me.is_file() else None
        self.calls: Counter = Counter()
        self.faults: list[tuple[int, dict, bytes]] = []  # served, in order, before real answers
        self.hang = threading.Event()  # while set, every request waits until cleared
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @staticmethod
    def _pages(folder: Path, prefix: str) -> dict[str, list[dict]]:
        pages: dict[str, list[dict]] = {}
        for path in sorted(folder.glob(f"{prefix}*_page*.json")):
            day = path.name[len(prefix) :].split("_page")[0]
            pages.setdefault(day, []).append(json.loads(path.read_text()))
        return pages

    def stop(self) -> None:
        self.hang.clear()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAdminApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, path: str, query: dict[str, list[str]], headers) -> tuple[int, dict, bytes]:
        if headers.get("anthropic-version") != "2023-06-01":
            return (
                400,
                {},
                error_body("invalid_request_error", "anthropic-version header is required"),
            )
        if headers.get("x-api-key") != self.api_key:
            return 401, {}, error_body("authentication_error", "invalid x-api-key")
        if path == "/v1/organizations/usage_report/claude_code":
            day = query.get("starting_at", [""])[0]
            self.calls[("claude_code_usage", day)] += 1
            return 200, {}, json.dumps(self._page(self.usage.get(day, [EMPTY_DAY]), query)).encode()
        if path == "/v1/organizations/users":
            self.calls[("users", None)] += 1
            return 200, {}, json.dumps(self._users_page(query)).encode()
        if path == "/v1/organizations/me" and self.organization is not None:
            self.calls[("organization", None)] += 1
            return 200, {}, json.dumps(self.organization).encode()
        return 404, {}, error_body("not_found_error", "no such endpoint")

    @staticmethod
    def _page(pages: list[dict], query: dict[str, list[str]]) -> dict:
        cursor = query.get("page", [None])[0]
        if cursor is None:
            return pages[0]
        for previous, page in zip(pages, pages[1:], strict=False):
            if previous["next_page"] == cursor:
                return page
        raise ValueError(f"unknown cursor {cursor!r}")

    def _users_page(self, query: dict[str, list[str]]) -> dict:
        after = query.get("after_id", [None])[0]
        if after is None:
            return self.users[0]
        for previous, page in zip(self.users, self.users[1:], strict=False):
            if previous["last_id"] == after:
                return page
        raise ValueError(f"unknown after_id {after!r}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                while api.hang.is_set():
                    time.sleep(0.05)
                url = urlparse(self.path)
                if api.faults:
                    status, headers, body = api.faults.pop(0)
                else:
                    status, headers, body = api.answer(url.path, parse_qs(url.query), self.headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
