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

from grafana_queries import TimeRange, prometheus_call
from tools.generate import DASHBOARDS_DIR, RULES_DIR, evaluate, render, stale

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
DASHBOARDS = MIXIN["grafanaDashboards"]
SAMPLE_VALUES = {
    "member": ["alice@example.com", "ci-claude-code"],
    "actor_type": ["user", "api_key"],
}


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def all_targets() -> list[tuple[str, dict, dict]]:
    return [(name, p, t) for name, d in DASHBOARDS.items() for p in panels(d) for t in p["targets"]]


def dashboard_ids() -> list[str]:
    return sorted(DASHBOARDS)


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
        if path.parent == DASHBOARDS_DIR or path.name == "rules.yaml"
    }
    assert [p for p in stale(mine) if p in mine or p.parent == DASHBOARDS_DIR] == []


def test_the_console_dashboard_has_the_console_panels_by_title():
    titles = [p["title"] for p in DASHBOARDS["analytics.json"]["panels"]]
    assert [t for t in CONSOLE_TITLES if t not in titles] == []


def test_the_console_dashboard_offers_datasource_member_and_actor_type():
    variables = {v["name"]: v for v in DASHBOARDS["analytics.json"]["templating"]["list"]}
    assert list(variables) == ["datasource", "member", "actor_type"]
    assert variables["member"]["multi"] and variables["member"]["includeAll"]
    assert variables["member"]["current"]["value"] == "$__all"


def test_the_console_dashboard_shows_the_last_30_days_in_utc():
    dashboard = DASHBOARDS["analytics.json"]
    assert (dashboard["time"]["from"], dashboard["timezone"]) == ("now-30d", "utc")


@pytest.mark.parametrize("name", dashboard_ids())
def test_dashboard_refreshes_no_faster_than_every_15_minutes(name):
    refresh = DASHBOARDS[name]["refresh"]
    choices = DASHBOARDS[name]["timepicker"]["refresh_intervals"]
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
    ids = [p["id"] for p in DASHBOARDS[name]["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", dashboard_ids())
def test_panels_fit_24_columns_without_overlapping(name):
    cells: dict[tuple[int, int], int] = {}
    for panel in DASHBOARDS[name]["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_panel_has_a_unit_and_a_description(name):
    for panel in panels(DASHBOARDS[name]):
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert len(panel.get("description", "")) > 20, panel["title"]


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_panel_and_query_uses_the_datasource_variable(name):
    dashboard = DASHBOARDS[name]
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
    for panel in panels(DASHBOARDS[name]):
        for target in panel["targets"]:
            per_day = "offset -" in target["expr"]
            if per_day and not target.get("instant"):
                assert panel.get("interval") == "1d", panel["title"]


@pytest.mark.parametrize("name", dashboard_ids())
def test_dashboard_links_point_at_existing_dashboards(name):
    uids = {d["uid"] for d in DASHBOARDS.values()}
    links = DASHBOARDS[name]["links"]
    targets = {UID_PATH.match(link["url"]).group(1) for link in links}
    assert targets == uids - {DASHBOARDS[name]["uid"]}


@pytest.mark.parametrize("name", dashboard_ids())
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


def test_the_member_dashboard_selects_one_member_from_the_link():
    variables = {v["name"]: v for v in DASHBOARDS["member.json"]["templating"]["list"]}
    assert not variables["member"].get("multi") and not variables["member"].get("includeAll")


@pytest.mark.parametrize("name", dashboard_ids())
def test_grafana_foundation_sdk_round_trips_the_dashboard_without_dropping_a_key(name):
    plugins.register_default_plugins()
    dashboard = DASHBOARDS[name]
    again = json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder))
    assert key_paths(dashboard) - key_paths(again) == set()


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_query_parses_with_promtool(name, tmp_path):
    dashboard = DASHBOARDS[name]
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


def test_queries_select_the_exporters_job():
    """Every exported series is read with the job's selector, and so is every recorded series that
    is read with a selector (the month-to-date rules are organization totals, read bare)."""
    for name, panel, target in all_targets():
        names = [n for n in METRIC_NAME.findall(target["expr"]) if ":" not in n]
        exported = re.findall(r"\b(?:claude_code_analytics[a-z0-9_]*|up)\{", target["expr"])
        assert len(exported) == len(names), f"{name}: {panel['title']}"
        selectors = re.findall(
            r"\b(?:claude_code_analytics[a-z0-9_:]*|up)\{([^}]*)\}", target["expr"]
        )
        assert all('job="claude-code-analytics"' in s for s in selectors), (
            f"{name}: {panel['title']}"
        )


def test_an_sre_overrides_selector_uid_prefix_and_budget_from_another_jsonnet_file():
    overridden = evaluate(
        ext_code="local o = m + { _config+:: { exporterSelector: 'job=\"acme\"',"
        " dashboardUidPrefix: 'acme', monthlyBudgetUSD: 500 } };"
        "{ d: o.grafanaDashboards, r: o.prometheusRules }"
    )
    dashboards = overridden["d"]
    exprs = [t["expr"] for d in dashboards.values() for p in panels(d) for t in p["targets"]]
    exprs += [r["expr"] for g in overridden["r"]["groups"] for r in g["rules"]]
    gauge = next(
        p for p in dashboards["cost.json"]["panels"] if p["title"] == "Month-to-date spend"
    )
    assert {d["uid"].split("-")[0] for d in dashboards.values()} == {"acme"}
    assert [e for e in exprs if "claude-code-analytics" in e] == []
    assert all('job="acme"' in e for e in exprs if "{" in e)
    assert gauge["fieldConfig"]["defaults"]["max"] == 500


def per_day_call(time_range: TimeRange):
    dashboard = DASHBOARDS["analytics.json"]
    activity = next(p for p in dashboard["panels"] if p["title"] == "Activity")
    selected = {"member": ["a.b+c@example.com", "ci"], "actor_type": ["user"]}
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


def test_rate_interval_is_the_larger_of_interval_plus_step_and_four_steps():
    dashboard = DASHBOARDS["exporter.json"]
    chart = next(p for p in dashboard["panels"] if p["title"] == "Admin API requests by code")
    short = prometheus_call(dashboard, chart, chart["targets"][0], {}, TimeRange(0, 300), 15)
    long = prometheus_call(dashboard, chart, chart["targets"][0], {}, TimeRange(0, 30 * 86400), 15)
    assert "[1m0s]" in short.params["query"] and short.params["step"] == "15"
    assert "[2h0m0s]" in long.params["query"] and long.params["step"] == "1800"
