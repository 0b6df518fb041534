"""Pure functions from Admin API JSON to typed records.

A page's envelope must be well formed or the whole page (and so the day) is refused: a day whose
pages did not all arrive intact must never replace a stored day. A single malformed record inside
a good page is skipped and reported with a reason, so one bad record does not cost the day."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

TOOL_SUFFIX = "_tool"
TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")
ACTOR_TYPES = {"user_actor": ("user", "email_address"), "api_actor": ("api_key", "api_key_name")}
# Cost is kept in millionths of a cent so that decimal amounts add up exactly.
MICROCENTS_PER_CENT = 1_000_000
# No actor-day plausibly reaches these, in one record or summed over the actor's records of the
# day ($1M of cost); larger values are corrupt data, not usage. They also keep every sum the store
# computes within 64-bit integers: a month of thousands of actors at the bound still fits.
MAX_COUNT = 10**12
MAX_COST_CENTS = 10**8
# The organization's id is a UUID (36 characters); a far longer value is not an id.
MAX_ORGANIZATION_ID = 100
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


class PageError(ValueError):
    """The page as a whole is unusable (bad envelope, wrong cursor field types)."""


class RecordError(ValueError):
    """One record is unusable; `reason` labels it in the rejected-records counter."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# The records are not frozen dataclasses only because a frozen dataclass takes about six times as
# long to build, and a day holds thousands of them; nothing changes a record once it is parsed.
@dataclass(slots=True)
class ModelUsage:
    model: str
    tokens: dict[str, int]
    cost_microcents: int


@dataclass(slots=True)
class UsageRecord:
    day: date
    actor_type: str
    actor: str
    terminal_type: str
    customer_type: str | None
    subscription_type: str | None
    sessions: int
    lines_added: int
    lines_removed: int
    commits: int
    pull_requests: int
    tools: dict[str, tuple[int, int]] = field(default_factory=dict)
    models: tuple[ModelUsage, ...] = ()

    def describe(self) -> str:
        return f"{self.day.isoformat()} {self.actor_type} {self.actor!r}"

    def totals(self) -> tuple[int, ...]:
        """Every quantity of the record summed over its models and tools: what the store adds up.
        Cost in cents (rounded down), then the core counts, tokens by type and tool decisions."""
        cost = sum(m.cost_microcents for m in self.models) // MICROCENTS_PER_CENT
        tokens = [sum(m.tokens[t] for m in self.models) for t in TOKEN_TYPES]
        decided = sum(accepted + rejected for accepted, rejected in self.tools.values())
        core = (self.sessions, self.lines_added, self.lines_removed, self.commits)
        return (cost, *core, self.pull_requests, *tokens, decided)


def implausible(totals: tuple[int, ...]) -> str | None:
    """What makes an actor-day's totals (UsageRecord.totals(), summed) implausible, or None."""
    if totals[0] > MAX_COST_CENTS:
        return f"estimated cost is implausibly large ({totals[0]} cents)"
    if max(totals[1:]) > MAX_COUNT:
        return f"a count is implausibly large ({max(totals[1:])})"
    return None


@dataclass
class UsagePage:
    records: list[UsageRecord]
    rejected: list[tuple[RecordError, dict]]
    has_more: bool
    next_page: str | None
    organization_id: str | None = None


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    name: str
    role: str
    added_at: str


@dataclass(frozen=True)
class Organization:
    """`GET /v1/organizations/me`: the key's organization."""

    id: str
    name: str


@dataclass
class UsersPage:
    members: list[Member]
    has_more: bool
    last_id: str | None


def parse_date(value: object) -> date:
    """A UTC day from `YYYY-MM-DD` or an RFC 3339 timestamp (the API documents both)."""
    if not isinstance(value, str) or not _DAY.match(value):
        raise RecordError("bad_date", f"date {value!r} is neither YYYY-MM-DD nor RFC 3339")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise RecordError("bad_date", f"date {value!r} is not a valid date") from exc


