from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from exporter.client import AdminClient
from exporter.clock import utc_now
from exporter.collector import Settings
from exporter.poller import Poller
from exporter.store import Store
from fake_admin_api import FakeAdminApi

FIXTURES = Path(__file__).parent / "fixtures"
# A canary: any test output, log or metric that contains it has leaked the key.
TEST_KEY = "sk-ant-admin01-CANARY-test-key-0123456789abcdef"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def at(day: str, hour: int = 12) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC).replace(
        hour=hour
    )


class Clock:
    """A clock a test sets by hand: `clock.now = ...` moves it (exporter.clock.Clock's shape)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_poller(
    api, path: Path, clock, history_days: int | None = 3, refetch_days: int = 3, settings=None
) -> Poller:
    """A poller of the API served at `api.url` (the fake API or a simulated organization), with
    one retry and no back-off sleeps, on a store at `path` and the given clock."""
    client = AdminClient(api.url, TEST_KEY, sleep=lambda s: None, max_retries=1)
    return Poller(
        client,
        Store(path),
        history_days=history_days,
        refetch_days=refetch_days,
        settings=settings or Settings(),
        clock=clock,
    )


def late_today() -> datetime:
    """23:00 UTC of the real day (exporter.clock's): a simulator frozen then serves most of the day
    that an exporter on the real clock calls today, whatever the time of the run."""
    return utc_now().replace(hour=23, minute=0, second=0, microsecond=0)


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# A day's per-day window opens at 00:05 UTC (promql.dayWindow); a few scrapes after it.
PER_DAY_WINDOW_OPENS = timedelta(minutes=5, seconds=10)
# The longest a module that runs a live exporter and Prometheus takes, with room to spare.
LIVE_MODULE = timedelta(minutes=5)


def per_day_windows_open(moment: datetime) -> bool:
    """Whether the per-day panels' windows hold today's samples at `moment`."""
    return moment - midnight(moment) >= PER_DAY_WINDOW_OPENS


@pytest.fixture(scope="module")
def frozen_now() -> datetime:
    """The one instant a module with a live exporter and Prometheus describes: the simulated
    organization's frozen clock, and the tests' "today". The real clock only stamps the scrapes,
    so the module is moved past a boundary it could otherwise run across (midnight, where the
    exporter's "today" changes, and 00:05, where the per-day windows open): every expectation
    derived from this instant then holds for the scrapes made while the module runs."""
    now = datetime.now(UTC)
    day = midnight(now)
    for boundary in (day + PER_DAY_WINDOW_OPENS, day + timedelta(days=1)):
        if timedelta(0) < boundary - now < LIVE_MODULE:
            time.sleep((boundary - now).total_seconds() + 1)
            now = datetime.now(UTC)
    return now.replace(microsecond=0)


@pytest.fixture(scope="module")
def simulated_api(frozen_now):
    """This environment, pointing the exporter and the backfill at a small simulated organization
    frozen at the module's instant."""
    from exporter.simulator import SimulatedOrganization, serve
    from procs import SecretEnv

    org = SimulatedOrganization(seed=21, members=8, now=lambda: frozen_now)
    with serve(org, api_key=TEST_KEY) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        yield SecretEnv(env, ANTHROPIC_BASE_URL=server.url, ANTHROPIC_ADMIN_API_KEY=TEST_KEY)


@pytest.fixture
def fake_api():
    with FakeAdminApi(TEST_KEY) as api:
        yield api


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail any test whose captured output, logs or failure report contain the canary key."""
    outcome = yield
    report = outcome.get_result()
    text = "".join(content for _, content in report.sections) + str(report.longrepr or "")
    if TEST_KEY in text:
        report.outcome = "failed"
        report.longrepr = "the canary Admin API key appeared in this test's output or logs"
