"""Parsing the documented response shapes (the reference's example responses, verbatim)."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import load_fixture
from exporter.parse import (
    PageError,
    RecordError,
    parse_date,
    parse_usage_page,
    parse_usage_record,
    parse_users_page,
)

DAY = date(2026, 1, 15)


def example_record(**changes):
    record = load_fixture("api/usage_2026-01-15_page1.json")["data"][0]
    record.update(changes)
    return record


def test_documented_example_page_parses_both_actor_shapes():
    page = parse_usage_page(load_fixture("api/usage_2026-01-15_page1.json"), DAY)
    assert [(r.actor_type, r.actor) for r in page.records] == [
        ("user", "alice@example.com"),
        ("api_key", "ci-claude-code"),
    ]
    assert page.rejected == []
    assert page.has_more is True
    assert page.next_page == "page_MjAyNi0wMS0xNVQwMDowMDowMFo="


@pytest.mark.parametrize(
    ("organization_ids", "expected"),
    [
        (["dc9f6c26-b22c-4831-8d01-0446bada88f1"], "dc9f6c26-b22c-4831-8d01-0446bada88f1"),
        ([None, "org-of-the-second-record"], "org-of-the-second-record"),
        (["x" * 101], None),  # far longer than a UUID: not an id
        ([42], None),
        ([], None),
    ],
)
def test_a_page_names_the_organization_of_its_first_record_that_has_one(organization_ids, expected):
    records = [example_record(organization_id=o) for o in organization_ids]
    payload = {"data": records, "has_more": False, "next_page": None}
    assert parse_usage_page(payload, DAY).organization_id == expected


def test_core_metrics_tools_and_models_are_read_field_by_field():
    record = parse_usage_record(example_record(), DAY)
    assert (record.sessions, record.lines_added, record.lines_removed) == (4, 812, 133)
    assert (record.commits, record.pull_requests) == (3, 1)
    assert record.tools == {
        "edit": (41, 4),
        "multi_edit": (6, 1),
        "write": (9, 0),
        "notebook_edit": (0, 0),
    }
    sonnet, haiku = record.models
    assert sonnet.model == "claude-sonnet-4-20250514"
    assert sonnet.tokens == {
        "input": 52310,
        "output": 18842,
        "cache_read": 901233,
        "cache_creation": 60211,
    }
    assert (sonnet.cost_microcents, haiku.cost_microcents) == (742_000_000, 12_000_000)
    assert (record.terminal_type, record.customer_type, record.subscription_type) == (
        "vscode",
        "api",
        None,
    )


@pytest.mark.parametrize(
    "value", ["2026-01-15", "2026-01-15T00:00:00Z", "2026-01-15T00:00:00+00:00"]
)
def test_date_is_read_as_plain_day_or_rfc3339(value):
    assert parse_date(value) == DAY


@pytest.mark.parametrize("value", ["15/01/2026", "2026-13-01", "", None, 20260115])
def test_a_bad_date_rejects_the_record(value):
    with pytest.raises(RecordError) as info:
        parse_usage_record(example_record(date=value), DAY)
    assert info.value.reason in {"bad_date", "missing_field"}


def test_missing_tool_keys_count_as_zero_and_unknown_tools_are_kept():
    record = parse_usage_record(
        example_record(tool_actions={"edit_tool": {"accepted": 2}, "future_tool": {"rejected": 1}}),
        DAY,
    )
    assert record.tools == {"edit": (2, 0), "future": (0, 1)}


def test_subscription_type_may_be_absent_or_null_or_set():
    absent = example_record()
    del absent["subscription_type"]
    assert parse_usage_record(absent, DAY).subscription_type is None
    assert (
        parse_usage_record(example_record(subscription_type="team"), DAY).subscription_type
        == "team"
    )


def test_decimal_cost_strings_are_kept_exactly():
    record = example_record()
    record["model_breakdown"][0]["estimated_cost"]["amount"] = "123.78912"
    assert parse_usage_record(record, DAY).models[0].cost_microcents == 123_789_120


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"actor": {"type": "robot_actor", "name": "x"}}, "unknown_actor_type"),
        ({"actor": {"type": "user_actor"}}, "missing_field"),
        ({"core_metrics": {"num_sessions": -1, "lines_of_code": {}}}, "negative_value"),
        ({"core_metrics": {"num_sessions": "4", "lines_of_code": {}}}, "wrong_type"),
        ({"core_metrics": {"num_sessions": True, "lines_of_code": {}}}, "wrong_type"),
        ({"core_metrics": {"num_sessions": 10**15, "lines_of_code": {}}}, "implausible_value"),
        ({"date": "2026-01-16"}, "wrong_day"),
        ({"tool_actions": []}, "wrong_type"),
        (
            {
                "model_breakdown": [
                    {"model": "m", "estimated_cost": {"currency": "EUR", "amount": 1}}
                ]
            },
            "unsupported_currency",
        ),
    ],
)
def test_a_malformed_record_is_rejected_with_a_reason(change, reason):
    with pytest.raises(RecordError) as info:
        parse_usage_record(example_record(**change), DAY)
    assert info.value.reason == reason


def test_one_bad_record_is_skipped_and_the_rest_of_the_page_kept():
    payload = load_fixture("api/usage_2026-01-15_page1.json")
    payload["data"][0]["core_metrics"] = "oops"
    page = parse_usage_page(payload, DAY)
    assert [r.actor for r in page.records] == ["ci-claude-code"]
    assert [error.reason for error, _ in page.rejected] == ["wrong_type"]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"has_more": False},
        {"data": "x", "has_more": False},
        {"data": [], "has_more": "no", "next_page": None},
        {"data": [], "has_more": True, "next_page": None},
    ],
)
def test_a_malformed_envelope_refuses_the_whole_page(payload):
    with pytest.raises(PageError):
        parse_usage_page(payload, DAY)


def test_documented_users_page_parses_with_roles():
    page = parse_users_page(load_fixture("api/users_page1.json"))
    assert [(m.email, m.role) for m in page.members] == [
        ("alice@example.com", "developer"),
        ("bob@example.com", "claude_code_user"),
    ]
    assert page.has_more is True
    assert page.last_id == "user_01BWBeN28aaaaaaaaaaaaaaa"
