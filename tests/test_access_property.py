"""The Grafana access sync never grants a role the Console denies, over random organizations.

Hypothesis draws an organization (members with any role, documented or not), the Grafana accounts
they have, a role mapping, and a Grafana that already holds teams and folder grants, some of them
for denied members. The sync runs against the stub Grafana over HTTP; the stub records who could
open the folder after every change it made.

A second property draws the emails too, from pieces that are case variants or Unicode look-alikes
of each other, and checks that an account opens the folder exactly when one Console member's email
is its own (but for ASCII case), nobody else's email is confusable with it, and that member's role
is mapped; every other account confusable with a member's email is named in the plan."""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.access import (
    CONSOLE_DENIED_ROLES,
    DEFAULT_EDITORS_TEAM,
    DEFAULT_VIEWERS_TEAM,
    KNOWN_ROLES,
    AccessConfig,
    AccessSync,
)
from exporter.grafana import GrafanaClient
from grafana_stub import GrafanaStub, Team

FOLDER = "claude-code"
MAPPABLE = sorted(KNOWN_ROLES - CONSOLE_DENIED_ROLES) + ["analyst"]
ANY_ROLE = sorted(KNOWN_ROLES) + ["analyst", "", "Admin"]


@dataclass(frozen=True)
class Member:
    role: str
    has_account: bool
    grafana_role: str
    shouting_email: bool
    in_viewers: bool
    in_editors: bool
    granted_directly: bool


members = st.builds(
    Member,
    role=st.sampled_from(ANY_ROLE),
    has_account=st.booleans(),
    grafana_role=st.sampled_from(["Viewer", "Editor"]),
    shouting_email=st.booleans(),
    in_viewers=st.booleans(),
    in_editors=st.booleans(),
    granted_directly=st.booleans(),
)
organizations = st.lists(members, max_size=10)
role_maps = st.dictionaries(st.sampled_from(MAPPABLE), st.sampled_from(["view", "edit"]))


class Organization:
    """What the Admin API's users endpoint returns, as AccessSync reads it."""

    def __init__(self, people: list[Member]):
        self.users = [
            {"id": f"user_{i}", "email": f"member{i}@example.com", "role": p.role}
            for i, p in enumerate(people)
        ]

    def list_users(self) -> list[dict]:
        return self.users


def build_grafana(stub: GrafanaStub, people: list[Member], teams_exist: bool) -> dict[str, str]:
    """Accounts, pre-existing teams and folder grants; returns each login's Console role."""
    folder = stub.add_folder(FOLDER, "Claude Code")
    roles, viewers, editors = {}, set(), set()
    for i, person in enumerate(people):
        if not person.has_account:
            continue
        email = f"member{i}@example.com"
        user = stub.add_user(
            f"member{i}", email.upper() if person.shouting_email else email, person.grafana_role
        )
        roles[user.login] = person.role
        if person.in_viewers:
            viewers.add(user.id)
        if person.in_editors:
            editors.add(user.id)
        if person.granted_directly:
            folder.items.append({"userId": user.id, "permission": 1})
    stub.add_user("outsider", "outsider@elsewhere.example", "Editor")
    if teams_exist:
        for name, team_members, permission in (
            (DEFAULT_VIEWERS_TEAM, viewers, 1),
            (DEFAULT_EDITORS_TEAM, editors, 2),
        ):
            team = Team(next(stub._ids), name, members=set(team_members))
            stub.teams[team.id] = team
            folder.items.append({"teamId": team.id, "permission": permission})
    return roles


def denied_viewers(visibility: dict, roles: dict[str, str], role_map: dict) -> set[str]:
    return {login for login in visibility[FOLDER] if roles.get(login, "") not in role_map}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organizations, role_maps, st.booleans())
def test_the_sync_never_grants_the_folder_to_a_role_outside_the_mapping(
    people, role_map, teams_exist
):
    with GrafanaStub() as stub:
        roles = build_grafana(stub, people, teams_exist)
        before = denied_viewers(stub.visibility(), roles, role_map)
        sync = AccessSync(
            Organization(people),
            GrafanaClient(stub.url, stub.token),
            AccessConfig(role_map=role_map),
        )
        plan = sync.plan()
        for change in plan.add:
            login = next(u.login for u in stub.users.values() if u.id == change.user_id)
            assert roles[login] in role_map, f"the plan adds {login} ({roles[login]!r})"
        sync.apply(plan)
        steps = [denied_viewers(seen, roles, role_map) for seen in stub.history]
        after = stub.visibility()[FOLDER]
    for step in steps:
        assert step <= before, "a step of the sync widened access to a denied member"
    assert not (steps[-1] if steps else before)
    allowed = {login for login, role in roles.items() if role in role_map}
    assert allowed <= after
    assert all(roles.get(login, "") in role_map for login in after)


