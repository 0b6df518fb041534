"""Two Anthropic organizations in one shared Prometheus, and each in its own: never mixed.

One exporter reads two simulated organizations that share people (the same emails, with their own
roles and usage in each), each organization a scrape target of its own (docs/organizations.md).
Three Prometheus servers with the mixin's rules and alerts scrape it: one per organization (the
isolation design) and one with both (a shared Prometheus). For either organization, every query of
the organization's dashboards, every recorded series and every alert gives in the shared Prometheus
what it gives in that organization's own, and the Console figures are that organization's alone.
The dashboard across organizations, on the shared Prometheus, counts a person active in both once,
as its definitions in docs/dashboards.md say, computed here from the organizations' records.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import yaml
from test_dashboards import DASHBOARDS, FINANCE, panels

import console
from conftest import per_day_windows_open
from exporter.clock import day_start
from exporter.simulator import SimulatedOrganization, serve
from grafana_queries import ALL, Option, TimeRange, prometheus_call, variable_options
from procs import start_exporter, start_prometheus, wait_for_scrapes_and_rules
from tools.generate import evaluate

pytestmark = pytest.mark.e2e
KEYS = {
    "research": "sk-ant-admin01-research-shared-e2e-key",
    "platform": "sk-ant-admin01-platform-shared-e2e-key",
}
JOB = "claude-code-analytics"
P = "claude_code_analytics"
DAY = 86400
# Research's own budget; Platform gets the default, so low that its spend is over it.
RESEARCH_BUDGET_USD = 5000
DEFAULT_BUDGET_USD = 10
MEMBER_DAILY_CAP_USD = 1


@pytest.fixture(scope="module")
def orgs(frozen_now) -> dict[str, SimulatedOrganization]:
    """Research (30 members) and Platform (20 of the same people, each with their own usage)."""
    made = {
        "research": SimulatedOrganization(
            seed=15, members=30, now=lambda: frozen_now, name="Research"
        ),
        "platform": SimulatedOrganization(
            seed=16, members=20, now=lambda: frozen_now, name="Platform", people_seed=15
        ),
    }
    with serve({KEYS[name]: org for name, org in made.items()}) as server:
        for org in made.values():
            org.url = server.url
        yield made


@pytest.fixture(scope="module")
def exporter(orgs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exporter")
    entries = []
    for name, key in KEYS.items():
        (tmp / f"{name}.key").write_text(key + "\n")
        entries.append({"name": name, "api_key_file": str(tmp / f"{name}.key")})
    config = tmp / "config.yml"
    config.write_text(yaml.safe_dump({"organizations": entries, "poll.interval": "1h"}))
    env = {"ANTHROPIC_BASE_URL": orgs["research"].url}
    with start_exporter(tmp, f"--config.file={config}", env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def mixin_rules(orgs, tmp_path_factory):
    """The mixin's recording rules and alerts, with Research's own budget, a low default budget and
    a low member cap, so that the spend alerts fire and show whose figures they add up."""
    budgets = f"{{ '{orgs['research'].organization_id}': {RESEARCH_BUDGET_USD} }}"
    override = f"""
    local mixin = m + {{ _config+:: {{
      monthlyBudgetUSD: {DEFAULT_BUDGET_USD},
      monthlyBudgetUSDByOrganization: {budgets},
      memberDailySpendCapUSD: {MEMBER_DAILY_CAP_USD},
    }} }};
    {{ rules: mixin.prometheusRules, alerts: mixin.prometheusAlerts }}
    """
    rendered = evaluate(ext_code=override)
    folder = tmp_path_factory.mktemp("rules")
    paths = (folder / "rules.yaml", folder / "alerts.yaml")
    for path, key in zip(paths, ("rules", "alerts"), strict=True):
        path.write_text(yaml.safe_dump(rendered[key]))
    return paths, rendered["alerts"]


def scrape_config(exporter, names: Iterable[str]) -> dict:
    """The scrape of the organizations' targets, as docs/organizations.md configures it."""
    return {
        "job_name": JOB,
        "scrape_interval": "1s",
        "static_configs": [
            {
                "targets": [exporter.url.removeprefix("http://")],
                "labels": {"__param_organization": name},
            }
            for name in names
        ],
        "relabel_configs": [
            {
                "source_labels": ["__address__", "__param_organization"],
                "separator": "/",
                "target_label": "instance",
            }
        ],
    }


