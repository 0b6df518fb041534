"""The Alertmanager configuration: amtool accepts it, it routes by category, and it inhibits."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from procs import start_alertmanager
from tools.generate import ROOT

CONFIG = ROOT / "alerts" / "alertmanager.yml"
DOCS = ROOT / "docs" / "alerts.md"
RESEARCH = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
PLATFORM = "b7e8f9a0-1c2d-4e3f-9a4b-5c6d7e8f9012"
ALERTS = ROOT / "alerts" / "generated" / "alerts.yaml"
EXPECTED_RECEIVER = {
    ("spend", "critical"): "spend-oncall",
    ("spend", "warning"): "spend-finance",
    ("adoption", "warning"): "adoption-team",
    ("adoption", "info"): "adoption-team",
    ("exporter", "warning"): "sre",
    ("exporter", "critical"): "sre",
}


def routed_receiver(labels: dict[str, str], config: Path = CONFIG) -> str:
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={config}"]
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


def test_the_documented_route_sends_one_organizations_spend_to_its_own_receiver(tmp_path) -> None:
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S).group(1))
    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"] = example["route"]["routes"] + config["route"]["routes"]
    config["receivers"] += example["receivers"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    spend = {"alertname": "ClaudeCodeMonthToDateSpendHigh", "category": "spend"}
    routed = {
        (organization, severity): routed_receiver(
            {**spend, "severity": severity, "organization_id": organization}, path
        )
        for organization in (RESEARCH, PLATFORM)
        for severity in ("warning", "critical")
    }
    assert routed == {
        (RESEARCH, "warning"): "spend-acme-research",
        (RESEARCH, "critical"): "spend-acme-research",
        (PLATFORM, "warning"): "spend-finance",
        (PLATFORM, "critical"): "spend-oncall",
    }


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def alert_key(labels: dict[str, str]) -> str:
    """Alert name and severity, and the organization's name where the alert has one."""
    parts = [labels["alertname"], labels.get("severity"), labels.get("organization_name")]
    return "/".join(part for part in parts if part is not None)


def alert_states(url: str, expected: dict[str, str]) -> dict[str, str]:
    """Alert key (alert_key()) to state: the `expected` states as soon as Alertmanager shows them
    (it applies inhibitions a moment after it takes alerts in), else what it shows after 10s."""
    deadline = time.monotonic() + 10
    while True:
        alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
        states = {alert_key(a["labels"]): a["status"]["state"] for a in alerts}
        if states == expected or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


@pytest.mark.e2e
def test_inhibitions_silence_the_alerts_a_cause_explains(tmp_path) -> None:
    exporter = {"job": "claude-code-analytics", "instance": "exporter:9687", "category": "exporter"}
    spend = {"alertname": "ClaudeCodeMonthToDateSpendHigh", "category": "spend"}
    expected = {
        "ClaudeCodeMonthToDateSpendHigh/warning": "suppressed",
        "ClaudeCodeMonthToDateSpendHigh/critical": "active",
        "ClaudeCodeExporterDown/warning": "active",
        "ClaudeCodeDataStale/warning": "suppressed",
        "ClaudeCodeMemberInactive/info": "active",
    }
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
        states = alert_states(am.url, expected)
    assert states == expected


@pytest.mark.e2e
def test_one_organizations_alerts_never_silence_anothers(tmp_path) -> None:
    research = {"organization_id": RESEARCH, "organization_name": "Acme Research"}
    platform = {"organization_id": PLATFORM, "organization_name": "Acme Platform"}
    spend = {"alertname": "ClaudeCodeMonthToDateSpendHigh", "category": "spend"}
    exporter = {"job": "claude-code-analytics", "instance": "exporter:9687", "category": "exporter"}
    expected = {
        "ClaudeCodeMonthToDateSpendHigh/critical/Acme Research": "active",
        "ClaudeCodeMonthToDateSpendHigh/warning/Acme Research": "suppressed",
        "ClaudeCodeMonthToDateSpendHigh/warning/Acme Platform": "active",
        "ClaudeCodeAdminAPIAuthFailing/critical/Acme Research": "active",
        "ClaudeCodeDataStale/warning/Acme Research": "suppressed",
        "ClaudeCodeDataStale/warning/Acme Platform": "active",
    }
    with start_alertmanager(tmp_path, CONFIG) as am:
        post_alerts(
            am.url,
            [
                {**spend, **research, "severity": "critical"},
                {**spend, **research, "severity": "warning"},
                {**spend, **platform, "severity": "warning"},
                {
                    **exporter,
                    **research,
                    "alertname": "ClaudeCodeAdminAPIAuthFailing",
                    "severity": "critical",
                },
                {**exporter, **research, "alertname": "ClaudeCodeDataStale", "severity": "warning"},
                {**exporter, **platform, "alertname": "ClaudeCodeDataStale", "severity": "warning"},
            ],
        )
        states = alert_states(am.url, expected)
    assert states == expected
