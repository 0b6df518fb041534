"""A Grafana organization per Anthropic organization: who can query its data, from outside.

Each test drives the stub Grafana over HTTP, as Grafana's users and the sync reach Grafana, and
queries go through `POST /api/ds/query` to real Prometheus servers, one per Anthropic
organization, each scraping itself under an `organization` label that tells whose data came back.
The Console's members are lists of {email, role}, as the Admin API's users endpoint gives them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from conftest import TEST_KEY
from exporter import access, orgsync
from exporter.access import AccessConfig, AccessSync
from exporter.grafana import BasicAuth, GrafanaClient
from exporter.orgsync import DataSource, OrganizationsSync, OrgSync, OrgTarget, sync_organizations
from fake_admin_api import FakeAdminApi
from grafana_stub import GrafanaStub, query_data_source
from procs import Proc, start_prometheus

ROOT = Path(__file__).resolve().parent.parent
PROG = "claude-code-analytics-exporter grafana-access"
ADMIN, PASSWORD = "sync-admin", "s3cret-CANARY-password"
DS = "claude-code-prometheus"
ACME, BETA = "Claude Code: acme", "Claude Code: beta"
DENIED_ROLES = ("user", "claude_code_user", "membership_admin")

pytestmark = pytest.mark.e2e


class Console:
    """An Anthropic organization's members, as the Admin API lists them; edit `roles` to change
    a role in the Console, delete an entry to remove a member."""

    def __init__(self, roles: dict[str, str]):
        self.roles = dict(roles)

    def list_users(self) -> list[dict]:
        return [{"email": email, "role": role} for email, role in self.roles.items()]


def prometheus_for(tmp_path: Path, organization: str) -> Proc:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "self",
                "static_configs": [
                    {"targets": ["PLACEHOLDER"], "labels": {"organization": organization}}
                ],
            }
        ],
    }
    proc = start_prometheus(tmp_path, config)
    # Point the scrape at the port Prometheus got, and wait for a sample.
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{proc.port}"]
    config_file = next(tmp_path.glob("prometheus-*/prometheus.yml"))
    config_file.write_text(yaml.safe_dump(config))
    requests.post(f"{proc.url}/-/reload", timeout=10).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = requests.get(f"{proc.url}/api/v1/query", params={"query": "up"}, timeout=5)
        if found.json()["data"]["result"]:
            return proc
        time.sleep(0.2)
    proc.stop()
    raise AssertionError("Prometheus did not scrape itself in time")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[dict[str, Proc]]:
    acme = prometheus_for(tmp_path_factory.mktemp("acme"), "acme")
    beta = prometheus_for(tmp_path_factory.mktemp("beta"), "beta")
    with acme, beta:
        yield {"acme": acme, "beta": beta}


ACME_ROLES = {
    "pat@example.com": "primary_owner",
    "olga@example.com": "owner",
    "adam@example.com": "admin",
    "bill@example.com": "billing",
    "dev@example.com": "developer",
    "uma@example.com": "user",
    "cc@example.com": "claude_code_user",
    "mia@example.com": "membership_admin",
    "zed@example.com": "analyst",
}
BETA_ROLES = {"bea@example.com": "developer", "dev@example.com": "user", "ben@example.com": "user"}


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    """Every member of both organizations has an account in the main organization, as Grafana's
    auto_assign_org gives it; the sync signs in as a server admin; `root` is another one."""
    with GrafanaStub() as stub:
        stub.add_user(ADMIN, "sync@localhost", role="Admin", server_admin=True, password=PASSWORD)
        stub.add_user("root", "root@localhost", server_admin=True)
        for email in sorted({*ACME_ROLES, *BETA_ROLES}):
            stub.add_user(email.split("@")[0], email)
        stub.add_user("outsider", "outsider@elsewhere.example")
        yield stub


def admin(grafana: GrafanaStub) -> GrafanaClient:
    return GrafanaClient(grafana.url, basic=BasicAuth(ADMIN, PASSWORD))


def target(prometheus: dict[str, Proc], name: str, **extra: object) -> OrgTarget:
    org = ACME if name == "acme" else BETA
    return OrgTarget(name, org, (DataSource(prometheus[name].url),), **extra)  # type: ignore[arg-type]


def sync(grafana: GrafanaStub, console: Console, goal: OrgTarget) -> orgsync.OrgPlan:
    return OrgSync(console, admin(grafana), goal).sync()


def org_id(grafana: GrafanaStub, name: str) -> int:
    org = grafana.org_named(name)
    assert org is not None, f"no organization {name!r}"
    return org.id


def query(grafana: GrafanaStub, login: str, org: int | None) -> requests.Response:
    return query_data_source(grafana.url, (login, "secret"), DS, "up", org_id=org)


def answered_by(response: requests.Response) -> set[str]:
    """Whose Prometheus answered: the `organization` label of every series returned."""
    assert response.status_code == 200, response.text
    frames = response.json()["results"]["A"]["frames"]
    return {field["labels"]["organization"] for f in frames for field in f["schema"]["fields"][1:]}


def queriers(grafana: GrafanaStub, org: int) -> set[str]:
    """Every login that gets this organization's data through POST /api/ds/query."""
    return {
        u.login
        for u in list(grafana.users.values())
        if query_data_source(grafana.url, (u.login, u.password), DS, "up", org_id=org).status_code
        == 200
    }