@pytest.fixture(scope="module")
def prometheus(exporter, mixin_rules, tmp_path_factory):
    """One Prometheus per organization, and the shared one that scrapes both."""
    scraped = {"research": ["research"], "platform": ["platform"], "shared": list(KEYS)}
    started = {}
    try:
        for name, names in scraped.items():
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [scrape_config(exporter, names)],
            }
            folder = tmp_path_factory.mktemp(f"prometheus-{name}")
            started[name] = start_prometheus(folder, config, mixin_rules[0])
        for proc in started.values():
            wait_for_scrapes_and_rules(proc, JOB, count=3)
        yield started
    finally:
        for proc in started.values():
            proc.stop()


@pytest.fixture(scope="module")
def moment(prometheus) -> float:
    """An instant at which every Prometheus has scraped and evaluated for a few seconds: the
    queries run at it (the exporter's figures stay as they are: it polls hourly)."""
    time.sleep(6)
    return float(int(time.time()))


# --- Grafana's calls ------------------------------------------------------------------------------


def last_30_days(moment: float) -> TimeRange:
    return TimeRange(moment - 30 * DAY, moment)


def time_range_for(name: str, moment: float) -> TimeRange:
    """The dashboards' default 30 days; the exporter's own panels over the last seconds, in which
    every Prometheus has scraped it each second."""
    return TimeRange(moment - 5, moment) if name == "exporter.json" else last_30_days(moment)


def organization_options(proc, name: str, moment: float) -> list[Option]:
    dashboard = DASHBOARDS[name]
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "organization")
    return variable_options(proc.url, variable, last_30_days(moment), {}, dashboard)


def member_options(proc, org: SimulatedOrganization, moment: float) -> list[str]:
    dashboard = DASHBOARDS["analytics.json"]
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "member")
    picked = {"organization": [org.organization_id]}
    options = variable_options(proc.url, variable, last_30_days(moment), picked, dashboard)
    return [o.value for o in options]


def shared_person(orgs) -> str:
    """The person of both organizations who spent most in Platform this month."""
    spend = console.spend_cents(month_records(orgs["platform"]))
    both = {u["email"] for u in orgs["research"].users()} & set(spend)
    return max(both, key=spend.__getitem__)


def selection(dashboard: dict, org: SimulatedOrganization, member: str) -> dict[str, Sequence[str]]:
    """The organization, All where a variable has it, and else the member."""
    selected: dict[str, Sequence[str]] = {"organization": [org.organization_id]}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query" and variable["name"] != "organization":
            selected[variable["name"]] = [ALL] if variable.get("includeAll") else [member]
    return selected


def run(proc, dashboard: dict, panel: dict, target: dict, selected, time_range) -> list[dict]:
    return prometheus_call(dashboard, panel, target, selected, time_range, 1).run(proc.url)


def figures(result: list[dict]) -> dict[frozenset, list[tuple[float, float]]]:
    """Each series' points (or its single value) by its labels."""
    return {
        frozenset(series["metric"].items()): [
            (float(t), float(v)) for t, v in series.get("values", [series.get("value")])
        ]
        for series in result
    }


def same(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(
        len(left[k]) == len(right[k])
        and all(
            a[0] == b[0] and math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-9)
            for a, b in zip(left[k], right[k], strict=True)
        )
        for k in left
    )


def instant(proc, expr: str, at: float) -> list[dict]:
    response = requests.get(
        f"{proc.url}/api/v1/query", params={"query": expr, "time": str(at)}, timeout=10
    )
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


# --- The organizations' records -------------------------------------------------------------------


def month_records(org: SimulatedOrganization) -> list[dict]:
    today = org.now().date()
    day, out = today.replace(day=1), []
    while day <= today:
        out += org.visible_records(day)
        day += timedelta(days=1)
    return out


def todays_records(org: SimulatedOrganization) -> list[dict]:
    return org.visible_records(org.now().date())


