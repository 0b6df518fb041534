"""The poller against the independent fake API: each figure equals a hand-computed sum.

The fixtures hold 2026-01-15 (alice on two terminals, the API key ci-claude-code, bob) and
2026-01-16 (bob).
"""

from __future__ import annotations

import pytest

from conftest import Clock, at, make_poller
from exporter.poller import default_history_days
from exposition import samples, series, value

P = "claude_code_analytics"
ALICE = {"member": "alice@example.com", "actor_type": "user"}
BOB = {"member": "bob@example.com", "actor_type": "user"}
CI = {"member": "ci-claude-code", "actor_type": "api_key"}


@pytest.fixture
def polled(fake_api, tmp_path):
    poller = make_poller(fake_api, tmp_path / "store.db", Clock(at("2026-01-16")))
    assert poller.poll_once()
    return samples(poller.exposition.plain)


def test_month_to_date_per_member_equals_the_sum_of_the_raw_records(polled):
    assert value(polled, f"{P}_month_to_date_cost_usd", **ALICE) == 7.87  # 742 + 12 + 33 cents
    assert value(polled, f"{P}_month_to_date_cost_usd", **BOB) == 3.51  # 101 + 250
    assert value(polled, f"{P}_month_to_date_cost_usd", **CI) == 0.09
    assert value(polled, f"{P}_month_to_date_lines_added", **ALICE) == 912  # 812 + 100
    assert value(polled, f"{P}_month_to_date_lines_added", **BOB) == 257
    assert value(polled, f"{P}_month_to_date_sessions", **ALICE) == 6
    assert value(polled, f"{P}_month_to_date_sessions", **BOB) == 4
    assert value(polled, f"{P}_month_to_date_lines_removed", **ALICE) == 143
    assert value(polled, f"{P}_month_to_date_commits", **BOB) == 2
    assert value(polled, f"{P}_month_to_date_pull_requests", **ALICE) == 1


def test_tool_decisions_sum_terminals_and_keep_unknown_tools(polled):
    name = f"{P}_month_to_date_tool_decisions"
    assert value(polled, name, **ALICE, tool="edit", decision="accepted") == 46
    assert value(polled, name, **ALICE, tool="edit", decision="rejected") == 9
    assert value(polled, name, **ALICE, tool="multi_edit", decision="accepted") == 6
    assert value(polled, name, **ALICE, tool="future", decision="rejected") == 1
    assert value(polled, name, **BOB, tool="notebook_edit", decision="accepted") == 1


def test_the_console_accept_rate_follows_from_the_tool_decisions(polled):
    decisions = series(polled, f"{P}_month_to_date_tool_decisions")
    counted = {"edit", "write", "notebook_edit"}
    accepted = sum(
        v
        for k, v in decisions.items()
        if dict(k)["tool"] in counted and dict(k)["decision"] == "accepted"
    )
    total = sum(v for k, v in decisions.items() if dict(k)["tool"] in counted)
    assert (accepted, total) == (85, 104)


def test_periods_split_today_and_yesterday(polled):
    assert series(polled, f"{P}_today_cost_usd") == {frozenset(BOB.items()): 2.5}
    assert value(polled, f"{P}_yesterday_cost_usd", **BOB) == 1.01
    assert value(polled, f"{P}_yesterday_sessions", **ALICE) == 6
    assert value(polled, f"{P}_today_sessions", **ALICE) is None  # no activity, no series


def test_active_members_count_each_actor_once_per_day(polled):
    assert value(polled, f"{P}_yesterday_active_members", actor_type="user") == 2
    assert value(polled, f"{P}_yesterday_active_members", actor_type="api_key") == 1
    assert value(polled, f"{P}_today_active_members", actor_type="user") == 1
    assert value(polled, f"{P}_weekly_active_members", actor_type="user") == 2
    terminals = f"{P}_yesterday_terminal_active_members"
    assert value(polled, terminals, terminal_type="vscode") == 2
    assert value(polled, terminals, terminal_type="iTerm.app") == 1


def test_models_carry_cost_and_tokens_for_the_organization(polled):
    assert (
        value(polled, f"{P}_month_to_date_model_cost_usd", model="claude-sonnet-4-20250514")
        == 10.34
    )
    assert (
        value(polled, f"{P}_month_to_date_model_cost_usd", model="claude-opus-4-1-20250805") == 1.01
    )
    tokens = f"{P}_month_to_date_model_tokens"
    assert value(polled, tokens, model="claude-3-5-haiku-20241022", token_type="input") == 23100
    assert value(polled, tokens, model="claude-sonnet-4-20250514", token_type="cache_read") == (
        901233 + 20000 + 5000 + 400000
    )


