"""End to end: the exporter as a process against a simulated organization, scraped by Prometheus."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

import console
from exporter.simulator import SimulatedOrganization, serve
from exposition import samples, value
from procs import start_exporter, start_prometheus

pytestmark = pytest.mark.e2e
KEY = "sk-ant-admin01-e2e-test-key"
P = "claude_code_analytics"


@pytest.fixture(scope="module")
def org(frozen_now):
    org = SimulatedOrganization(seed=11, members=40, now=lambda: frozen_now)
    with serve(org, api_key=KEY) as server:
        org.url = server.url
        yield org


@pytest.fixture(scope="module")
def exporter(org, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exporter")
    env = {"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": KEY}
    with start_exporter(tmp, "--poll.interval=1h", env=env) as proc:
        yield proc


def month_records(org, today):
    day, out = today.replace(day=1), []
    while day <= today:
        out += org.visible_records(day)
        day += timedelta(days=1)
    return out


def query(prometheus, expr: str) -> float | None:
    result = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    data = result.json()["data"]["result"]
    return float(data[0]["value"][1]) if data else None


def test_prometheus_scrape_gives_the_month_to_date_totals_of_the_raw_records(
    org, exporter, frozen_now, tmp_path
):
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "claude-code-analytics",
                "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
            }
        ],
    }
    records = month_records(org, frozen_now.date())
    expected_spend = sum(console.spend_cents(records).values()) / 100
    expected_lines = sum(console.lines_accepted(records).values())
    today = org.visible_records(frozen_now.date())
    with start_prometheus(tmp_path, config) as prometheus:
        deadline = time.monotonic() + 30
        while query(prometheus, f"{P}_exporter_up") is None and time.monotonic() < deadline:
            time.sleep(0.5)
        spend = query(prometheus, f"sum({P}_month_to_date_cost_usd)")
        lines = query(prometheus, f"sum({P}_month_to_date_lines_added)")
        active_today = query(prometheus, f"sum({P}_today_active_members)") or 0
    assert spend == pytest.approx(float(expected_spend), abs=0.005)
    assert lines == expected_lines
    assert active_today == console.active_users(today)


def test_each_members_month_to_date_equals_the_raw_records_exactly(org, exporter, frozen_now):
    parsed = samples(requests.get(f"{exporter.url}/metrics", timeout=10).content)
    records = month_records(org, frozen_now.date())
    spend = console.spend_cents(records)
    lines = console.lines_accepted(records)
    count = console.sessions(records)
    assert spend, "the simulated organization has activity this month"
    for name, cents in spend.items():
        actor_type = "user" if "@" in name else "api_key"
        labels = {"member": name, "actor_type": actor_type}
        assert value(parsed, f"{P}_month_to_date_cost_usd", **labels) == float(cents / 100)
        assert value(parsed, f"{P}_month_to_date_lines_added", **labels) == lines[name]
        assert value(parsed, f"{P}_month_to_date_sessions", **labels) == count[name]


def test_metrics_answer_at_once_with_the_last_good_data_while_the_api_hangs(tmp_path):
    frozen = datetime.now(UTC)
    org = SimulatedOrganization(seed=5, members=10, now=lambda: frozen)
    release = threading.Event()
    with serve(org, api_key=KEY) as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY": KEY}
        args = (
            "--poll.interval=10s",
            "--api.timeout=1s",
            "--api.max-retries=0",
            "--history.days=3",
        )
        with start_exporter(tmp_path, *args, env=env) as proc:
            before = samples(requests.get(f"{proc.url}/metrics", timeout=5).content)
            org.before_request.append(lambda request: release.wait(30) and None)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = requests.get(f"{proc.url}/metrics", timeout=5)
                assert time.monotonic() - started < 1.0
                during = samples(response.content)
                if value(during, f"{P}_exporter_up") == 0:
                    break
                time.sleep(0.5)
            release.set()
    assert value(before, f"{P}_exporter_up") == 1
    assert value(during, f"{P}_exporter_up") == 0
    spend = f"{P}_month_to_date_cost_usd"
    assert {k: v for k, v in during.items() if k[0] == spend} == {
        k: v for k, v in before.items() if k[0] == spend
    }


def test_the_readme_demo_serves_metrics_promtool_accepts_within_30_seconds(tmp_path):
    started = time.monotonic()
    with start_exporter(tmp_path, "--demo") as proc:
        body = requests.get(f"{proc.url}/metrics", timeout=5).content
    assert time.monotonic() - started < 30
    assert b"claude_code_analytics_month_to_date_cost_usd{" in body
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr.decode()