def spend_usd(records: Iterable[dict]) -> float:
    return float(sum(console.spend_cents(records).values(), Decimal(0)) / 100)


def people(orgs: dict[str, SimulatedOrganization], records_of: Callable) -> int:
    """Members active across the organizations: a user once by email, an API key in its
    organization (docs/dashboards.md, "Spend across organizations")."""
    found = set()
    for name, org in orgs.items():
        for record in records_of(org):
            user = record["actor"].get("email_address")
            found.add(("user", user) if user else ("api_key", name, console.member(record)))
    return len(found)


def at_midnight_today(org, result: list[dict]) -> dict[frozenset, float]:
    today = day_start(org.now().date())
    return {
        frozenset(s["metric"].items()): float(v)
        for s in result
        for t, v in s["values"]
        if int(t) == today
    }


# --- The organization's dashboards ----------------------------------------------------------------


def organization_targets() -> list[tuple[str, str]]:
    return [(name, org) for name in sorted(DASHBOARDS) for org in KEYS]


@pytest.mark.parametrize(("name", "organization"), organization_targets())
def test_every_panel_shows_in_a_shared_prometheus_what_the_organizations_own_shows(
    prometheus, orgs, moment, name, organization
):
    """Each target, as Grafana sends it with the organization picked, gives the same series in
    the shared Prometheus as in the organization's own; a member is picked by an email that both
    organizations have."""
    dashboard, org = DASHBOARDS[name], orgs[organization]
    selected = selection(dashboard, org, shared_person(orgs))
    time_range = time_range_for(name, moment)
    differ, empty = [], []
    for panel in panels(dashboard):
        for target in panel["targets"]:
            shared = figures(
                run(prometheus["shared"], dashboard, panel, target, selected, time_range)
            )
            alone = figures(
                run(prometheus[organization], dashboard, panel, target, selected, time_range)
            )
            if not same(shared, alone):
                differ.append((panel["title"], target["refId"], shared, alone))
            if not alone and "noValue" not in panel["fieldConfig"]["defaults"]:
                empty.append((panel["title"], target["refId"]))
    assert differ == []
    if name != "member.json":  # one member's days may be empty; the others always have data
        assert empty == []


def test_the_organization_variable_offers_each_organization_by_name(prometheus, orgs, moment):
    expected = {name: Option(org.organization_id, org.name) for name, org in orgs.items()}
    shared = organization_options(prometheus["shared"], "analytics.json", moment)
    assert shared == sorted(expected.values(), key=lambda option: option.text)
    for name in KEYS:
        assert organization_options(prometheus[name], "analytics.json", moment) == [expected[name]]


def test_the_member_variable_offers_the_organizations_members_only(prometheus, orgs, moment):
    for name, org in orgs.items():
        shared = member_options(prometheus["shared"], org, moment)
        assert shared == member_options(prometheus[name], org, moment)
        assert {u["email"] for u in org.users()} <= set(shared)
    research = set(member_options(prometheus["shared"], orgs["research"], moment))
    platform = set(member_options(prometheus["shared"], orgs["platform"], moment))
    assert platform < research | platform and research - platform


def console_call(prometheus, org, title: str, ref_id: str, moment: float, members=None):
    dashboard = DASHBOARDS["analytics.json"]
    panel = next(p for p in dashboard["panels"] if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref_id)
    selected = {"organization": [org.organization_id], "member": members or [ALL]}
    selected["actor_type"] = [ALL]
    return run(prometheus["shared"], dashboard, panel, target, selected, last_30_days(moment))


@pytest.mark.parametrize("organization", list(KEYS))
def test_the_console_figures_of_today_are_the_organizations_alone(
    prometheus, orgs, moment, organization
):
    org = orgs[organization]
    if not todays_records(org) or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    records = todays_records(org)
    accepted, decided = console.tool_decisions(records)
    expected = {
        ("Activity", "A"): console.active_users(records),
        ("Activity", "B"): sum(console.sessions(records).values()),
        ("Lines of code accepted per day", "A"): sum(console.lines_accepted(records).values()),
        ("Spend", "B"): pytest.approx(spend_usd(records)),
        ("Suggestion accept rate per day", "A"): pytest.approx(accepted / decided, rel=1e-9),
    }
    shown = {
        key: list(at_midnight_today(org, console_call(prometheus, org, *key, moment)).values())
        for key in expected
    }
    assert shown == {key: [value] for key, value in expected.items()}


