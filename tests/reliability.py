"""Helpers of the reliability tests: compare what the store holds for a day with the simulator's
records for it, straight from SQLite."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date
from decimal import Decimal

CORE = (
    "num_sessions",
    "added",
    "removed",
    "commits_by_claude_code",
    "pull_requests_by_claude_code",
)

Totals = dict[tuple[str, str], tuple[int, ...]]


def expected_totals(records: list[dict]) -> Totals:
    """Per actor: the five core quantities and the cost in millionths of a cent, from records."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for record in records:
        actor = record["actor"]
        kind = "user" if actor["type"] == "user_actor" else "api_key"
        name = actor.get("email_address") or actor["api_key_name"]
        core = record["core_metrics"]
        values = (
            core["num_sessions"],
            core["lines_of_code"]["added"],
            core["lines_of_code"]["removed"],
            core["commits_by_claude_code"],
            core["pull_requests_by_claude_code"],
            sum(
                int(Decimal(str(m["estimated_cost"]["amount"])) * 1_000_000)
                for m in record["model_breakdown"]
            ),
        )
        total = sums[(kind, name)]
        for index, value in enumerate(values):
            total[index] += value
    return {actor: tuple(values) for actor, values in sums.items()}


def stored_totals(db: sqlite3.Connection, day: date) -> Totals:
    """The same per-actor figures as the store holds them for `day`."""
    key = day.isoformat()
    totals: dict[tuple[str, str], list[int]] = {}
    for actor_type, actor, *values in db.execute(
        "SELECT actor_type, actor, SUM(sessions), SUM(lines_added), SUM(lines_removed),"
        " SUM(commits), SUM(pull_requests) FROM records WHERE day = ? GROUP BY actor_type, actor",
        (key,),
    ):
        totals[(actor_type, actor)] = [*values, 0]
    for actor_type, actor, cost in db.execute(
        "SELECT actor_type, actor, SUM(cost_microcents) FROM model_usage WHERE day = ?"
        " GROUP BY actor_type, actor",
        (key,),
    ):
        totals[(actor_type, actor)][5] = cost
    return {actor: tuple(values) for actor, values in totals.items()}


def stored_days(db: sqlite3.Connection) -> dict[date, float]:
    return {date.fromisoformat(d): t for d, t in db.execute("SELECT day, fetched_at FROM days")}
