"""A broken or hostile Admin API cannot stop the metrics: the exporter as a process against the
simulated organization, read through /metrics as Prometheus reads it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests

import console
from conftest import TEST_KEY
from exporter.simulator import SimulatedOrganization
from exposition import samples, series, value
from fake_admin_api import FakeAdminApi, fixtures_on
from faults import inject, serve_with_faults
from procs import start_exporter

pytestmark = pytest.mark.e2e
P = "claude_code_analytics"
ARGS = ("--poll.interval=1h", "--api.max-retries=0", "--history.days=3")
BOB_ALONE = "2026-01-16"  # the fixture day with bob's one record: $2.50


def wait_for(url: str, done: Callable[[dict], bool], timeout: float = 30) -> dict:
    """The first /metrics for which `done` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parsed = samples(requests.get(f"{url}/metrics", timeout=5).content)
        if done(parsed):
            return parsed
        time.sleep(0.2)
    raise AssertionError("/metrics never showed what the test waited for")


def month_spend(org, today) -> dict[str, float]:
    """Each member's spend this month in dollars, from the raw records."""
    day, records = today.replace(day=1), []
    while day <= today:
        records += org.visible_records(day)
        day += timedelta(days=1)
    return {m: float(cents / 100) for m, cents in console.spend_cents(records).items()}


def by_member(exposition: dict, name: str) -> dict[str, float]:
    return {dict(labels)["member"]: v for labels, v in series(exposition, name).items()}


@pytest.fixture
def org(frozen_now):
    org = SimulatedOrganization(seed=12, members=10, now=lambda: frozen_now)
    with serve_with_faults(org, api_key=TEST_KEY) as server:
        org.url = server.url  # type: ignore[attr-defined]
        yield org


