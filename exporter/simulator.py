"""A simulated organization serving the documented Admin API endpoints over HTTP on loopback.

It is the exporter's demo mode and the fixture of the end-to-end tests (which add fault injection
to it, in tests/faults.py).
Everything derives from the seed: the members (and about one API key per twelve of them), who uses
Claude Code from when to when, and each UTC day's records. Days are generated lazily and the recent
ones cached, so any organization size and any day can be served without precomputing a history.

The usage report is an hour late, as the API documents: at time `now` a day's records hold each
final quantity scaled by the whole hours of the day that ended an hour before `now`, rounded down.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import collections
import hmac
import random
import re
import secrets
import signal
import socket
import sys
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .clock import DATA_DELAY, Clock, as_utc, frozen, midnight, utc_now

USAGE_PATH = "/v1/organizations/usage_report/claude_code"
USERS_PATH = "/v1/organizations/users"
ORGANIZATION_PATH = "/v1/organizations/me"
HEALTH_PATH = "/-/healthy"
API_VERSIONS = ("2023-01-01", "2023-06-01")
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
HOURS_PER_DAY = 24
CACHED_DAYS = 64
CACHED_VIEWS = 32
CURSOR_PREFIX = "page_"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
STOP_POLL_SECONDS = 0.05
HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error"}

ROLES = (
    "primary_owner",
    "owner",
    "admin",
    "billing",
    "membership_admin",
    "user",
    "developer",
    "claude_code_user",
)
# Share of the members per role; claude_code_user takes the rest, there is one primary_owner.
ROLE_SHARES = {
    "owner": 0.02,
    "admin": 0.06,
    "billing": 0.04,
    "membership_admin": 0.02,
    "user": 0.10,
    "developer": 0.42,
}
# Roles handed out first when an organization is too small to hold every role.
SMALL_ORG_ROLES = ("primary_owner", "developer", "claude_code_user", "admin", "user", "billing")
# Chance that a member with the role uses Claude Code at all.
USES_CLAUDE_CODE = {
    "primary_owner": 0.5,
    "owner": 0.4,
    "admin": 0.55,
    "billing": 0.08,
    "membership_admin": 0.05,
    "user": 0.08,
    "developer": 0.85,
    "claude_code_user": 0.9,
}

FIRST_NAMES = (
    "Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Ines", "Jonas",
    "Kavya", "Liam", "Maya", "Noah", "Olivia", "Priya", "Quentin", "Rosa", "Samir", "Tara",
    "Uma", "Victor", "Wen", "Xavier", "Yara", "Zane", "Amara", "Ben", "Chen", "Daniela",
    "Zoë", "José", "Søren", "Anaïs", "Jürgen", "Łucja", "Chloé", "Björn", "Renée", "Ómar",
    "Ngozi", "Mateus", "Aiko", "Sven", "Fatima", "Kofi", "Leila", "Marek", "Nadia", "Oscar",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Nguyen", "Garcia", "Kowalski", "Okafor", "Tanaka", "Rossi", "Schmidt", "Patel",
    "Cohen", "Johansson", "Silva", "Ivanova", "Kim", "Dubois", "Hernandez", "Walker", "Novak",
    "Ali", "Murphy", "Müller", "Núñez", "Ødegaard", "Çelik", "Dvořák", "Łukasiewicz", "García",
    "Sørensen", "Lefèvre", "O'Brien", "Byrne", "Costa", "Fischer", "Haddad", "Ito", "Jensen",
    "Larsen", "Moreau", "Park",
)  # fmt: skip
ASCII_FOLD = str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae", "đ": "d", "'": "", " ": ""})
EMAIL_DOMAIN = "example.com"

API_KEY_NAMES = (
    "ci-claude-code", "release-bot", "nightly-refactor", "pr-reviewer", "docs-assistant",
    "migration-runner", "test-fixer", "security-triage", "data-pipeline-agent", "infra-terraform",
)  # fmt: skip

USER_TERMINALS = (
    ("vscode", 30), ("iTerm.app", 18), ("cursor", 12), ("tmux", 10), ("Apple_Terminal", 8),
    ("ghostty", 6), ("WezTerm", 4), ("windsurf", 4), ("pycharm", 4), ("xterm-256color", 4),
)  # fmt: skip
API_TERMINALS = (("tmux", 5), ("xterm-256color", 3), ("screen", 1))

# Cents per million tokens: input, output, cache_read, cache_creation (five-minute cache write).
MODEL_PRICES: dict[str, tuple[int, int, int, int]] = {
    "claude-sonnet-4-5-20250929": (300, 1500, 30, 375),
    "claude-sonnet-4-20250514": (300, 1500, 30, 375),
    "claude-opus-4-5-20251101": (500, 2500, 50, 625),
    "claude-opus-4-1-20250805": (1500, 7500, 150, 1875),
    "claude-haiku-4-5-20251001": (100, 500, 10, 125),
    "claude-3-5-haiku-20241022": (80, 400, 8, 100),
}
MAIN_MODELS = (
    ("claude-sonnet-4-5-20250929", 40),
    ("claude-sonnet-4-20250514", 25),
    ("claude-opus-4-5-20251101", 15),
    ("claude-opus-4-1-20250805", 10),
    ("claude-haiku-4-5-20251001", 10),
)
OLDER_MODELS = {"claude-sonnet-4-20250514", "claude-opus-4-1-20250805"}
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

RequestHook = Callable[[flask.Request], "flask.Response | None"]


@dataclass(frozen=True)
class SpendSpike:
    """Multiplies every usage quantity of one member (or, with member=None, everyone) on some days.

    A named member (an email or an API key name) is active on every spike day, whatever their
    usual rhythm.
    """

    days: frozenset[date]
    factor: float
    member: str | None = None


@dataclass(frozen=True)
class _Actor:
    """An actor's lasting habits; `start` is None for a member who never uses Claude Code."""

    index: int
    actor_type: str
    name: str
    start: date | None
    stop: date | None
    intensity: float
    weekday_chance: float
    weekend_chance: float
    terminals: tuple[str, ...]
    model: str
    helper_model: str
    skill: float
    notebooks: bool
    multi_edit_chance: float

    def uses_claude_code_on(self, day: date) -> bool:
        if self.start is None or day < self.start:
            return False
        return self.stop is None or day <= self.stop