@pytest.mark.parametrize("organization", list(KEYS))
def test_team_insights_shows_each_members_month_in_the_organization_alone(
    prometheus, orgs, moment, organization
):
    """Spend and lines this month of every member, the person of both organizations included,
    each from the organization's records only."""
    org = orgs[organization]
    records = month_records(org)

    def column(ref_id: str) -> dict[str, float]:
        result = console_call(prometheus, org, "Team insights", ref_id, moment)
        return {series["metric"]["member"]: float(series["value"][1]) for series in result}

    spend, lines = column("A"), column("B")
    expected_spend = {m: 0.0 for m in spend} | {
        m: float(c / 100) for m, c in console.spend_cents(records).items()
    }
    expected_lines = {m: 0.0 for m in lines} | {
        m: float(n) for m, n in console.lines_accepted(records).items()
    }
    assert spend == pytest.approx(expected_spend, abs=0.01)
    assert lines == expected_lines
    person = shared_person(orgs)
    elsewhere = month_records(orgs["platform" if organization == "research" else "research"])
    assert spend[person] != pytest.approx(
        float(console.spend_cents(elsewhere).get(person, 0) / 100), abs=0.01
    )


# --- Rules and alerts -----------------------------------------------------------------------------


def recorded_names() -> list[str]:
    rules = evaluate()["prometheusRules"]["groups"]
    return [rule["record"] for group in rules for rule in group["rules"]]


@pytest.mark.parametrize("organization", list(KEYS))
def test_every_recorded_series_of_an_organization_is_the_same_in_a_shared_prometheus(
    prometheus, orgs, moment, organization
):
    org_id = orgs[organization].organization_id
    differ = {}
    for record in recorded_names():
        shared = instant(prometheus["shared"], f'{record}{{organization_id="{org_id}"}}', moment)
        alone = instant(prometheus[organization], record, moment)
        if not same(figures(shared), figures(alone)):
            differ[record] = (shared, alone)
    assert differ == {}


def test_each_organization_has_its_own_budget_or_the_default(prometheus, orgs, moment):
    result = instant(prometheus["shared"], f"{P}:monthly_budget_usd", moment)
    budgets = {s["metric"]["organization_name"]: float(s["value"][1]) for s in result}
    assert budgets == {"Research": RESEARCH_BUDGET_USD, "Platform": DEFAULT_BUDGET_USD}


