"""The exporter against the simulated organization over HTTP while the simulator misbehaves.

Every fault is switched on over the /-/faults endpoint of the simulator with faults (faults.py);
the poller runs in the test process with a recorded sleep so that backoff is checked without
waiting for it."""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from reliability import expected_totals, stored_totals

import exporter
from conftest import TEST_KEY, Clock, late_today
from exporter import simulator
from exporter.client import MAX_EMPTY_PAGES, AdminClient
from exporter.collector import Settings
from exporter.poller import Poller
from exporter.simulator import SimulatedOrganization, serve
from exporter.simulator.api import USERS_PATH
from exporter.store import Store
from exposition import samples, series, value
from faults import (
    FAULTS_PATH,
    PAGING_FAULTS,
    RECORD_FAULTS,
    clear,
    hostile_email,
    inject,
    serve_with_faults,
)
from procs import start_exporter

P = "claude_code_analytics"
NOW = datetime(2026, 1, 20, 12, 30, tzinfo=UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
AUTHED = {"anthropic-version": "2023-06-01", "x-api-key": TEST_KEY}


@pytest.fixture(scope="module")
def org() -> Iterator[SimulatedOrganization]:
    org = SimulatedOrganization(seed=21, members=14, now=lambda: NOW)
    with serve_with_faults(org, api_key=TEST_KEY) as server:
        org.url = server.url  # type: ignore[attr-defined]
        yield org


@pytest.fixture
def url(org) -> Iterator[str]:
    clear(org.url)
    yield org.url
    clear(org.url)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def poller(url, tmp_path, sleeps, clock) -> Iterator[Poller]:
    client = AdminClient(url, TEST_KEY, timeout=0.5, max_retries=3, sleep=sleeps.append)
    poller = Poller(
        client,
        Store(tmp_path / "store.db"),
        history_days=3,
        refetch_days=3,
        settings=Settings(),
        clock=clock,
    )
    yield poller
    poller.store.close()


def metrics(poller: Poller) -> dict:
    return samples(poller.exposition.plain)


def errors(poller: Poller, code: str, endpoint: str = "users") -> float | None:
    return value(metrics(poller), f"{P}_exporter_api_errors_total", endpoint=endpoint, code=code)


def rejected(poller: Poller, reason: str) -> float | None:
    return value(metrics(poller), f"{P}_exporter_records_rejected_total", reason=reason)


def day_rows(poller: Poller, day) -> dict:
    return stored_totals(poller.store._db, day)


# Transient faults: retried with backoff, the poll still succeeds


def test_a_429_is_retried_no_sooner_than_its_retry_after(poller, url, sleeps):
    inject(url, "rate_limit", endpoint="users", retry_after="4")
    assert poller.poll_once()
    assert sleeps[0] >= 4
    assert errors(poller, "429") == 1
    assert value(metrics(poller), f"{P}_exporter_up") == 1


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("server_error", "500"),
        ("bad_gateway", "502"),
        ("unavailable", "503"),
        ("overloaded", "529"),
    ],
)
def test_server_errors_are_retried_with_jittered_exponential_backoff(
    poller, url, sleeps, kind, code
):
    inject(url, kind, endpoint="claude_code_usage", times=3)
    assert poller.poll_once()
    assert errors(poller, code, "claude_code_usage") == 3
    assert len(sleeps) == 3
    assert all(0 <= delay <= poller.client.backoff * 2**i for i, delay in enumerate(sleeps))


def test_backoff_delays_are_jittered_not_fixed(url, sleeps):
    inject(url, "unavailable", times=20)
    client = AdminClient(url, TEST_KEY, max_retries=25, backoff=1.0, sleep=sleeps.append)
    client.list_users()
    assert len(set(sleeps)) == 20


def test_a_request_that_times_out_is_retried(poller, url):
    inject(url, "timeout", endpoint="users", delay=1.5)
    assert poller.poll_once()
    assert errors(poller, "timeout") == 1