def allowed(roles: dict[str, str]) -> set[str]:
    return {e.split("@")[0] for e, r in roles.items() if r in access.DEFAULT_ROLE_MAP}


# Membership.


def test_allowed_members_join_the_dedicated_organization_with_the_role_their_console_role_maps_to(
    grafana, prometheus
):
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert grafana.members(org_id(grafana, ACME)) == {
        ADMIN: "Admin",
        "pat": "Editor",
        "olga": "Editor",
        "adam": "Editor",
        "bill": "Viewer",
        "dev": "Viewer",
    }


def test_everyone_else_is_removed_and_server_admins_are_left_as_they_are(grafana, prometheus):
    org = grafana.add_org(ACME)
    for login, role in [
        ("uma", "Admin"),
        ("cc", "Viewer"),
        ("outsider", "Editor"),
        ("root", "Viewer"),
    ]:
        user = next(u for u in grafana.users.values() if u.login == login)
        grafana.add_member(org.id, user.id, role)
    grafana.add_member(
        org.id, next(u.id for u in grafana.users.values() if u.login == ADMIN), "Admin"
    )

    plan = sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    members = grafana.members(org.id)
    assert {"uma", "cc", "outsider"}.isdisjoint(members)
    assert members["root"] == "Viewer"
    assert any("root (server admin)" in line for line in plan.describe())


def test_an_existing_organization_the_sync_is_not_in_is_joined_as_admin_then_reconciled(
    grafana, prometheus
):
    org = grafana.add_org(ACME)
    grafana.add_member(
        org.id, next(u.id for u in grafana.users.values() if u.login == "uma"), "Admin"
    )

    plan = sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert f"  make the sync's account {ADMIN!r} its Admin" in plan.describe()
    assert grafana.members(org.id)[ADMIN] == "Admin"
    assert "uma" not in grafana.members(org.id)
    assert queriers(grafana, org.id) == allowed(ACME_ROLES) | {ADMIN}


def test_removed_accounts_keep_their_other_organizations(grafana, prometheus):
    """DELETE /api/orgs/:orgId/users/:userId takes a user out of one organization only; the sync
    never uses the current-organization endpoint, which deletes an account left in none."""
    org = grafana.add_org(ACME)
    lone = grafana.add_user("lone", "lone@example.com", role="Viewer", org_id=org.id)

    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert lone.id in grafana.users
    assert "lone" not in grafana.members(org.id)


def test_role_changes_and_removals_in_the_console_take_effect_on_the_next_sync(grafana, prometheus):
    console = Console(ACME_ROLES)
    goal = target(prometheus, "acme")
    sync(grafana, console, goal)
    console.roles["dev@example.com"] = "user"
    console.roles["uma@example.com"] = "admin"
    console.roles["olga@example.com"] = "billing"
    del console.roles["pat@example.com"]

    sync(grafana, console, goal)

    members = grafana.members(org_id(grafana, ACME))
    assert "dev" not in members and "pat" not in members
    assert members["uma"] == "Editor"
    assert members["olga"] == "Viewer"


def test_a_second_sync_changes_nothing(grafana, prometheus):
    console, goal = (
        Console(ACME_ROLES),
        target(prometheus, "acme", dashboards=ROOT / "dashboards" / "generated"),
    )
    sync(grafana, console, goal)
    writes = len(grafana.writes())

    plan = sync(grafana, console, goal)

    assert plan.empty, plan.describe()
    assert len(grafana.writes()) == writes


