"""Killing the exporter with SIGKILL in the middle of ingest, again and again, loses nothing it had
committed and never leaves a corrupt store.

Each round starts `python -m exporter` against a slowed-down simulated organization, waits until it
is fetching, kills it at a random moment, then opens the store with SQLite: the integrity check
passes, every day stored before is still stored, and every stored day equals the simulator's
records for it. The organization's clock is frozen, so a refetched day has the same records."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime

import pytest
from reliability import expected_totals, stored_days, stored_totals

from conftest import TEST_KEY
from exporter.simulator import SimulatedOrganization, serve
from procs import Proc, free_port, start_exporter

pytestmark = pytest.mark.e2e
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
