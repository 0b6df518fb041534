"""End to end: spend spikes in a simulated organization reach the spend receiver through the real
exporter, Prometheus and Alertmanager, with the alerts' annotations filled in."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from exporter.simulator import SimulatedOrganization, SpendSpike, serve
from procs import Proc, start_alertmanager, start_exporter, start_prometheus
from tools.generate import ROOT, evaluate

pytestmark = pytest.mark.e2e
KEY = "sk-ant-admin01-alerts-e2e-key"
JOB = "claude-code-analytics"
INSTANCE = "exporter:9687"  # the backfill's default instance label


def actor_name(record: dict) -> str:
    actor = record["actor"]
    return actor.get("email_address") or actor["api_key_name"]


def spend_usd(records: list[dict], member: str | None = None) -> float:
    """The estimated cost of the records (of one member, or everyone's), in USD."""
    cents = sum(
        entry["estimated_cost"]["amount"]
        for record in records
        if member is None or actor_name(record) == member
        for entry in record["model_breakdown"]
    )
    return cents / 100


def humanize(value: float) -> str:
    """Prometheus' `humanize` template function for values from 1 to a million."""
    return f"{value / 1000:.4g}k" if value >= 1000 else f"{value:.4g}"


class Webhooks:
    """Alertmanager webhook receivers on loopback: each POST's path and body land in a queue."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, alertname: str, timeout: float) -> tuple[str, dict]:
        """The receiver path and the alert of the first notification about `alertname`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                path, body = self.received.get(timeout=left)
            except queue.Empty:
                break
            for alert in body["alerts"]:
                if alert["labels"]["alertname"] == alertname:
                    return path, alert
        raise AssertionError(f"no notification about {alertname} within {timeout}s")

    def close(self) -> None:
        self.server.shutdown()


def alertmanager_config(tmp_path: Path, webhook_url: str) -> Path:
    """The shipped configuration with each receiver pointed at the test and no wait to group."""
    config = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text())
    config["route"]["group_wait"] = "0s"
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def rule_files(tmp_path: Path, config: str) -> tuple[Path, Path]:
    """The mixin's alerts and recording rules with a test-only `_config` override."""
    override = f"""
    local mixin = m + {{ _config+:: {{ {config} }} }};
    {{ alerts: mixin.prometheusAlerts, rules: mixin.prometheusRules }}
    """
    rendered = evaluate(ext_code=override)
    alerts, rules = tmp_path / "alerts.yaml", tmp_path / "rules.yaml"
    alerts.write_text(yaml.safe_dump(rendered["alerts"]))
    rules.write_text(yaml.safe_dump(rendered["rules"]))
    return alerts, rules


def prometheus_config(exporter: Proc, alertmanager: Proc) -> dict:
    """Scrape the exporter every second under the backfill's labels, alert through Alertmanager."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.url[7:]]}]}]},
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [{"targets": [exporter.url[7:]]}],
                "relabel_configs": [{"target_label": "instance", "replacement": INSTANCE}],
            }
        ],
    }


def assert_reached_spend_finance(
    path: str, alert: dict, name: str, org: SimulatedOrganization, **labels: str
) -> None:
    """At the spend-finance receiver, with the organization's id and name among its labels."""
    assert path == "/spend-finance"
    spend = {"alertname": name, "severity": "warning", "category": "spend"}
    named = {"organization_id": org.organization_id, "organization_name": org.name}
    assert alert["labels"] == {**spend, **named, **labels}


