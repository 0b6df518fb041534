"""The simulated organization's members: who they are, their roles, and their lasting habits.

Everything derives from the seed: names (and so emails), roles in a real organization's
proportions, when each member joined and started or stopped using Claude Code, how much and on
which terminals and models. About one API key per twelve members joins them as an actor."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ..clock import midnight

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
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

MAIN_MODELS = (
    ("claude-sonnet-4-5-20250929", 40),
    ("claude-sonnet-4-20250514", 25),
    ("claude-opus-4-5-20251101", 15),
    ("claude-opus-4-1-20250805", 10),
    ("claude-haiku-4-5-20251001", 10),
)
OLDER_MODELS = {"claude-sonnet-4-20250514", "claude-opus-4-1-20250805"}


@dataclass(frozen=True)
class Actor:
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


def make_users(
    seed: int, count: int, anchor: date, people_seed: int | None = None
) -> tuple[list[dict], list[Actor]]:
    """The members: names (so emails) from `people_seed`, everything else from `seed`. Two
    organizations of one `people_seed` share people (the smaller one's all), with their own roles
    and habits in each, as one company's organizations do."""
    rng = random.Random(f"users:{seed}")
    roles = _role_list(count, rng)
    taken: set[str] = set()
    users, actors = [], []
    for index, role in enumerate(roles):
        member_rng = random.Random(mix(seed, 0, index))
        name_rng = member_rng
        if people_seed is not None and people_seed != seed:
            name_rng = random.Random(mix(people_seed, 0, index))
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
) -> Actor:
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


def make_api_actors(seed: int, count: int, anchor: date, first_index: int) -> list[Actor]:
    actors = []
    for number in range(count):
        rng = random.Random(mix(seed, 1, number))
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
) -> Actor:
    model = _weighted(rng, MAIN_MODELS)
    helper = "claude-3-5-haiku-20241022" if model in OLDER_MODELS else "claude-haiku-4-5-20251001"
    return Actor(
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


def mix(seed: int, stream: int, index: int) -> int:
    """A distinct, stable RNG seed for (seed, stream, index)."""
    return ((seed * 1_000_003 + stream) * 1_000_003 + index) & (2**128 - 1)


def _weighted(rng: random.Random, choices: Iterable[tuple[str, int]]) -> str:
    names, weights = zip(*choices, strict=True)
    return rng.choices(names, weights)[0]
