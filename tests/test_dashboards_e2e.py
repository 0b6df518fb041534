"""End to end: every dashboard query, sent as Grafana would, to a Prometheus scraping the exporter.

The exporter runs as a process against a simulated organization whose clock is frozen at the start
of the module, so the Console's definitions computed from the simulator's raw records are the
truth the panels must show.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from test_dashboards import DASHBOARDS, METRIC_NAME, panels, recorded_metrics

import console
from conftest import per_day_windows_open
from exporter.clock import day_start
from exporter.poller import default_history_days
from exporter.simulator import SimulatedOrganization, serve
from grafana_queries import ALL, PrometheusCall, TimeRange, prometheus_call, variable_values
from procs import start_exporter, start_prometheus, wait_for_scrapes_and_rules
from tools.generate import RULES_DIR

pytestmark = pytest.mark.e2e
KEY = "sk-ant-admin01-dashboards-e2e-key"
SCRAPE_S = 1
DAY = 86400
CONSOLE_TOOLS = {"edit": "edit_tool", "write": "write_tool", "notebook_edit": "notebook_edit_tool"}


@pytest.fixture(scope="module")
def org(frozen_now):
    organization = SimulatedOrganization(seed=5, members=30, now=lambda: frozen_now)
    with serve(organization, api_key=KEY) as server:
        organization.url = server.url
        yield organization


@pytest.fixture(scope="module")
def exporter(org, frozen_now, tmp_path_factory):
    """The exporter with its default history: last month, this month and at least 30 days."""
    env = {"ANTHROPIC_BASE_URL": org.url, "ANTHROPIC_ADMIN_API_KEY": KEY}
    tmp = tmp_path_factory.mktemp("exporter")
    with start_exporter(tmp, "--poll.interval=1h", env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def prometheus(exporter, tmp_path_factory):
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [
            {
                "job_name": "claude-code-analytics",
                "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
            }
        ],
    }
    rules = (RULES_DIR / "rules.yaml",)
    with start_prometheus(tmp_path_factory.mktemp("prometheus"), config, rules) as proc:
        wait_for_scrapes_and_rules(proc, "claude-code-analytics", count=6)
        yield proc


def instant(prometheus, expr: str) -> list[dict]:
    response = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()["data"]["result"]


def last_30_days() -> TimeRange:
    now = time.time()
    return TimeRange(now - 30 * DAY, now)


def today_so_far() -> TimeRange:
    """Grafana's "Today so far": from 00:00 UTC to now, in whole seconds."""
    now = float(int(time.time()))
    return TimeRange(now - now % DAY, now)


def time_range_for(name: str) -> TimeRange:
    """The dashboards' default 30 days; the exporter's own panels over the minutes this test ran."""
    if name == "exporter.json":
        now = time.time()
        return TimeRange(now - 300, now)
    return last_30_days()


