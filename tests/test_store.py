"""The store's tool columns, and the move of a version 1 store (a table of tool rows) to them."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from exporter.parse import ModelUsage, UsageRecord
from exporter.store import CORE_FIELDS, SCHEMA_VERSION, Store, StoreError

DAY = date(2026, 11, 20)
# The tables of schema version 1 that changed, as that version created them.
VERSION_1 = """
CREATE TABLE records (
    day TEXT NOT NULL, actor_type TEXT NOT NULL, actor TEXT NOT NULL, terminal_type TEXT NOT NULL,
    customer_type TEXT, subscription_type TEXT, sessions INTEGER NOT NULL,
    lines_added INTEGER NOT NULL, lines_removed INTEGER NOT NULL, commits INTEGER NOT NULL,
    pull_requests INTEGER NOT NULL
);
CREATE INDEX records_by_day ON records (day);
CREATE TABLE tool_actions (
    day TEXT NOT NULL, actor_type TEXT NOT NULL, actor TEXT NOT NULL, tool TEXT NOT NULL,
    accepted INTEGER NOT NULL, rejected INTEGER NOT NULL
);
CREATE INDEX tool_actions_by_day ON tool_actions (day);
PRAGMA user_version=1;
"""


def record(actor: str, terminal: str, tools: dict[str, tuple[int, int]]) -> UsageRecord:
    return UsageRecord(DAY, "user", actor, terminal, None, None, 1, 10, 2, 0, 0, tools)


def test_tool_decisions_are_summed_per_actor_over_records_and_days(tmp_path):
    store = Store(tmp_path / "store.db")
    store.replace_day(
        DAY,
        [
            record("a@example.com", "vscode", {"edit": (3, 1), "future": (2, 2)}),
            record("a@example.com", "terminal", {"edit": (1, 0), "write": (0, 0)}),
            record("b@example.com", "vscode", {}),
        ],
        0.0,
    )
    later = date(2026, 11, 21)
    store.replace_day(later, [record("b@example.com", "vscode", {"future": (1, 0)})], 0.0)
    assert store.tool_totals(DAY, later) == {
        ("user", "a@example.com", "edit"): (4, 1),
        ("user", "a@example.com", "future"): (2, 2),
        ("user", "a@example.com", "write"): (0, 0),  # mentioned with no decisions: a zero series
        ("user", "b@example.com", "future"): (1, 0),
    }
    assert store.tool_totals(DAY, DAY) == {
        ("user", "a@example.com", "edit"): (4, 1),
        ("user", "a@example.com", "future"): (2, 2),
        ("user", "a@example.com", "write"): (0, 0),
    }


def test_a_version_1_store_keeps_every_figure_when_its_tool_rows_move_into_records(tmp_path):
    path = tmp_path / "store.db"
    old = sqlite3.connect(path)
    old.executescript(VERSION_1)
    for terminal in ("vscode", "terminal"):  # one actor, two records on one day
        old.execute(
            "INSERT INTO records VALUES (?, 'user', 'a@example.com', ?, NULL, NULL, 1, 5, 0, 0, 0)",
            (DAY.isoformat(), terminal),
        )
    old.execute(
        "INSERT INTO records VALUES (?, 'api_key', 'ci', 'cli', NULL, NULL, 2, 7, 1, 1, 0)",
        (DAY.isoformat(),),
    )
    old.executemany(
        "INSERT INTO tool_actions VALUES (?, ?, ?, ?, ?, ?)",
        [
            (DAY.isoformat(), "user", "a@example.com", "edit", 3, 1),
            (DAY.isoformat(), "user", "a@example.com", "edit", 1, 0),
            (DAY.isoformat(), "user", "a@example.com", "future", 2, 2),
            (DAY.isoformat(), "api_key", "ci", "multi_edit", 0, 4),
        ],
    )
    old.commit()
    old.close()

    store = Store(path)
    assert store.tool_totals(DAY, DAY) == {
        ("api_key", "ci", "multi_edit"): (0, 4),
        ("user", "a@example.com", "edit"): (4, 1),
        ("user", "a@example.com", "future"): (2, 2),
    }
    assert store.actor_totals(DAY, DAY)[("user", "a@example.com")].lines_added == 10
    store.close()
    migrated = sqlite3.connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    tables = {row[0] for row in migrated.execute("SELECT name FROM sqlite_master")}
    assert "tool_actions" not in tables
    others = migrated.execute("SELECT actor, other_tools FROM records ORDER BY rowid").fetchall()
    assert others == [
        ("a@example.com", '{"future": [2, 2]}'),
        ("a@example.com", None),
        ("ci", None),
    ]


def test_a_store_of_a_newer_version_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "store.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}").connection.close()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert str(refused.value) == (
        f"the store at {path} was written by a newer version of the exporter"
        f" (schema {SCHEMA_VERSION + 1}, this one knows {SCHEMA_VERSION})"
    )


def test_rows_read_as_they_come_hold_the_totals_in_actor_order(tmp_path):
    """The render reads these row by row instead of holding the totals of every member."""
    store = Store(tmp_path / "store.db")
    tokens = {"input": 1, "output": 1, "cache_read": 0, "cache_creation": 0}
    cost = ModelUsage("claude", tokens, 5_000_000)
    store.replace_day(
        DAY,
        [
            record("b@example.com", "vscode", {"write": (1, 0), "future": (2, 2)}),
            record("a@example.com", "vscode", {"edit": (3, 1)}),
            record("a@example.com", "terminal", {"edit": (1, 0)}),
            UsageRecord(
                DAY, "user", "a@example.com", "cli", None, None, 1, 1, 0, 0, 0, {}, (cost,)
            ),
        ],
        0.0,
    )
    totals = store.actor_totals(DAY, DAY)
    assert totals[("user", "a@example.com")].cost_microcents == 5_000_000
    rows = list(store.actor_rows(DAY, DAY))
    assert [(t, a) for t, a, *_ in rows] == [("user", "a@example.com"), ("user", "b@example.com")]
    for actor_type, actor, *sums in rows:
        held = totals[(actor_type, actor)]
        assert sums == [*(getattr(held, f) for f in CORE_FIELDS), held.cost_microcents]
    tools = list(store.tool_rows(DAY, DAY))
    assert tools == sorted(store.tool_totals(DAY, DAY).items())
    assert [key for key, _ in tools] == [
        ("user", "a@example.com", "edit"),
        ("user", "b@example.com", "future"),
        ("user", "b@example.com", "write"),
    ]
    store.close()
