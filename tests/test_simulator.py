"""The simulated organization: a seeded, believable organization behind the documented Admin API."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import flask
import pytest
import requests

from conftest import FIXTURES, TEST_KEY
from exporter.client import AdminClient
from exporter.parse import parse_usage_record
from exporter.simulator import AdminApi, SimulatedOrganization, SpendSpike, serve
from exporter.simulator.api import error_response
from exporter.simulator.cli import main
from exporter.simulator.members import ROLES
from exporter.simulator.usage import MODEL_PRICES, estimated_cost_cents
from procs import Proc, free_port

NOW = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)  # a Wednesday afternoon
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
USAGE = "/v1/organizations/usage_report/claude_code"
USERS = "/v1/organizations/users"
VERSION = {"anthropic-version": "2023-06-01"}
AUTHED = {**VERSION, "x-api-key": TEST_KEY}
KEY_FILE = FIXTURES / "simulator_admin_key.txt"


def organization(**kwargs: object) -> SimulatedOrganization:
    kwargs.setdefault("now", lambda: NOW)
    return SimulatedOrganization(**kwargs)  # type: ignore[arg-type]


def client(org: SimulatedOrganization, api_key: str | None = TEST_KEY) -> flask.testing.FlaskClient:
    return AdminApi(org, api_key).app.test_client()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_before(end: date, count: int) -> list[date]:
    return [end - timedelta(days=offset) for offset in range(count)]


def history(org: SimulatedOrganization, days: Iterable[date]) -> dict[date, list[dict]]:
    return {day: org.final_records(day) for day in days}


def actor_name(record: dict) -> str:
    actor = record["actor"]
    return actor.get("email_address") or actor["api_key_name"]


def quantities(record: dict) -> dict[str, int]:
    """Every number of a record under a flat name, for comparing records value by value."""
    core = record["core_metrics"]
    values = {
        "sessions": core["num_sessions"],
        "added": core["lines_of_code"]["added"],
        "removed": core["lines_of_code"]["removed"],
        "commits": core["commits_by_claude_code"],
        "pull_requests": core["pull_requests_by_claude_code"],
    }
    for tool, decisions in record["tool_actions"].items():
        values[f"{tool}.accepted"] = decisions["accepted"]
        values[f"{tool}.rejected"] = decisions["rejected"]
    for entry in record["model_breakdown"]:
        for token_type, count in entry["tokens"].items():
            values[f"{entry['model']}.{token_type}"] = count
        values[f"{entry['model']}.cost"] = entry["estimated_cost"]["amount"]
    return values


def by_actor_terminal(records: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    return {(actor_name(r), r["terminal_type"]): quantities(r) for r in records}


def active_actors(records_by_day: dict[date, list[dict]]) -> set[str]:
    return {actor_name(r) for records in records_by_day.values() for r in records}


def walk_usage(
    http: flask.testing.FlaskClient, day: date, limit: int, cursor: str | None = None
) -> list[dict]:
    """Every record of the day's report, following next_page from `cursor` (or the start)."""
    records, params = [], {"starting_at": day.isoformat(), "limit": limit}
    if cursor is not None:
        params["page"] = cursor
    while True:
        page = http.get(USAGE, query_string=params, headers=AUTHED).get_json()
        records += page["data"]
        if not page["has_more"]:
            assert page["next_page"] is None
            return records
        params["page"] = page["next_page"]


def walk_users(http: flask.testing.FlaskClient, limit: int) -> list[dict]:
    users, params = [], {"limit": limit}
    while True:
        page = http.get(USERS, query_string=params, headers=AUTHED).get_json()
        users += page["data"]
        if not page["has_more"]:
            return users
        params["after_id"] = page["last_id"]


def assert_api_error(response: object, status: int, error_type: str) -> dict:
    assert response.status_code == status  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert body["request_id"].startswith("req_")
    return body


# --- Determinism ----------------------------------------------------------------------------------


def test_same_seed_and_clock_give_the_same_organization():
    first, second = organization(seed=7), organization(seed=7)
    assert first.users() == second.users()
    for day in days_before(TODAY, 3):
        assert first.final_records(day) == second.final_records(day)