def test_a_reset_connection_is_retried(poller, url):
    inject(url, "reset", endpoint="users")
    assert poller.poll_once()
    assert errors(poller, "connection_error") == 1


def test_truncated_json_is_retried(poller, url):
    inject(url, "truncated_json", endpoint="claude_code_usage")
    assert poller.poll_once()
    assert errors(poller, "invalid_json", "claude_code_usage") == 1


def test_retries_are_bounded(poller, url, sleeps):
    """Each endpoint gives up after its retries: the member list, then the first day."""
    inject(url, "overloaded", times=None)
    assert not poller.poll_once()
    assert errors(poller, "529") == poller.client.max_retries + 1
    assert errors(poller, "529", "claude_code_usage") == poller.client.max_retries + 1
    assert len(sleeps) == 2 * poller.client.max_retries


# A lasting outage: last good numbers kept, stale and said so, recovery by itself


def test_an_outage_keeps_the_last_good_numbers_and_reports_up_zero(poller, url, clock):
    assert poller.poll_once()
    good = metrics(poller)
    inject(url, "unavailable", times=None)
    clock.now = NOW + timedelta(minutes=5)
    assert not poller.poll_once()
    stale = metrics(poller)
    assert value(stale, f"{P}_exporter_up") == 0
    last_success = f"{P}_exporter_last_success_timestamp_seconds"
    assert value(stale, last_success) == NOW.timestamp()
    cost = f"{P}_month_to_date_cost_usd"
    assert series(stale, cost) == series(good, cost) != {}


def test_the_exporter_recovers_by_itself_when_the_api_does(poller, url, clock):
    inject(url, "unavailable", times=None)
    assert not poller.poll_once()
    clear(url)
    clock.now = NOW + timedelta(minutes=5)
    assert poller.poll_once()
    assert value(metrics(poller), f"{P}_exporter_up") == 1
    assert value(metrics(poller), f"{P}_exporter_last_success_timestamp_seconds") == (
        clock.now.timestamp()
    )


def test_the_last_success_survives_a_restart(poller, url, tmp_path, clock):
    assert poller.poll_once()
    poller.store.close()
    inject(url, "unavailable", times=None)
    client = AdminClient(url, TEST_KEY, max_retries=0, sleep=lambda s: None)
    store = Store(tmp_path / "store.db")
    clock.now = NOW + timedelta(minutes=5)
    again = Poller(client, store, history_days=3, refetch_days=3, settings=Settings(), clock=clock)
    assert not again.poll_once()
    assert value(metrics(again), f"{P}_exporter_last_success_timestamp_seconds") == (
        NOW.timestamp()
    )
    poller.store = store  # closed by the fixture


# Paging faults: a day is stored whole or not at all


def test_a_day_whose_later_page_failed_keeps_its_stored_version(poller, url, org, clock):
    assert poller.poll_once()
    fetched_at = poller.store.fetched_days()[YESTERDAY]
    before = day_rows(poller, YESTERDAY)
    day = YESTERDAY.isoformat()
    inject(url, "short_pages", page_size=3, times=None, day=day)
    inject(url, "overloaded", day=day, after=1, times=None)  # the first page arrives, no more
    clock.now = NOW + timedelta(minutes=5)
    assert not poller.poll_once()
    assert poller.store.fetched_days()[YESTERDAY] == fetched_at
    assert day_rows(poller, YESTERDAY) == before == expected_totals(org.visible_records(YESTERDAY))


def test_a_repeating_cursor_stops_the_day_instead_of_looping(poller, url):
    day = YESTERDAY.isoformat()
    inject(url, "short_pages", page_size=2, times=None, day=day)
    inject(url, "repeat_cursor", times=None, day=day)
    assert not poller.poll_once()
    assert errors(poller, "bad_page", "claude_code_usage") is None  # not an HTTP error
    assert YESTERDAY not in poller.store.fetched_days()
    assert value(metrics(poller), f"{P}_exporter_up") == 0


