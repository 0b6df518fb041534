"""End to end, past one Prometheus: Prometheus in agent mode scrapes the exporter and remote-writes
what it scrapes to two Prometheus servers with the remote-write receiver on and the mixin's rules
and alerts (docs/scale-out.md). One receiver also holds the backfill's blocks; the other holds only
what the agent wrote.

On the receiver with the blocks, the Console's figures over backfilled and live days are checked by
the very tests that check them on a Prometheus scraping the exporter (tests/test_backfill_e2e.py),
collected here again with this module's `prometheus`: the receiver, whose per-day and month figures
over all members come from the rules it evaluates itself. The receiver without blocks shows what
remote write alone carries: the live scrapes, so yesterday, today and the month so far, and no
earlier day.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
import test_backfill_e2e as scraping
from test_backfill_e2e import (
    INSTANCE,
    RETENTION,
    instant,
    lines,
    month_records,
    per_day,
    query,
    scrape_config,
    seconds,
    sessions,
    spend,
)

import console
from conftest import per_day_windows_open
from exporter.simulator import SimulatedOrganization, serve
from grafana_queries import TimeRange
from procs import start_prometheus, wait_for_scrapes_and_rules
from tools.generate import RULES_DIR

pytestmark = pytest.mark.e2e
JOB = "claude-code-analytics"
RECEIVER = ("--web.enable-remote-write-receiver", *RETENTION)
MIXIN_RULES = (RULES_DIR / "rules.yaml", RULES_DIR / "alerts.yaml")

# The backfill's days, store and blocks, and the exporter on that store, of this organization.
today, since = scraping.today, scraping.since
backfilled, exporter = scraping.backfilled, scraping.exporter


@pytest.fixture(scope="module")
def org(frozen_now):
    """A smaller organization than the scraping test's, so that its backfill takes seconds."""
    organization = SimulatedOrganization(seed=9, members=10, now=lambda: frozen_now)
    with serve(organization, api_key=scraping.KEY) as server:
        organization.url = server.url
        yield organization


# The checks of the Console's figures on the Prometheus the dashboards read, here a receiver.
test_lines_of_code_accepted_per_day_is_the_console_figure = (
    scraping.test_lines_of_code_accepted_per_day_is_the_console_figure
)
test_lines_of_code_accepted_stat_gives_each_days_total = (
    scraping.test_lines_of_code_accepted_stat_gives_each_days_total
)
test_lines_of_code_accepted_stat_over_the_whole_history = (
    scraping.test_lines_of_code_accepted_stat_over_the_whole_history
)
test_active_users_per_day_is_the_console_figure = (
    scraping.test_active_users_per_day_is_the_console_figure
)
test_activity_sessions_per_day_is_the_console_figure = (
    scraping.test_activity_sessions_per_day_is_the_console_figure
)
test_spend_per_day_is_the_console_figure = scraping.test_spend_per_day_is_the_console_figure
test_suggestion_accept_rate_of_each_day_is_the_console_figure = (
    scraping.test_suggestion_accept_rate_of_each_day_is_the_console_figure
)
test_team_insights_gives_last_months_values = scraping.test_team_insights_gives_last_months_values
test_team_insights_gives_this_months_values = scraping.test_team_insights_gives_this_months_values
test_backfilled_and_live_samples_are_one_series = (
    scraping.test_backfilled_and_live_samples_are_one_series
)
test_the_day_start_gauge_steps_one_day_at_a_time_across_the_boundary = (
    scraping.test_the_day_start_gauge_steps_one_day_at_a_time_across_the_boundary
)


def start_receiver(folder, blocks=None):
    """A Prometheus that evaluates the mixin's rules and alerts every second over what is written
    to it, on a copy of backfilled `blocks` when given."""
    config = {"global": {"evaluation_interval": "1s"}}
    return start_prometheus(folder, config, MIXIN_RULES, blocks=blocks, extra_args=RECEIVER)