# Pieces of emails: each line holds strings that are the same letter to a reader. Some are equal
# under NFKC and case folding (A, fullwidth a, the feminine ordinal, the Kelvin sign, the sharp s
# and "ss", the ff ligature, composed and decomposed e-acute), some only look alike (Cyrillic a).
LOOK_ALIKES = [
    ["a", "A", "\u0430", "\uff41", "\uff21", "\u00aa"],
    ["k", "K", "\u212a", "\u043a"],
    ["ss", "SS", "\u00df", "\u1e9e"],
    ["ff", "\ufb00"],
    ["\u00e9", "e\u0301", "\u00c9", "e"],
]
DOMAINS = ["example.com", "EXAMPLE.com", "\uff45xample.com"]
emails = st.builds(
    lambda pieces, domain: "".join(pieces) + "@" + domain,
    st.lists(st.sampled_from([p for line in LOOK_ALIKES for p in line]), min_size=1, max_size=2),
    st.sampled_from(DOMAINS),
)
console_members = st.lists(st.tuples(emails, st.sampled_from(ANY_ROLE)), max_size=6)


@st.composite
def members_and_accounts(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str]]:
    """Members and accounts, many of them a member's email as typed or in another case."""
    members = draw(console_members)
    account = emails
    if members:
        typed = st.tuples(
            st.sampled_from([email for email, _ in members]),
            st.sampled_from([str, str.upper, str.swapcase]),
        ).map(lambda pair: pair[1](pair[0]))
        members += draw(st.lists(st.tuples(typed, st.sampled_from(ANY_ROLE)), max_size=2))
        account = st.one_of(emails, typed)
    return members, draw(st.lists(account, max_size=6))


def confusable(email: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())


def ascii_lower(email: str) -> str:
    return email.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))


class Console:
    def __init__(self, members: list[tuple[str, str]]):
        self.users = [{"email": email, "role": role} for email, role in members]

    def list_users(self) -> list[dict]:
        return self.users


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members_and_accounts(), role_maps)
def test_an_account_opens_the_folder_only_through_one_exact_unambiguous_allowed_member(
    organization, role_map
):
    members, accounts = organization
    with GrafanaStub() as stub:
        folder = stub.add_folder(FOLDER, "Claude Code")
        users = [stub.add_user(f"acct{i}", email) for i, email in enumerate(accounts)]
        # A team that an earlier sync filled, before the accounts' emails became ambiguous.
        team = Team(next(stub._ids), DEFAULT_VIEWERS_TEAM, members={u.id for u in users})
        stub.teams[team.id] = team
        folder.items = [{"teamId": team.id, "permission": 1}]
        sync = AccessSync(
            Console(members), GrafanaClient(stub.url, stub.token), AccessConfig(role_map=role_map)
        )
        lines = sync.plan().describe()
        sync.sync()
        seen = stub.visibility()[FOLDER]
    ambiguous = "\n".join(lines[lines.index(_AMBIGUOUS) :] if _AMBIGUOUS in lines else [])
    for user in users:
        key = confusable(user.email)
        sharing = [(email, role) for email, role in members if confusable(email) == key]
        twins = [u for u in users if confusable(u.email) == key]
        own = [role for email, role in sharing if ascii_lower(email) == ascii_lower(user.email)]
        unambiguous = len(sharing) == 1 == len(twins) == len(own)
        assert (user.login in seen) == (unambiguous and own[0] in role_map), (user, sharing)
        if any(role not in role_map for _, role in sharing):
            assert user.login not in seen, "a denied role must win"
        named = f"{ascii(user.email)} (Grafana user {user.id}," in ambiguous
        assert named == bool(sharing and not unambiguous), (user, sharing, ambiguous)


_AMBIGUOUS = "Ambiguous emails, so no access for these Grafana accounts:"