def test_different_seeds_give_different_members_and_usage():
    first, second = organization(seed=1), organization(seed=2)
    assert {u["email"] for u in first.users()} != {u["email"] for u in second.users()}
    assert first.final_records(YESTERDAY) != second.final_records(YESTERDAY)


def test_organization_does_not_depend_on_the_python_hash_seed():
    script = (
        "import hashlib, json; from datetime import datetime, UTC, date;"
        "from exporter.simulator import SimulatedOrganization as S;"
        "o = S(seed=3, now=lambda: datetime(2026, 11, 18, 12, tzinfo=UTC));"
        "print(hashlib.sha256(json.dumps([o.users(), o.final_records(date(2026, 11, 17))])"
        ".encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


# --- Members --------------------------------------------------------------------------------------


def test_default_organization_has_fifty_members_with_every_console_role():
    users = organization().users()
    assert len(users) == 50
    assert {u["role"] for u in users} == set(ROLES)


def test_there_is_one_primary_owner_and_most_members_are_developers_or_claude_code_users():
    roles = Counter(u["role"] for u in organization(members=200).users())
    assert roles["primary_owner"] == 1
    assert roles["developer"] + roles["claude_code_user"] > 0.6 * 200
    assert roles["owner"] + roles["membership_admin"] < roles["admin"] < roles["developer"]


def test_users_have_the_documented_fields():
    for user in organization().users():
        assert set(user) == {"id", "type", "email", "name", "role", "added_at"}
        assert re.fullmatch(r"user_01[1-9A-HJ-NP-Za-km-z]{22}", user["id"])
        assert user["type"] == "user"
        assert datetime.fromisoformat(user["added_at"]).tzinfo is not None


def test_users_are_listed_oldest_first():
    added = [datetime.fromisoformat(u["added_at"]) for u in organization().users()]
    assert added == sorted(added)


def test_emails_are_unique_ascii_first_dot_last_addresses():
    emails = [u["email"] for u in organization(members=3000).users()]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.com", e) for e in emails)


def ascii_letters(name: str) -> str:
    """Accents dropped, letters without a decomposition spelled out, punctuation removed."""
    spelled = name.lower().translate(str.maketrans({"ø": "o", "ł": "l"}))
    return re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", spelled))


def test_some_names_are_not_ascii_and_their_emails_drop_the_accents():
    users = [u for u in organization().users() if not u["name"].isascii()]
    assert users
    for user in users:
        first, last = user["name"].split(" ", 1)
        local = user["email"].split("@")[0]
        assert re.fullmatch(rf"{ascii_letters(first)}\.{ascii_letters(last)}\d*", local)


def test_small_organizations_still_get_an_owner_and_developers():
    assert [u["role"] for u in organization(members=1).users()] == ["primary_owner"]
    roles = {u["role"] for u in organization(members=4).users()}
    assert roles == {"primary_owner", "developer", "claude_code_user", "admin"}


def test_api_key_actors_are_about_one_per_twelve_members():
    org = organization(members=120)
    records = history(org, days_before(TODAY + timedelta(days=7), 160))
    keys = {
        r["actor"]["api_key_name"]
        for day in records.values()
        for r in day
        if "api_key_name" in r["actor"]
    }
    assert len(keys) == 10
    assert "ci-claude-code" in keys


@pytest.mark.parametrize("count", [0, 3])
def test_api_key_count_can_be_set(count: int):
    org = organization(members=12, api_keys=count)
    records = history(org, days_before(TODAY + timedelta(days=7), 160))
    keys = {r["actor"].get("api_key_name") for day in records.values() for r in day} - {None}
    assert len(keys) == count


def test_no_member_has_usage_before_joining():
    org = organization()
    joined = {u["email"]: date.fromisoformat(u["added_at"][:10]) for u in org.users()}
    for day, records in history(org, days_before(TODAY, 200)).items():
        for record in records:
            assert day >= joined.get(actor_name(record), day)


# --- Usage ----------------------------------------------------------------------------------------


def test_records_have_the_documented_shape_and_parse_cleanly():
    org = organization()
    records = org.final_records(YESTERDAY)
    assert records
    for record in records:
        assert record["date"] == f"{YESTERDAY.isoformat()}T00:00:00Z"
        assert record["organization_id"] == org.organization_id
        assert record["customer_type"] == "api"
        assert set(record) >= {"actor", "core_metrics", "model_breakdown", "terminal_type"}
        assert parse_usage_record(record, YESTERDAY).actor == actor_name(record)


def test_estimated_cost_is_whole_cents_from_tokens_and_the_model_price():
    assert estimated_cost_cents("claude-sonnet-4-20250514", (1_000_000, 0, 0, 0)) == 300
    assert estimated_cost_cents("claude-sonnet-4-20250514", (0, 1_000_000, 0, 0)) == 1500
    assert estimated_cost_cents("claude-opus-4-1-20250805", (0, 0, 1_000_000, 1_000_000)) == 2025
    assert estimated_cost_cents("claude-sonnet-4-20250514", (1666, 0, 0, 0)) == 0
    assert estimated_cost_cents("claude-sonnet-4-20250514", (1667, 0, 0, 0)) == 1


@pytest.mark.parametrize("hour", [7, 25])
def test_every_served_cost_matches_its_tokens(hour: int):
    now = day_start(YESTERDAY) + timedelta(hours=hour)
    for record in organization().visible_records(YESTERDAY, now):
        for entry in record["model_breakdown"]:
            prices = MODEL_PRICES[entry["model"]]
            tokens = [
                entry["tokens"][t] for t in ("input", "output", "cache_read", "cache_creation")
            ]
            micro = sum(Decimal(t * p) for t, p in zip(tokens, prices, strict=True))
            cents = (micro / 1_000_000).quantize(Decimal(1), ROUND_HALF_UP)
            assert entry["estimated_cost"] == {"currency": "USD", "amount": int(cents)}


def test_weekdays_have_more_active_members_than_weekends():
    records = history(organization(), days_before(TODAY, 56))
    weekday = [len(r) for day, r in records.items() if day.weekday() < 5]
    weekend = [len(r) for day, r in records.items() if day.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 3 * sum(weekend) / len(weekend) > 0


def test_some_members_start_and_some_stop_using_claude_code_during_the_history():
    org = organization(members=200)
    early = active_actors(history(org, days_before(TODAY - timedelta(days=100), 20)))
    late = active_actors(history(org, days_before(TODAY, 20)))
    assert late - early
    assert early - late


def test_some_members_whose_role_allows_claude_code_never_use_it():
    org = organization()
    active = active_actors(history(org, days_before(TODAY, 120)))
    allowed = {u["email"] for u in org.users() if u["role"] in ("developer", "claude_code_user")}
    assert allowed - active
    assert len(allowed & active) > len(allowed - active)


def test_billing_user_and_membership_admin_members_mostly_do_not_use_claude_code():
    org = organization(members=600)
    active = active_actors(history(org, days_before(TODAY, 30)))
    rare = [u["email"] for u in org.users() if u["role"] in ("billing", "user", "membership_admin")]
    usual = [u["email"] for u in org.users() if u["role"] in ("developer", "claude_code_user")]
    assert sum(e in active for e in rare) < 0.25 * len(rare)
    assert sum(e in active for e in usual) > 0.6 * len(usual)


def test_several_models_terminals_and_tools_appear():
    records = [
        r for day in history(organization(), days_before(YESTERDAY, 7)).values() for r in day
    ]
    models = {m["model"] for r in records for m in r["model_breakdown"]}
    terminals = {r["terminal_type"] for r in records}
    tools = {tool for r in records for tool in r["tool_actions"]}
    assert len(models) >= 3
    assert len(terminals) >= 4
    assert tools == {"edit_tool", "multi_edit_tool", "write_tool", "notebook_edit_tool"}


def test_accept_rate_is_highest_for_edit_and_lowest_for_notebook_edit():
    decisions: Counter = Counter()
    for day in history(organization(), days_before(YESTERDAY, 30)).values():
        for record in day:
            for tool, counts in record["tool_actions"].items():
                decisions[tool, "accepted"] += counts["accepted"]
                decisions[tool, "rejected"] += counts["rejected"]
    rates = {
        tool: decisions[tool, "accepted"]
        / (decisions[tool, "accepted"] + decisions[tool, "rejected"])
        for tool in ("edit_tool", "multi_edit_tool", "write_tool", "notebook_edit_tool")
    }
    assert max(rates, key=rates.__getitem__) == "edit_tool"
    assert min(rates, key=rates.__getitem__) == "notebook_edit_tool"


def test_multi_edit_tool_is_on_some_records_and_absent_from_others():
    present = [
        ("multi_edit_tool" in r["tool_actions"]) for r in organization().final_records(YESTERDAY)
    ]
    assert any(present)
    assert not all(present)


def test_subscription_type_is_null_on_some_records_and_absent_from_others():
    records = organization().final_records(YESTERDAY)
    assert any(r.get("subscription_type", "absent") is None for r in records)
    assert any("subscription_type" not in r for r in records)


def test_some_actors_have_two_records_on_one_day_one_per_terminal():
    records = organization(members=100).final_records(YESTERDAY)
    terminals: dict[str, list[str]] = {}
    for record in records:
        terminals.setdefault(actor_name(record), []).append(record["terminal_type"])
    doubles = [t for t in terminals.values() if len(t) == 2]
    assert doubles
    assert all(len(set(t)) == 2 for t in doubles)


# --- Late data ------------------------------------------------------------------------------------


def test_nothing_of_a_day_is_visible_before_its_second_hour_ends():
    org = organization()
    assert (
        org.visible_records(YESTERDAY, day_start(YESTERDAY) + timedelta(hours=1, minutes=59)) == []
    )
    assert org.visible_records(YESTERDAY, day_start(YESTERDAY) + timedelta(hours=2))


def test_visible_values_never_decrease_as_now_advances():
    org = organization(members=80)
    previous: dict[tuple[str, str], dict[str, int]] = {}
    for hour in range(27):
        current = by_actor_terminal(
            org.visible_records(YESTERDAY, day_start(YESTERDAY) + timedelta(hours=hour))
        )
        assert set(previous) <= set(current)
        for key, values in previous.items():
            assert all(current[key].get(name, 0) >= value for name, value in values.items())
        previous = current


def test_a_day_is_complete_an_hour_after_it_ends():
    org = organization()
    day_end = day_start(TODAY)
    assert org.visible_records(YESTERDAY, day_end + timedelta(hours=1)) == org.final_records(
        YESTERDAY
    )
    assert org.visible_records(YESTERDAY, day_end + timedelta(minutes=59)) != org.final_records(
        YESTERDAY
    )


def test_visible_values_change_at_most_once_an_hour():
    org = organization()
    for hour in (3, 9, 17):
        start = day_start(YESTERDAY) + timedelta(hours=hour)
        end = start + timedelta(minutes=59, seconds=59)
        assert org.visible_records(YESTERDAY, start) == org.visible_records(YESTERDAY, end)


def test_visible_values_are_the_final_ones_scaled_by_visible_hours_rounded_down():
    org = organization()
    final = by_actor_terminal(org.final_records(YESTERDAY))
    half = by_actor_terminal(
        org.visible_records(YESTERDAY, day_start(YESTERDAY) + timedelta(hours=13))
    )
    assert half
    for key, values in final.items():
        expected = {n: v * 12 // 24 for n, v in values.items() if not n.endswith(".cost")}
        shown = half.get(key, {})
        assert all(shown.get(n, 0) == v for n, v in expected.items())


def test_every_visible_record_shows_some_activity():
    org = organization()
    for hour in (2, 3, 12):
        records = org.visible_records(YESTERDAY, day_start(YESTERDAY) + timedelta(hours=hour))
        assert records
        for record in records:
            assert any(v for n, v in quantities(record).items() if not n.endswith(".cost"))
            assert all(any(m["tokens"].values()) for m in record["model_breakdown"])


def test_visible_records_default_to_the_organization_clock():
    org = organization()
    assert org.visible_records(TODAY) == org.visible_records(TODAY, NOW)
    assert org.visible_records(TODAY) != org.final_records(TODAY)


def test_days_in_the_future_have_no_visible_records():
    org = organization()
    tomorrow = TODAY + timedelta(days=1)
    assert org.visible_records(tomorrow) == []
    assert org.final_records(tomorrow)


# --- Spend spikes ---------------------------------------------------------------------------------


def test_member_spike_multiplies_only_that_members_usage_on_spike_days():
    normal = organization()
    member = actor_name(normal.final_records(YESTERDAY)[0])
    spike = SpendSpike(frozenset({YESTERDAY}), 5.0, member)
    spiked = organization(spend_spike=spike)
    before, after = (
        by_actor_terminal(normal.final_records(YESTERDAY)),
        by_actor_terminal(spiked.final_records(YESTERDAY)),
    )
    for key, values in before.items():
        if key[0] != member:
            assert after[key] == values
            continue
        for name, value in values.items():
            tolerance = 3 if name.endswith(".cost") else 0
            assert abs(after[key][name] - int(value * 5 + 0.5)) <= tolerance
    other_day = YESTERDAY - timedelta(days=1)
    assert spiked.final_records(other_day) == normal.final_records(other_day)


def test_member_spike_makes_the_member_active_on_spike_days():
    normal = organization()
    weekend = next(d for d in days_before(TODAY, 7) if d.weekday() == 5)
    active = active_actors({weekend: normal.final_records(weekend)})
    idle = next(u["email"] for u in normal.users() if u["email"] not in active)
    spiked = organization(spend_spike=SpendSpike(frozenset({weekend}), 3.0, idle))
    assert idle in active_actors({weekend: spiked.final_records(weekend)})


def test_organization_wide_spike_multiplies_everyones_spend():
    def spend(org: SimulatedOrganization) -> int:
        return sum(
            q
            for r in org.final_records(YESTERDAY)
            for n, q in quantities(r).items()
            if n.endswith(".cost")
        )

    spiked = organization(spend_spike=SpendSpike(frozenset({YESTERDAY}), 4.0))
    assert spend(spiked) == pytest.approx(4 * spend(organization()), rel=0.01)


def test_spike_naming_someone_outside_the_organization_is_refused():
    with pytest.raises(ValueError, match="not in the organization"):
        organization(spend_spike=SpendSpike(frozenset({TODAY}), 2.0, "nobody@example.com"))


# --- Usage report over HTTP -----------------------------------------------------------------------


def test_usage_report_walked_with_small_pages_returns_every_visible_record_once():
    org = organization()
    for day in (YESTERDAY, TODAY):
        assert walk_usage(client(org), day, limit=3) == org.visible_records(day)


def test_usage_report_pages_hold_twenty_records_by_default():
    page = (
        client(organization(members=100))
        .get(USAGE, query_string={"starting_at": YESTERDAY.isoformat()}, headers=AUTHED)
        .get_json()
    )
    assert len(page["data"]) == 20
    assert page["has_more"] is True
    assert page["next_page"].startswith("page_")


def test_usage_report_accepts_the_largest_limit_in_one_page():
    org = organization(members=100)
    page = (
        client(org)
        .get(
            USAGE,
            query_string={"starting_at": YESTERDAY.isoformat(), "limit": 1000},
            headers=AUTHED,
        )
        .get_json()
    )
    assert page == {"data": org.final_records(YESTERDAY), "has_more": False, "next_page": None}


def test_usage_report_pagination_keeps_its_data_boundary_while_the_clock_advances():
    clock = [day_start(TODAY) + timedelta(hours=10)]
    org = SimulatedOrganization(now=lambda: clock[0])
    http = client(org)
    first = http.get(
        USAGE, query_string={"starting_at": TODAY.isoformat(), "limit": 4}, headers=AUTHED
    ).get_json()
    snapshot = org.visible_records(TODAY)
    clock[0] += timedelta(hours=5)
    rest = walk_usage(http, TODAY, 4, cursor=first["next_page"])
    assert first["data"] + rest == snapshot
    assert walk_usage(http, TODAY, limit=4) == org.visible_records(TODAY) != snapshot


def test_usage_report_for_a_future_day_is_an_empty_last_page():
    response = client(organization()).get(
        USAGE, query_string={"starting_at": "2026-12-01"}, headers=AUTHED
    )
    assert response.status_code == 200
    assert response.get_json() == {"data": [], "has_more": False, "next_page": None}


def test_usage_report_requires_starting_at():
    assert_api_error(
        client(organization()).get(USAGE, headers=AUTHED), 400, "invalid_request_error"
    )


@pytest.mark.parametrize("value", ["2026-11-17T00:00:00Z", "2026-13-01", "yesterday", ""])
def test_usage_report_rejects_a_starting_at_that_is_not_a_date(value: str):
    response = client(organization()).get(
        USAGE, query_string={"starting_at": value}, headers=AUTHED
    )
    assert_api_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("path", [USAGE, USERS])
@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "2.5"])
def test_limit_outside_one_to_a_thousand_is_rejected(path: str, limit: str):
    params = {"starting_at": YESTERDAY.isoformat(), "limit": limit}
    assert_api_error(
        client(organization()).get(path, query_string=params, headers=AUTHED),
        400,
        "invalid_request_error",
    )


def cursor_text(text: str) -> str:
    return "page_" + base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "page_!!!",
        cursor_text("a|b|c"),
        cursor_text("2026-11-17T00:00:00Z|25|3"),
        cursor_text("2026-11-17T00:00:00Z|24|-2"),
        cursor_text("2026-11-16T00:00:00Z|24|3"),
    ],
)
def test_usage_report_rejects_a_cursor_it_did_not_issue_for_that_day(cursor: str):
    params = {"starting_at": YESTERDAY.isoformat(), "page": cursor}
    response = client(organization()).get(USAGE, query_string=params, headers=AUTHED)
    assert_api_error(response, 400, "invalid_request_error")