def selection(prometheus, org, name: str, time_range: TimeRange) -> dict[str, Sequence[str]]:
    """Every variable's options for "All", the organization (the only one), and for the member
    dashboard the busiest member."""
    dashboard = DASHBOARDS[name]
    selected: dict[str, Sequence[str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        if variable.get("includeAll"):
            selected[variable["name"]] = [ALL]
            continue
        options = variable_values(prometheus.url, variable, time_range, selected, dashboard)
        if variable["name"] == "organization":
            assert options == [org.organization_id]
            selected["organization"] = options
        else:
            selected[variable["name"]] = [busiest_member(org, options)]
    return selected


def busiest_member(org, options: Sequence[str]) -> str:
    """The member with the highest spend this month, or the first option early on the 1st."""
    today = org.now().date()
    spend = console.spend_cents(month_records(org, today))
    return max(spend, key=spend.__getitem__) if spend else options[0]


def month_records(org, today) -> list[dict]:
    day, out = today.replace(day=1), []
    while day <= today:
        out += org.visible_records(day)
        day += timedelta(days=1)
    return out


def panel(name: str, title: str) -> dict:
    return next(p for p in DASHBOARDS[name]["panels"] if p["title"] == title)


def call_for(prometheus, org, name, title, ref_id, time_range, members=None) -> PrometheusCall:
    """Grafana's call for one target; `members` picks members instead of the defaults."""
    chosen = panel(name, title)
    target = next(t for t in chosen["targets"] if t["refId"] == ref_id)
    selected = selection(prometheus, org, name, time_range)
    if members is not None:
        selected["member"] = members
    return prometheus_call(DASHBOARDS[name], chosen, target, selected, time_range, SCRAPE_S)


def run(
    prometheus, org, name: str, title: str, ref_id: str, time_range: TimeRange, members=None
) -> list[dict]:
    return call_for(prometheus, org, name, title, ref_id, time_range, members).run(prometheus.url)


def at_midnight_today(org, result: list[dict]) -> float | None:
    """The value of a single-series per-day result at today's 00:00 UTC step, or None."""
    today = day_start(org.now().date())
    values = [float(v) for series in result for t, v in series["values"] if int(t) == today]
    assert len(values) <= 1
    return values[0] if values else None


def single(result: list[dict]) -> float | None:
    assert len(result) <= 1
    return float(result[0]["value"][1]) if result else None


def todays_records(org) -> list[dict]:
    return org.visible_records(org.now().date())


def all_queries() -> list[tuple[str, str, str]]:
    return [
        (name, p["title"], t["refId"])
        for name, dashboard in sorted(DASHBOARDS.items())
        for p in panels(dashboard)
        for t in p["targets"]
    ]


def is_per_day(name: str, title: str, ref_id: str) -> bool:
    target = next(t for t in panel(name, title)["targets"] if t["refId"] == ref_id)
    return "offset -" in target["expr"]


def says_nothing_in_words(name: str, title: str) -> bool:
    """A ratio's stat panel: with nothing to divide its query has no value, and the panel says so
    (the figure tests check that against the Console's definitions)."""
    return "noValue" in panel(name, title)["fieldConfig"]["defaults"]


@pytest.mark.parametrize(("name", "title", "ref_id"), all_queries())
def test_query_returns_data(prometheus, org, name, title, ref_id):
    if is_per_day(name, title, ref_id) and not per_day_windows_open(org.now()):
        pytest.skip("per-day windows hold no samples before 00:05 UTC by design")
    result = run(prometheus, org, name, title, ref_id, time_range_for(name))
    assert result != [] or says_nothing_in_words(name, title)


def test_every_metric_the_dashboards_name_is_exported(exporter):
    text = requests.get(exporter.url + "/metrics", timeout=10).text
    exported = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, flags=re.MULTILINE):
        exported.add(name + ("_total" if kind == "counter" and not name.endswith("_total") else ""))
    used = {
        m
        for d in DASHBOARDS.values()
        for p in panels(d)
        for t in p["targets"]
        for m in METRIC_NAME.findall(t["expr"])
    }
    assert used - recorded_metrics() - {"up"} - exported == set()


def expected_today(org) -> dict[str, float | None]:
    records = todays_records(org)
    if not records:
        return dict.fromkeys(("users", "sessions", "spend", "lines", "accept_rate"))
    accepted, decided = console.tool_decisions(records)
    return {
        "users": console.active_users(records),
        "sessions": sum(console.sessions(records).values()),
        "spend": float(sum(console.spend_cents(records).values()) / 100),
        "lines": sum(console.lines_accepted(records).values()),
        "accept_rate": accepted / decided if decided else None,
    }


@pytest.mark.parametrize(
    ("title", "ref_id", "figure"),
    [
        ("Activity", "A", "users"),
        ("Activity", "B", "sessions"),
        ("Spend", "A", "users"),
        ("Lines of code accepted per day", "A", "lines"),
    ],
)
def test_todays_count_equals_the_console_definition(prometheus, org, title, ref_id, figure):
    result = run(prometheus, org, "analytics.json", title, ref_id, last_30_days())
    assert at_midnight_today(org, result) == expected_today(org)[figure]


def test_todays_spend_is_within_a_cent_of_the_console_definition(prometheus, org):
    result = run(prometheus, org, "analytics.json", "Spend", "B", last_30_days())
    expected = expected_today(org)["spend"]
    assert at_midnight_today(org, result) == (
        None if expected is None else pytest.approx(expected, abs=0.01)
    )


def test_todays_accept_rate_per_day_equals_the_console_definition(prometheus, org):
    result = run(
        prometheus, org, "analytics.json", "Suggestion accept rate per day", "A", last_30_days()
    )
    expected = expected_today(org)["accept_rate"]
    assert at_midnight_today(org, result) == (
        None if expected is None else pytest.approx(expected, rel=1e-9)
    )


def test_lines_of_code_accepted_today_so_far_equals_the_console_definition(prometheus, org):
    result = run(prometheus, org, "analytics.json", "Lines of code accepted", "A", today_so_far())
    assert single(result) == expected_today(org)["lines"]


@pytest.mark.parametrize(
    ("ref_id", "tools"),
    [
        ("A", ("edit_tool", "write_tool", "notebook_edit_tool")),
        ("B", ("edit_tool",)),
        ("C", ("write_tool",)),
        ("D", ("notebook_edit_tool",)),
        ("E", ("multi_edit_tool",)),
    ],
)
def test_accept_rate_today_so_far_equals_the_console_definition(prometheus, org, ref_id, tools):
    result = run(
        prometheus, org, "analytics.json", "Suggestion accept rate", ref_id, today_so_far()
    )
    accepted, decided = console.tool_decisions(todays_records(org), tools)
    expected = console.ratio(accepted, decided)
    assert single(result) == (None if expected is None else pytest.approx(expected, rel=1e-9))


def team_insights_column(prometheus, org, ref_id: str) -> dict[str, float]:
    result = run(prometheus, org, "analytics.json", "Team insights", ref_id, last_30_days())
    return {series["metric"]["member"]: float(series["value"][1]) for series in result}


def test_team_insights_lists_every_member_active_this_month(prometheus, org):
    records = month_records(org, org.now().date())
    shown = team_insights_column(prometheus, org, "A")
    assert {console.member(r) for r in records} <= set(shown)
    assert {u["email"] for u in org.users()} <= set(shown)


def test_team_insights_spend_this_month_is_within_a_cent_of_the_console_definition(prometheus, org):
    records = month_records(org, org.now().date())
    expected = console.spend_cents(records)
    shown = team_insights_column(prometheus, org, "A")
    wrong = {
        m: (v, expected.get(m, Decimal(0)) / 100)
        for m, v in shown.items()
        if abs(Decimal(str(v)) - expected.get(m, Decimal(0)) / 100) > Decimal("0.01")
    }
    assert wrong == {}


def test_team_insights_lines_this_month_equal_the_console_definition(prometheus, org):
    records = month_records(org, org.now().date())
    expected = console.lines_accepted(records)
    shown = team_insights_column(prometheus, org, "B")
    assert shown == {m: float(expected.get(m, 0)) for m in shown}


# Members picked, and All: the recording rules' path against the members' own series.


def through_member_rules() -> list[tuple[str, str, str]]:
    """The targets that read a member recording rule for All and the members' series otherwise."""
    return [
        (name, title, ref_id)
        for name, title, ref_id in all_queries()
        for t in panel(name, title)["targets"]
        if t["refId"] == ref_id and "all_members!~" in t["expr"]
    ]


def every_member(prometheus, org) -> list[str]:
    dashboard = DASHBOARDS["analytics.json"]
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "member")
    picked = {"organization": [org.organization_id]}
    return variable_values(prometheus.url, variable, last_30_days(), picked, dashboard)