def test_logins_the_configuration_keeps_stay_whatever_the_console_says(grafana, prometheus):
    org = grafana.add_org(ACME)
    auditor = grafana.add_user("auditor", "auditor@example.com", role="Viewer", org_id=org.id)

    sync(
        grafana, Console(ACME_ROLES), target(prometheus, "acme", keep_logins=frozenset({"auditor"}))
    )

    assert grafana.members(org.id)["auditor"] == "Viewer"
    assert can_query_via_header(grafana, auditor.login, org.id)


def test_a_role_the_console_denies_never_enters_even_when_mapped_by_hand(grafana, prometheus):
    with pytest.raises(access.AccessConfigError, match="cannot be mapped"):
        AccessConfig(role_map={"user": "view"})


# Who can query.


def can_query_via_header(grafana: GrafanaStub, login: str, org: int) -> bool:
    return query(grafana, login, org).status_code == 200


def test_a_viewer_of_the_dedicated_organization_gets_its_data(grafana, prometheus):
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    answer = query(grafana, "dev", org_id(grafana, ACME))

    assert answered_by(answer) == {"acme"}


@pytest.mark.parametrize("login", ["uma", "cc", "mia"], ids=DENIED_ROLES)
def test_a_member_whose_console_role_is_denied_is_refused(grafana, prometheus, login):
    org = grafana.add_org(ACME)
    grafana.add_member(
        org.id, next(u.id for u in grafana.users.values() if u.login == login), "Viewer"
    )

    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    answer = query(grafana, login, org.id)
    assert answer.status_code == 403
    assert answer.json()["title"] == "Access denied"
    assert query(grafana, login, None).status_code == 404  # not in their own organization


def test_someone_outside_the_dedicated_organization_is_refused(grafana, prometheus):
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))
    org = org_id(grafana, ACME)

    assert query(grafana, "outsider", org).status_code == 403
    assert query(grafana, "outsider", None).json() == {"message": "Data source not found"}


def test_a_member_of_only_another_anthropic_organization_is_refused(grafana, prometheus):
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))
    sync(grafana, Console(BETA_ROLES), target(prometheus, "beta"))

    assert answered_by(query(grafana, "bea", org_id(grafana, BETA))) == {"beta"}
    assert query(grafana, "bea", org_id(grafana, ACME)).status_code == 403
    assert answered_by(query(grafana, "dev", org_id(grafana, ACME))) == {"acme"}
    assert query(grafana, "dev", org_id(grafana, BETA)).status_code == 403  # a user in beta


def test_a_service_account_token_of_one_organization_is_refused_in_another(grafana, prometheus):
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))
    token = grafana.add_service_account(1, "Viewer")

    answer = query_data_source(grafana.url, token, DS, "up", org_id=org_id(grafana, ACME))

    assert answer.status_code == 401
    assert answer.json()["message"] == "API key does not belong to the requested organization"


def test_the_folder_mode_alone_leaves_a_viewer_able_to_query(grafana, prometheus):
    """The gap this mode closes: the teams and folder permissions hide the dashboards, but a
    Viewer of the organization that holds the data source still queries it directly."""
    grafana.add_datasource(1, DS, "Prometheus (Claude Code)", prometheus["acme"].url)
    grafana.add_folder("claude-code", "Claude Code")
    sync_folder = AccessSync(
        Console(ACME_ROLES), GrafanaClient(grafana.url, grafana.token), AccessConfig()
    )
    sync_folder.sync()

    assert "uma" not in grafana.visibility()["claude-code"]
    assert answered_by(query(grafana, "uma", None)) == {"acme"}


def test_the_dedicated_organization_closes_that_gap(grafana, prometheus):
    """The same Console and Grafana as above, synced into a dedicated organization: the denied
    member can query nothing of acme's."""
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert queriers(grafana, org_id(grafana, ACME)) == allowed(ACME_ROLES) | {ADMIN}


def test_no_step_of_a_sync_lets_anyone_query_who_could_not_before_or_after(grafana, prometheus):
    console, goal = Console(ACME_ROLES), target(prometheus, "acme")
    sync(grafana, console, goal)
    org = org_id(grafana, ACME)
    console.roles["dev@example.com"] = "claude_code_user"
    console.roles["cc@example.com"] = "developer"
    console.roles["adam@example.com"] = "billing"
    grafana.add_member(
        org, next(u.id for u in grafana.users.values() if u.login == "outsider"), "Admin"
    )
    before = grafana.queryable()[(org, DS, prometheus["acme"].url)]
    grafana.query_history.clear()

    sync(grafana, console, goal)

    after = grafana.queryable()[(org, DS, prometheus["acme"].url)]
    assert grafana.query_history, "the sync changed nothing"
    assert all(
        step.get((org, DS, prometheus["acme"].url), frozenset()) <= before | after
        for step in grafana.query_history
    )
    assert "dev" not in after and "cc" in after and "outsider" not in after