def parse_usage_page(payload: object, day: date) -> UsagePage:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise PageError("usage report page has no 'data' list")
    has_more = payload.get("has_more", False)
    next_page = payload.get("next_page")
    if not isinstance(has_more, bool) or not (next_page is None or isinstance(next_page, str)):
        raise PageError("usage report page has a malformed 'has_more' or 'next_page'")
    if has_more and not next_page:
        raise PageError("usage report page says has_more but gives no next_page")
    records, rejected = [], []
    dates = (day.isoformat(), f"{day.isoformat()}T00:00:00Z")
    for raw in payload["data"]:
        record = _plain_record(raw, day, dates)
        if record is None:
            try:
                record = parse_usage_record(raw, day)
            except RecordError as exc:
                rejected.append((exc, raw if isinstance(raw, dict) else {}))
                continue
        records.append(record)
    return UsagePage(records, rejected, has_more, next_page, _organization_id(payload["data"]))


def _organization_id(data: list) -> str | None:
    """The `organization_id` of the page's first record that has one: every record of a key's
    report belongs to the key's organization."""
    for raw in data:
        value = raw.get("organization_id") if type(raw) is dict else None
        if type(value) is str and 0 < len(value) <= MAX_ORGANIZATION_ID:
            return value
    return None


def _plain_record(raw: object, day: date, dates: tuple[str, str]) -> UsageRecord | None:
    """The usual record, one that parse_usage_record would accept as it is, parsed with as few
    checks as that takes; None for anything else (another date form, a missing field, a float),
    which parse_usage_record then parses or rejects with its reason. A day holds thousands of
    records, so this path is most of the exporter's ingest time: it avoids a call per field."""
    if type(raw) is not dict or raw.get("date") not in dates:
        return None
    actor = raw.get("actor")
    if type(actor) is not dict:
        return None
    kind = actor.get("type")
    if kind == "user_actor":
        actor_type, name = "user", actor.get("email_address")
    elif kind == "api_actor":
        actor_type, name = "api_key", actor.get("api_key_name")
    else:
        return None
    core = raw.get("core_metrics")
    lines = core.get("lines_of_code") if type(core) is dict else None
    if type(name) is not str or not name or type(lines) is not dict:
        return None
    counts = (
        core.get("num_sessions"),
        lines.get("added"),
        lines.get("removed"),
        core.get("commits_by_claude_code"),
        core.get("pull_requests_by_claude_code"),
    )
    sessions, added, removed, commits, pulls = counts
    if not (
        type(sessions) is type(added) is type(removed) is type(commits) is type(pulls) is int
        and min(counts) >= 0
        and max(counts) <= MAX_COUNT
    ):
        return None
    terminal, customer = raw.get("terminal_type"), raw.get("customer_type")
    subscription = raw.get("subscription_type")
    for text in (terminal, customer, subscription):
        if text is not None and type(text) is not str:
            return None
    tools = _plain_tools(raw.get("tool_actions"))
    breakdown = raw.get("model_breakdown") or []
    if tools is None or type(breakdown) is not list:
        return None
    models = []
    for entry in breakdown:
        model = _plain_model(entry)
        if model is None:
            return None
        models.append(model)
    return UsageRecord(
        day, actor_type, name, terminal or "unknown", customer, subscription, *counts, tools,
        tuple(models),
    )  # fmt: skip


def _plain_tools(actions: object) -> dict[str, tuple[int, int]] | None:
    if actions is None:
        return {}
    if type(actions) is not dict:
        return None
    tools = {}
    for key, decisions in actions.items():
        if type(decisions) is not dict:
            return None
        accepted, rejected = decisions.get("accepted", 0), decisions.get("rejected", 0)
        if not (
            type(accepted) is type(rejected) is int
            and 0 <= accepted <= MAX_COUNT
            and 0 <= rejected <= MAX_COUNT
        ):
            return None
        tools[key.removesuffix(TOOL_SUFFIX)] = (accepted, rejected)
    return tools