def figures(result: list[dict]) -> dict[str, float]:
    """A result's points by time (range queries) or its single value (instant queries)."""
    out = {}
    for series in result:
        for t, v in series.get("values", [series.get("value")]):
            out[str(t)] = float(v)
    return out


def test_the_console_page_reads_members_through_the_rules():
    assert {name for name, _, _ in through_member_rules()} == {"analytics.json"}
    assert len(through_member_rules()) >= 10


@pytest.mark.parametrize(("name", "title", "ref_id"), through_member_rules())
def test_all_shows_what_every_member_picked_shows(prometheus, org, name, title, ref_id):
    """All reads the recorded sums; every member picked by name reads each member's series."""
    if is_per_day(name, title, ref_id) and not per_day_windows_open(org.now()):
        pytest.skip("per-day windows hold no samples before 00:05 UTC by design")
    everyone, time_range = every_member(prometheus, org), last_30_days()
    via_rules = figures(run(prometheus, org, name, title, ref_id, time_range))
    via_members = figures(run(prometheus, org, name, title, ref_id, time_range, everyone))
    assert via_rules != {}
    assert via_rules == pytest.approx(via_members, rel=1e-9)


SELECTOR = re.compile(r"\b(claude_code_analytics[a-z0-9_:]*)(\{[^}]*\})")


def selected_series(prometheus, query: str) -> tuple[int, int]:
    """How many recorded series, and how many of the exporter's own, the selectors of a query (as
    Grafana sends it) pick over the last hour."""
    recorded = own = 0
    for name, matchers in set(SELECTOR.findall(query)):
        picked = len(instant(prometheus, f"last_over_time({name}{matchers}[1h])"))
        if ":" in name:
            recorded += picked
        else:
            own += picked
    return recorded, own