def test_usage_report_cursor_of_one_day_is_refused_for_another():
    http = client(organization(members=100))
    page = http.get(
        USAGE, query_string={"starting_at": YESTERDAY.isoformat()}, headers=AUTHED
    ).get_json()
    params = {"starting_at": (YESTERDAY - timedelta(days=1)).isoformat(), "page": page["next_page"]}
    assert_api_error(
        http.get(USAGE, query_string=params, headers=AUTHED), 400, "invalid_request_error"
    )


# --- Users over HTTP ------------------------------------------------------------------------------


def test_users_walked_forward_with_after_id_return_every_member_once():
    org = organization()
    assert walk_users(client(org), 3) == org.users()


def test_users_walked_backward_with_before_id_return_every_member_once():
    org = organization()
    http = client(org)
    last = org.users()[-1]
    params = {"limit": 3, "before_id": last["id"]}
    users = []
    while True:
        page = http.get(USERS, query_string=params, headers=AUTHED).get_json()
        users = page["data"] + users
        if not page["has_more"]:
            break
        params["before_id"] = page["first_id"]
    assert users + [last] == org.users()


def test_users_pages_hold_twenty_members_by_default():
    page = client(organization()).get(USERS, headers=AUTHED).get_json()
    assert len(page["data"]) == 20
    assert page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])