def exporter(org, tmp_path):
    env = {"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    # Healthy, not ready: a store with a failing endpoint may never hold the whole history.
    return start_exporter(tmp_path, *ARGS, env=env, ready_path="/-/healthy")


def test_a_failing_member_list_does_not_stop_the_usage_data(org, frozen_now, tmp_path):
    inject(org.url, "server_error", endpoint="users", times=None)
    with exporter(org, tmp_path) as proc:
        cost = f"{P}_month_to_date_cost_usd"
        shown = wait_for(proc.url, lambda m: series(m, cost) != {})
    assert by_member(shown, cost) == month_spend(org, frozen_now.date())
    assert value(shown, f"{P}_exporter_up") == 0
    errors = value(shown, f"{P}_exporter_api_errors_total", endpoint="users", code="500")
    assert errors and errors >= 1


def test_failing_usage_data_does_not_stop_the_member_list(org, tmp_path):
    inject(org.url, "server_error", endpoint="claude_code_usage", times=None)
    info = f"{P}_member_info"
    with exporter(org, tmp_path) as proc:
        shown = wait_for(proc.url, lambda m: series(m, info) != {})
    roles = {(dict(labels)["member"], dict(labels)["role"]) for labels in series(shown, info)}
    assert roles == {(user["email"], user["role"]) for user in org.users()}
    assert value(shown, f"{P}_exporter_up") == 0


def test_a_failure_and_a_poll_in_progress_show_while_the_poll_is_stuck(org, tmp_path):
    """The member list fails for good, then the usage report hangs: /metrics says so at once,
    while the poll is still waiting, instead of claiming health until the poll ends."""
    inject(org.url, "server_error", endpoint="users", times=None)
    release = threading.Event()

    def hang_usage(request):
        if "usage_report" in request.path:
            release.wait(30)

    org.before_request.append(hang_usage)
    try:
        with exporter(org, tmp_path) as proc:
            errors = f"{P}_exporter_api_errors_total"
            during = wait_for(
                proc.url, lambda m: value(m, errors, endpoint="users", code="500") is not None
            )
            release.set()
    finally:
        release.set()
    assert value(during, f"{P}_exporter_up") == 0
    assert value(during, f"{P}_exporter_poll_in_progress") == 1
    started = value(during, f"{P}_exporter_poll_start_timestamp_seconds")
    assert started is not None and abs(started - time.time()) < 60


def record_of(actor: str, terminal: str, models: int, cents: int) -> dict:
    """A record in the API's shape for the test's day, with `models` entries of `cents` each."""
    return {
        "date": "DAY",
        "actor": {"type": "user_actor", "email_address": actor},
        "organization_id": "dc9f6c26-b22c-4831-8d01-0446bada88f1",
        "customer_type": "api",
        "terminal_type": terminal,
        "core_metrics": {
            "num_sessions": 1,
            "lines_of_code": {"added": 1, "removed": 0},
            "commits_by_claude_code": 0,
            "pull_requests_by_claude_code": 0,
        },
        "model_breakdown": [
            {
                "model": f"claude-model-{n}",
                "tokens": {"input": 1, "output": 1, "cache_read": 0, "cache_creation": 0},
                "estimated_cost": {"currency": "USD", "amount": cents},
            }
            for n in range(models)
        ],
    }


def test_implausible_numbers_are_rejected_per_record_and_everyone_else_is_exported(
    frozen_now, tmp_path
):
    """One record whose models add up past 64-bit integers, and an actor whose two records are
    each plausible but not together: each is rejected and counted, before and after a restart,
    and bob's figures of the same day are exported."""
    day = frozen_now.date() - timedelta(days=1)
    fixtures = fixtures_on(tmp_path, {BOB_ALONE: day})
    page_path = fixtures / f"usage_{day}_page1.json"
    page = json.loads(page_path.read_text())
    hostile = [
        record_of("mallory@example.com", "vscode", models=10_000, cents=10**9),
        record_of("eve@example.com", "vscode", models=1, cents=6 * 10**7),
        record_of("eve@example.com", "iterm", models=1, cents=6 * 10**7),
    ]
    page["data"] += json.loads(json.dumps(hostile).replace('"DAY"', f'"{day}T00:00:00Z"'))
    page_path.write_text(json.dumps(page))
    cost, rejected = f"{P}_yesterday_cost_usd", f"{P}_exporter_records_rejected_total"
    shown = []
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        for _ in range(2):  # the second exporter restarts on the first one's store
            with start_exporter(tmp_path, *ARGS, env=env) as proc:
                shown.append(samples(requests.get(f"{proc.url}/metrics", timeout=5).content))
    for exposition in shown:
        assert by_member(exposition, cost) == {"bob@example.com": 2.5, "eve@example.com": 600_000}
    assert value(shown[0], rejected, reason="implausible_value") == 2
    # The restarted exporter serves its store at once and refetches the day soon after.
    assert value(shown[1], rejected, reason="implausible_value") in (2, 4)


class DripServer:
    """Answers every request one byte at a time, each well within any read timeout, so only a
    limit on the whole request stops it. Bounded: each answer ends after `seconds`."""

    ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"data": []}' + b" " * 200

    def __init__(self, every: float = 0.3, seconds: float = 30):
        self.every, self.seconds = every, seconds
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by __exit__
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.seconds
        with conn:
            conn.recv(65536)
            for byte in self.ANSWER:
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what the test wants
                time.sleep(self.every)

    def __enter__(self) -> DripServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()


def test_a_server_that_drips_one_byte_at_a_time_fails_the_request_within_the_timeout(tmp_path):
    with DripServer() as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        args = ("--poll.interval=1h", "--api.max-retries=0", "--api.timeout=1s")
        started = time.monotonic()
        with start_exporter(tmp_path, *args, env=env, ready_path="/-/healthy") as proc:
            errors = f"{P}_exporter_api_errors_total"
            shown = wait_for(
                proc.url, lambda m: value(m, errors, endpoint="users", code="timeout"), timeout=15
            )
    assert time.monotonic() - started < 15
    assert value(shown, f"{P}_exporter_up") == 0


def test_a_long_retry_after_cannot_hold_a_poll_past_its_timeout(org, tmp_path):
    inject(org.url, "rate_limit", endpoint="users", retry_after="120", times=None)
    env = {"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    args = ("--poll.interval=1h", "--api.max-retries=5", "--poll.timeout=3s", "--history.days=3")
    started = time.monotonic()
    with start_exporter(tmp_path, *args, env=env, ready_path="/-/healthy") as proc:
        duration = f"{P}_exporter_poll_duration_seconds"
        shown = wait_for(proc.url, lambda m: value(m, duration) is not None, timeout=20)
        output = proc.output()
    assert time.monotonic() - started < 20
    assert value(shown, duration) < 5
    assert value(shown, f"{P}_exporter_up") == 0
    assert value(shown, f"{P}_exporter_api_errors_total", endpoint="users", code="429") >= 1
    assert "the poll ran out of time" in output