def test_the_data_source_is_corrected_when_it_points_elsewhere(grafana, prometheus):
    console = Console(ACME_ROLES)
    sync(grafana, console, target(prometheus, "acme"))
    org = grafana.orgs[org_id(grafana, ACME)]
    org.datasources[DS].url = prometheus["beta"].url

    plan = sync(grafana, console, target(prometheus, "acme"))

    assert any(line.startswith("  correct data source") for line in plan.describe())
    assert answered_by(query(grafana, "dev", org.id)) == {"acme"}


def test_a_data_source_pointed_at_another_organization_is_corrected_only_once_outsiders_left(
    grafana, prometheus
):
    org = grafana.add_org(ACME)
    ids = {u.login: u.id for u in grafana.users.values()}
    for login, role in ((ADMIN, "Admin"), ("bea", "Viewer"), ("dev", "Viewer")):
        grafana.add_member(org.id, ids[login], role)
    grafana.add_datasource(org.id, DS, "Prometheus (Claude Code)", prometheus["beta"].url)
    acme_data = (org.id, DS, prometheus["acme"].url)

    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    steps = [step[acme_data] for step in grafana.query_history if acme_data in step]
    assert steps, "the data source was never pointed at acme's Prometheus"
    assert all("bea" not in logins for logins in steps)
    assert answered_by(query(grafana, "dev", org.id)) == {"acme"}


def test_a_tenant_header_reaches_the_data_source_and_a_changed_value_is_noticed(
    grafana, prometheus
):
    console = Console(ACME_ROLES)
    goal = OrgTarget(
        "acme", ACME, (DataSource(prometheus["acme"].url, headers={"X-Scope-OrgID": "acme"}),)
    )
    sync(grafana, console, goal)
    source = grafana.orgs[org_id(grafana, ACME)].datasources[DS]
    assert source.json_data["httpHeaderName1"] == "X-Scope-OrgID"
    assert source.secure_json_data == {"httpHeaderValue1": "acme"}

    changed = OrgTarget(
        "acme", ACME, (DataSource(prometheus["acme"].url, headers={"X-Scope-OrgID": "beta"}),)
    )
    sync(grafana, console, changed)

    assert source.secure_json_data == {"httpHeaderValue1": "beta"}


# Dashboards, folder and teams inside the organization.


def test_the_dashboards_are_imported_into_the_folder_and_the_folder_is_granted_to_the_teams(
    grafana, prometheus
):
    dashboards = ROOT / "dashboards" / "generated"
    sync(grafana, Console(ACME_ROLES), target(prometheus, "acme", dashboards=dashboards))

    org = grafana.orgs[org_id(grafana, ACME)]
    expected = {json.loads(p.read_text())["uid"] for p in dashboards.glob("*.json")}
    assert {d.uid for d in org.dashboards.values()} == expected
    assert {d.folder_uid for d in org.dashboards.values()} == {"claude-code"}
    teams = {t.name: {grafana.users[u].login for u in t.members} for t in org.teams.values()}
    assert teams == {
        access.DEFAULT_EDITORS_TEAM: {"pat", "olga", "adam"},
        access.DEFAULT_VIEWERS_TEAM: {"bill", "dev"},
    }
    assert grafana.visibility(org.id)["claude-code"] == allowed(ACME_ROLES) | {ADMIN}
    assert org.datasources[DS].is_default


# Safety: dry run, rollback, credentials, refusals.


def test_dry_run_prints_the_plan_and_changes_nothing(grafana, prometheus, capsys):
    before = grafana.snapshot()

    status = sync_organizations(
        [(Console(ACME_ROLES), target(prometheus, "acme"))], admin(grafana), dry_run=True
    )

    out = capsys.readouterr().out
    assert status == 0
    assert grafana.writes() == []
    assert grafana.snapshot() == before
    assert f"Grafana organization {ACME!r} for 'acme':" in out
    assert "  add pat@example.com as Editor" in out
    assert "Dry run: nothing was changed." in out


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", r"/api/orgs/\d+/users"),
        ("DELETE", r"/api/orgs/\d+/users/\d+"),
        ("POST", r"/api/datasources"),
        ("POST", r"/api/teams/\d+/members"),
    ],
)
def test_an_error_from_grafana_leaves_membership_and_data_sources_as_they_were(
    grafana, prometheus, method, path
):
    org = grafana.add_org(ACME)
    me = next(u for u in grafana.users.values() if u.login == ADMIN)
    grafana.add_member(org.id, me.id, "Admin")
    grafana.add_member(
        org.id, next(u.id for u in grafana.users.values() if u.login == "uma"), "Viewer"
    )
    before = grafana.snapshot()
    grafana.fail(method, path)

    with pytest.raises(access.AccessSyncError, match="HTTP 500.*undone"):
        sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert grafana.snapshot() == before


