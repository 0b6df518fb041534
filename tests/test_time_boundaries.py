"""Figures at the edges of days, months and years, each at a chosen instant.

The exporter's clock is frozen at the instant each test describes, and the independent fake API
serves the hand-written fixture days moved to the dates the test needs, so every test here passes
whatever the real time is."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_dashboards import DASHBOARDS

from conftest import TEST_KEY, Clock, make_poller
from exporter.clock import frozen
from exporter.poller import Poller
from exposition import samples, series, value
from fake_admin_api import FakeAdminApi, fixtures_on
from grafana_queries import TimeRange, as_opened, prometheus_call
from procs import start_exporter, start_prometheus, wait_for_scrapes_and_rules
from tools.generate import RULES_DIR

P = "claude_code_analytics"
# The fixture days: alice (two terminals), bob and the API key ci-claude-code; then bob alone.
THREE_ACTORS, BOB_ALONE = "2026-01-15", "2026-01-16"


def poll_at(moment: datetime, fixtures: Path, tmp_path: Path) -> dict:
    """The exposition after one poll by an exporter with default settings, at `moment`."""
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        poller = make_poller(api, tmp_path / "store.db", frozen(moment), history_days=None)
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


def shown(prometheus, name: str, title: str, ref_id: str = "A") -> list[dict]:
    """What Grafana gets for one target of a panel, as the dashboard opens, over 30 days."""
    dashboard = DASHBOARDS[name]
    chosen = next(p for p in dashboard["panels"] if p["title"] == title)
    target = next(t for t in chosen["targets"] if t["refId"] == ref_id)
    now = time.time()
    time_range = TimeRange(now - 30 * 86400, now)
    selected = as_opened(prometheus.url, dashboard, time_range)
    return prometheus_call(dashboard, chosen, target, selected, time_range, 1).run(prometheus.url)


@pytest.mark.e2e
def test_with_history_but_nothing_this_month_the_month_to_date_panels_say_so(frozen_now, tmp_path):
    """Records on the last two days of last month and none since, as early on the 1st: every
    month-to-date sum is 0 on a real Prometheus with the mixin's rules, and each ratio has no
    value, which its panel says in its own words."""
    first = frozen_now.date().replace(day=1)
    days = {THREE_ACTORS: first - timedelta(days=2), BOB_ALONE: first - timedelta(days=1)}
    with FakeAdminApi(TEST_KEY, fixtures_on(tmp_path, days)) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        with start_exporter(tmp_path, "--poll.interval=1h", env=env) as exporter:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "claude-code-analytics",
                        "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
                    }
                ],
            }
            rules = (RULES_DIR / "rules.yaml",)
            with start_prometheus(tmp_path, config, rules) as prometheus:
                wait_for_scrapes_and_rules(prometheus, "claude-code-analytics", count=3)
                sums = {
                    title: [float(s["value"][1]) for s in shown(prometheus, "cost.json", title)]
                    for title in ("Month-to-date spend", "Month-end forecast")
                }
                team = shown(prometheus, "analytics.json", "Team insights")
                ratios = {
                    title: shown(prometheus, "cost.json", title)
                    for title in (
                        "Cost per session this month",
                        "Cost per accepted line this month",
                    )
                }
    assert sums == {"Month-to-date spend": [0.0], "Month-end forecast": [0.0]}
    spend = {s["metric"]["member"]: float(s["value"][1]) for s in team}
    assert set(spend) >= {"alice@example.com", "bob@example.com", "ci-claude-code"}
    assert set(spend.values()) == {0.0}
    assert ratios == {title: [] for title in ratios}
    for title in ratios:
        panel = next(p for p in DASHBOARDS["cost.json"]["panels"] if p["title"] == title)
        assert panel["fieldConfig"]["defaults"]["noValue"].startswith("no ")


def start_poll(poller: Poller) -> threading.Thread:
    thread = threading.Thread(target=poller.poll_once, daemon=True)
    thread.start()
    return thread


def exporter_day(poller: Poller) -> tuple[datetime, list[str]]:
    """The day the exposition calls today, and the members it has a `today` series for."""
    exposition = samples(poller.exposition.plain)
    start = value(exposition, f"{P}_day_start_timestamp_seconds")
    today = sorted(dict(labels)["member"] for labels in series(exposition, f"{P}_today_sessions"))
    return datetime.fromtimestamp(start, UTC), today


def test_a_poll_that_hangs_after_midnight_does_not_keep_yesterday_as_today(tmp_path):
    """The exporter's `today` turns over at its midnight even while the API does not answer, so no
    scrape after midnight carries the previous day's `today` (the per-day windows rely on it)."""
    day = datetime(2027, 4, 30, tzinfo=UTC)
    fixtures = fixtures_on(tmp_path, {THREE_ACTORS: day.date()})
    clock = Clock(day.replace(hour=23, minute=50))
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        poller = make_poller(api, tmp_path / "store.db", clock, history_days=None)
        assert poller.poll_once()
        assert exporter_day(poller) == (
            day,
            ["alice@example.com", "bob@example.com", "ci-claude-code"],
        )
        clock.now = day + timedelta(days=1, seconds=30)
        api.hang.set()
        poll = start_poll(poller)
        time.sleep(0.5)
        during = exporter_day(poller)
        api.hang.clear()
        poll.join(timeout=30)
    assert during == (day + timedelta(days=1), [])


def test_a_poll_that_starts_before_midnight_and_ends_after_it_shows_the_new_day(tmp_path):
    day = datetime(2027, 4, 30, tzinfo=UTC)
    fixtures = fixtures_on(tmp_path, {THREE_ACTORS: day.date()})
    clock = Clock(day.replace(hour=23, minute=59, second=50))
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        poller = make_poller(api, tmp_path / "store.db", clock, history_days=None)
        assert poller.poll_once()
        api.hang.set()
        poll = start_poll(poller)
        time.sleep(0.5)
        clock.now = day + timedelta(days=1, seconds=5)
        api.hang.clear()
        poll.join(timeout=30)
    assert exporter_day(poller) == (day + timedelta(days=1), [])
