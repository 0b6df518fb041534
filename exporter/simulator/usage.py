"""One actor's UTC day of Claude Code: drawn from the seed, kept compact, rendered as a record.

The usage report is an hour late, as the API documents: at time `now` a day's records hold each
final quantity scaled by the whole hours of the day that ended an hour before `now`, rounded
down."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..clock import DATA_DELAY, as_utc, day_stamp, midnight
from .members import Actor, mix

HOURS_PER_DAY = 24

# Cents per million tokens: input, output, cache_read, cache_creation (five-minute cache write).
MODEL_PRICES: dict[str, tuple[int, int, int, int]] = {
    "claude-sonnet-4-5-20250929": (300, 1500, 30, 375),
    "claude-sonnet-4-20250514": (300, 1500, 30, 375),
    "claude-opus-4-5-20251101": (500, 2500, 50, 625),
    "claude-opus-4-1-20250805": (1500, 7500, 150, 1875),
    "claude-haiku-4-5-20251001": (100, 500, 10, 125),
    "claude-3-5-haiku-20241022": (80, 400, 8, 100),
}
PLANNING_MODEL = "claude-opus-4-5-20251101"
TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")
TOKENS_PER_SESSION = 100_000

# Tools in the documented order, with the typical share of accepted suggestions.
ACCEPT_RATES = {
    "edit_tool": 0.93,
    "multi_edit_tool": 0.88,
    "write_tool": 0.84,
    "notebook_edit_tool": 0.68,
}


@dataclass(frozen=True)
class ActorDay:
    """One final record in compact form, rendered into the API's shape on demand."""

    actor: Actor
    terminal: str
    subscription_null: bool
    core: tuple[int, ...]
    tools: tuple[tuple[str, int, int], ...]
    models: tuple[tuple[str, tuple[int, ...]], ...]

    def scaled(self, factor: float) -> ActorDay:
        def mul(value: int) -> int:
            return int(value * factor + 0.5)

        return ActorDay(
            self.actor,
            self.terminal,
            self.subscription_null,
            tuple(mul(v) for v in self.core),
            tuple((tool, mul(a), mul(r)) for tool, a, r in self.tools),
            tuple((m, tuple(mul(t) for t in tokens)) for m, tokens in self.models),
        )


def estimated_cost_cents(model: str, tokens: Iterable[int]) -> int:
    """Integer cents from token counts and the model's price, rounded half up."""
    micro = sum(count * price for count, price in zip(tokens, MODEL_PRICES[model], strict=True))
    return (micro + 500_000) // 1_000_000


