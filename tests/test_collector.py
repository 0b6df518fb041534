"""The exposition rendered from a store filled with the fixture records."""

from __future__ import annotations

import os
import subprocess
from datetime import date

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from conftest import FIXTURES, load_fixture
from exporter.collector import (
    CHUNK_LINES,
    DataGauge,
    ExporterStats,
    MemberLabels,
    Settings,
    Sums,
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


class Snapshot:
    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def generated(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(families))  # type: ignore[arg-type]
    return generate_latest(registry)


def test_a_data_gauge_renders_the_bytes_generate_latest_renders():
    """render() writes data gauges itself, to hold no sample objects: byte for byte what
    prometheus_client writes, escapes and number forms included, across its pieces, with and
    without the organization's labels (a family's own label of the same name wins)."""
    labels = ["member", "actor_type", "tool"]
    values: dict[tuple[str, ...], float] = {
        ("plain@example.com", "user", "edit"): 3,
        ('a "quote", a back\\slash and a\nnewline', "user", "write"): 0,
        ("ünïcødé ✓", "api_key", "edit"): 2**53 + 1,
        ("large", "user", "edit"): 10**20,
        ("tenth", "user", "edit"): 0.1,
        ("small", "user", "edit"): 1e-7,
        ("go exponent", "user", "edit"): 1234567.0,
        ("nan", "user", "edit"): float("nan"),
        ("inf", "user", "edit"): float("inf"),
        ("-inf", "user", "edit"): float("-inf"),
    }
    values.update({(f"m{n}@example.com", "user", "edit"): n for n in range(2 * CHUNK_LINES)})
    documentation = "Help with a \\ backslash and a\nnewline."
    expected = GaugeMetricFamily("x_things", documentation, labels=labels)
    for key, value in values.items():
        expected.add_metric(key, value)
    unlabelled = GaugeMetricFamily("x_one", "One value.", value=42)
    empty = GaugeMetricFamily("x_none", "No series.", labels=["member"])

    def gauges() -> list[Metric]:
        return [
            DataGauge("x_things", documentation, labels, values.items()),
            DataGauge("x_one", "One value.", [], {(): 42}.items()),
            DataGauge("x_none", "No series.", ["member"], {}.items()),
        ]

    assert render(gauges()) == generated([expected, unlabelled, empty])
    organization = {"organization_name": 'Org "100%" \\ ünï\n', "actor_type": "added"}
    assert render(gauges(), organization) == render([expected, unlabelled, empty], organization)


def test_a_data_gauge_refuses_a_help_that_openmetrics_would_write_otherwise():
    """The data's text is served as OpenMetrics too; only OpenMetrics escapes a quote in HELP."""
    with pytest.raises(ValueError, match="double quote"):
        DataGauge("x", 'A "quoted" help.', [], {(): 1}.items())


def test_a_data_gauge_has_the_samples_add_metric_makes():
    values = {("a@example.com", "user"): 2, ("ci", "api_key"): 0.5}
    expected = GaugeMetricFamily("x", "X.", labels=["member", "actor_type"])
    for key, value in values.items():
        expected.add_metric(key, value)
    family = DataGauge("x", "X.", ["member", "actor_type"], values.items())
    assert family == expected and list(family.samples) == expected.samples
    assert len(family.samples) == 2 and not DataGauge("x", "X.", [], {}.items()).samples


def test_sums_hold_what_a_dict_of_sums_holds_in_the_order_keys_first_came():
    sums = Sums(2)
    for key, values in [(("b",), (1, 2)), (("a",), (3, 4)), (("b",), (5, 6))]:
        sums.add(key, values)
    assert list(sums.column(0)) == [(("b",), 6), (("a",), 3)]
    assert list(sums.column(1, lambda v: v / 2)) == [(("b",), 4.0), (("a",), 2.0)]
    assert list(sums.spread(("x", "y"))) == [
        (("b", "x"), 6),
        (("b", "y"), 8),
        (("a", "x"), 3),
        (("a", "y"), 4),
    ]
    assert len(sums.spread(("x", "y"))) == 4


def test_sums_past_64_bits_stay_exact():
    sums = Sums(1)
    for _ in range(3):
        sums.add(("a",), (2**62,))
    assert list(sums.column(0)) == [(("a",), 3 * 2**62)]