def test_an_error_while_creating_the_organization_leaves_no_organization(grafana, prometheus):
    grafana.fail("POST", r"/api/folders")

    with pytest.raises(access.AccessSyncError, match="undone"):
        sync(grafana, Console(ACME_ROLES), target(prometheus, "acme"))

    assert grafana.org_named(ACME) is None


def test_an_account_whose_login_differs_only_in_case_is_never_added_in_anothers_place(
    grafana, prometheus
):
    """Grafana finds `loginOrEmail` regardless of case, so adding `kim` may add `Kim`."""
    impostor = grafana.add_user("Kim", "someone@elsewhere.example")
    grafana.add_user("kim", "kim@example.com")

    with pytest.raises(
        access.AccessSyncError, match="make the two logins differ by more than case"
    ):
        sync(grafana, Console({"kim@example.com": "developer"}), target(prometheus, "acme"))

    assert grafana.org_named(ACME) is None
    assert all(impostor.id not in o.members for o in grafana.orgs.values() if o.id != 1)


def test_grafanas_first_organization_is_refused(grafana, prometheus):
    with pytest.raises(access.AccessSyncError, match="first organization"):
        sync(
            grafana,
            Console(ACME_ROLES),
            OrgTarget("acme", "Main Org.", (DataSource(prometheus["acme"].url),)),
        )


def test_a_user_who_is_not_a_server_admin_is_refused_in_one_sentence(grafana, prometheus):
    grafana.add_user("plain", "plain@localhost", role="Admin", password=PASSWORD)
    client = GrafanaClient(grafana.url, basic=BasicAuth("plain", PASSWORD))

    with pytest.raises(access.AccessSyncError, match="'plain' is not a server admin"):
        OrgSync(Console(ACME_ROLES), client, target(prometheus, "acme")).sync()


def test_ambiguous_emails_get_nothing_and_make_the_status_3(grafana, prometheus, capsys):
    grafana.add_user("dev-shouting", "DEV@example.com")

    status = sync_organizations([(Console(ACME_ROLES), target(prometheus, "acme"))], admin(grafana))

    err = capsys.readouterr().err
    assert status == access.EXIT_AMBIGUOUS
    assert {"dev", "dev-shouting"}.isdisjoint(grafana.members(org_id(grafana, ACME)))
    assert "acme: warning: the accounts listed as ambiguous got no access" in err


def test_one_failing_organization_does_not_stop_the_others(grafana, prometheus, capsys):
    grafana.add_org(BETA)
    broken = OrgTarget("beta", BETA, (DataSource(prometheus["beta"].url),))
    grafana.fail("GET", r"/api/orgs/\d+/users")  # the first organization read fails

    status = sync_organizations(
        [(Console(BETA_ROLES), broken), (Console(ACME_ROLES), target(prometheus, "acme"))],
        admin(grafana),
    )

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"{PROG}: beta: Grafana answered GET /api/orgs/")
    assert err.count("\n") == 1
    assert queriers(grafana, org_id(grafana, ACME)) == allowed(ACME_ROLES) | {ADMIN}


def test_two_anthropic_organizations_cannot_share_one_grafana_organization(grafana, prometheus):
    same = target(prometheus, "acme")
    with pytest.raises(access.AccessConfigError, match="named for two organizations"):
        OrganizationsSync([(Console({}), same), (Console({}), same)], admin(grafana))


# The command line.


