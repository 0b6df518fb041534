"""The mixin's alerts: promtool checks and unit tests, and the conventions every alert follows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.generate import ROOT, evaluate, main

ALERTS = ROOT / "alerts" / "generated" / "alerts.yaml"
RULES = ROOT / "alerts" / "generated" / "rules.yaml"
UNIT_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yaml"))
BUDGETS = ROOT / "alerts" / "tests" / "budgets"
RUNBOOK = ROOT / "alerts" / "runbook.md"
DOCS = ROOT / "docs" / "alerts.md"


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in alert_rules()}


def unit_test_cases() -> list[dict]:
    return [
        case
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_generated_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS), str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_organization_is_held_to_its_own_budget_or_the_default(tmp_path: Path) -> None:
    assert main(["--mixin", str(BUDGETS / "budgets.libsonnet"), "--out", str(tmp_path)]) == 0
    shutil.copy(BUDGETS / "organizations.yaml", tmp_path)
    result = subprocess.run(
        ["promtool", "test", "rules", "organizations.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    firing = {case["alertname"] for case in unit_test_cases() if case.get("exp_alerts")}
    assert alert_names() - firing == set()


def test_every_alert_has_a_unit_test_where_it_stays_quiet() -> None:
    quiet = {case["alertname"] for case in unit_test_cases() if not case.get("exp_alerts")}
    assert alert_names() - quiet == set()


def test_alert_names_share_the_prefix() -> None:
    assert all(re.fullmatch(r"ClaudeCode[A-Z][A-Za-z]+", name) for name in alert_names())


@pytest.mark.parametrize(
    "rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}"
)
def test_alert_carries_severity_category_and_the_four_annotations(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert rule["labels"]["category"] in {"spend", "adoption", "exporter"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert "{{" not in rule["annotations"]["summary"]
    assert "{{" in rule["annotations"]["description"]
    assert rule["for"]


@pytest.mark.parametrize(
    "rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}"
)
def test_alert_names_its_organization_and_links_to_its_dashboards(rule: dict) -> None:
    """The organization's name in the description, its id in the dashboard link; the alert keeps
    both labels because every `by` and `on` of its expression lists them."""
    assert "$labels.organization_name" in rule["annotations"]["description"]
    assert "var-organization={{ $labels.organization_id }}" in rule["annotations"]["dashboard_url"]
    clauses = re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"])
    grouping = [c for c in clauses if c.strip() and c.strip() not in ("job, instance",)]
    assert all("organization_id" in c and "organization_name" in c for c in grouping), grouping


def test_alerts_with_a_number_put_it_in_the_description() -> None:
    without = {r["alert"] for r in alert_rules() if "$value" not in r["annotations"]["description"]}
    assert without == {"ClaudeCodeExporterDown"}


def test_runbook_has_a_section_for_every_alert() -> None:
    lines = RUNBOOK.read_text().splitlines()
    anchors = {line[3:].strip().lower() for line in lines if line.startswith("## ")}
    linked = {rule["annotations"]["runbook_url"].rsplit("#", 1)[1] for rule in alert_rules()}
    assert linked - anchors == set()


def test_runbook_links_lead_by_default_to_the_runbook_in_this_checkout() -> None:
    paths = {rule["annotations"]["runbook_url"].partition("#")[0] for rule in alert_rules()}
    assert paths == {RUNBOOK.relative_to(ROOT).as_posix()}


def test_dashboard_links_point_at_generated_dashboards() -> None:
    uids = {
        json.loads(path.read_text())["uid"]
        for path in (ROOT / "dashboards" / "generated").glob("*.json")
    }
    linked = {
        re.search(r"/d/([^/?]+)", rule["annotations"]["dashboard_url"]).group(1)
        for rule in alert_rules()
    }
    assert linked - uids == set()


def test_docs_list_every_alert() -> None:
    text = DOCS.read_text()
    assert {name for name in alert_names() if f"`{name}`" not in text} == set()


def test_thresholds_and_durations_come_from_config() -> None:
    override = """
    local mixin = m + { _config+:: {
      monthlyBudgetUSD: 500, memberDailySpendCapUSD: 7, exporterSelector: 'job="cc"',
      alertFor+: { DailySpendSpike: '1m' },
    } };
    mixin.prometheusAlerts
    """
    groups = evaluate(ext_code=override)["groups"]
    rules = {(r["alert"], r["labels"]["severity"]): r for g in groups for r in g["rules"]}
    assert (
        "> on (organization_id, organization_name) (500 * group by ("
        in rules[("ClaudeCodeMonthToDateSpendHigh", "critical")]["expr"]
    )
    assert rules[("ClaudeCodeMemberDailySpendHigh", "warning")]["expr"].endswith("> 7")
    assert rules[("ClaudeCodeDailySpendSpike", "warning")]["for"] == "1m"
    assert all('job="claude-code-analytics"' not in r["expr"] for r in rules.values())