@pytest.mark.parametrize("ref_id", ["A", "B"])
def test_all_selects_the_recorded_sums_and_picked_members_their_own_series(prometheus, org, ref_id):
    """The mechanism behind the equal figures above: with All, the members' half of each query
    selects nothing; with members picked, the recorded half selects nothing."""
    title, time_range = "Activity", last_30_days()  # users (a count) and sessions (a sum)
    everyone = every_member(prometheus, org)
    via_rules = call_for(prometheus, org, "analytics.json", title, ref_id, time_range)
    via_members = call_for(prometheus, org, "analytics.json", title, ref_id, time_range, everyone)
    recorded, own = selected_series(prometheus, via_rules.params["query"])
    assert recorded > 0 and own == 0
    recorded, own = selected_series(prometheus, via_members.params["query"])
    assert recorded == 0 and own > 0


def test_a_picked_members_figures_today_equal_the_console_definition(prometheus, org):
    if not todays_records(org) or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    spend = console.spend_cents(todays_records(org))
    chosen = max(spend, key=spend.__getitem__)
    records = [r for r in todays_records(org) if console.member(r) == chosen]
    accepted, decided = console.tool_decisions(records)
    expected = {
        ("Activity", "A"): 1,
        ("Activity", "B"): sum(console.sessions(records).values()),
        ("Lines of code accepted per day", "A"): sum(console.lines_accepted(records).values()),
        ("Spend", "B"): pytest.approx(float(sum(console.spend_cents(records).values()) / 100)),
        ("Suggestion accept rate per day", "A"): (
            pytest.approx(accepted / decided, rel=1e-9) if decided else None
        ),
    }
    shown = {
        (title, ref_id): at_midnight_today(
            org, run(prometheus, org, "analytics.json", title, ref_id, last_30_days(), [chosen])
        )
        for title, ref_id in expected
    }
    assert shown == expected


# Beyond the Console: the other dashboards' figures against their definitions over the raw records.


def this_months_records(org) -> list[dict]:
    return month_records(org, org.now().date())


def days_records(org, days: int) -> list[dict]:
    today = org.now().date()
    return [r for n in range(days) for r in org.visible_records(today - timedelta(days=n))]


def by_label_at_midnight_today(org, result: list[dict], label: str) -> dict[str, float]:
    today = day_start(org.now().date())
    return {
        series["metric"][label]: float(v)
        for series in result
        for t, v in series["values"]
        if int(t) == today
    }


def test_month_to_date_spend_is_within_a_cent_of_the_raw_records(prometheus, org):
    expected = sum(console.spend_cents(this_months_records(org)).values()) / 100
    shown = single(run(prometheus, org, "cost.json", "Month-to-date spend", "A", last_30_days()))
    assert shown == pytest.approx(float(expected), abs=0.01)


@pytest.mark.parametrize(
    ("title", "divisor"),
    [
        ("Cost per session this month", console.sessions),
        ("Cost per accepted line this month", console.lines_accepted),
    ],
)
def test_cost_per_unit_this_month_equals_the_raw_records(prometheus, org, title, divisor):
    records = this_months_records(org)
    spend = sum(console.spend_cents(records).values()) / 100
    expected = console.ratio(spend, sum(divisor(records).values()))
    shown = single(run(prometheus, org, "cost.json", title, "A", last_30_days()))
    assert shown == (None if expected is None else pytest.approx(expected, rel=1e-9))


def test_cache_read_share_this_month_equals_the_raw_records(prometheus, org):
    expected = console.cache_read_share(this_months_records(org))
    shown = single(
        run(prometheus, org, "cost.json", "Cache read share this month", "A", last_30_days())
    )
    assert shown == pytest.approx(expected, rel=1e-9)


def test_todays_spend_by_model_is_within_a_cent_of_the_raw_records(prometheus, org):
    result = run(prometheus, org, "cost.json", "Spend by model per day", "A", last_30_days())
    expected = {
        model: float(cents / 100)
        for model, cents in console.spend_by_model_cents(todays_records(org)).items()
    }
    shown = by_label_at_midnight_today(org, result, "model")
    if not per_day_windows_open(org.now()):
        assert shown == {}
        return
    assert shown == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("title", "divisor"),
    [
        ("Cost per session per day", console.sessions),
        ("Cost per accepted line per day", console.lines_accepted),
    ],
)
def test_todays_cost_per_unit_equals_the_raw_records(prometheus, org, title, divisor):
    records = todays_records(org)
    if not records or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    spend = sum(console.spend_cents(records).values()) / 100
    expected = console.ratio(spend, sum(divisor(records).values()))
    shown = at_midnight_today(org, run(prometheus, org, "cost.json", title, "A", last_30_days()))
    assert shown == (None if expected is None else pytest.approx(expected, rel=1e-9))


