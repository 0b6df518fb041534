"""Killing the exporter with SIGKILL in the middle of ingest, again and again, loses nothing it had
committed and never leaves a corrupt store.

Each round starts `python -m exporter` against a slowed-down simulated organization, waits until it
is fetching, kills it at a random moment, then opens the store with SQLite: the integrity check
passes, every day stored before is still stored, and every stored day equals the simulator's
records for it. The organization's clock is frozen, so a refetched day has the same records."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime

import pytest
from reliability import expected_totals, stored_days, stored_totals

from conftest import TEST_KEY, Clock
from exporter.app import create_app
from exporter.client import AdminClient
from exporter.collector import Settings
from exporter.poller import Poller
from exporter.simulator import SimulatedOrganization, serve
from exporter.store import Store
from exposition import samples, series, value
from procs import Proc, free_port, start_exporter

KILLS = 50
REQUEST_LATENCY = 0.01  # seconds per API request, so that a start's ingest spans a while
NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)


def exporter_command(port: int, storage) -> list[str]:
    return [
        sys.executable,
        "-m",
        "exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.path={storage}",
        "--history.days=14",
        "--poll.refetch-days=14",
        "--api.max-retries=0",
    ]


def slow_down(request: object) -> None:
    """A simulator hook: answer every request a little late."""
    time.sleep(REQUEST_LATENCY)


def wait_for_requests(org: SimulatedOrganization, count: int, proc: Proc) -> None:
    """Until the exporter has sent more than `count` requests (it is ingesting)."""
    deadline = time.monotonic() + 30
    while sum(org.requests.values()) <= count:
        assert proc.popen.poll() is None, proc.output()
        assert time.monotonic() < deadline, "the exporter never started fetching"
        time.sleep(0.005)


def check_store(path, org: SimulatedOrganization, committed: set) -> set:
    """Integrity, nothing lost, every stored day exact; returns the days now stored."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        days = set(stored_days(db))
        assert committed <= days, f"lost committed days {sorted(committed - days)}"
        for day in days:
            assert stored_totals(db, day) == expected_totals(org.visible_records(day)), day
        return days
    finally:
        db.close()


@pytest.mark.e2e
def test_random_sigkills_during_ingest_lose_no_committed_day_and_corrupt_nothing(tmp_path):
    rng = random.Random(20261128)
    org = SimulatedOrganization(seed=17, members=6, now=lambda: NOW)
    org.before_request.append(slow_down)
    storage = tmp_path / "exporter.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    committed: set = set()
    with serve(org, api_key=TEST_KEY) as server:
        env.update(ANTHROPIC_BASE_URL=server.url, ANTHROPIC_ADMIN_API_KEY=TEST_KEY)
        for round_number in range(KILLS):
            port = free_port()
            sent = sum(org.requests.values())
            proc = Proc(
                "exporter", exporter_command(port, storage), port, tmp_path / "kill.log", env=env
            )
            try:
                wait_for_requests(org, sent, proc)
                time.sleep(rng.uniform(0, 0.25))
                proc.signal(signal.SIGKILL)
                proc.popen.wait(10)
            finally:
                proc.stop()
            assert proc.popen.returncode == -signal.SIGKILL, f"round {round_number} ended early"
            committed = check_store(storage, org, committed)
        assert len(committed) > 1, "no kill came after a committed day"
        with start_exporter(tmp_path, "--history.days=14", env=env, storage=storage) as proc:
            assert proc.popen.poll() is None
        assert len(check_store(storage, org, committed)) == 14


