"""The Alertmanager configuration: amtool accepts it, it routes by category, and it inhibits."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import yaml

from procs import start_alertmanager
from tools.generate import ROOT

CONFIG = ROOT / "alerts" / "alertmanager.yml"
ALERTS = ROOT / "alerts" / "generated" / "alerts.yaml"
EXPECTED_RECEIVER = {
    ("spend", "critical"): "spend-oncall",
    ("spend", "warning"): "spend-finance",
    ("adoption", "warning"): "adoption-team",
    ("adoption", "info"): "adoption-team",
    ("exporter", "warning"): "sre",
    ("exporter", "critical"): "sre",
}


def routed_receiver(labels: dict[str, str]) -> str:
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={CONFIG}"]
        + [f"{k}={v}" for k, v in labels.items()],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def alert_labels() -> list[dict[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [{"alertname": r["alert"], **r["labels"]} for g in groups for r in g["rules"]]


def test_amtool_accepts_the_configuration() -> None:
    result = subprocess.run(["amtool", "check-config", str(CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_receivers_are_placeholder_webhooks_on_the_reserved_invalid_domain() -> None:
    receivers = yaml.safe_load(CONFIG.read_text())["receivers"]
    urls = [hook["url"] for r in receivers for hook in r["webhook_configs"]]
    assert urls and all(".invalid/" in url for url in urls)


@pytest.mark.parametrize(
    "labels", alert_labels(), ids=lambda x: f"{x['alertname']}-{x['severity']}"
)
def test_each_alert_reaches_the_receiver_of_its_category(labels: dict[str, str]) -> None:
    assert routed_receiver(labels) == EXPECTED_RECEIVER[(labels["category"], labels["severity"])]


def test_alerts_of_other_mixins_reach_sre() -> None:
    assert routed_receiver({"alertname": "KubePodCrashLooping", "severity": "warning"}) == "sre"


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def alert_states(url: str, expected: int) -> dict[str, str]:
    """Alert name and severity to state, once Alertmanager has settled the inhibitions."""
    deadline = time.monotonic() + 10
    while True:
        alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
        states = {
            f"{a['labels']['alertname']}/{a['labels'].get('severity')}": a["status"]["state"]
            for a in alerts
        }
        if len(states) == expected and "unprocessed" not in states.values():
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"alerts did not settle: {states}")
        time.sleep(0.2)


@pytest.mark.e2e
def test_inhibitions_silence_the_alerts_a_cause_explains(tmp_path) -> None:
    exporter = {"job": "claude-code-analytics", "instance": "exporter:9687", "category": "exporter"}
    spend = {"alertname": "ClaudeCodeMonthToDateSpendHigh", "category": "spend"}
    with start_alertmanager(tmp_path, CONFIG) as am:
        post_alerts(
            am.url,
            [
                {**spend, "severity": "warning"},
                {**spend, "severity": "critical"},
                {**exporter, "alertname": "ClaudeCodeExporterDown", "severity": "warning"},
                {**exporter, "alertname": "ClaudeCodeDataStale", "severity": "warning"},
                {
                    "alertname": "ClaudeCodeMemberInactive",
                    "category": "adoption",
                    "severity": "info",
                },
            ],
        )
        states = alert_states(am.url, expected=5)
    assert states == {
        "ClaudeCodeMonthToDateSpendHigh/warning": "suppressed",
        "ClaudeCodeMonthToDateSpendHigh/critical": "active",
        "ClaudeCodeExporterDown/warning": "active",
        "ClaudeCodeDataStale/warning": "suppressed",
        "ClaudeCodeMemberInactive/info": "active",
    }