def test_spend_spike_of_a_member_reaches_the_spend_receiver_with_its_annotations(
    tmp_path, frozen_now
) -> None:
    today = frozen_now.date()
    # The day as the API shows it late in the evening, whatever the test's hour.
    frozen = datetime.combine(today, day_time(23, 0), tzinfo=UTC)
    plain = SimulatedOrganization(seed=7, members=12, now=lambda: frozen)
    member = plain.users()[0]["email"]
    org = SimulatedOrganization(
        seed=7,
        members=12,
        now=lambda: frozen,
        spend_spike=SpendSpike(days=frozenset({today}), factor=50, member=member),
    )
    records = org.visible_records(today)
    spent = spend_usd(records, member)
    others = max(
        (spend_usd(records, actor_name(r)) for r in records if actor_name(r) != member), default=0.0
    )
    assert spent > 2 * others, "the spike must stand out for the cap to single the member out"
    cap = round((spent + others) / 2, 2)
    alerts, rules = rule_files(
        tmp_path, f"memberDailySpendCapUSD: {cap}, alertFor+: {{ MemberDailySpendHigh: '0s' }}"
    )
    webhooks = Webhooks()
    with (
        serve(org, api_key=KEY) as simulator,
        start_exporter(
            tmp_path,
            "--poll.interval=1h",
            "--history.days=2",
            env={"ANTHROPIC_BASE_URL": simulator.url, "ANTHROPIC_ADMIN_API_KEY": KEY},
        ) as exporter,
        start_alertmanager(tmp_path, alertmanager_config(tmp_path, webhooks.url)) as am,
        start_prometheus(tmp_path, prometheus_config(exporter, am), rule_files=(rules, alerts)),
    ):
        path, alert = webhooks.wait_for("ClaudeCodeMemberDailySpendHigh", timeout=40)
    webhooks.close()
    assert_reached_spend_finance(
        path, alert, "ClaudeCodeMemberDailySpendHigh", org, member=member, actor_type="user"
    )
    assert alert["annotations"]["description"] == (
        f"{member} of {org.name} has spent ${humanize(spent)} on Claude Code today (UTC),"
        f" over the daily cap of ${cap:g}."
    )
    assert alert["annotations"]["runbook_url"].endswith("runbook.md#claudecodememberdailyspendhigh")
    assert alert["annotations"]["dashboard_url"] == (
        "http://localhost:3000/d/claude-code-member"
        f"?var-organization={org.organization_id}&var-member={member}"
    )


def run_backfill(simulator_url: str, store: Path, blocks: Path, since: date) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update({"ANTHROPIC_BASE_URL": simulator_url, "ANTHROPIC_ADMIN_API_KEY": KEY})
    command = [sys.executable, "-m", "exporter", "backfill", f"--since={since}"]
    command += [f"--output={blocks}", f"--storage.path={store}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_daily_spend_spike_against_backfilled_history_reaches_the_spend_receiver(
    tmp_path, frozen_now
) -> None:
    today = frozen_now.date()
    yesterday = today - timedelta(days=1)
    frozen = datetime.combine(today, day_time(23, 0), tzinfo=UTC)
    org = SimulatedOrganization(
        seed=5,
        members=12,
        now=lambda: frozen,
        spend_spike=SpendSpike(days=frozenset({yesterday}), factor=20),
    )
    spent = spend_usd(org.visible_records(yesterday))
    # No gate after midnight, so the test passes at any hour (the promtool tests cover the gate).
    alerts, rules = rule_files(
        tmp_path, "lateDataHours: 0, spendSpikeMinUSD: 1, alertFor+: { DailySpendSpike: '0s' }"
    )
    store, blocks = tmp_path / "store.db", tmp_path / "blocks"
    webhooks = Webhooks()
    with serve(org, api_key=KEY) as simulator:
        run_backfill(simulator.url, store, blocks, since=today - timedelta(days=10))
        env = {"ANTHROPIC_BASE_URL": simulator.url, "ANTHROPIC_ADMIN_API_KEY": KEY}
        with (
            start_exporter(tmp_path, "--poll.interval=1h", env=env, storage=store) as exporter,
            start_alertmanager(tmp_path, alertmanager_config(tmp_path, webhooks.url)) as am,
            start_prometheus(
                tmp_path, prometheus_config(exporter, am), rule_files=(rules, alerts), blocks=blocks
            ),
        ):
            path, alert = webhooks.wait_for("ClaudeCodeDailySpendSpike", timeout=40)
    webhooks.close()
    assert_reached_spend_finance(path, alert, "ClaudeCodeDailySpendSpike", org)
    assert alert["annotations"]["description"] == (
        f"Claude Code spend of {org.name} yesterday (UTC) was ${humanize(spent)}, more than 2 times"
        " the average of the 7 days before it."
    )
