"""End to end: a backfill of a simulated organization's 60 days, a real Prometheus started on the
blocks and then scraping the live exporter, and the Console's panels checked day by day.

The organization's clock is frozen at the start of the module, so the Console's definitions
computed from its raw records are the truth every panel must show, for backfilled and live days.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

import console
from conftest import per_day_windows_open
from exporter.backfill import context_start
from exporter.simulator import SimulatedOrganization, serve
from grafana_queries import TimeRange, as_opened, prometheus_call
from procs import start_exporter, start_prometheus, wait_for_scrapes_and_rules
from tools.generate import RULES_DIR

pytestmark = pytest.mark.e2e
KEY = "sk-ant-admin01-backfill-e2e-key"
ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = json.loads((ROOT / "dashboards" / "generated" / "analytics.json").read_text())
HISTORY_DAYS = 60
SCRAPE_S = 1
DAY = 86400
RETENTION = ("--storage.tsdb.retention.time=400d",)
INSTANCE = "exporter:9687"  # the backfill's default, and what the scrape config relabels to
CONSOLE_TOOLS = ("edit_tool", "write_tool", "notebook_edit_tool")


def seconds(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def today(frozen_now) -> date:
    return frozen_now.date()


@pytest.fixture(scope="module")
def since(today) -> date:
    return today - timedelta(days=HISTORY_DAYS)


@pytest.fixture(scope="module")
def org(frozen_now):
    organization = SimulatedOrganization(seed=7, members=40, now=lambda: frozen_now)
    with serve(organization, api_key=KEY) as server:
        organization.url = server.url
        yield organization


def backfill(org, *args: str, **popen: object) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update({"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": KEY})
    command = [sys.executable, "-m", "exporter", "backfill", *args]
    return subprocess.Popen(command, env=env, text=True, **popen)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def backfilled(org, since, tmp_path_factory):
    """The backfill's store and blocks, and the API requests it made."""
    folder = tmp_path_factory.mktemp("backfill")
    store, blocks = folder / "store.db", folder / "blocks"
    process = backfill(
        org,
        f"--since={since}",
        f"--until={since + timedelta(days=HISTORY_DAYS - 1)}",
        f"--output={blocks}",
        f"--storage.path={store}",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert KEY not in out + err
    return store, blocks, Counter(org.requests)


@pytest.fixture(scope="module")
def exporter(org, backfilled, tmp_path_factory):
    store, _, _ = backfilled
    env = {"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": KEY}
    folder = tmp_path_factory.mktemp("exporter")
    with start_exporter(folder, "--poll.interval=1h", env=env, storage=store) as proc:
        yield proc


def scrape_config(exporter) -> dict:
    """A prometheus.yml that scrapes the exporter with the labels the backfill gives its blocks."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [
            {
                "job_name": "claude-code-analytics",
                "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
                "relabel_configs": [{"target_label": "instance", "replacement": INSTANCE}],
            }
        ],
    }


@pytest.fixture(scope="module")
def prometheus(exporter, backfilled, tmp_path_factory):
    _, blocks, _ = backfilled
    config = scrape_config(exporter)
    folder = tmp_path_factory.mktemp("prometheus")
    rules = (RULES_DIR / "rules.yaml",)
    with start_prometheus(folder, config, rules, blocks=blocks, extra_args=RETENTION) as proc:
        wait_for_scrapes_and_rules(proc, "claude-code-analytics", count=3)
        yield proc


def instant(prometheus, expr: str) -> list[dict]:
    response = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()["data"]["result"]


# --- Panels as Grafana queries them ---------------------------------------------------------------


def panel(title: str) -> dict:
    return next(p for p in DASHBOARD["panels"] if p["title"] == title)


def selection(prometheus, time_range: TimeRange) -> dict[str, Sequence[str]]:
    """Every variable as the dashboard opens: its one organization, and All members."""
    return as_opened(prometheus.url, DASHBOARD, time_range)


def query(prometheus, title: str, ref_id: str, time_range: TimeRange) -> list[dict]:
    chosen = panel(title)
    target = next(t for t in chosen["targets"] if t["refId"] == ref_id)
    selected = selection(prometheus, time_range)
    call = prometheus_call(DASHBOARD, chosen, target, selected, time_range, SCRAPE_S)
    return call.run(prometheus.url)


def per_day(result: list[dict]) -> dict[date, float]:
    assert len(result) <= 1
    values = result[0]["values"] if result else []
    return {datetime.fromtimestamp(int(t), UTC).date(): float(v) for t, v in values}


def single(result: list[dict]) -> float | None:
    assert len(result) <= 1
    return float(result[0]["value"][1]) if result else None


def one_day(day: date) -> TimeRange:
    """Grafana's range for one whole UTC day."""
    return TimeRange(seconds(day), seconds(day) + DAY - 0.001)


def checked_days(since: date, now: datetime) -> list[date]:
    """Every backfilled day, and today once its per-day window has opened."""
    today = now.date()
    days = [since + timedelta(days=n) for n in range((today - since).days)]
    return days + ([today] if per_day_windows_open(now) else [])


# --- The Console's definitions --------------------------------------------------------------------


def lines(records: list[dict]) -> int:
    return sum(console.lines_accepted(records).values())


def sessions(records: list[dict]) -> int:
    return sum(console.sessions(records).values())


def spend(records: list[dict]) -> Decimal:
    return sum(console.spend_cents(records).values(), Decimal(0)) / 100


def accept_rate(records: list[dict]) -> float | None:
    accepted, total = console.tool_decisions(records, CONSOLE_TOOLS)
    return accepted / total if total else None


def assert_per_day(actual: dict[date, float], expected: dict[date, float | Decimal]) -> None:
    wrong = {
        day: (actual.get(day), value)
        for day, value in expected.items()
        if abs(actual.get(day, 0.0) - float(value)) > 1e-9 * max(1.0, abs(float(value)))
    }
    assert not wrong, f"(panel, Console) differ on {len(wrong)} days: {wrong}"


# --- The backfill's fetching ----------------------------------------------------------------------


def test_the_backfill_fetches_each_day_it_needs_exactly_once(backfilled, since, today):
    _, _, requests_made = backfilled
    usage = {
        day: n for (endpoint, day), n in requests_made.items() if endpoint == "claude_code_usage"
    }
    first = context_start(since)
    expected = {str(first + timedelta(days=n)): 1 for n in range((today - first).days)}
    assert usage == expected


def test_the_backfill_writes_one_block_per_day(backfilled, since):
    _, blocks, _ = backfilled
    folders = [b for b in blocks.iterdir() if b.is_dir()]  # and the manifest, a file
    metas = [json.loads((b / "meta.json").read_text()) for b in folders]
    starts = sorted(datetime.fromtimestamp(m["minTime"] / 1000, UTC) for m in metas)
    assert [s.date() for s in starts] == [since + timedelta(days=n) for n in range(HISTORY_DAYS)]
    assert {(s.hour, s.minute) for s in starts} == {(23, 59)}


# --- The panels over backfilled and live days -----------------------------------------------------


def test_lines_of_code_accepted_per_day_is_the_console_figure(prometheus, org, since):
    days = checked_days(since, org.now())
    time_range = TimeRange(seconds(since), time.time())
    actual = per_day(query(prometheus, "Lines of code accepted per day", "A", time_range))
    assert_per_day(actual, {d: lines(org.visible_records(d)) for d in days})


def test_lines_of_code_accepted_stat_gives_each_days_total(prometheus, org, since):
    actual = {
        d: single(query(prometheus, "Lines of code accepted", "A", one_day(d))) or 0.0
        for d in checked_days(since, org.now())
    }
    assert_per_day(actual, {d: lines(org.visible_records(d)) for d in actual})


def test_lines_of_code_accepted_stat_over_the_whole_history(prometheus, org, since):
    days = checked_days(since, org.now())
    time_range = TimeRange(seconds(since), seconds(days[-1]) + DAY - 0.001)
    actual = single(query(prometheus, "Lines of code accepted", "A", time_range))
    assert actual == sum(lines(org.visible_records(d)) for d in days)


@pytest.mark.parametrize("title", ["Activity", "Spend"])
def test_active_users_per_day_is_the_console_figure(prometheus, org, since, title):
    time_range = TimeRange(seconds(since), time.time())
    actual = per_day(query(prometheus, title, "A", time_range))
    days = checked_days(since, org.now())
    expected = {d: console.active_users(org.visible_records(d)) for d in days}
    assert_per_day(actual, expected)


def test_activity_sessions_per_day_is_the_console_figure(prometheus, org, since):
    time_range = TimeRange(seconds(since), time.time())
    actual = per_day(query(prometheus, "Activity", "B", time_range))
    expected = {d: sessions(org.visible_records(d)) for d in checked_days(since, org.now())}
    assert_per_day(actual, expected)


def test_spend_per_day_is_the_console_figure(prometheus, org, since):
    time_range = TimeRange(seconds(since), time.time())
    actual = per_day(query(prometheus, "Spend", "B", time_range))
    expected = {d: spend(org.visible_records(d)) for d in checked_days(since, org.now())}
    assert_per_day(actual, expected)


def test_suggestion_accept_rate_of_each_day_is_the_console_figure(prometheus, org, since):
    actual, expected = {}, {}
    for day in checked_days(since, org.now()):
        rate = accept_rate(org.visible_records(day))
        if rate is not None:
            expected[day] = rate
            actual[day] = single(query(prometheus, "Suggestion accept rate", "A", one_day(day)))
    assert expected
    assert_per_day(actual, expected)


# --- Team insights --------------------------------------------------------------------------------


def month_records(org, first: date, last: date) -> list[dict]:
    return [
        r
        for n in range((last - first).days + 1)
        for r in org.visible_records(first + timedelta(days=n))
    ]


def team_insights(prometheus, ref_id: str, time_range: TimeRange) -> dict[str, float]:
    result = query(prometheus, "Team insights", ref_id, time_range)
    return {series["metric"]["member"]: float(series["value"][1]) for series in result}


def assert_members(actual: dict[str, float], expected: dict[str, float | int | Decimal]) -> None:
    assert set(expected) <= set(actual)
    wrong = {
        m: (v, expected.get(m, 0))
        for m, v in actual.items()
        if abs(v - float(expected.get(m, 0))) > 1e-9
    }
    assert not wrong, f"(panel, Console) differ for {len(wrong)} members: {wrong}"


def test_team_insights_gives_last_months_values(prometheus, org, today):
    last = today.replace(day=1) - timedelta(days=1)
    first = last.replace(day=1)
    records = month_records(org, first, last)
    time_range = TimeRange(seconds(first), seconds(last) + DAY - 0.001)
    spend_usd = {m: c / 100 for m, c in console.spend_cents(records).items()}
    assert_members(team_insights(prometheus, "A", time_range), spend_usd)
    assert_members(team_insights(prometheus, "B", time_range), console.lines_accepted(records))


def test_team_insights_gives_this_months_values(prometheus, org, today):
    first = today.replace(day=1)
    records = month_records(org, first, today)
    time_range = TimeRange(seconds(first), time.time())
    spend_usd = {m: c / 100 for m, c in console.spend_cents(records).items()}
    assert_members(team_insights(prometheus, "A", time_range), spend_usd)
    assert_members(team_insights(prometheus, "B", time_range), console.lines_accepted(records))


# --- Where backfill and live meet -----------------------------------------------------------------


def test_backfilled_and_live_samples_are_one_series(prometheus):
    found = instant(
        prometheus,
        f"count by (job, instance) (last_over_time("
        f"claude_code_analytics_day_start_timestamp_seconds[{HISTORY_DAYS + 5}d]))",
    )
    assert [(s["metric"], s["value"][1]) for s in found] == [
        ({"job": "claude-code-analytics", "instance": INSTANCE}, "1")
    ]


def test_the_day_start_gauge_steps_one_day_at_a_time_across_the_boundary(prometheus, since):
    """One sample a day from the backfill, then the live scrapes: no day twice, none missing."""
    values = instant(
        prometheus,
        f"claude_code_analytics_day_start_timestamp_seconds[{HISTORY_DAYS + 5}d]",
    )[0]["values"]
    days = sorted({int(float(v)) for _, v in values})
    assert days == [seconds(since) + n * DAY for n in range(HISTORY_DAYS + 1)]


# --- Interrupting and resuming --------------------------------------------------------------------


def stored_days(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM days").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_an_interrupted_backfill_resumes_without_fetching_a_day_twice(frozen_now, tmp_path):
    org = SimulatedOrganization(seed=8, members=20, now=lambda: frozen_now)
    org.before_request.append(lambda request: time.sleep(0.05))
    since = frozen_now.date() - timedelta(days=40)
    store, blocks = tmp_path / "store.db", tmp_path / "blocks"
    until = frozen_now.date() - timedelta(days=1)
    args = (f"--since={since}", f"--until={until}", f"--output={blocks}", f"--storage.path={store}")
    args += ("--workers=3",)
    with serve(org, api_key=KEY) as server:
        org.url = server.url
        first = backfill(org, *args, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while stored_days(store) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 130, err
        assert "interrupted" in err.splitlines()[-1]
        assert stored_days(store) < (frozen_now.date() - context_start(since)).days
        second = backfill(org, *args, stderr=subprocess.PIPE)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
    usage = {
        day: n for (endpoint, day), n in org.requests.items() if endpoint == "claude_code_usage"
    }
    first_day = context_start(since)
    days = (frozen_now.date() - first_day).days
    assert usage == {str(first_day + timedelta(days=n)): 1 for n in range(days)}
    assert stored_days(store) == days
    assert (
        len([p for p in blocks.iterdir() if (p / "meta.json").is_file()])
        == (frozen_now.date() - since).days
    )