def _plain_model(entry: object) -> ModelUsage | None:
    if type(entry) is not dict:
        return None
    model, tokens, cost = entry.get("model"), entry.get("tokens") or {}, entry.get("estimated_cost")
    if type(model) is not str or not model or type(tokens) is not dict:
        return None
    counts = (
        tokens.get("input", 0),
        tokens.get("output", 0),
        tokens.get("cache_read", 0),
        tokens.get("cache_creation", 0),
    )
    given, output, read, creation = counts
    if not (
        type(given) is type(output) is type(read) is type(creation) is int
        and min(counts) >= 0
        and max(counts) <= MAX_COUNT
    ):
        return None
    if cost is None:
        cents = 0
    elif type(cost) is dict and cost.get("currency", "USD") == "USD":
        cents = cost.get("amount", 0)
        if type(cents) is not int or not 0 <= cents <= MAX_COST_CENTS:
            return None
    else:
        return None
    usage = {"input": given, "output": output, "cache_read": read, "cache_creation": creation}
    return ModelUsage(model, usage, cents * MICROCENTS_PER_CENT)


def parse_usage_record(raw: object, expected_day: date | None = None) -> UsageRecord:
    if not isinstance(raw, dict):
        raise RecordError("not_an_object", "record is not a JSON object")
    day = parse_date(_required(raw, "date"))
    if expected_day is not None and day != expected_day:
        raise RecordError("wrong_day", f"record for {day} in the report for {expected_day}")
    actor_type, actor = _actor(_required(raw, "actor"))
    core = _object(raw, "core_metrics")
    lines = _object(core, "lines_of_code")
    return UsageRecord(
        day=day,
        actor_type=actor_type,
        actor=actor,
        terminal_type=_optional_str(raw, "terminal_type") or "unknown",
        customer_type=_optional_str(raw, "customer_type"),
        subscription_type=_optional_str(raw, "subscription_type"),
        sessions=_count(core, "num_sessions"),
        lines_added=_count(lines, "added"),
        lines_removed=_count(lines, "removed"),
        commits=_count(core, "commits_by_claude_code"),
        pull_requests=_count(core, "pull_requests_by_claude_code"),
        tools=_tools(raw.get("tool_actions")),
        models=tuple(_model(m) for m in _list(raw, "model_breakdown")),
    )


def parse_users_page(payload: object) -> UsersPage:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise PageError("users page has no 'data' list")
    has_more = payload.get("has_more", False)
    last_id = payload.get("last_id")
    if not isinstance(has_more, bool) or not (last_id is None or isinstance(last_id, str)):
        raise PageError("users page has a malformed 'has_more' or 'last_id'")
    if has_more and not last_id:
        raise PageError("users page says has_more but gives no last_id")
    members = []
    for raw in payload["data"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("email"), str):
            raise PageError("users page holds a user without an email")
        members.append(
            Member(
                id=str(raw.get("id", "")),
                email=raw["email"],
                name=str(raw.get("name") or ""),
                role=str(raw.get("role") or ""),
                added_at=str(raw.get("added_at") or ""),
            )
        )
    return UsersPage(members, has_more, last_id)


def parse_organization(payload: object) -> Organization:
    """The organization's id and name; the name falls back to the id when it is missing."""
    if not isinstance(payload, dict):
        raise PageError("organization is not a JSON object")
    org_id, name = payload.get("id"), payload.get("name")
    if not isinstance(org_id, str) or not 0 < len(org_id) <= MAX_ORGANIZATION_ID:
        raise PageError("organization has no usable 'id'")
    if not isinstance(name, str) or not name.strip():
        name = org_id
    return Organization(org_id, " ".join(name.split())[:200])


def _required(obj: dict, key: str) -> object:
    if key not in obj or obj[key] is None:
        raise RecordError("missing_field", f"record has no {key!r}")
    return obj[key]