def run_cli(
    api: FakeAdminApi, grafana: GrafanaStub, *args: str, **env: str
) -> subprocess.CompletedProcess:
    full_env = {
        "PATH": "/usr/bin:/bin",
        "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
        "ANTHROPIC_BASE_URL": api.url,
        "GRAFANA_URL": grafana.url,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "exporter", "grafana-access", "sync", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def console_api() -> Iterator[FakeAdminApi]:
    with FakeAdminApi(TEST_KEY, fixtures=Path(__file__).parent / "fixtures" / "access") as api:
        yield api


def test_the_command_syncs_a_dedicated_organization_with_a_server_admins_password_file(
    console_api, grafana, prometheus, tmp_path
):
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    org_flags = ("--grafana.org-name", ACME, "--grafana.datasource-url", prometheus["acme"].url)

    done = run_cli(
        console_api, grafana, *org_flags,
        GRAFANA_ADMIN_USER=ADMIN, GRAFANA_ADMIN_PASSWORD_FILE=str(password_file),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "Applied." in done.stdout
    org = org_id(grafana, ACME)
    assert queriers(grafana, org) == {"pat", "olga", "adam", "bill", "dev", ADMIN}
    assert PASSWORD not in done.stdout + done.stderr
    assert TEST_KEY not in done.stdout + done.stderr


def test_a_token_alone_cannot_run_the_organization_mode_and_says_why(console_api, grafana):
    done = run_cli(
        console_api, grafana, "--grafana.org-name", ACME, "--grafana.datasource-url",
        "http://prometheus-acme:9090", GRAFANA_TOKEN=grafana.token,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.startswith(f"{PROG}: a service-account token belongs to one organization")
    assert done.stderr.count("\n") == 1
    assert grafana.token not in done.stdout + done.stderr
    assert grafana.writes() == []


def test_a_wrong_password_is_one_sentence_that_does_not_show_it(console_api, grafana):
    done = run_cli(
        console_api, grafana, "--grafana.org-name", ACME, "--grafana.datasource-url",
        "http://prometheus-acme:9090", GRAFANA_ADMIN_USER=ADMIN,
        GRAFANA_ADMIN_PASSWORD="wrong-CANARY-password",
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr == (
        f"{PROG}: {ACME}: Grafana answered GET /api/user with HTTP 401: "
        "Invalid username or password.\n"
    )
    assert "wrong-CANARY-password" not in done.stdout + done.stderr


def test_the_organization_mode_needs_the_data_source_url(console_api, grafana):
    done = run_cli(
        console_api, grafana, "--grafana.org-name", ACME,
        GRAFANA_ADMIN_USER=ADMIN, GRAFANA_ADMIN_PASSWORD=PASSWORD,
    )  # fmt: skip

    assert done.returncode == 2
    assert "--grafana.org-name needs --grafana.datasource-url" in done.stderr


# Finance: one organization across several Anthropic organizations.


def test_a_cross_organization_report_admits_only_people_allowed_in_every_organization(
    grafana, prometheus
):
    both = {**ACME_ROLES, "bea@example.com": "billing"}
    finance = OrgTarget(
        "finance",
        "Claude Code: finance",
        (
            DataSource(prometheus["acme"].url, uid="acme", name="acme"),
            DataSource(prometheus["beta"].url, uid="beta", name="beta"),
        ),
    )
    beta = Console({**BETA_ROLES, "bill@example.com": "admin", "pat@example.com": "user"})

    OrgSync([Console(both), beta], admin(grafana), finance).sync()

    org = org_id(grafana, "Claude Code: finance")
    assert grafana.members(org) == {ADMIN: "Admin", "bill": "Viewer", "bea": "Viewer"}
    for uid, organization in (("acme", "acme"), ("beta", "beta")):
        found = query_data_source(grafana.url, ("bill", "secret"), uid, "up", org_id=org)
        assert answered_by(found) == {organization}


def test_the_exporters_timer_runs_the_organization_mode_from_the_same_flags(
    grafana, prometheus, monkeypatch
):
    parser = argparse.ArgumentParser()
    access.add_config_arguments(parser)
    args = parser.parse_args(
        ["--grafana.url", grafana.url, "--grafana.org-name", ACME,
         "--grafana.datasource-url", prometheus["acme"].url, "--grafana.admin-user", ADMIN]
    )  # fmt: skip
    monkeypatch.setenv("GRAFANA_ADMIN_PASSWORD", PASSWORD)
    syncer = access.build(args, Console(ACME_ROLES))
    stop = threading.Event()
    thread = threading.Thread(target=syncer.run_forever, args=(0.05, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while grafana.org_named(ACME) is None or "dev" not in grafana.members(
            org_id(grafana, ACME)
        ):
            assert time.monotonic() < deadline, "the timer did not sync"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert queriers(grafana, org_id(grafana, ACME)) == allowed(ACME_ROLES) | {ADMIN}
