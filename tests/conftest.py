from __future__ import annotations

import json
from datetime import UTC, date, datetime
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
