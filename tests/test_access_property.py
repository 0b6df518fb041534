"""The Grafana access sync never grants a role the Console denies, over random organizations.

Hypothesis draws an organization (members with any role, documented or not), the Grafana accounts
they have, a role mapping, and a Grafana that already holds teams and folder grants, some of them
for denied members. The sync runs against the stub Grafana over HTTP; the stub records who could
open the folder after every change it made."""

from __future__ import annotations

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