def test_endless_empty_pages_stop_the_day_after_a_few_requests(poller, url, org):
    """Pages that say has_more with no data and a new cursor each time: the poll gives the day up
    after a few of them instead of paging on."""
    day = YESTERDAY.isoformat()
    inject(url, "endless_empty_pages", times=None, day=day)
    before = org.requests[("claude_code_usage", day)]
    done = threading.Thread(target=poller.poll_once, daemon=True)
    done.start()
    done.join(timeout=30)
    assert not done.is_alive()
    assert org.requests[("claude_code_usage", day)] - before == MAX_EMPTY_PAGES
    assert YESTERDAY not in poller.store.fetched_days()
    fetched = poller.store.fetched_days()
    assert TODAY in fetched and YESTERDAY - timedelta(days=1) in fetched  # the others all the same
    assert value(metrics(poller), f"{P}_exporter_up") == 0


def test_records_repeated_across_pages_are_stored_once(poller, url, org):
    inject(url, "short_pages", page_size=2, times=None)
    inject(url, "duplicate_records", times=None)
    assert poller.poll_once()
    for day in (TODAY, YESTERDAY):
        assert day_rows(poller, day) == expected_totals(org.visible_records(day))
    assert rejected(poller, "duplicate") > 0


# Record faults: the bad record is skipped, counted and logged; the rest of the day is stored


def test_unknown_fields_are_ignored_and_the_record_is_kept(poller, url, org):
    inject(url, "unknown_fields", day=YESTERDAY.isoformat())
    assert poller.poll_once()
    assert day_rows(poller, YESTERDAY) == expected_totals(org.visible_records(YESTERDAY))
    assert series(metrics(poller), f"{P}_exporter_records_rejected_total") == {}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing_fields", "missing_field"),
        ("wrong_types", "wrong_type"),
        ("negative_numbers", "negative_value"),
        ("absurd_numbers", "implausible_value"),
    ],
)
def test_a_malformed_record_is_skipped_counted_and_logged_with_day_and_actor(
    poller, url, org, caplog, kind, reason
):
    inject(url, kind, day=YESTERDAY.isoformat())
    with caplog.at_level(logging.WARNING, logger="exporter"):
        assert poller.poll_once()
    records = org.visible_records(YESTERDAY)
    bad, good = records[0], records[1:]
    assert rejected(poller, reason) == 1
    assert day_rows(poller, YESTERDAY) == expected_totals(good)
    actor = bad["actor"].get("email_address") or bad["actor"]["api_key_name"]
    warning = next(r.getMessage() for r in caplog.records if "skipped a record" in r.getMessage())
    assert YESTERDAY.isoformat() in warning and actor in warning
    assert TEST_KEY not in caplog.text


# Organizations that exist


def test_an_empty_organization_is_up_with_no_member_series(tmp_path):
    org = SimulatedOrganization(seed=3, members=0, api_keys=0, now=lambda: NOW)
    with serve(org, api_key=TEST_KEY) as server:
        client = AdminClient(server.url, TEST_KEY, max_retries=0)
        poller = Poller(
            client,
            Store(tmp_path / "empty.db"),
            history_days=3,
            refetch_days=3,
            settings=Settings(),
            clock=Clock(NOW),
        )
        assert poller.poll_once()
    parsed = metrics(poller)
    assert value(parsed, f"{P}_exporter_up") == 1
    assert series(parsed, f"{P}_month_to_date_cost_usd") == {}
    assert series(parsed, f"{P}_member_info") == {}
    assert promtool_check(poller.exposition.plain, tmp_path) == ""