def test_users_last_page_says_so():
    org = organization(members=5)
    page = client(org).get(USERS, headers=AUTHED).get_json()
    assert page == {
        "data": org.users(),
        "has_more": False,
        "first_id": org.users()[0]["id"],
        "last_id": org.users()[-1]["id"],
    }


def test_users_filtered_by_email_return_that_member_only():
    org = organization()
    member = org.users()[7]
    page = (
        client(org)
        .get(USERS, query_string={"email": member["email"].upper()}, headers=AUTHED)
        .get_json()
    )
    assert page["data"] == [member]
    assert page["has_more"] is False


def test_users_filtered_by_role_return_members_with_those_roles():
    org = organization()
    http = client(org)
    page = http.get(
        USERS, query_string={"roles[]": ["admin", "billing"], "limit": 100}, headers=AUTHED
    ).get_json()
    expected = [u for u in org.users() if u["role"] in ("admin", "billing")]
    assert page["data"] == expected


def test_users_with_an_unknown_cursor_are_refused():
    response = client(organization()).get(
        USERS, query_string={"after_id": "user_01nobody"}, headers=AUTHED
    )
    assert_api_error(response, 400, "invalid_request_error")


def test_users_with_both_cursors_are_refused():
    first = organization().users()[0]["id"]
    params = {"after_id": first, "before_id": first}
    assert_api_error(
        client(organization()).get(USERS, query_string=params, headers=AUTHED),
        400,
        "invalid_request_error",
    )


