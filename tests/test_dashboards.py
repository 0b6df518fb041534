"""The rendered dashboards: structure, links, units, datasource, PromQL and metric names."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from grafana_queries import TimeRange, option, prometheus_call
from tools.generate import DASHBOARDS_DIR, FINANCE_DIR, RULES_DIR, evaluate, render, stale

ROOT = Path(__file__).resolve().parent.parent
METRICS_DOC = ROOT / "docs" / "metrics.md"
CONSOLE_TITLES = [
    "Lines of code accepted",
    "Suggestion accept rate",
    "Activity",
    "Spend",
    "Team insights",
]
METRIC_NAME = re.compile(r"\b(claude_code_analytics[a-z0-9_:]*|up)\b(?=\s*[{\[)])")
UID_PATH = re.compile(r"/d/([A-Za-z0-9_-]+)")
MIXIN = evaluate()
# The organization's dashboards, and the one across organizations (a root of its own).
DASHBOARDS = MIXIN["grafanaDashboards"]
FINANCE = MIXIN["grafanaFinanceDashboards"]
EVERY_DASHBOARD = {**DASHBOARDS, **FINANCE}
ORGANIZATION = 'organization_id="$organization"'
SAMPLE_VALUES = {
    "organization": ["a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601"],
    "member": ["alice@example.com", "ci-claude-code"],
    "actor_type": ["user", "api_key"],
}


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def all_targets(dashboards: dict = EVERY_DASHBOARD) -> list[tuple[str, dict, dict]]:
    return [(name, p, t) for name, d in dashboards.items() for p in panels(d) for t in p["targets"]]


def dashboard_ids() -> list[str]:
    return sorted(EVERY_DASHBOARD)


def documented_metrics() -> set[str]:
    """Every metric name in docs/metrics.md, with the period placeholder P expanded."""
    text = METRICS_DOC.read_text()
    names = set(re.findall(r"`(claude_code_analytics_[a-z0-9_]+)`", text)) - {
        "claude_code_analytics_P"
    }
    per_period = re.findall(r"`claude_code_analytics_P_([a-z_]+)`", text)
    periods = ("today", "yesterday", "month_to_date", "last_month")
    return names | {f"claude_code_analytics_{p}_{rest}" for p in periods for rest in per_period}


def recorded_metrics() -> set[str]:
    return {
        r["record"] for g in MIXIN["prometheusRules"]["groups"] for r in g["rules"] if "record" in r
    }


def sample_query(dashboard: dict, panel: dict, target: dict) -> str:
    """The expression as Grafana would send it for 30 days with every member selected."""
    selected = {v: SAMPLE_VALUES[v] for v in SAMPLE_VALUES if f"${v}" in target["expr"]}
    if "member" in selected and '"$member"' in target["expr"]:
        selected["member"] = selected["member"][:1]
    call = prometheus_call(dashboard, panel, target, selected, TimeRange(1.0e9, 1.0e9 + 30 * 86400))
    return call.params["query"]


def key_paths(value: object, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        out = set()
        for key, item in value.items():
            out |= {f"{prefix}/{key}"} | key_paths(item, f"{prefix}/{key}")
        return out
    if isinstance(value, list):
        return set().union(*(key_paths(item, f"{prefix}[{i}]") for i, item in enumerate(value)))
    return set()


def test_committed_dashboards_and_rules_are_generated_from_the_mixin():
    mine = {
        path: text
        for path, text in render(MIXIN).items()
        if path.parent in (DASHBOARDS_DIR, FINANCE_DIR) or path.name == "rules.yaml"
    }
    assert [p for p in stale(mine) if p in mine or p.parent in (DASHBOARDS_DIR, FINANCE_DIR)] == []


def test_the_dashboard_across_organizations_is_rendered_apart_from_the_others():
    """The folder provisioned into every organization's Grafana must not hold it."""
    assert sorted(p.name for p in FINANCE_DIR.glob("*.json")) == sorted(FINANCE)
    assert not set(FINANCE) & {p.name for p in DASHBOARDS_DIR.glob("*.json")}


def test_the_console_dashboard_has_the_console_panels_by_title():
    titles = [p["title"] for p in DASHBOARDS["analytics.json"]["panels"]]
    assert [t for t in CONSOLE_TITLES if t not in titles] == []


