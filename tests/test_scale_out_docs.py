"""docs/scale-out.md lists the PromQL features and functions that the generated dashboards and rules
rely on, for whoever moves them onto Mimir, Thanos or VictoriaMetrics. These tests scan the
committed dashboards and rules, what users load, and fail when the list no longer says what is
there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from tools.generate import DASHBOARDS_DIR, FINANCE_DIR, RULES_DIR

ROOT = Path(__file__).resolve().parent.parent
SCALE_OUT = ROOT / "docs" / "scale-out.md"

# What a backend may not evaluate as Prometheus does, by the name docs/scale-out.md gives it.
FEATURES = {
    "negative offset": re.compile(r"\boffset\s+-"),
    "positive offset": re.compile(r"\boffset\s+\d"),
    "@ modifier": re.compile(r"@\s*(?:\d|start\(|end\()"),
    "subquery": re.compile(r"\[[^\]\[]*:[^\]\[]*\]"),
}
CALL = re.compile(r"\b([a-z_]+)\s*\(")
# Names followed by a parenthesis that are not PromQL functions: keywords and aggregation
# operators, and the functions of Grafana's variable queries.
NOT_FUNCTIONS = {
    *("by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"),
    *("sum", "count", "max", "min", "avg", "group", "topk", "bottomk", "quantile", "stddev"),
    *("stdvar", "count_values", "label_values", "query_result"),
}


def dashboard_queries(dashboard: dict) -> Iterator[str]:
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield variable["query"]
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels += panel.get("panels", [])
        yield from (target["expr"] for target in panel.get("targets", []))


def generated_queries() -> dict[str, list[str]]:
    """Every query of the committed dashboards, and every expression of the committed rules."""
    dashboards = [
        query
        for path in sorted([*DASHBOARDS_DIR.glob("*.json"), *FINANCE_DIR.glob("*.json")])
        for query in dashboard_queries(json.loads(path.read_text()))
    ]
    rules = [
        rule["expr"]
        for path in sorted(RULES_DIR.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    return {"dashboards": dashboards, "rules": rules}


def features_used() -> set[tuple[str, str]]:
    """(feature, 'dashboards' or 'rules') for each feature found in those queries."""
    return {
        (feature, where)
        for where, queries in generated_queries().items()
        for feature, pattern in FEATURES.items()
        if any(pattern.search(query) for query in queries)
    }


def functions_used() -> set[str]:
    return {
        name
        for queries in generated_queries().values()
        for query in queries
        for name in CALL.findall(query)
    } - NOT_FUNCTIONS


def section(heading: str) -> str:
    text = SCALE_OUT.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def documented_features() -> set[tuple[str, str]]:
    """The rows of the features table: `| feature | in dashboards | in rules | ...`, yes or no."""
    found = set()
    for line in section("PromQL the mixin relies on").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 3 and cells[0] in FEATURES:
            found |= {(cells[0], "dashboards")} if cells[1].startswith("yes") else set()
            found |= {(cells[0], "rules")} if cells[2].startswith("yes") else set()
    return found


def documented_functions() -> set[str]:
    listing = section("PromQL the mixin relies on").split("Functions:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+)\(\)`", listing))


def test_the_scan_finds_what_the_per_day_panels_and_alerts_are_built_on():
    """The scanner itself: negative offsets (the per-day windows) in dashboards, subqueries in
    both, and the functions of the day windows."""
    used = features_used()
    assert {("negative offset", "dashboards"), ("subquery", "rules")} <= used
    assert {"last_over_time", "sum_over_time", "day_of_month"} <= functions_used()


def test_the_doc_lists_exactly_the_features_the_dashboards_and_rules_use():
    assert documented_features() == features_used()


def test_the_doc_lists_exactly_the_functions_the_dashboards_and_rules_call():
    assert documented_functions() == functions_used()