def visible_hours(day: date, now: datetime) -> int:
    """Whole hours of `day` whose activity the API serves at `now` (it is an hour late), 0 to 24."""
    elapsed = as_utc(now) - DATA_DELAY - midnight(day)
    return max(0, min(HOURS_PER_DAY, elapsed // timedelta(hours=1)))


def draw_actor_day(actor: Actor, day: date, seed: int, forced: bool) -> list[ActorDay]:
    rng = random.Random(mix(seed, day.toordinal(), actor.index + 2))
    weekend = day.weekday() >= 5
    chance = actor.weekend_chance if weekend else actor.weekday_chance
    if rng.random() >= chance and not forced:
        return []
    scale = actor.intensity * rng.lognormvariate(0, 0.45) * (0.6 if weekend else 1.0)
    records = [_draw_record(actor, actor.terminals[0], scale, rng)]
    if len(actor.terminals) > 1 and rng.random() < 0.4:
        records.append(_draw_record(actor, actor.terminals[1], scale * 0.35, rng))
    return records


def _draw_record(actor: Actor, terminal: str, scale: float, rng: random.Random) -> ActorDay:
    sessions = max(1, round(2.5 * scale * rng.uniform(0.6, 1.4)))
    added = int(sessions * 140 * rng.lognormvariate(0, 0.6))
    commits = int(sessions * rng.uniform(0, 0.9))
    core = (
        sessions,
        added,
        int(added * rng.uniform(0.08, 0.45)),
        commits,
        int(commits * rng.uniform(0, 0.45)),
    )
    return ActorDay(
        actor=actor,
        terminal=terminal,
        subscription_null=rng.random() < 0.5,
        core=core,
        tools=_draw_tools(actor, sessions, rng),
        models=_draw_models(actor, sessions, rng),
    )


def _draw_tools(actor: Actor, sessions: int, rng: random.Random) -> tuple:
    edits = int(sessions * 14 * rng.lognormvariate(0, 0.4))
    counts = {"edit_tool": edits}
    if rng.random() < actor.multi_edit_chance:
        counts["multi_edit_tool"] = int(edits * rng.uniform(0.1, 0.3))
    counts["write_tool"] = int(edits * rng.uniform(0.15, 0.35))
    if actor.notebooks:
        counts["notebook_edit_tool"] = int(edits * rng.uniform(0.05, 0.3))
    elif rng.random() < 0.3:
        counts["notebook_edit_tool"] = 0
    decisions = []
    for tool, total in counts.items():
        rate = min(1.0, max(0.05, ACCEPT_RATES[tool] + actor.skill + rng.gauss(0, 0.03)))
        accepted = round(total * rate)
        decisions.append((tool, accepted, total - accepted))
    return tuple(decisions)


def _draw_models(actor: Actor, sessions: int, rng: random.Random) -> tuple:
    base = sessions * TOKENS_PER_SESSION * rng.lognormvariate(0, 0.5)
    models = [(actor.model, _draw_tokens(base, rng))]
    if rng.random() < 0.8:
        models.append((actor.helper_model, _draw_tokens(base * 0.15, rng)))
    if actor.model != PLANNING_MODEL and rng.random() < 0.12:
        models.append((PLANNING_MODEL, _draw_tokens(base * 0.3, rng)))
    return tuple(models)


def _draw_tokens(base: float, rng: random.Random) -> tuple[int, int, int, int]:
    return (
        int(base),
        int(base * rng.uniform(0.3, 0.6)),
        int(base * rng.uniform(10, 30)),
        int(base * rng.uniform(0.6, 1.6)),
    )


def render(actor_day: ActorDay, day: date, hours: int, organization_id: str) -> dict | None:
    """The API record showing `hours` of the day's 24, or None while nothing of it is visible."""

    def part(value: int) -> int:
        return value * hours // HOURS_PER_DAY

    sessions, added, removed, commits, pulls = (part(v) for v in actor_day.core)
    tools = {tool: {"accepted": part(a), "rejected": part(r)} for tool, a, r in actor_day.tools}
    models = [_model_entry(model, [part(t) for t in tokens]) for model, tokens in actor_day.models]
    models = [entry for entry in models if any(entry["tokens"].values())]
    if not (models or sessions or added or removed or commits or pulls):
        return None
    actor = actor_day.actor
    key = "email_address" if actor.actor_type == "user_actor" else "api_key_name"
    record: dict = {
        "date": day_stamp(day),
        "actor": {"type": actor.actor_type, key: actor.name},
        "organization_id": organization_id,
        "customer_type": "api",
    }
    if actor_day.subscription_null:
        record["subscription_type"] = None
    record["terminal_type"] = actor_day.terminal
    record["core_metrics"] = {
        "num_sessions": sessions,
        "lines_of_code": {"added": added, "removed": removed},
        "commits_by_claude_code": commits,
        "pull_requests_by_claude_code": pulls,
    }
    record["tool_actions"] = tools
    record["model_breakdown"] = models
    return record


def _model_entry(model: str, tokens: list[int]) -> dict:
    return {
        "model": model,
        "tokens": dict(zip(TOKEN_TYPES, tokens, strict=True)),
        "estimated_cost": {"currency": "USD", "amount": estimated_cost_cents(model, tokens)},
    }