def test_the_console_dashboard_offers_datasource_organization_member_and_actor_type():
    variables = {v["name"]: v for v in DASHBOARDS["analytics.json"]["templating"]["list"]}
    assert list(variables) == ["datasource", "organization", "member", "actor_type"]
    assert variables["member"]["multi"] and variables["member"]["includeAll"]
    assert variables["member"]["current"]["value"] == "$__all"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_organization_dashboard_shows_one_organization_picked_by_name(name):
    """One organization at a time, so that each figure is one organization's Console figure; the
    picker shows the organization's name and the queries get its id."""
    variables = DASHBOARDS[name]["templating"]["list"]
    organization = variables[1]
    assert organization["name"] == "organization"
    assert not organization.get("multi") and not organization.get("includeAll")
    assert organization["query"].startswith(
        "query_result(group by (organization_id, organization_name)"
    )
    chained = [v for v in variables[2:] if v["type"] == "query"]
    assert all(ORGANIZATION in v["query"] for v in chained)


def test_the_organization_variable_takes_the_id_as_value_and_the_name_as_text():
    variable = DASHBOARDS["analytics.json"]["templating"]["list"][1]
    line = '{organization_id="a1f3",organization_name="Acme "R&D" Research"} 1 1700000000000'
    named = option(line, variable["regex"])
    unnamed = option('{organization_id="b7e8"} 1 1700000000000', variable["regex"])
    assert (named.value, named.text) == ("a1f3", 'Acme "R&D" Research')
    assert (unnamed.value, unnamed.text) == ("b7e8", "b7e8")


def test_the_console_dashboard_shows_the_last_30_days_in_utc():
    dashboard = DASHBOARDS["analytics.json"]
    assert (dashboard["time"]["from"], dashboard["timezone"]) == ("now-30d", "utc")


@pytest.mark.parametrize("name", dashboard_ids())
def test_dashboard_refreshes_no_faster_than_every_15_minutes(name):
    refresh = EVERY_DASHBOARD[name]["refresh"]
    choices = EVERY_DASHBOARD[name]["timepicker"]["refresh_intervals"]
    assert all(re.fullmatch(r"(15m|30m|[1-9]\d*[hd])", r) for r in [refresh, *choices])


def test_dashboard_uids_are_unique_and_prefixed():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(
        uid == "claude-code-" + name.removesuffix(".json")
        for name, uid in zip(DASHBOARDS, uids, strict=True)
    )


