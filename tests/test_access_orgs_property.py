"""Over random Anthropic organizations, exactly the allowed members can query each one's data.

Hypothesis draws several Anthropic organizations over one pool of people (so the same email is
a member of several, with different roles), the Grafana accounts those people have, Grafana
organizations that already exist with arbitrary members and roles, logins to keep, and Console
changes (new roles, removals, new members) between syncs. After every sync, every account asks
each organization's data source for data through `POST /api/ds/query` over HTTP; those who get it
must be exactly the members the organization's Console allows, plus the sync's own account and
the server admins and kept logins that were members already. No step of a sync may let anyone
query who could neither before nor after it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.access import DEFAULT_ROLE_MAP, KNOWN_ROLES
from exporter.grafana import BasicAuth, GrafanaClient
from exporter.orgsync import DataSource, OrganizationsSync, OrgTarget
from grafana_stub import GrafanaStub, query_data_source
from procs import Proc, start_prometheus

pytestmark = pytest.mark.e2e

PEOPLE = [f"p{i}" for i in range(6)]
ROLES = sorted(KNOWN_ROLES) + ["analyst"]
ORG_ROLES = ["Viewer", "Editor", "Admin"]
ADMIN, PASSWORD = "sync-admin", "admin-password"
SERVER_ADMIN = "root"
DS = "claude-code-prometheus"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[Proc]:
    config = {"global": {"scrape_interval": "1m"}, "scrape_configs": []}
    with start_prometheus(tmp_path_factory.mktemp("prometheus"), config) as proc:
        yield proc


memberships = st.dictionaries(st.sampled_from(PEOPLE), st.sampled_from(ROLES), max_size=6)
changes = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(PEOPLE), st.none() | st.sampled_from(ROLES)),
    max_size=5,
)


@dataclass(frozen=True)
class Scenario:
    consoles: list[dict[str, str]]  # per Anthropic organization: person -> Console role
    accounts: frozenset[str]  # the people who have a Grafana account
    existing: list[dict[str, str] | None]  # per organization: login -> Grafana role, or absent
    keep: list[str | None]
    rounds: list[list[tuple[int, str, str | None]]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(2, 3))
    logins = [*PEOPLE, SERVER_ADMIN, "outsider"]
    existing = st.none() | st.dictionaries(st.sampled_from(logins), st.sampled_from(ORG_ROLES))
    return Scenario(
        consoles=[draw(memberships) for _ in range(count)],
        accounts=frozenset(draw(st.sets(st.sampled_from(PEOPLE), min_size=3))),
        existing=[draw(existing) for _ in range(count)],
        keep=[draw(st.none() | st.sampled_from(logins)) for _ in range(count)],
        rounds=draw(st.lists(changes, min_size=1, max_size=2)),
    )


class Console:
    def __init__(self, roles: dict[str, str]):
        self.roles = roles

    def list_users(self) -> list[dict[str, str]]:
        return [{"email": f"{p}@example.com", "role": r} for p, r in self.roles.items()]


def org_name(n: int) -> str:
    return f"Claude Code: org{n}"


def build(stub: GrafanaStub, scenario: Scenario) -> None:
    stub.add_user(ADMIN, "sync@localhost", role="Admin", server_admin=True, password=PASSWORD)
    stub.add_user(SERVER_ADMIN, "root@localhost", server_admin=True)
    stub.add_user("outsider", "outsider@elsewhere.example")
    for person in sorted(scenario.accounts):
        stub.add_user(person, f"{person}@example.com")
    ids = {u.login: u.id for u in stub.users.values()}
    for n, members in enumerate(scenario.existing):
        if members is None:
            continue
        org = stub.add_org(org_name(n))
        stub.add_member(org.id, ids[ADMIN], "Admin")
        for login, role in members.items():
            if login in ids:
                stub.add_member(org.id, ids[login], role)


def queriers(stub: GrafanaStub, org_id: int) -> set[str]:
    """Every login that gets an answer from the organization's data source over HTTP."""
    found = set()
    for user in list(stub.users.values()):
        answer = query_data_source(
            stub.url, (user.login, user.password), DS, "vector(1)", org_id=org_id
        )
        assert answer.status_code in (200, 403, 404), answer.text
        if answer.status_code == 200:
            found.add(user.login)
    return found


def expected(stub: GrafanaStub, scenario: Scenario, n: int, roles: dict[str, str]) -> set[str]:
    """The allowed members with an account, the sync's account, and the server admins and kept
    logins who were members (the sync leaves those as they are)."""
    org = stub.org_named(org_name(n))
    assert org is not None
    members = stub.members(org.id)
    allowed = {
        p for p, role in roles.items() if role in DEFAULT_ROLE_MAP and p in scenario.accounts
    }
    left = {login for login in (SERVER_ADMIN, scenario.keep[n]) if login in members}
    return allowed | {ADMIN} | left


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_after_every_sync_exactly_the_allowed_members_can_query_each_organizations_data(
    prometheus, scenario
):
    consoles = [Console(dict(roles)) for roles in scenario.consoles]
    targets = [
        OrgTarget(
            f"org{n}",
            org_name(n),
            (DataSource(prometheus.url),),
            keep_logins=frozenset({scenario.keep[n]} - {None}),  # type: ignore[arg-type]
        )
        for n in range(len(consoles))
    ]
    with GrafanaStub() as stub:
        build(stub, scenario)
        syncs = OrganizationsSync(
            list(zip(consoles, targets, strict=True)),
            GrafanaClient(stub.url, basic=BasicAuth(ADMIN, PASSWORD)),
        )
        for round_changes in [[], *scenario.rounds]:
            for n, person, role in round_changes:
                roles = consoles[n % len(consoles)].roles
                if role is None:
                    roles.pop(person, None)
                else:
                    roles[person] = role
            before = stub.queryable()
            stub.query_history.clear()

            outcomes = syncs.run()

            assert all(not o.error for o in outcomes), [o.error for o in outcomes]
            after = stub.queryable()
            for step in stub.query_history:
                for key, logins in step.items():
                    assert logins <= before.get(key, frozenset()) | after.get(key, frozenset())
            for n, console in enumerate(consoles):
                org = stub.org_named(org_name(n))
                assert org is not None
                can = queriers(stub, org.id)
                assert can == expected(stub, scenario, n, console.roles), (n, console.roles)
                denied = {p for p, r in console.roles.items() if r not in DEFAULT_ROLE_MAP}
                elsewhere = {p for c in consoles for p in c.roles} - set(console.roles)
                kept = {scenario.keep[n], SERVER_ADMIN}
                assert not (can & (denied | elsewhere)) - kept