@pytest.fixture(scope="module")
def receivers(backfilled, tmp_path_factory):
    _, blocks, _ = backfilled
    with (
        start_receiver(tmp_path_factory.mktemp("receiver"), blocks) as with_history,
        start_receiver(tmp_path_factory.mktemp("live-receiver")) as live_only,
    ):
        yield with_history, live_only


@pytest.fixture(scope="module")
def agent(exporter, receivers, tmp_path_factory):
    """The agent, scraping the exporter as the backfill's Prometheus does (the same job and
    instance labels as the blocks) and writing to both receivers, a batch at least every second."""
    remote_write = [
        {"url": f"{r.url}/api/v1/write", "queue_config": {"batch_send_deadline": "1s"}}
        for r in receivers
    ]
    config = {**scrape_config(exporter), "remote_write": remote_write}
    with start_prometheus(tmp_path_factory.mktemp("agent"), config, agent=True) as proc:
        for receiver in receivers:
            wait_for_scrapes_and_rules(receiver, JOB, count=3)
        yield proc


@pytest.fixture(scope="module")
def prometheus(agent, receivers):
    """The receiver with the backfill's blocks: what the dashboards read."""
    return receivers[0]


@pytest.fixture(scope="module")
def live_receiver(agent, receivers):
    return receivers[1]


def test_the_agent_holds_nothing_to_query_or_load_blocks_into(agent):
    response = requests.get(f"{agent.url}/api/v1/query", params={"query": "up"}, timeout=10)
    assert response.status_code == 422
    assert "Agent" in response.json()["error"]


def live_days(org) -> list:
    """The days whose per-day value the live scrapes hold: yesterday's, from the `yesterday`
    gauge scraped today, and today's once its window has opened."""
    now = org.now()
    return [now.date() - timedelta(days=1)] + ([now.date()] if per_day_windows_open(now) else [])


@pytest.mark.parametrize(
    ("title", "ref_id", "figure"),
    [
        ("Lines of code accepted per day", "A", lines),
        ("Activity", "A", console.active_users),
        ("Activity", "B", sessions),
        ("Spend", "B", spend),
    ],
)
def test_remote_write_alone_carries_yesterday_and_today_and_no_earlier_day(
    live_receiver, org, since, title, ref_id, figure
):
    time_range = TimeRange(seconds(since), time.time())
    shown = per_day(query(live_receiver, title, ref_id, time_range))
    expected = {day: float(figure(org.visible_records(day))) for day in live_days(org)}
    assert set(shown) <= set(expected)
    assert shown == pytest.approx({day: v for day, v in expected.items() if day in shown})
    assert {day for day, value in expected.items() if value} <= set(shown)


def test_remote_write_alone_carries_this_months_team_insights(live_receiver, org, today):
    test_team_insights_gives_this_months_values(live_receiver, org, today)


def test_the_receivers_rules_record_the_month_to_date_spend_of_the_raw_records(
    live_receiver, org, today
):
    expected = spend(month_records(org, today.replace(day=1), today))
    found = instant(live_receiver, "claude_code_analytics:month_to_date_cost_usd:sum")
    assert [float(series["value"][1]) for series in found] == [
        pytest.approx(float(expected), abs=0.01)
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_every_rule_and_alert_of_the_mixin_evaluates_on_a_receiver(receivers, agent, which):
    response = requests.get(f"{receivers[which].url}/api/v1/rules", timeout=10)
    rules = [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]
    assert len(rules) > 20
    assert {(rule["name"], rule["health"]) for rule in rules if rule["health"] != "ok"} == set()


def test_the_exporters_up_series_reaches_the_receiver_with_the_scrapes_labels(live_receiver):
    """What the exporter-down alert reads: the agent's own `up` of each scrape, written along."""
    found = instant(live_receiver, f'up{{job="{JOB}"}}')
    assert [(series["metric"]["instance"], series["value"][1]) for series in found] == [
        (INSTANCE, "1")
    ]