@pytest.mark.parametrize("name", dashboard_ids())
def test_panel_ids_are_unique(name):
    ids = [p["id"] for p in EVERY_DASHBOARD[name]["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", dashboard_ids())
def test_panels_fit_24_columns_without_overlapping(name):
    cells: dict[tuple[int, int], int] = {}
    for panel in EVERY_DASHBOARD[name]["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_panel_has_a_unit_and_a_description(name):
    for panel in panels(EVERY_DASHBOARD[name]):
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert len(panel.get("description", "")) > 20, panel["title"]


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_panel_and_query_uses_the_datasource_variable(name):
    dashboard = EVERY_DASHBOARD[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {"${datasource}"}, panel[
            "title"
        ]
    queries = [v for v in variables.values() if v["type"] == "query"]
    assert all(v["datasource"]["uid"] == "${datasource}" for v in queries)


@pytest.mark.parametrize("name", dashboard_ids())
def test_per_day_queries_run_with_a_one_day_step(name):
    for panel in panels(EVERY_DASHBOARD[name]):
        for target in panel["targets"]:
            per_day = "offset -" in target["expr"]
            if per_day and not target.get("instant"):
                assert panel.get("interval") == "1d", panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_links_point_at_the_other_dashboards_of_the_organization(name):
    uids = {d["uid"] for d in DASHBOARDS.values()}
    links = DASHBOARDS[name]["links"]
    targets = {UID_PATH.match(link["url"]).group(1) for link in links}
    assert targets == uids - {DASHBOARDS[name]["uid"]}
    assert all(link["url"].endswith("?${organization:queryparam}") for link in links)


def test_the_dashboard_across_organizations_links_to_no_other_and_none_to_it():
    """It lives in another Grafana organization, where the others are not."""
    assert [d["links"] for d in FINANCE.values()] == [[] for _ in FINANCE]
    finance_uids = {d["uid"] for d in FINANCE.values()}
    assert not set(UID_PATH.findall(json.dumps(DASHBOARDS))) & finance_uids


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_data_links_point_at_existing_dashboards(name):
    uids = {d["uid"] for d in DASHBOARDS.values()}
    text = json.dumps([p["fieldConfig"] for p in panels(DASHBOARDS[name])])
    assert set(UID_PATH.findall(text)) <= uids


def test_team_insights_rows_link_to_the_member_dashboard():
    table = next(p for p in DASHBOARDS["analytics.json"]["panels"] if p["title"] == "Team insights")
    links = [
        link
        for override in table["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    member_uid = DASHBOARDS["member.json"]["uid"]
    assert [UID_PATH.search(link["url"]).group(1) for link in links] == [member_uid]
    assert "var-member=${__data.fields.member" in links[0]["url"]
    assert "${organization:queryparam}" in links[0]["url"]


def test_the_member_dashboard_selects_one_member_from_the_link():
    variables = {v["name"]: v for v in DASHBOARDS["member.json"]["templating"]["list"]}
    assert not variables["member"].get("multi") and not variables["member"].get("includeAll")


@pytest.mark.parametrize("name", dashboard_ids())
def test_grafana_foundation_sdk_round_trips_the_dashboard_without_dropping_a_key(name):
    plugins.register_default_plugins()
    dashboard = EVERY_DASHBOARD[name]
    again = json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder))
    assert key_paths(dashboard) - key_paths(again) == set()


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_query_parses_with_promtool(name, tmp_path):
    dashboard = EVERY_DASHBOARD[name]
    rules = [
        {"record": f"check:panel_{p['id']}_{t['refId']}", "expr": sample_query(dashboard, p, t)}
        for p in panels(dashboard)
        for t in p["targets"]
    ]
    rules_file = tmp_path / "queries.yaml"
    rules_file.write_text(json.dumps({"groups": [{"name": name, "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rules_parse_with_promtool():
    result = subprocess.run(
        ["promtool", "check", "rules", str(RULES_DIR / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_a_query_names_is_documented_or_recorded():
    known = documented_metrics() | recorded_metrics() | {"up"}
    used = {m for _, _, t in all_targets() for m in METRIC_NAME.findall(t["expr"])}
    rule_exprs = [r["expr"] for g in MIXIN["prometheusRules"]["groups"] for r in g["rules"]]
    used |= {m for e in rule_exprs for m in METRIC_NAME.findall(e)}
    assert used - known == set()


def organization_totals() -> set[str]:
    """The recorded series of one figure per organization, whose rules sum the job away."""
    return {name for name in recorded_metrics() if not name.endswith(("_member", ":count"))}


def test_queries_select_the_exporters_job():
    """Every exported series is read with the job's selector, and so is every recorded series but
    the organization totals."""
    for name, panel, target in all_targets():
        names = [n for n in METRIC_NAME.findall(target["expr"]) if ":" not in n]
        exported = re.findall(r"\b(?:claude_code_analytics[a-z0-9_]*|up)\{", target["expr"])
        assert len(exported) == len(names), f"{name}: {panel['title']}"
        read = re.findall(r"\b(claude_code_analytics[a-z0-9_:]*|up)\{([^}]*)\}", target["expr"])
        wrong = [
            metric
            for metric, selector in read
            if metric not in organization_totals() and 'job="claude-code-analytics"' not in selector
        ]
        assert wrong == [], f"{name}: {panel['title']}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_of_an_organization_dashboard_reads_the_organization_picked(name):
    """Every series is selected by the organization's id but Prometheus' `up`, which is the
    target's: it is joined by job and instance to the targets that served the organization."""
    for _, panel, target in all_targets({name: DASHBOARDS[name]}):
        read = re.findall(r"\b(claude_code_analytics[a-z0-9_:]*|up)\{([^}]*)\}", target["expr"])
        assert read, panel["title"]
        for metric, selector in read:
            joined = metric == "up" and "and on (job, instance)" in target["expr"]
            assert ORGANIZATION in selector or joined, f"{panel['title']}: {metric}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_join_and_grouping_by_member_keeps_the_organization_apart(name):
    """The same email in two organizations never mixes: every `on (...)` that matches series, and
    every `by (...)` that keeps a member's labels, lists the organization too. (The dashboard across
    organizations counts a person once by email on purpose.)"""
    for _, panel, target in all_targets({name: DASHBOARDS[name]}):
        for keyword, clause in re.findall(r"\b(on|by)\s*\(([^)]*)\)", target["expr"]):
            labels = {label.strip() for label in clause.split(",") if label.strip()}
            if labels and (keyword == "on" or labels & {"member", "actor_type", "role"}):
                assert "organization_id" in labels or labels == {"job", "instance"}, (
                    f"{panel['title']}: {keyword} ({clause})"
                )


def test_the_dashboard_across_organizations_reads_every_organization():
    exprs = [t["expr"] for _, _, t in all_targets(FINANCE)]
    assert exprs and not any("$organization" in e for e in exprs)
    assert [v["name"] for d in FINANCE.values() for v in d["templating"]["list"]] == ["datasource"]


def test_an_sre_overrides_selector_uid_prefix_and_budget_from_another_jsonnet_file():
    overridden = evaluate(
        ext_code="local o = m + { _config+:: { exporterSelector: 'job=\"acme\"',"
        " dashboardUidPrefix: 'acme', monthlyBudgetUSD: 500 } };"
        "{ d: o.grafanaDashboards, r: o.prometheusRules }"
    )
    dashboards = overridden["d"]
    exprs = [t["expr"] for d in dashboards.values() for p in panels(d) for t in p["targets"]]
    exprs += [r["expr"] for g in overridden["r"]["groups"] for r in g["rules"]]
    budget = next(
        r["expr"]
        for g in overridden["r"]["groups"]
        for r in g["rules"]
        if r.get("record") == "claude_code_analytics:monthly_budget_usd"
    )
    assert {d["uid"].split("-")[0] for d in dashboards.values()} == {"acme"}
    assert [e for e in exprs if "claude-code-analytics" in e] == []
    assert all('job="acme"' in e for e in exprs if "claude_code_analytics_" in e)
    assert budget.startswith("500 * group by (organization_id, organization_name)")


def per_day_call(time_range: TimeRange):
    dashboard = DASHBOARDS["analytics.json"]
    activity = next(p for p in dashboard["panels"] if p["title"] == "Activity")
    selected = {
        "organization": ["a1f3"],
        "member": ["a.b+c@example.com", "ci"],
        "actor_type": ["user"],
    }
    return prometheus_call(dashboard, activity, activity["targets"][0], selected, time_range)


def test_a_per_day_panel_is_queried_at_utc_midnights_like_grafana_does():
    call = per_day_call(TimeRange(1_700_000_123.0, 1_700_000_123.0 + 30 * 86400))
    start, end, step = (int(call.params[k]) for k in ("start", "end", "step"))
    assert (step, start % 86400, end % 86400) == (86400, 0, 0)
    assert start <= 1_700_000_123 < start + 86400


def test_a_multi_value_variable_becomes_an_escaped_regex_alternation():
    query = per_day_call(TimeRange(0.0, 30 * 86400.0)).params["query"]
    assert 'member=~"(a\\\\.b\\\\+c@example\\\\.com|ci)"' in query
    assert 'actor_type=~"user"' in query
    assert 'organization_id="a1f3"' in query


def test_rate_interval_is_the_larger_of_interval_plus_step_and_four_steps():
    dashboard = DASHBOARDS["exporter.json"]
    chart = next(p for p in dashboard["panels"] if p["title"] == "Admin API requests by code")
    target, picked = chart["targets"][0], {"organization": ["a1f3"]}
    short = prometheus_call(dashboard, chart, target, picked, TimeRange(0, 300), 15)
    long = prometheus_call(dashboard, chart, target, picked, TimeRange(0, 30 * 86400), 15)

    assert "[1m0s]" in short.params["query"] and short.params["step"] == "15"
    assert "[2h0m0s]" in long.params["query"] and long.params["step"] == "1800"