def test_todays_cache_read_share_equals_the_raw_records(prometheus, org):
    records = todays_records(org)
    if not records or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    title = "Cache read share per day"
    shown = at_midnight_today(org, run(prometheus, org, "cost.json", title, "A", last_30_days()))
    assert shown == pytest.approx(console.cache_read_share(records), rel=1e-9)


def test_todays_tokens_by_model_and_type_equal_the_raw_records(prometheus, org):
    records = todays_records(org)
    if not records or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    title = "Tokens by model and type per day"
    result = run(prometheus, org, "cost.json", title, "A", last_30_days())
    today = day_start(org.now().date())
    shown = {
        (series["metric"]["model"], series["metric"]["token_type"]): float(v)
        for series in result
        for t, v in series["values"]
        if int(t) == today
    }
    models = {model["model"] for record in records for model in record["model_breakdown"]}
    expected = {
        (model, token_type): float(console.tokens(records, token_type, model))
        for model in models
        for token_type in ("input", "output", "cache_read", "cache_creation")
    }
    assert shown == expected


def test_spend_by_model_over_the_range_is_within_a_cent_of_the_raw_records(prometheus, org):
    """Prometheus here holds minutes of scrapes: the days they show are yesterday (from the
    `yesterday` gauge) and today."""
    if not per_day_windows_open(org.now()):
        pytest.skip("per-day windows hold no samples before 00:05 UTC by design")
    today = org.now().date()
    records = org.visible_records(today - timedelta(days=1)) + todays_records(org)
    expected = {m: float(c / 100) for m, c in console.spend_by_model_cents(records).items()}
    title = "Spend by model over the range"
    result = run(prometheus, org, "cost.json", title, "A", last_30_days())
    shown = {series["metric"]["model"]: float(series["value"][1]) for series in result}
    assert shown == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("ref_id", "field"), [("A", "commits_by_claude_code"), ("B", "pull_requests_by_claude_code")]
)
def test_todays_commits_and_pull_requests_equal_the_raw_records(prometheus, org, ref_id, field):
    title = "Commits and pull requests by Claude Code per day"
    result = run(prometheus, org, "adoption.json", title, ref_id, last_30_days())
    records = todays_records(org)
    expected = sum(console.core_sum(records, field).values()) if records else None
    assert at_midnight_today(org, result) == (expected if per_day_windows_open(org.now()) else None)


def test_todays_active_members_by_terminal_equal_the_raw_records(prometheus, org):
    title = "Active members by terminal type per day"
    result = run(prometheus, org, "adoption.json", title, "A", last_30_days())
    expected = (
        console.active_by_terminal(todays_records(org)) if per_day_windows_open(org.now()) else {}
    )
    assert by_label_at_midnight_today(org, result, "terminal_type") == expected


def test_todays_new_and_returning_members_equal_the_raw_records(prometheus, org, frozen_now):
    """New: active today and on none of the exporter's earlier history days; returning: the rest."""
    if not todays_records(org) or not per_day_windows_open(org.now()):
        pytest.skip("no records today yet")
    today = frozen_now.date()
    earlier = [today - timedelta(days=n) for n in range(1, default_history_days(today))]
    before = {console.member(r) for day in earlier for r in org.visible_records(day)}
    active = {console.member(r) for r in todays_records(org)}
    title = "New and returning members per day"
    shown = [
        at_midnight_today(org, run(prometheus, org, "adoption.json", title, ref_id, last_30_days()))
        for ref_id in ("A", "B")
    ]
    assert shown == [len(active - before), len(active & before)]


@pytest.mark.parametrize(("ref_id", "days"), [("B", 7), ("C", 30)])
def test_weekly_and_monthly_active_members_equal_the_raw_records(prometheus, org, ref_id, days):
    title = "Daily, weekly and monthly active members"
    result = run(prometheus, org, "adoption.json", title, ref_id, last_30_days())
    expected = console.active_users(days_records(org, days))
    assert at_midnight_today(org, result) == (expected if per_day_windows_open(org.now()) else None)


def test_the_member_dashboard_shows_the_members_month_and_role(prometheus, org):
    chosen = selection(prometheus, org, "member.json", last_30_days())["member"][0]
    records = [r for r in this_months_records(org) if console.member(r) == chosen]
    sessions = single(
        run(prometheus, org, "member.json", "Sessions this month", "A", last_30_days())
    )
    role = run(prometheus, org, "member.json", "Role", "A", last_30_days())
    assert sessions == sum(console.sessions(records).values())
    expected_role = next((u["role"] for u in org.users() if u["email"] == chosen), "")
    assert [series["metric"].get("role", "") for series in role] == [expected_role]
