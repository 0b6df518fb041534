"""The Console's definitions computed straight from raw API records, independently of the exporter.

Tests compare the exporter's and the dashboards' numbers with these.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

CONSOLE_TOOLS = ("edit_tool", "write_tool", "notebook_edit_tool")


def member(record: dict) -> str:
    actor = record["actor"]
    return actor.get("email_address") or actor["api_key_name"]


def spend_cents(records: Iterable[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        for model in record["model_breakdown"]:
            out[member(record)] += Decimal(str(model["estimated_cost"]["amount"]))
    return dict(out)


def core_sum(records: Iterable[dict], *path: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for record in records:
        node = record["core_metrics"]
        for key in path:
            node = node[key]
        out[member(record)] += node
    return dict(out)


def lines_accepted(records: Iterable[dict]) -> dict[str, int]:
    return core_sum(records, "lines_of_code", "added")


def sessions(records: Iterable[dict]) -> dict[str, int]:
    return core_sum(records, "num_sessions")


def active_users(records: Iterable[dict]) -> int:
    return len({(r["actor"]["type"], member(r)) for r in records})


def tool_decisions(
    records: Iterable[dict], tools: Iterable[str] = CONSOLE_TOOLS
) -> tuple[int, int]:
    """(accepted, accepted + rejected) over the given tools."""
    accepted = total = 0
    wanted = set(tools)
    for record in records:
        for tool, decision in record.get("tool_actions", {}).items():
            if tool in wanted:
                accepted += decision.get("accepted", 0)
                total += decision.get("accepted", 0) + decision.get("rejected", 0)
    return accepted, total


def spend_by_model_cents(records: Iterable[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        for model in record["model_breakdown"]:
            out[model["model"]] += Decimal(str(model["estimated_cost"]["amount"]))
    return dict(out)


def tokens(records: Iterable[dict], token_type: str, model_id: str | None = None) -> int:
    """Tokens of one type over the records' model breakdowns, of one model when given."""
    return sum(
        model["tokens"].get(token_type, 0)
        for record in records
        for model in record["model_breakdown"]
        if model_id is None or model["model"] == model_id
    )


def ratio(numerator: float | Decimal, denominator: float | Decimal) -> float | None:
    """A ratio, or None with nothing to divide: the Console's figure has no value then."""
    return float(numerator / denominator) if denominator else None


def cache_read_share(records: list[dict]) -> float | None:
    """Cache reads as a share of input-side tokens: cache_read / (input + cache_read + creation)."""
    read = tokens(records, "cache_read")
    total = read + tokens(records, "input") + tokens(records, "cache_creation")
    return read / total if total else None


def active_by_terminal(records: Iterable[dict]) -> dict[str, int]:
    actors: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in records:
        actors[record["terminal_type"]].add((record["actor"]["type"], member(record)))
    return {terminal: len(found) for terminal, found in actors.items()}