def test_one_user_is_served_by_id_and_an_unknown_id_is_not_found():
    org = organization()
    member = org.users()[3]
    http = client(org)
    assert http.get(f"{USERS}/{member['id']}", headers=AUTHED).get_json() == member
    assert_api_error(http.get(f"{USERS}/user_01nobody", headers=AUTHED), 404, "not_found_error")


def test_role_changes_are_served():
    org = organization()
    member = next(u for u in org.users() if u["role"] == "developer")
    org.set_role(member["email"], "user")
    page = (
        client(org).get(USERS, query_string={"email": member["email"]}, headers=AUTHED).get_json()
    )
    assert page["data"][0]["role"] == "user"


def test_role_change_to_an_unknown_role_or_for_an_unknown_member_is_refused():
    org = organization()
    with pytest.raises(ValueError, match="unknown role"):
        org.set_role(org.users()[0]["email"], "superuser")
    with pytest.raises(KeyError):
        org.set_role("nobody@example.com", "user")


# --- Headers, errors and hooks --------------------------------------------------------------------


@pytest.mark.parametrize("path", [USAGE, USERS])
def test_requests_without_anthropic_version_are_refused(path: str):
    response = client(organization()).get(
        path, query_string={"starting_at": "2026-11-17"}, headers={"x-api-key": TEST_KEY}
    )
    body = assert_api_error(response, 400, "invalid_request_error")
    assert "anthropic-version" in body["error"]["message"]