def alert_rules(mixin_rules) -> list[dict]:
    return [rule for group in mixin_rules[1]["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("organization", list(KEYS))
def test_every_alert_of_an_organization_is_the_same_in_a_shared_prometheus(
    prometheus, orgs, mixin_rules, moment, organization
):
    """Each alert's expression, for the organization in the shared Prometheus and in its own: the
    same alerts with the same values. The low cap and default budget make the spend alerts fire."""
    org_id = orgs[organization].organization_id
    differ, firing = {}, set()
    for rule in alert_rules(mixin_rules):
        shared = [
            s
            for s in instant(prometheus["shared"], rule["expr"], moment)
            if s["metric"].get("organization_id") == org_id
        ]
        alone = instant(prometheus[organization], rule["expr"], moment)
        if not same(figures(shared), figures(alone)):
            differ[rule["alert"], rule["labels"]["severity"]] = (shared, alone)
        if shared:
            firing.add(rule["alert"])
    assert differ == {}
    assert "ClaudeCodeMemberDailySpendHigh" in firing


def test_the_person_of_both_organizations_is_over_the_cap_with_each_organizations_spend(
    prometheus, orgs, mixin_rules, moment
):
    person = shared_person(orgs)
    rule = next(
        r for r in alert_rules(mixin_rules) if r["alert"] == "ClaudeCodeMemberDailySpendHigh"
    )
    result = instant(prometheus["shared"], rule["expr"], moment)
    shown = {
        s["metric"]["organization_name"]: float(s["value"][1])
        for s in result
        if s["metric"]["member"] == person
    }
    expected = {}
    for org in orgs.values():
        spent = spend_usd(r for r in todays_records(org) if console.member(r) == person)
        if spent > MEMBER_DAILY_CAP_USD:
            expected[org.name] = pytest.approx(spent, abs=0.01)
    assert shown == expected


# --- The dashboard across organizations -----------------------------------------------------------


def finance(prometheus, title: str, ref_id: str, moment: float) -> list[dict]:
    dashboard = FINANCE["finance.json"]
    panel = next(p for p in dashboard["panels"] if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref_id)
    return run(prometheus["shared"], dashboard, panel, target, {}, last_30_days(moment))


def single(result: list[dict]) -> float:
    assert len(result) == 1
    return float(result[0]["value"][1])


def by_organization(result: list[dict]) -> dict[str, float]:
    return {s["metric"]["organization_name"]: float(s["value"][1]) for s in result}


def test_spend_this_month_is_every_organizations_together(prometheus, orgs, moment):
    expected = sum(spend_usd(month_records(org)) for org in orgs.values())
    shown = single(finance(prometheus, "Spend this month", "A", moment))
    assert shown == pytest.approx(expected, abs=0.01)


def test_active_members_this_month_count_a_person_of_both_organizations_once(
    prometheus, orgs, moment
):
    expected = people(orgs, month_records)
    in_each = sum(console.active_users(month_records(org)) for org in orgs.values())
    assert expected < in_each, "the organizations must share active people for this to tell"
    assert single(finance(prometheus, "Active members this month", "A", moment)) == expected


def test_the_organizations_table_has_each_organizations_month_and_budget(prometheus, orgs, moment):
    columns = {
        ref_id: by_organization(finance(prometheus, "Organizations this month", ref_id, moment))
        for ref_id in "ABCD"
    }
    budget = {"Research": RESEARCH_BUDGET_USD, "Platform": DEFAULT_BUDGET_USD}
    spend = {org.name: spend_usd(month_records(org)) for org in orgs.values()}
    assert columns["A"] == pytest.approx(spend, abs=0.01)
    assert columns["B"] == budget
    assert columns["C"] == pytest.approx({n: spend[n] / budget[n] for n in spend}, rel=1e-6)
    assert columns["D"] == {
        org.name: console.active_users(month_records(org)) for org in orgs.values()
    }


def test_todays_spend_and_active_members_per_organization_and_across(prometheus, orgs, moment):
    research = orgs["research"]
    if not per_day_windows_open(research.now()):
        pytest.skip("per-day windows hold no samples before 00:05 UTC by design")
    spend = at_midnight_today(
        research, finance(prometheus, "Spend by organization per day", "A", moment)
    )
    each = at_midnight_today(research, finance(prometheus, "Active members per day", "B", moment))
    across = at_midnight_today(research, finance(prometheus, "Active members per day", "A", moment))
    name = lambda labels: dict(labels)["organization_name"]  # noqa: E731
    assert {name(k): v for k, v in spend.items()} == pytest.approx(
        {org.name: spend_usd(todays_records(org)) for org in orgs.values()}, abs=0.01
    )
    assert {name(k): v for k, v in each.items()} == {
        org.name: console.active_users(todays_records(org)) for org in orgs.values()
    }
    assert list(across.values()) == [people(orgs, todays_records)]


def test_spend_over_the_range_is_each_organizations_days_and_their_sum(prometheus, orgs, moment):
    """Prometheus holds minutes of scrapes: the days they show are yesterday (from the
    `yesterday` gauge) and today."""
    if not per_day_windows_open(orgs["research"].now()):
        pytest.skip("per-day windows hold no samples before 00:05 UTC by design")

    def two_days(org):
        today = org.now().date()
        return org.visible_records(today - timedelta(days=1)) + todays_records(org)

    expected = {org.name: spend_usd(two_days(org)) for org in orgs.values()}
    shown = by_organization(
        finance(prometheus, "Spend by organization over the range", "A", moment)
    )
    total = single(finance(prometheus, "Spend over the range", "A", moment))
    assert shown == pytest.approx(expected, abs=0.01)
    assert total == pytest.approx(sum(expected.values()), abs=0.02)
