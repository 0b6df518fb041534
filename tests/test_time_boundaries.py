"""Figures at the edges of days, months and years, each at a chosen instant.

The exporter's clock is frozen at the instant each test describes, and the independent fake API
serves the hand-written fixture days moved to the dates the test needs, so every test here passes
whatever the real time is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import TEST_KEY
from exporter.client import AdminClient
from exporter.clock import frozen
from exporter.collector import Settings
from exporter.poller import Poller
from exporter.store import Store
from exposition import samples, value
from fake_admin_api import FakeAdminApi, fixtures_on

P = "claude_code_analytics"
# The fixture days: alice (two terminals), bob and the API key ci-claude-code; then bob alone.
THREE_ACTORS, BOB_ALONE = "2026-01-15", "2026-01-16"


def poll_at(moment: datetime, fixtures: Path, tmp_path: Path) -> dict:
    """The exposition after one poll by an exporter with default settings, at `moment`."""
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        client = AdminClient(api.url, TEST_KEY, sleep=lambda s: None, max_retries=1)
        poller = Poller(
            client,
            Store(tmp_path / "store.db"),
            history_days=None,
            refetch_days=3,
            settings=Settings(),
            clock=frozen(moment),
        )
        assert poller.poll_once()
    return samples(poller.exposition.plain)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2027, 3, 1, 12, tzinfo=UTC),  # last month has 28 days: the window starts Jan 31
        datetime(2028, 3, 1, 0, 30, tzinfo=UTC),  # after 29 February, nothing today yet
        datetime(2027, 1, 1, 0, 30, tzinfo=UTC),  # a new year
    ],
)
def test_monthly_active_members_count_all_thirty_days_with_the_default_history(moment, tmp_path):
    first_day_of_window = moment.date() - timedelta(days=29)
    days = {THREE_ACTORS: first_day_of_window, BOB_ALONE: moment.date() - timedelta(days=1)}
    exposition = poll_at(moment, fixtures_on(tmp_path, days), tmp_path)
    monthly = f"{P}_monthly_active_members"
    assert value(exposition, monthly, actor_type="user") == 2  # alice and bob
    assert value(exposition, monthly, actor_type="api_key") == 1
    assert value(exposition, f"{P}_weekly_active_members", actor_type="user") == 1  # bob