@pytest.mark.parametrize("path", [USAGE, USERS])
@pytest.mark.parametrize("key", [None, "sk-ant-admin01-wrong", TEST_KEY[:-1]])
def test_requests_without_the_right_key_are_unauthorized(path: str, key: str | None):
    headers = VERSION if key is None else {**VERSION, "x-api-key": key}
    response = client(organization()).get(
        path, query_string={"starting_at": "2026-11-17"}, headers=headers
    )
    assert_api_error(response, 401, "authentication_error")
    assert TEST_KEY not in response.get_data(as_text=True) + str(response.headers)
    assert TEST_KEY[:-1] not in response.get_data(as_text=True)


def test_no_key_is_needed_when_the_server_has_none():
    response = client(organization(), api_key=None).get(USERS, headers=VERSION)
    assert response.status_code == 200


def test_unknown_paths_are_not_found_errors():
    assert_api_error(
        client(organization()).get("/v1/organizations/nothing", headers=AUTHED),
        404,
        "not_found_error",
    )


def test_error_bodies_carry_a_request_id_header_too():
    response = client(organization()).get(USAGE, headers=AUTHED)
    assert response.headers["request-id"] == response.get_json()["request_id"]


def test_requests_are_counted_per_usage_day_and_for_users():
    org = organization()
    http = client(org)
    walk_usage(http, YESTERDAY, limit=10)
    http.get(USERS, headers=AUTHED)
    http.get(USERS, headers=VERSION)
    pages = -(-len(org.final_records(YESTERDAY)) // 10)
    assert org.requests == Counter(
        {("claude_code_usage", YESTERDAY.isoformat()): pages, ("users", None): 2}
    )


def test_a_hook_response_is_served_instead_of_the_api():
    org = organization()
    org.before_request.append(lambda request: error_response(529, "overloaded_error", "Overloaded"))
    assert_api_error(client(org).get(USERS, headers=AUTHED), 529, "overloaded_error")
    assert org.requests[("users", None)] == 1


def test_hooks_are_consulted_in_order_until_one_answers():
    org = organization()
    seen: list[str] = []
    org.before_request += [
        lambda request: seen.append("first"),
        lambda request: error_response(503, "api_error", "down") if request.path == USERS else None,
        lambda request: seen.append("third"),
    ]
    http = client(org)
    assert http.get(USERS, headers=AUTHED).status_code == 503
    assert (
        http.get(USAGE, query_string={"starting_at": "2026-11-17"}, headers=AUTHED).status_code
        == 200
    )
    assert seen == ["first", "first", "third"]


# --- Size -----------------------------------------------------------------------------------------


def test_ten_thousand_members_are_served_a_day_at_a_time():
    org = organization(members=10_000)
    assert len(org.users()) == 10_000
    records = org.final_records(YESTERDAY)
    actors = {actor_name(r) for r in records}
    assert 3_000 < len(actors) < 10_000 + 833
    assert sum(r["actor"]["type"] == "api_actor" for r in records) <= 833
    assert len(walk_usage(client(org), YESTERDAY, limit=1000)) == len(records)


def test_fifty_thousand_members_work():
    org = organization(members=50_000)
    assert len(org.users()) == 50_000
    assert len({u["email"] for u in org.users()}) == 50_000
    assert len(org.final_records(YESTERDAY)) > 15_000


# --- Served over real HTTP ------------------------------------------------------------------------


def test_the_exporter_client_reads_every_member_and_record_through_http():
    org = organization()
    with serve(org, api_key=TEST_KEY) as server:
        admin = AdminClient(server.url, TEST_KEY, page_limit=5, max_retries=0)
        assert [m.email for m in admin.list_users()] == [u["email"] for u in org.users()]
        pages = list(admin.usage_pages(YESTERDAY))
    assert sum(len(p.records) for p in pages) == len(org.final_records(YESTERDAY))
    assert not any(p.rejected for p in pages)


def test_a_stopped_server_refuses_connections():
    server = serve(organization())
    url = server.url
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + USERS, headers=VERSION, timeout=2)