@dataclass(frozen=True)
class _ActorDay:
    """One final record in compact form, rendered into the API's shape on demand."""

    actor: _Actor
    terminal: str
    subscription_null: bool
    core: tuple[int, ...]
    tools: tuple[tuple[str, int, int], ...]
    models: tuple[tuple[str, tuple[int, ...]], ...]

    def scaled(self, factor: float) -> _ActorDay:
        def mul(value: int) -> int:
            return int(value * factor + 0.5)

        return _ActorDay(
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


class SimulatedOrganization:
    """A deterministic organization: its members, their roles and each UTC day's usage records.

    The same seed gives the same organization when built on the same UTC day: who joined or
    started using Claude Code when is set relative to the clock's date at construction, so a
    demo always has recent history to show.
    """

    def __init__(
        self,
        seed: int = 1,
        members: int = 50,
        api_keys: int | None = None,
        now: Clock | None = None,
        spend_spike: SpendSpike | None = None,
        name: str | None = None,
        people_seed: int | None = None,
    ):
        if members < 0 or (api_keys is not None and api_keys < 0):
            raise ValueError("members and api_keys cannot be negative")
        self.seed = seed
        self.now: Clock = now or utc_now
        self.spend_spike = spend_spike
        self.organization_id = str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))
        self.name = name or f"Simulated organization {seed}"
        self.requests: collections.Counter = collections.Counter()
        self.before_request: list[RequestHook] = []
        self._lock = threading.Lock()
        self._anchor = as_utc(self.now()).date()
        self._users, user_actors = _make_users(seed, members, self._anchor, people_seed)
        key_count = max(1, round(members / 12)) if api_keys is None else api_keys
        api_actors = _make_api_actors(seed, key_count, self._anchor, len(user_actors))
        self._actors = user_actors + api_actors
        self._user_index = {user["id"]: i for i, user in enumerate(self._users)}
        self._user_by_email = {user["email"].lower(): user for user in self._users}
        self._days: collections.OrderedDict[date, tuple[_ActorDay, ...]] = collections.OrderedDict()
        self._views: collections.OrderedDict[tuple[date, int], tuple] = collections.OrderedDict()
        self._check_spike_member()

    def users(self) -> list[dict]:
        """Every member as a `/v1/organizations/users` object, oldest first."""
        with self._lock:
            return [dict(user) for user in self._users]

    def set_role(self, email: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        with self._lock:
            user = self._user_by_email.get(email.lower())
            if user is None:
                raise KeyError(f"no member with the email {email!r}")
            user["role"] = role

    def user_page(
        self,
        limit: int = DEFAULT_LIMIT,
        after_id: str | None = None,
        before_id: str | None = None,
        email: str | None = None,
        roles: Iterable[str] = (),
    ) -> tuple[list[dict], bool]:
        """One page of users after (or before) a user id; KeyError for an unknown id."""
        wanted_roles = set(roles)
        with self._lock:
            if before_id is not None:
                positions = range(self._user_position(before_id) - 1, -1, -1)
            else:
                start = 0 if after_id is None else self._user_position(after_id) + 1
                positions = range(start, len(self._users))
            found = _matching((self._users[i] for i in positions), email, wanted_roles, limit + 1)
            page = found[:limit]
            if before_id is not None:
                page.reverse()
            return [dict(user) for user in page], len(found) > limit

    def final_records(self, day: date) -> list[dict]:
        """Ground truth: the complete records of a UTC day in the API's shape."""
        return [record for _, record in self._rendered(day, HOURS_PER_DAY)]

    def visible_records(self, day: date, now: datetime | None = None) -> list[dict]:
        """What the API serves for `day` at `now` (default: the organization's clock)."""
        hours = visible_hours(day, now or self.now())
        return [record for _, record in self._rendered(day, hours)]

    def view(self, day: date, hours: int) -> tuple[tuple[int, dict], ...]:
        """The records visible after `hours` hours of `day`, each with its final position.

        Cached and shared with every request: callers must not change the records.
        """
        key = (day, hours)
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
        rendered = tuple(self._rendered(day, hours))
        with self._lock:
            _remember(self._views, key, rendered, CACHED_VIEWS)
        return rendered

    def count_request(self, endpoint: str, day: str | None) -> None:
        with self._lock:
            self.requests[(endpoint, day)] += 1

    def _rendered(self, day: date, hours: int) -> Iterator[tuple[int, dict]]:
        for index, actor_day in enumerate(self._actor_days(day)):
            record = _render(actor_day, day, hours, self.organization_id)
            if record is not None:
                yield index, record

    def _actor_days(self, day: date) -> tuple[_ActorDay, ...]:
        with self._lock:
            if day in self._days:
                self._days.move_to_end(day)
                return self._days[day]
        generated = tuple(self._generate_day(day))
        with self._lock:
            _remember(self._days, day, generated, CACHED_DAYS)
        return generated

    def _generate_day(self, day: date) -> Iterator[_ActorDay]:
        spike = self.spend_spike
        spiked_today = spike is not None and day in spike.days
        for actor in self._actors:
            forced = spiked_today and spike.member == actor.name  # type: ignore[union-attr]
            if not (forced or actor.uses_claude_code_on(day)):
                continue
            for actor_day in _draw_actor_day(actor, day, self.seed, forced):
                if spiked_today and spike.member in (None, actor.name):  # type: ignore[union-attr]
                    yield actor_day.scaled(spike.factor)  # type: ignore[union-attr]
                else:
                    yield actor_day

    def _user_position(self, user_id: str) -> int:
        if user_id not in self._user_index:
            raise KeyError(user_id)
        return self._user_index[user_id]

    def _check_spike_member(self) -> None:
        member = self.spend_spike.member if self.spend_spike else None
        if member is not None and member not in {actor.name for actor in self._actors}:
            raise ValueError(f"the spend spike names {member!r}, who is not in the organization")


def _matching(users: Iterable[dict], email: str | None, roles: set[str], enough: int) -> list[dict]:
    """The first `enough` users that pass the filters."""
    found = []
    for user in users:
        if (email is None or user["email"].lower() == email.lower()) and (
            not roles or user["role"] in roles
        ):
            found.append(user)
            if len(found) == enough:
                break
    return found


def _remember(cache: collections.OrderedDict, key: object, value: object, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


# --- The members ----------------------------------------------------------------------------------


def _role_list(count: int, rng: random.Random) -> list[str]:
    """Roles in a real organization's proportions; every role once there are enough members."""
    if count < len(ROLES):
        return list(SMALL_ORG_ROLES[:count]) + ["developer"] * max(0, count - len(SMALL_ORG_ROLES))
    counts = {role: max(1, round(count * share)) for role, share in ROLE_SHARES.items()}
    counts["developer"] -= max(0, sum(counts.values()) + 2 - count)
    counts["claude_code_user"] = count - 1 - sum(counts.values())
    rest = [role for role, n in counts.items() for _ in range(n)]
    rng.shuffle(rest)
    return ["primary_owner", *rest]


def _make_users(
    seed: int, count: int, anchor: date, people_seed: int | None = None
) -> tuple[list[dict], list[_Actor]]:
    """The members: names (so emails) from `people_seed`, everything else from `seed`. Two
    organizations of one `people_seed` share people (the smaller one's all), with their own roles
    and habits in each, as one company's organizations do."""
    rng = random.Random(f"users:{seed}")
    roles = _role_list(count, rng)
    taken: set[str] = set()
    users, actors = [], []
    for index, role in enumerate(roles):
        member_rng = random.Random(_mix(seed, 0, index))
        name_rng = member_rng
        if people_seed is not None and people_seed != seed:
            name_rng = random.Random(_mix(people_seed, 0, index))
        name = f"{name_rng.choice(FIRST_NAMES)} {name_rng.choice(LAST_NAMES)}"
        email = _unique_email(name, taken)
        joined = anchor - timedelta(days=1000 if role == "primary_owner" else _join_age(member_rng))
        users.append(_user_object(member_rng, name, email, role, joined))
        actors.append(_user_actor(member_rng, index, email, role, joined, anchor))
    users.sort(key=lambda user: user["added_at"])
    return users, actors


def _join_age(rng: random.Random) -> int:
    """Days since the member joined: most long ago, some within the last four months."""
    return rng.randint(120, 900) if rng.random() < 0.7 else rng.randint(0, 119)


def _user_object(rng: random.Random, name: str, email: str, role: str, joined: date) -> dict:
    added = midnight(joined) + timedelta(
        seconds=rng.randint(8 * 3600, 19 * 3600), microseconds=rng.randint(0, 999_999)
    )
    return {
        "id": "user_01" + "".join(rng.choices(BASE58, k=22)),
        "type": "user",
        "email": email,
        "name": name,
        "role": role,
        "added_at": added.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _unique_email(name: str, taken: set[str]) -> str:
    """`first.last@example.com` folded to ASCII, numbered from 2 when the name is taken."""
    first, last = (_ascii(part) for part in name.split(" ", 1))
    base = local = f"{first}.{last}"
    number = 1
    while local in taken:
        number += 1
        local = f"{base}{number}"
    taken.add(local)
    return f"{local}@{EMAIL_DOMAIN}"


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().translate(ASCII_FOLD))
    return "".join(char for char in folded if char.isascii() and char.isalnum())


def _user_actor(
    rng: random.Random, index: int, email: str, role: str, joined: date, anchor: date
) -> _Actor:
    start = stop = None
    if rng.random() < USES_CLAUDE_CODE[role]:
        start = joined + timedelta(days=rng.randint(0, 14))
        if rng.random() < 0.15:
            start = max(start, anchor - timedelta(days=rng.randint(10, 120)))
        if rng.random() < 0.08:
            stop = max(start, anchor - timedelta(days=rng.randint(1, 60)))
    engagement = rng.uniform(0.55, 0.95)
    terminals = [_weighted(rng, USER_TERMINALS)]
    if rng.random() < 0.3:
        terminals.append(_weighted(rng, [t for t in USER_TERMINALS if t[0] != terminals[0]]))
    return _habits(rng, index, "user_actor", email, (start, stop), engagement, 0.12, terminals)


def _make_api_actors(seed: int, count: int, anchor: date, first_index: int) -> list[_Actor]:
    actors = []
    for number in range(count):
        rng = random.Random(_mix(seed, 1, number))
        base = API_KEY_NAMES[number % len(API_KEY_NAMES)]
        name = base if number < len(API_KEY_NAMES) else f"{base}-{number // len(API_KEY_NAMES) + 1}"
        start = anchor - timedelta(days=_join_age(rng))
        stop = anchor - timedelta(days=rng.randint(1, 45)) if rng.random() < 0.1 else None
        span = (start, max(start, stop) if stop else None)
        terminals = [_weighted(rng, API_TERMINALS)]
        actors.append(
            _habits(rng, first_index + number, "api_actor", name, span, 0.9, 0.7, terminals)
        )
    return actors


def _habits(
    rng: random.Random,
    index: int,
    actor_type: str,
    name: str,
    span: tuple[date | None, date | None],
    weekday_chance: float,
    weekend_share: float,
    terminals: list[str],
) -> _Actor:
    model = _weighted(rng, MAIN_MODELS)
    helper = "claude-3-5-haiku-20241022" if model in OLDER_MODELS else "claude-haiku-4-5-20251001"
    return _Actor(
        index=index,
        actor_type=actor_type,
        name=name,
        start=span[0],
        stop=span[1],
        intensity=rng.lognormvariate(0, 0.6),
        weekday_chance=weekday_chance,
        weekend_chance=weekday_chance * weekend_share,
        terminals=tuple(terminals),
        model=model,
        helper_model=helper,
        skill=rng.uniform(-0.04, 0.04),
        notebooks=rng.random() < 0.3,
        multi_edit_chance=rng.uniform(0.2, 0.8),
    )


# --- One actor's day ------------------------------------------------------------------------------


def _draw_actor_day(actor: _Actor, day: date, seed: int, forced: bool) -> list[_ActorDay]:
    rng = random.Random(_mix(seed, day.toordinal(), actor.index + 2))
    weekend = day.weekday() >= 5
    chance = actor.weekend_chance if weekend else actor.weekday_chance
    if rng.random() >= chance and not forced:
        return []
    scale = actor.intensity * rng.lognormvariate(0, 0.45) * (0.6 if weekend else 1.0)
    records = [_draw_record(actor, actor.terminals[0], scale, rng)]
    if len(actor.terminals) > 1 and rng.random() < 0.4:
        records.append(_draw_record(actor, actor.terminals[1], scale * 0.35, rng))
    return records


def _draw_record(actor: _Actor, terminal: str, scale: float, rng: random.Random) -> _ActorDay:
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
    return _ActorDay(
        actor=actor,
        terminal=terminal,
        subscription_null=rng.random() < 0.5,
        core=core,
        tools=_draw_tools(actor, sessions, rng),
        models=_draw_models(actor, sessions, rng),
    )


def _draw_tools(actor: _Actor, sessions: int, rng: random.Random) -> tuple:
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


def _draw_models(actor: _Actor, sessions: int, rng: random.Random) -> tuple:
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


def _render(actor_day: _ActorDay, day: date, hours: int, organization_id: str) -> dict | None:
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
        "date": f"{day.isoformat()}T00:00:00Z",
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


# --- Small helpers --------------------------------------------------------------------------------


def _mix(seed: int, stream: int, index: int) -> int:
    """A distinct, stable RNG seed for (seed, stream, index)."""
    return ((seed * 1_000_003 + stream) * 1_000_003 + index) & (2**128 - 1)


def _weighted(rng: random.Random, choices: Iterable[tuple[str, int]]) -> str:
    names, weights = zip(*choices, strict=True)
    return rng.choices(names, weights)[0]


# --- HTTP -----------------------------------------------------------------------------------------


class ApiFailure(Exception):
    """Turned into the API's error body by the app."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def error_response(status: int, error_type: str, message: str) -> flask.Response:
    """A response in the API's documented error shape (also for request hooks)."""
    request_id = "req_01" + secrets.token_hex(12)
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = flask.jsonify({**body, "request_id": request_id})
    response.status_code = status
    response.headers["request-id"] = request_id
    return response


class AdminApi:
    """The documented endpoints as a Flask app, `app`, serving one organization or several.

    One organization is served to `api_key` (or to any key when it is None); several, given by
    key, each to its own key, as the real API tells organizations apart. Paths under /-/ are the
    simulator's own and need no key.

    A subclass can change the answers at four points, which here leave them as the API gives them:
    `intercept` (an authenticated request, before its endpoint), `usage_page` and `usage_window`
    (what a page of the usage report holds) and `answer` (how a page of records or members is
    sent). The tests' fault injection is such a subclass; the simulator itself has none."""

    def __init__(
        self,
        orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
        api_key: str | None = None,
    ):
        self.by_key = dict(orgs) if isinstance(orgs, Mapping) else {}
        first = next(iter(self.by_key.values())) if self.by_key else orgs
        assert isinstance(first, SimulatedOrganization)
        self.org = first
        self.api_key = api_key
        self.app = flask.Flask("exporter.simulator")
        self.app.json.sort_keys = False  # type: ignore[attr-defined]
        self.app.before_request(self._gate)
        self.app.get(HEALTH_PATH)(lambda: "OK")
        self.app.get(USAGE_PATH)(self._usage_report)
        self.app.get(USERS_PATH)(self._list_users)
        self.app.get(ORGANIZATION_PATH)(self._organization)
        self.app.get(USERS_PATH + "/<user_id>")(self._get_user)
        self.app.errorhandler(ApiFailure)(self._api_failure)
        self.app.errorhandler(HTTPException)(self._http_exception)

    def intercept(
        self, org: SimulatedOrganization, request: flask.Request
    ) -> flask.Response | None:
        """An answer that replaces the endpoint's, or None to let the endpoint answer."""
        return None

    def usage_page(
        self, org: SimulatedOrganization, day: date, limit: int, cursor: str | None
    ) -> dict:
        """A page of the usage report for `day`: the first, or the one after `cursor`."""
        hours = visible_hours(day, org.now())
        after = -1
        if cursor is not None:
            hours, after = _read_cursor(cursor, day, hours)
        records = org.view(day, hours)
        start = bisect.bisect_right([index for index, _ in records], after)
        start, limit = self.usage_window(start, limit, cursor is not None)
        page = records[start : start + limit]
        has_more = start + limit < len(records)
        next_page = _cursor(day, hours, page[-1][0]) if has_more else None
        records_out = [record for _, record in page]
        return {"data": records_out, "has_more": has_more, "next_page": next_page}

    def usage_window(self, start: int, limit: int, resumed: bool) -> tuple[int, int]:
        """Where a usage report page starts among the day's visible records and how many it holds;
        `resumed` when the request names a cursor."""
        return start, limit

    def answer(self, page: dict) -> flask.Response:
        """The response of a page of the usage report or of the members. The records of a usage
        page are shared with the organization's cache: a change needs a copy."""
        return flask.jsonify(page)

    def _gate(self) -> flask.Response | None:
        request = flask.request
        if request.path.startswith("/-/"):
            return None
        given = request.headers.get("x-api-key") or ""
        org = self.by_key.get(given, self.org) if self.by_key else self.org
        _count(org, request)
        for hook in list(org.before_request):
            response = hook(request)
            if response is not None:
                return response
        if self.by_key and given not in self.by_key:
            raise ApiFailure(401, "authentication_error", "invalid x-api-key")
        _check_credentials(request, given if self.by_key else self.api_key)
        flask.g.org = org
        return self.intercept(org, request)

    def _usage_report(self) -> flask.Response:
        args = flask.request.args
        day = _starting_day(args.get("starting_at"))
        page = self.usage_page(flask.g.org, day, _limit(args), args.get("page"))
        return self.answer(page)

    def _list_users(self) -> flask.Response:
        return self.answer(_users_page(flask.g.org, flask.request.args))

    def _organization(self) -> flask.Response:
        org = flask.g.org
        return flask.jsonify({"id": org.organization_id, "type": "organization", "name": org.name})

    def _get_user(self, user_id: str) -> flask.Response:
        user = next((u for u in flask.g.org.users() if u["id"] == user_id), None)
        if user is None:
            raise ApiFailure(404, "not_found_error", f"no user with id {user_id!r}")
        return flask.jsonify(user)

    def _api_failure(self, failure: ApiFailure) -> flask.Response:
        return error_response(failure.status, failure.error_type, str(failure))

    def _http_exception(self, exc: HTTPException) -> flask.Response:
        status = exc.code or 500
        return error_response(status, HTTP_ERROR_TYPES.get(status, "api_error"), exc.name)


def _count(org: SimulatedOrganization, request: flask.Request) -> None:
    if request.path == USAGE_PATH:
        org.count_request("claude_code_usage", request.args.get("starting_at"))
    elif request.path == USERS_PATH or request.path.startswith(USERS_PATH + "/"):
        org.count_request("users", None)
    elif request.path == ORGANIZATION_PATH:
        org.count_request("organization", None)


def _check_credentials(request: flask.Request, api_key: str | None) -> None:
    if api_key is not None:
        given = request.headers.get("x-api-key")
        if not given:
            raise ApiFailure(401, "authentication_error", "x-api-key header is required")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiFailure(401, "authentication_error", "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if not version:
        raise ApiFailure(400, "invalid_request_error", "anthropic-version header is required")
    if version not in API_VERSIONS:
        raise ApiFailure(400, "invalid_request_error", "anthropic-version is not a known version")


def _limit(args: MultiDict[str, str]) -> int:
    raw = args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d{1,7}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiFailure(
            400, "invalid_request_error", f"limit must be an integer from 1 to {MAX_LIMIT}"
        )
    return int(raw)


def _starting_day(raw: str | None) -> date:
    if raw is None:
        raise ApiFailure(400, "invalid_request_error", "starting_at is required")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiFailure(
            400, "invalid_request_error", "starting_at must be a date in YYYY-MM-DD format"
        ) from None


def _cursor(day: date, hours: int, last_index: int) -> str:
    """Encodes the day, its data boundary (visible hours) and the position of the last record."""
    text = f"{day.isoformat()}T00:00:00Z|{hours}|{last_index}"
    return CURSOR_PREFIX + base64.urlsafe_b64encode(text.encode()).decode()


def _read_cursor(cursor: str, day: date, hours_now: int) -> tuple[int, int]:
    """The data boundary and last position a cursor for `day` encodes; a 400 for anything else."""
    bad = ApiFailure(400, "invalid_request_error", "page is not a cursor for this starting_at")
    if not cursor.startswith(CURSOR_PREFIX):
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor[len(CURSOR_PREFIX) :].encode()).decode()
        stamp, hours_text, last_text = text.split("|")
        hours, last = int(hours_text), int(last_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if stamp != f"{day.isoformat()}T00:00:00Z" or not 0 <= hours <= hours_now or last < 0:
        raise bad
    return hours, last


def _users_page(org: SimulatedOrganization, args: MultiDict[str, str]) -> dict:
    after_id, before_id = args.get("after_id"), args.get("before_id")
    if after_id is not None and before_id is not None:
        raise ApiFailure(400, "invalid_request_error", "pass after_id or before_id, not both")
    limit = _limit(args)
    roles = args.getlist("roles") + args.getlist("roles[]")
    try:
        users, has_more = org.user_page(limit, after_id, before_id, args.get("email"), roles)
    except KeyError:
        raise ApiFailure(400, "invalid_request_error", "after_id or before_id is unknown") from None
    return {
        "data": users,
        "has_more": has_more,
        "first_id": users[0]["id"] if users else None,
        "last_id": users[-1]["id"] if users else None,
    }


# --- Serving --------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """No access log: the simulator runs inside tests and the exporter's demo mode."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound here rather than by werkzeug, which exits the process when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


class SimulatorServer:
    """An API served by werkzeug in a daemon thread; stop() or leave `with` to end it."""

    def __init__(self, api: AdminApi, host: str = "127.0.0.1", port: int = 0):
        self.api = api
        self.org = api.org
        with _listening_socket(host, port) as listener:
            self._server: BaseWSGIServer = make_server(
                host,
                port,
                api.app,
                threaded=True,
                request_handler=_QuietHandler,
                fd=listener.fileno(),
            )
        self.port = self._server.server_address[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(STOP_POLL_SECONDS,),
            name=f"simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
) -> SimulatorServer:
    """Serve one organization (to `api_key`, or any key) or several (each to its own key)."""
    return SimulatorServer(AdminApi(orgs, api_key), host, port)


# --- Command line ---------------------------------------------------------------------------------


class UsageError(Exception):
    """A bad flag or file; main() prints it as one sentence."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve a simulated organization's Admin API (users and Claude Code usage).",
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free one)")
    parser.add_argument("--members", type=int, default=50, help="number of members")
    parser.add_argument("--api-keys", type=int, default=None, help="API-key actors (default N/12)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated organization")
    parser.add_argument("--api-key-file", type=Path, help="require x-api-key equal to this file")
    parser.add_argument("--frozen", action="store_true", help="freeze the clock at start-up")
    return parser.parse_args(argv)


def _listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _read_key(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not key:
        raise UsageError(f"the API key file {path} is empty")
    return key


def _start(args: argparse.Namespace) -> SimulatorServer:
    host, port = _listen_address(args.listen)
    api_key = _read_key(args.api_key_file)
    clock = frozen(utc_now()) if args.frozen else None
    try:
        org = SimulatedOrganization(args.seed, args.members, args.api_keys, clock)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return serve(org, host, port, api_key)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        server = _start(args)
    except UsageError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"simulated organization serving on {server.url}", flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