def test_member_info_lists_every_member_with_their_role_active_or_not(polled):
    info = series(polled, f"{P}_member_info")
    assert {(dict(k)["member"], dict(k)["role"]) for k in info} == {
        ("alice@example.com", "developer"),
        ("bob@example.com", "claude_code_user"),
        ("carol@example.com", "billing"),
        ("ci-claude-code", ""),
    }
    assert (
        value(polled, f"{P}_member_last_active_timestamp_seconds", **BOB)
        == at("2026-01-16", 0).timestamp()
    )
    assert (
        value(polled, f"{P}_member_first_active_timestamp_seconds", **BOB)
        == at("2026-01-15", 0).timestamp()
    )


def test_a_restart_fetches_no_settled_day_and_continues_the_counters(fake_api, tmp_path):
    path = tmp_path / "store.db"
    clock = Clock(at("2026-01-20", 6))
    first = make_poller(fake_api, path, clock, history_days=7)
    assert first.poll_once()
    requests_before = value(
        samples(first.exposition.plain),
        f"{P}_exporter_api_requests_total",
        endpoint="users",
        code="200",
    )
    first.store.close()
    fake_api.calls.clear()
    clock.now = at("2026-01-20", 7)
    second = make_poller(fake_api, path, clock, history_days=7)
    assert second.history_complete(clock.now.date())
    assert second.poll_once()
    fetched_days = sorted(
        day for (endpoint, day) in fake_api.calls if endpoint == "claude_code_usage"
    )
    assert fetched_days == ["2026-01-18", "2026-01-19", "2026-01-20"]
    after = samples(second.exposition.plain)
    assert value(after, f"{P}_exporter_api_requests_total", endpoint="users", code="200") == (
        requests_before + 2
    )
    assert value(after, f"{P}_month_to_date_cost_usd", **ALICE) == 7.87


def test_the_organization_the_records_name_is_kept_across_a_restart(fake_api, tmp_path):
    first = make_poller(fake_api, tmp_path / "store.db", Clock(at("2026-01-16")))
    assert first.organization_id is None
    assert first.poll_once()
    first.store.close()
    second = make_poller(fake_api, tmp_path / "store.db", Clock(at("2026-01-16")))
    assert second.organization_id == "dc9f6c26-b22c-4831-8d01-0446bada88f1"


def test_a_day_last_fetched_before_it_settled_is_fetched_once_more(fake_api, tmp_path):
    clock = Clock(at("2026-01-16"))
    poller = make_poller(fake_api, tmp_path / "store.db", clock, history_days=3)
    poller.poll_once()  # fetches the 14th to the 16th while the 16th is still today
    clock.now = at("2026-01-25")
    poller.history_days = 12  # the 14th to the 25th
    assert [d.isoformat() for d in poller.days_to_fetch(clock.now.date())] == [
        "2026-01-25",
        "2026-01-24",
        "2026-01-23",
        "2026-01-22",
        "2026-01-21",
        "2026-01-20",
        "2026-01-19",
        "2026-01-18",
        "2026-01-17",
        "2026-01-16",
        "2026-01-15",
        "2026-01-14",
    ]
    poller.poll_once()
    assert [d.isoformat() for d in poller.days_to_fetch(clock.now.date())] == [
        "2026-01-25",
        "2026-01-24",
        "2026-01-23",
    ]


def test_a_failing_api_keeps_the_last_good_data_and_reports_up_zero(fake_api, tmp_path):
    from fake_admin_api import error_body

    clock = Clock(at("2026-01-16"))
    poller = make_poller(fake_api, tmp_path / "store.db", clock)
    assert poller.poll_once()
    good = samples(poller.exposition.plain)
    fake_api.faults = [(503, {}, error_body("overloaded_error", "busy"))] * 50
    clock.now = at("2026-01-16", 13)
    assert not poller.poll_once()
    bad = samples(poller.exposition.plain)
    assert value(bad, f"{P}_exporter_up") == 0
    assert value(good, f"{P}_exporter_up") == 1
    assert (
        value(bad, f"{P}_exporter_last_success_timestamp_seconds") == at("2026-01-16").timestamp()
    )
    assert value(bad, f"{P}_month_to_date_cost_usd", **ALICE) == 7.87
    assert value(bad, f"{P}_exporter_api_errors_total", endpoint="users", code="503") == 2


def test_history_default_reaches_back_to_the_first_of_last_month_and_thirty_days():
    assert default_history_days(at("2026-03-01").date()) == 30  # Jan 31 .. Mar 1, not Feb 1
    assert default_history_days(at("2028-03-01").date()) == 30  # Feb 1 .. Mar 1 of a leap year
    assert default_history_days(at("2026-11-28").date()) == 59  # Oct 1 .. Nov 28
    assert default_history_days(at("2026-01-31").date()) == 62  # Dec 1 .. Jan 31


def test_readiness_waits_for_the_first_complete_history_load(fake_api, tmp_path):
    poller = make_poller(fake_api, tmp_path / "store.db", Clock(at("2026-01-16")))
    assert not poller.ready.is_set()
    poller.poll_once()
    assert poller.ready.is_set()
