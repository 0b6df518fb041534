from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

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


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def frozen_now() -> datetime:
    """Now, for a simulated organization's frozen clock; moved past midnight when the module
    could otherwise run across it, so the exporter's "today" and the organization's agree."""
    now = datetime.now(UTC)
    until_midnight = midnight(now) + timedelta(days=1) - now
    if until_midnight < timedelta(minutes=5):
        time.sleep(until_midnight.total_seconds() + 1)
        now = datetime.now(UTC)
    return now.replace(microsecond=0)


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