def _object(obj: dict, key: str) -> dict:
    value = _required(obj, key)
    if not isinstance(value, dict):
        raise RecordError("wrong_type", f"{key!r} is not an object")
    return value


def _list(obj: dict, key: str) -> list:
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise RecordError("wrong_type", f"{key!r} is not a list")
    return value


def _optional_str(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError("wrong_type", f"{key!r} is not a string")
    return value


def _count(obj: dict, key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if value is None:
        raise RecordError("missing_field", f"record has no {key!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError("wrong_type", f"{key!r} is {type(value).__name__}, not an integer")
    if value < 0:
        raise RecordError("negative_value", f"{key!r} is negative ({value})")
    if value > MAX_COUNT:
        raise RecordError("implausible_value", f"{key!r} is implausibly large ({value})")
    return value


def _actor(actor: object) -> tuple[str, str]:
    if not isinstance(actor, dict):
        raise RecordError("wrong_type", "'actor' is not an object")
    name_of_type = actor.get("type")
    kind = ACTOR_TYPES.get(name_of_type) if isinstance(name_of_type, str) else None
    if kind is None:
        raise RecordError("unknown_actor_type", f"actor type {actor.get('type')!r} is unknown")
    actor_type, key = kind
    name = actor.get(key)
    if not isinstance(name, str) or not name:
        raise RecordError("missing_field", f"{actor.get('type')} has no {key!r}")
    return actor_type, name


def _tools(tool_actions: object) -> dict[str, tuple[int, int]]:
    """Tool decisions by tool name without the `_tool` suffix; unknown tools are kept."""
    if tool_actions is None:
        return {}
    if not isinstance(tool_actions, dict):
        raise RecordError("wrong_type", "'tool_actions' is not an object")
    tools = {}
    for key, decisions in tool_actions.items():
        if not isinstance(decisions, dict):
            raise RecordError("wrong_type", f"tool_actions[{key!r}] is not an object")
        name = key.removesuffix(TOOL_SUFFIX)
        tools[name] = (_count(decisions, "accepted", 0), _count(decisions, "rejected", 0))
    return tools


def _model(entry: object) -> ModelUsage:
    if not isinstance(entry, dict):
        raise RecordError("wrong_type", "a model_breakdown entry is not an object")
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise RecordError("missing_field", "a model_breakdown entry has no 'model'")
    tokens_obj = entry.get("tokens") or {}
    if not isinstance(tokens_obj, dict):
        raise RecordError("wrong_type", "'tokens' is not an object")
    tokens = {t: _count(tokens_obj, t, 0) for t in TOKEN_TYPES}
    return ModelUsage(model, tokens, _cost_microcents(entry.get("estimated_cost")))


def _cost_microcents(cost: object) -> int:
    """`estimated_cost.amount` is documented as integer cents; decimal strings are kept exactly."""
    if cost is None:
        return 0
    if not isinstance(cost, dict):
        raise RecordError("wrong_type", "'estimated_cost' is not an object")
    currency = cost.get("currency", "USD")
    if currency != "USD":
        raise RecordError("unsupported_currency", f"estimated cost in {currency!r}, not USD")
    amount = cost.get("amount", 0)
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise RecordError("wrong_type", "'estimated_cost.amount' is not a number")
    try:
        cents = Decimal(str(amount))
    except InvalidOperation as exc:
        raise RecordError(
            "wrong_type", f"'estimated_cost.amount' {amount!r} is not a number"
        ) from exc
    if not cents.is_finite():
        raise RecordError("wrong_type", "'estimated_cost.amount' is not finite")
    if cents < 0:
        raise RecordError("negative_value", f"estimated cost is negative ({amount})")
    if cents > MAX_COST_CENTS:
        raise RecordError("implausible_value", f"estimated cost is implausibly large ({amount})")
    return int(cents * MICROCENTS_PER_CENT)