@pytest.mark.e2e
def test_command_line_serves_the_organization_behind_the_key_file(tmp_path):
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "exporter.simulator",
        f"--listen=127.0.0.1:{port}",
        "--members=12",
        "--seed=3",
        f"--api-key-file={KEY_FILE}",
        "--frozen",
    ]
    key = KEY_FILE.read_text().strip()
    with Proc("simulator", cmd, port, tmp_path / "simulator.log").wait_ready("/-/healthy") as proc:
        users = requests.get(
            proc.url + USERS,
            params={"limit": 100},
            headers={**VERSION, "x-api-key": key},
            timeout=5,
        )
        refused = requests.get(proc.url + USERS, headers=VERSION, timeout=5)
        assert [u["email"] for u in users.json()["data"]] == [
            u["email"] for u in SimulatedOrganization(seed=3, members=12).users()
        ]
        assert refused.status_code == 401
        assert proc.stop() == 0
    output = proc.log.read_text()
    assert f"serving on http://127.0.0.1:{port}" in output
    assert key not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nowhere"], "--listen must be host:port"),
        (["--listen", "127.0.0.1:99999"], "--listen must be host:port"),
        (["--api-key-file", "/nonexistent/key"], "cannot read --api-key-file"),
        (["--members", "-3"], "cannot be negative"),
    ],
)
def test_command_line_mistakes_are_one_sentence(args: list[str], message: str, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_command_line_reports_a_port_in_use(capsys):
    with serve(organization()) as server:
        assert main(["--listen", f"127.0.0.1:{server.port}"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{server.port}" in err
    assert err.count("\n") == 1


def test_responses_keep_the_documented_field_order():
    params = {"starting_at": YESTERDAY.isoformat(), "limit": 1}
    body = client(organization()).get(USAGE, query_string=params, headers=AUTHED).get_data(True)
    page = json.loads(body)
    assert list(page) == ["data", "has_more", "next_page"]
    assert list(page["data"][0])[:3] == ["date", "actor", "organization_id"]