def test_members_with_quotes_newlines_and_non_ascii_are_exported_intact(poller, url, org, tmp_path):
    inject(url, "hostile_names", times=None)
    assert poller.poll_once()
    parsed = metrics(poller)
    info = {dict(labels)["member"] for labels in series(parsed, f"{P}_member_info")}
    assert {hostile_email(user["email"]) for user in org.users()} <= info
    active = expected_totals(org.visible_records(YESTERDAY))
    for actor_type, name in active:
        member = hostile_email(name) if actor_type == "user" else name
        labels = {"member": member, "actor_type": actor_type}
        assert value(parsed, f"{P}_yesterday_sessions", **labels) is not None
    assert promtool_check(poller.exposition.plain, tmp_path) == ""


def promtool_check(exposition: bytes, tmp_path: Path) -> str:
    """promtool's complaints about the exposition (empty when it parses and lints clean)."""
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, timeout=30
    )
    return (result.stdout + result.stderr).decode().strip()


# The process itself


@pytest.mark.e2e
def test_the_process_outlives_an_outage_serves_stale_numbers_and_recovers(tmp_path):
    org = SimulatedOrganization(seed=8, members=8, now=late_today)
    storage = tmp_path / "exporter.db"
    with serve_with_faults(org, api_key=TEST_KEY) as server:
        client = AdminClient(server.url, TEST_KEY, max_retries=0)
        stored = Poller(client, Store(storage), history_days=2, refetch_days=3, settings=Settings())
        assert stored.poll_once()
        stored.store.close()
        inject(server.url, "overloaded", times=None)
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        args = ("--poll.interval=10s", "--api.max-retries=0", "--history.days=2")
        with start_exporter(tmp_path, *args, env=env, storage=storage) as proc:
            stale = wait_for_up(proc.url, 0)
            clear(server.url)
            fresh = wait_for_up(proc.url, 1)
            assert proc.popen.poll() is None
            output = proc.output()
    cost = f"{P}_month_to_date_cost_usd"
    assert series(stale, cost) == series(metrics(stored), cost) != {}
    assert "Traceback" not in output
    assert TEST_KEY not in output
    assert value(fresh, f"{P}_exporter_last_success_timestamp_seconds") > value(
        stale, f"{P}_exporter_last_success_timestamp_seconds"
    )


def wait_for_up(url: str, wanted: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parsed = samples(requests.get(f"{url}/metrics", timeout=5).content)
        if value(parsed, f"{P}_exporter_up") == wanted:
            return parsed
        time.sleep(0.2)
    raise AssertionError(f"up never became {wanted}")


# The switches themselves


def test_an_unknown_fault_is_refused_in_the_apis_error_shape(url):
    response = requests.post(url + "/-/faults", json={"kind": "meteor_strike"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "meteor_strike" in response.json()["error"]["message"]


def test_active_faults_are_listed_and_cleared(url):
    inject(url, "overloaded", times=2, endpoint="users")
    listed = requests.get(url + "/-/faults", timeout=5).json()
    assert [(f["kind"], f["times"], f["endpoint"]) for f in listed] == [("overloaded", 2, "users")]
    clear(url)
    assert requests.get(url + "/-/faults", timeout=5).json() == []


def test_the_simulator_as_installed_has_no_fault_switch():
    org = SimulatedOrganization(seed=3, members=2, now=lambda: NOW)
    with serve(org, api_key=TEST_KEY) as server:
        switched = requests.post(server.url + FAULTS_PATH, json={"kind": "reset"}, timeout=5)
        users = requests.get(server.url + USERS_PATH, headers=AUTHED, timeout=5)
    assert switched.status_code == 404
    assert users.status_code == 200


def test_the_installed_package_holds_no_fault_injection():
    package = Path(exporter.__file__).parent
    sources = {path: path.read_text() for path in package.rglob("*.py")}
    names = (FAULTS_PATH, "FaultyApi", "hostile_names", "truncated_json")
    names += RECORD_FAULTS + PAGING_FAULTS
    found = {(name, path.name) for name in names for path, text in sources.items() if name in text}
    assert found == set()
    assert [name for name in dir(simulator) if re.search(r"(?<!de)fault", name, re.I)] == []