def fill_the_disk(db: sqlite3.Connection) -> str:
    """Cap the file at its size and use up its free pages: SQLite fails writes as on a full disk."""
    db.execute("CREATE TABLE filler (blob BLOB)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with contextlib.suppress(sqlite3.DatabaseError):
        while True:
            db.execute("INSERT INTO filler VALUES (randomblob(512))")
    return "database or disk is full"


def make_read_only(db: sqlite3.Connection) -> str:
    db.execute("PRAGMA query_only = 1")
    return "readonly database"


@pytest.mark.parametrize("break_store", [fill_the_disk, make_read_only])
def test_a_store_that_cannot_be_written_gives_one_clear_error_and_metrics_keep_serving(
    tmp_path, caplog, break_store
):
    org = SimulatedOrganization(seed=4, members=30, now=lambda: NOW)
    with serve(org, api_key=TEST_KEY) as server:
        clock = Clock(NOW.replace(day=10))
        client = AdminClient(server.url, TEST_KEY, max_retries=0)
        poller = Poller(
            client,
            Store(tmp_path / "s.db"),
            history_days=3,
            refetch_days=2,
            settings=Settings(),
            clock=clock,
        )
        assert poller.poll_once()
        http = create_app(poller).test_client()
        days = poller.store.fetched_days()
        reason = break_store(poller.store._db)
        clock.now = NOW  # three new days to store
        with caplog.at_level("ERROR", logger="exporter"):
            assert not poller.poll_once()
        response = http.get("/metrics")
    after = samples(response.data)
    assert response.status_code == 200
    assert value(after, "claude_code_analytics_exporter_up") == 0
    assert series(after, "claude_code_analytics_month_to_date_cost_usd") != {}
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and reason in errors[0].getMessage()
    assert str(tmp_path / "s.db") in errors[0].getMessage()
    assert errors[0].exc_info is None
    stored = poller.store.fetched_days()
    assert all(stored[day] == fetched_at for day, fetched_at in days.items())
    for day in stored:  # each day whole, as the simulator has it, or not at all
        assert stored_totals(poller.store._db, day) == expected_totals(org.visible_records(day))


def test_a_store_that_cannot_be_read_keeps_the_last_numbers_and_reports_up_zero(tmp_path, caplog):
    org = SimulatedOrganization(seed=4, members=30, now=lambda: NOW)
    with serve(org, api_key=TEST_KEY) as server:
        client = AdminClient(server.url, TEST_KEY, max_retries=0)
        store = Store(tmp_path / "s.db")
        poller = Poller(
            client, store, history_days=3, refetch_days=2, settings=Settings(), clock=Clock(NOW)
        )
        assert poller.poll_once()
        before = samples(poller.exposition.plain)
        vandal = sqlite3.connect(tmp_path / "s.db")
        vandal.execute("DROP TABLE model_usage")
        vandal.close()
        with caplog.at_level("ERROR", logger="exporter"):
            assert not poller.poll_once()
    after = samples(poller.exposition.plain)
    cost = "claude_code_analytics_month_to_date_cost_usd"
    assert series(after, cost) == series(before, cost) != {}
    assert value(after, "claude_code_analytics_exporter_up") == 0
    assert "no such table: model_usage" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_a_store_that_cannot_be_read_from_the_first_rendering_on_is_never_ready(tmp_path, caplog):
    org = SimulatedOrganization(seed=4, members=30, now=lambda: NOW)
    with serve(org, api_key=TEST_KEY) as server:
        client = AdminClient(server.url, TEST_KEY, max_retries=0)

        def poller_over(store: Store) -> Poller:
            return Poller(
                client, store, history_days=3, refetch_days=2, settings=Settings(), clock=Clock(NOW)
            )

        assert poller_over(Store(tmp_path / "s.db")).poll_once()
        store = Store(tmp_path / "s.db")  # a restart: the history is complete
        vandal = sqlite3.connect(tmp_path / "s.db")  # damaged after the start-up check
        vandal.execute("DROP TABLE model_usage")
        vandal.close()
        poller = poller_over(store)
        with caplog.at_level("ERROR", logger="exporter"):
            poller.poll_once()
    assert not poller.ready.is_set()
    assert "no such table: model_usage" in caplog.text
