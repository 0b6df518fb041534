"""A deterministic simulated organization: its members and each UTC day's usage records.

Days are generated lazily and the recent ones cached, so any organization size and any day can be
served without precomputing a history."""

from __future__ import annotations

import collections
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from ..clock import Clock, as_utc, utc_now
from .members import ROLES, make_api_actors, make_users
from .usage import HOURS_PER_DAY, ActorDay, draw_actor_day, render, visible_hours

CACHED_DAYS = 64
CACHED_VIEWS = 32

if TYPE_CHECKING:
    import flask

# Consulted before the API answers a request for the organization; a response is served instead.
RequestHook = Callable[["flask.Request"], "flask.Response | None"]


@dataclass(frozen=True)
class SpendSpike:
    """Multiplies every usage quantity of one member (or, with member=None, everyone) on some days.

    A named member (an email or an API key name) is active on every spike day, whatever their
    usual rhythm.
    """

    days: frozenset[date]
    factor: float
    member: str | None = None


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
        self._users, user_actors = make_users(seed, members, self._anchor, people_seed)
        key_count = max(1, round(members / 12)) if api_keys is None else api_keys
        api_actors = make_api_actors(seed, key_count, self._anchor, len(user_actors))
        self._actors = user_actors + api_actors
        self._user_index = {user["id"]: i for i, user in enumerate(self._users)}
        self._user_by_email = {user["email"].lower(): user for user in self._users}
        self._days: collections.OrderedDict[date, tuple[ActorDay, ...]] = collections.OrderedDict()
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
        limit: int,
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
            record = render(actor_day, day, hours, self.organization_id)
            if record is not None:
                yield index, record

    def _actor_days(self, day: date) -> tuple[ActorDay, ...]:
        with self._lock:
            if day in self._days:
                self._days.move_to_end(day)
                return self._days[day]
        generated = tuple(self._generate_day(day))
        with self._lock:
            _remember(self._days, day, generated, CACHED_DAYS)
        return generated

    def _generate_day(self, day: date) -> Iterator[ActorDay]:
        spike = self.spend_spike
        spiked_today = spike is not None and day in spike.days
        for actor in self._actors:
            forced = spiked_today and spike.member == actor.name  # type: ignore[union-attr]
            if not (forced or actor.uses_claude_code_on(day)):
                continue
            for actor_day in draw_actor_day(actor, day, self.seed, forced):
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
