"""The exposition rendered from a store filled with the fixture records."""

from __future__ import annotations

import os
import subprocess
from datetime import date

import pytest

from conftest import FIXTURES, load_fixture
from exporter.collector import (
    ExporterStats,
    MemberLabels,
    Settings,
    data_families,
    exporter_families,
    organization_labels,
    render,
)
from exporter.parse import parse_usage_page, parse_users_page
from exporter.store import Store
from exposition import samples, series

GOLDEN = FIXTURES / "golden" / "exposition.prom"
TODAY = date(2026, 1, 16)
P = "claude_code_analytics"
# What the fixture records name, and the name `/v1/organizations/me` gives it.
ORGANIZATION = organization_labels("dc9f6c26-b22c-4831-8d01-0446bada88f1", "Example Org")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store.db")
    for day in ("2026-01-15", "2026-01-16"):
        records = []
        for page in sorted((FIXTURES / "api").glob(f"usage_{day}_page*.json")):
            records += parse_usage_page(
                load_fixture(f"api/{page.name}"), date.fromisoformat(day)
            ).records
        store.replace_day(date.fromisoformat(day), records, 0.0)
    store.replace_members(parse_users_page(load_fixture("api/users_page1.json")).members)
    yield store
    store.close()


def exposition(store, mode="keep", member_models=False) -> bytes:
    labels = MemberLabels(mode, b"fixed-test-secret")
    return render(data_families(store, TODAY, Settings(mode, member_models), labels), ORGANIZATION)


def test_data_exposition_matches_the_golden_file(store):
    text = exposition(store).decode()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_promtool_accepts_the_whole_exposition(store, tmp_path):
    stats = ExporterStats(up=True, last_success=1.0, poll_duration=0.5, oldest_day=0.0)
    stats.inc("api_requests", endpoint="users", code="200")
    stats.inc("records_rejected", 2, reason="wrong_type")
    body = exposition(store) + render(exporter_families(stats), ORGANIZATION)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()


def test_pseudonymized_members_are_stable_and_hide_the_email(store):
    first = exposition(store, "pseudonymize")
    assert b"alice@example.com" not in first and b"ci-claude-code" not in first
    assert first == exposition(store, "pseudonymize")
    members = {dict(k)["member"] for k in series(samples(first), f"{P}_month_to_date_cost_usd")}
    assert len(members) == 3 and all(m.startswith("member-") for m in members)


def test_dropping_the_member_label_keeps_the_organization_sums(store):
    kept = samples(exposition(store))
    dropped = samples(exposition(store, "drop"))
    assert b"alice@example.com" not in exposition(store, "drop")
    for name in (f"{P}_month_to_date_cost_usd", f"{P}_month_to_date_lines_added"):
        assert sum(series(dropped, name).values()) == pytest.approx(
            sum(series(kept, name).values())
        )
    assert series(dropped, f"{P}_month_to_date_sessions") == {
        frozenset({("actor_type", "user")}): 10,
        frozenset({("actor_type", "api_key")}): 1,
    }


def test_member_models_add_member_labels_without_changing_the_sums(store):
    plain = samples(exposition(store))
    detailed = samples(exposition(store, member_models=True))
    name = f"{P}_month_to_date_model_cost_usd"
    assert sum(series(detailed, name).values()) == pytest.approx(sum(series(plain, name).values()))
    assert all("member" in dict(k) for k in series(detailed, name))


def test_every_family_says_it_comes_from_a_cache(store):
    for line in exposition(store).decode().splitlines():
        if line.startswith("# HELP") and "_today_" in line:
            assert "hour behind" in line
