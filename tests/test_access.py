"""The Grafana access sync, against a stub Grafana over HTTP and the documented users JSON.

The organization in `tests/fixtures/access/` has one member of every Console role, one member with a
role the API does not document (`analyst`), and one allowed member with no Grafana account (nia).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conftest import TEST_KEY
from exporter import access
from exporter.access import AccessConfig, AccessConfigError, AccessSync, AccessSyncError
from exporter.client import AdminClient
from exporter.grafana import GrafanaClient
from exporter.simulator import SimulatedOrganization, SimulatorServer, serve
from fake_admin_api import FakeAdminApi
from grafana_stub import GrafanaStub

ROOT = Path(__file__).resolve().parent.parent
FOLDER = "claude-code"
PROG = "claude-code-analytics-exporter grafana-access"
ALLOWED = {"pat", "olga", "adam", "bill", "dev"}
DENIED = {"uma", "cc", "mia", "max", "zed"}
EDITORS = {"pat", "olga", "adam"}
VIEWERS = {"bill", "dev"}
GRAFANA_ADMINS = {"admin", "root"}


@pytest.fixture
def org() -> Iterator[FakeAdminApi]:
    with FakeAdminApi(TEST_KEY, fixtures=Path(__file__).parent / "fixtures" / "access") as api:
        yield api


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    with GrafanaStub() as stub:
        for login in sorted(ALLOWED | DENIED):
            stub.add_user(
                login, f"{login}@example.com", role="Editor" if login == "uma" else "Viewer"
            )
        stub.add_user("admin", "admin@localhost", role="Admin")
        stub.add_user("root", "root@localhost", server_admin=True)
        stub.add_folder(FOLDER, "Claude Code")
        stub.add_folder("other", "Other dashboards")
        yield stub


def make_sync(
    org: FakeAdminApi | SimulatorServer, grafana: GrafanaStub, **config: object
) -> AccessSync:
    client = AdminClient(org.url, TEST_KEY, max_retries=0)
    return AccessSync(client, GrafanaClient(grafana.url, grafana.token), AccessConfig(**config))


def seen_by(grafana: GrafanaStub, login: str) -> set[str]:
    """The folders `login` finds when searching Grafana as themselves."""
    response = requests.get(
        f"{grafana.url}/api/search",
        params={"type": "dash-folder"},
        auth=(login, "secret"),
        timeout=5,
    )
    response.raise_for_status()
    return {folder["uid"] for folder in response.json()}


def who_sees(grafana: GrafanaStub, uid: str = FOLDER) -> set[str]:
    return {u.login for u in grafana.users.values() if uid in seen_by(grafana, u.login)}


def set_role(org: FakeAdminApi, email: str, role: str) -> None:
    """A role change in the Console, as the users endpoint reports it afterwards."""
    for page in org.users:
        for user in page["data"]:
            if user["email"].lower() == email:
                user["role"] = role


def team_members(grafana: GrafanaStub, name: str) -> set[str]:
    team = next(t for t in grafana.teams.values() if t.name == name)
    return {grafana.users[uid].login for uid in team.members}


def cli_args(grafana: GrafanaStub, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    access.add_arguments(parser)
    return parser.parse_args(["--grafana.url", grafana.url, *extra])


def test_before_a_sync_grafanas_default_grants_show_the_folder_to_everyone(grafana):
    assert who_sees(grafana) == ALLOWED | DENIED | GRAFANA_ADMINS


def test_after_a_sync_every_allowed_member_sees_the_folder_and_no_denied_member_does(org, grafana):
    make_sync(org, grafana).sync()

    assert who_sees(grafana) == ALLOWED | GRAFANA_ADMINS


def test_the_sync_leaves_other_folders_alone(org, grafana):
    make_sync(org, grafana).sync()

    assert who_sees(grafana, "other") == ALLOWED | DENIED | GRAFANA_ADMINS


def test_members_join_the_team_their_role_maps_to(org, grafana):
    make_sync(org, grafana).sync()

    assert team_members(grafana, access.DEFAULT_EDITORS_TEAM) == EDITORS
    assert team_members(grafana, access.DEFAULT_VIEWERS_TEAM) == VIEWERS


def test_the_folder_is_granted_to_the_two_teams_and_nothing_else(org, grafana):
    grafana.folders[FOLDER].items.append({"userId": 7, "permission": 4})
    make_sync(org, grafana).sync()

    teams = {t.name: t.id for t in grafana.teams.values()}
    assert sorted(grafana.folders[FOLDER].items, key=str) == sorted(
        [
            {"teamId": teams[access.DEFAULT_VIEWERS_TEAM], "permission": 1},
            {"teamId": teams[access.DEFAULT_EDITORS_TEAM], "permission": 2},
        ],
        key=str,
    )


def test_a_role_change_in_the_organization_is_carried_over_on_the_next_sync(org, grafana):
    sync = make_sync(org, grafana)
    sync.sync()
    set_role(org, "dev@example.com", "user")
    set_role(org, "uma@example.com", "developer")
    set_role(org, "bill@example.com", "admin")

    sync.sync()

    assert who_sees(grafana) == ALLOWED - {"dev"} | {"uma"} | GRAFANA_ADMINS
    assert team_members(grafana, access.DEFAULT_VIEWERS_TEAM) == {"uma"}
    assert team_members(grafana, access.DEFAULT_EDITORS_TEAM) == EDITORS | {"bill"}


def test_no_step_of_a_sync_shows_the_folder_to_anyone_who_could_not_see_it_before_or_after(
    org, grafana
):
    sync = make_sync(org, grafana)
    sync.sync()
    before = who_sees(grafana)
    set_role(org, "dev@example.com", "claude_code_user")
    set_role(org, "adam@example.com", "billing")
    set_role(org, "cc@example.com", "developer")
    grafana.history.clear()

    sync.sync()

    after = who_sees(grafana)
    assert grafana.history, "the sync changed nothing"
    assert all(step[FOLDER] <= before | after for step in grafana.history)
    assert "dev" not in after and "cc" in after


def test_a_second_sync_changes_nothing(org, grafana):
    sync = make_sync(org, grafana)
    sync.sync()
    writes = len(grafana.writes())

    plan = sync.sync()

    assert plan.empty
    assert len(grafana.writes()) == writes


def test_members_added_to_a_team_by_hand_are_removed(org, grafana):
    sync = make_sync(org, grafana)
    sync.sync()
    team = next(t for t in grafana.teams.values() if t.name == access.DEFAULT_VIEWERS_TEAM)
    team.members.add(next(u.id for u in grafana.users.values() if u.login == "mia"))

    sync.sync()

    assert "mia" not in who_sees(grafana)


def test_dry_run_prints_the_plan_and_changes_nothing(org, grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    before = grafana.snapshot()

    status = access.run(cli_args(grafana, "--dry-run"), AdminClient(org.url, TEST_KEY))

    out = capsys.readouterr().out
    assert status == 0
    assert grafana.writes() == []
    assert grafana.snapshot() == before
    assert f"create team {access.DEFAULT_VIEWERS_TEAM!r}" in out
    assert "add pat@example.com to" in out
    assert "Dry run: nothing was changed." in out


def test_the_cli_applies_the_plan_without_dry_run(org, grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)

    status = access.run(cli_args(grafana), AdminClient(org.url, TEST_KEY))

    assert status == 0
    assert "Applied." in capsys.readouterr().out
    assert who_sees(grafana) == ALLOWED | GRAFANA_ADMINS


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", r"/api/teams"),
        ("POST", r"/api/folders/claude-code/permissions"),
        ("POST", r"/api/teams/\d+/members"),
    ],
)
def test_an_error_from_grafana_on_a_first_sync_leaves_everything_as_it_was(
    org, grafana, method, path
):
    before, seen = grafana.snapshot(), who_sees(grafana)
    grafana.fail(method, path)

    with pytest.raises(AccessSyncError, match="HTTP 500.*undone"):
        make_sync(org, grafana).sync()

    assert grafana.snapshot() == before
    assert who_sees(grafana) == seen


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", r"/api/teams/\d+/members/\d+"),
        ("POST", r"/api/teams/\d+/members"),
    ],
)
def test_an_error_from_grafana_during_a_role_change_leaves_permissions_as_they_were(
    org, grafana, method, path
):
    sync = make_sync(org, grafana)
    sync.sync()
    set_role(org, "dev@example.com", "user")
    set_role(org, "olga@example.com", "billing")
    set_role(org, "mia@example.com", "admin")
    before, seen = grafana.snapshot(), who_sees(grafana)
    grafana.fail(method, path)

    with pytest.raises(AccessSyncError):
        sync.sync()

    assert grafana.snapshot() == before
    assert who_sees(grafana) == seen


def test_a_failed_rollback_says_so(org, grafana):
    grafana.fail("POST", r"/api/teams/\d+/members")
    grafana.fail("POST", r"/api/folders/claude-code/permissions", after=1)
    with pytest.raises(AccessSyncError, match="undoing the earlier steps failed too"):
        make_sync(org, grafana).sync()


def test_an_unknown_role_gets_no_access_and_is_reported(org, grafana):
    plan = make_sync(org, grafana).plan()

    assert plan.unknown_roles == [("zed@example.com", "analyst")]
    assert "Unknown role, so no access: zed@example.com (analyst)" in plan.describe()
    assert all(change.email != "zed@example.com" for change in plan.add)


def test_a_member_whose_role_becomes_unknown_loses_access(org, grafana):
    sync = make_sync(org, grafana)
    sync.sync()
    set_role(org, "adam@example.com", "super_admin")

    sync.sync()

    assert "adam" not in who_sees(grafana)


def test_members_without_a_grafana_account_are_reported(org, grafana):
    plan = make_sync(org, grafana).plan()

    assert plan.no_account == ["nia@example.com"]
    assert "Allowed, but no Grafana account yet: nia@example.com" in plan.describe()


def test_a_member_who_signs_up_later_gets_access_on_the_next_sync(org, grafana):
    sync = make_sync(org, grafana)
    sync.sync()
    grafana.add_user("nia", "NIA@example.com")

    sync.sync()

    assert "nia" in who_sees(grafana)


def test_managed_is_denied_by_default_and_can_be_mapped(org, grafana):
    make_sync(org, grafana, role_map={**access.DEFAULT_ROLE_MAP, "managed": "view"}).sync()

    assert "max" in who_sees(grafana)


@pytest.mark.parametrize("role", ["user", "claude_code_user", "membership_admin"])
def test_a_role_the_console_denies_cannot_be_mapped_to_a_team(role):
    with pytest.raises(AccessConfigError, match="cannot be mapped"):
        access.parse_role_map(f"admin=edit,{role}=view")


def test_a_malformed_role_mapping_is_one_clear_error(grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)

    status = access.run(cli_args(grafana, "--grafana.role-map", "admin=owner"), None)

    assert status == 2
    assert capsys.readouterr().err == (
        f"{PROG}: role mapping 'admin=owner' is not of the form role=view or role=edit.\n"
    )


def test_a_missing_grafana_url_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    parser = argparse.ArgumentParser()
    access.add_arguments(parser)

    assert access.run(parser.parse_args([]), None) == 2
    assert capsys.readouterr().err == (
        f"{PROG}: set GRAFANA_URL or --grafana.url to the Grafana to reconcile.\n"
    )


def test_the_token_can_come_from_a_file(org, grafana, monkeypatch, tmp_path):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(grafana.token + "\n")

    args = cli_args(grafana, "--grafana.token-file", str(token_file))

    assert access.run(args, AdminClient(org.url, TEST_KEY)) == 0
    assert who_sees(grafana) == ALLOWED | GRAFANA_ADMINS


def test_a_missing_folder_is_one_clear_error(org, grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    del grafana.folders[FOLDER]

    status = access.run(cli_args(grafana), AdminClient(org.url, TEST_KEY))

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"{PROG}: Grafana has no folder with uid 'claude-code'")
    assert err.count("\n") == 1


def test_a_rejected_token_is_one_clear_error_that_does_not_show_the_token(
    org, grafana, monkeypatch, capsys
):
    wrong = "glsa_WRONG-CANARY-token-0123456789"
    monkeypatch.setenv("GRAFANA_TOKEN", wrong)

    status = access.run(cli_args(grafana), AdminClient(org.url, TEST_KEY))

    captured = capsys.readouterr()
    assert status == 1
    assert captured.err == (
        f"{PROG}: Grafana answered GET /api/org/users with HTTP 401: Unauthorized.\n"
    )
    assert wrong not in captured.out + captured.err
    assert TEST_KEY not in captured.out + captured.err


def test_run_forever_keeps_grafana_in_step_until_stopped(org, grafana):
    sync = make_sync(org, grafana)
    stop = threading.Event()
    thread = threading.Thread(target=sync.run_forever, args=(0.05, stop))
    thread.start()
    try:
        set_role(org, "bill@example.com", "user")
        deadline = threading.Event()
        for _ in range(100):
            if who_sees(grafana) == ALLOWED - {"bill"} | GRAFANA_ADMINS:
                break
            deadline.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert who_sees(grafana) == ALLOWED - {"bill"} | GRAFANA_ADMINS


def test_run_forever_survives_a_failed_sync(org, grafana, caplog):
    grafana.fail("GET", r"/api/org/users", status=503)
    stop = threading.Event()
    thread = threading.Thread(target=make_sync(org, grafana).run_forever, args=(0.05, stop))
    thread.start()
    try:
        for _ in range(100):
            if who_sees(grafana) == ALLOWED | GRAFANA_ADMINS:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)

    assert who_sees(grafana) == ALLOWED | GRAFANA_ADMINS
    assert "Grafana access sync failed: Grafana answered GET /api/org/users with HTTP 503" in (
        caplog.text
    )


def run_cli(api_url: str, grafana: GrafanaStub, *args: str) -> subprocess.CompletedProcess:
    """`python -m exporter grafana-access sync`, as a user runs it, in a process of its own."""
    env = {
        "PATH": "/usr/bin:/bin",
        "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
        "ANTHROPIC_BASE_URL": api_url,
        "GRAFANA_URL": grafana.url,
        "GRAFANA_TOKEN": grafana.token,
    }
    return subprocess.run(
        [sys.executable, "-m", "exporter", "grafana-access", "sync", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_subcommand_runs_from_the_command_line(org, grafana):
    done = run_cli(org.url, grafana, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert "add adam@example.com to 'Claude Code analytics editors'" in done.stdout
    assert grafana.writes() == []
    assert TEST_KEY not in done.stdout + done.stderr


@pytest.fixture
def simulated() -> Iterator[SimulatorServer]:
    with serve(SimulatedOrganization(seed=7, members=30), api_key=TEST_KEY) as server:
        yield server


@pytest.fixture
def simulated_grafana(simulated) -> Iterator[GrafanaStub]:
    """A Grafana where every member of the simulated organization has an account."""
    with GrafanaStub() as stub:
        for user in simulated.org.users():
            stub.add_user(login(user), user["email"])
        stub.add_user("admin", "admin@localhost", role="Admin")
        stub.add_user("root", "root@localhost", server_admin=True)
        stub.add_folder(FOLDER, "Claude Code")
        yield stub


def login(user: dict) -> str:
    return user["email"].split("@")[0]


def allowed_in(server: SimulatorServer) -> set[str]:
    return {login(u) for u in server.org.users() if u["role"] in access.DEFAULT_ROLE_MAP}


def test_the_simulated_organization_reaches_grafana_role_for_role(simulated, simulated_grafana):
    roles = {u["role"] for u in simulated.org.users()}

    make_sync(simulated, simulated_grafana).sync()

    assert {"developer", "billing", "claude_code_user", "user"} <= roles
    assert who_sees(simulated_grafana) == allowed_in(simulated) | GRAFANA_ADMINS


def test_a_role_change_in_the_simulated_organization_is_carried_over_on_the_next_sync(
    simulated, simulated_grafana
):
    sync = make_sync(simulated, simulated_grafana)
    sync.sync()
    users = simulated.org.users()
    developer = next(u for u in users if u["role"] == "developer")
    coder = next(u for u in users if u["role"] == "claude_code_user")
    simulated.org.set_role(developer["email"], "claude_code_user")
    simulated.org.set_role(coder["email"], "billing")

    sync.sync()

    seen = who_sees(simulated_grafana)
    assert login(developer) not in seen
    assert login(coder) in seen
    assert seen == allowed_in(simulated) | GRAFANA_ADMINS


def test_users_json_fixture_is_in_the_documented_shape():
    for path in sorted((Path(__file__).parent / "fixtures" / "access").glob("users_page*.json")):
        page = json.loads(path.read_text())
        assert set(page) == {"data", "has_more", "first_id", "last_id"}
        for user in page["data"]:
            assert set(user) == {"id", "type", "email", "name", "role", "added_at"}


def fullwidth(email: str) -> str:
    """The local part in fullwidth forms (`ｍａｒｅｋ`), which NFKC turns back into ASCII."""
    local, _, domain = email.partition("@")
    return "".join(chr(ord(c) + 0xFEE0) for c in local) + "@" + domain


def cyrillic(email: str) -> str:
    """The same email with its first Latin `a` replaced by the Cyrillic `а` (U+0430)."""
    return email.replace("a", "\u0430", 1)


def test_the_command_gives_ambiguous_accounts_nothing_and_names_them(simulated, simulated_grafana):
    grafana = simulated_grafana
    marek, nadia, priya = [u for u in simulated.org.users() if u["role"] == "developer"][:3]
    assert run_cli(simulated.url, grafana).returncode == 0
    assert {login(marek), login(nadia), login(priya)} <= who_sees(grafana)
    shouting = grafana.add_user("marek-shouting", marek["email"].upper())
    nadia_account = next(u for u in grafana.users.values() if u.login == login(nadia))
    grafana.delete_user(nadia_account.id)
    grafana.add_user("nadia-fullwidth", fullwidth(nadia["email"]))
    grafana.add_user("priya-cyrillic", cyrillic(priya["email"]))

    done = run_cli(simulated.url, grafana)

    assert who_sees(grafana) == (
        allowed_in(simulated) - {login(marek), login(nadia)} | GRAFANA_ADMINS
    )
    assert f"remove {marek['email']} from 'Claude Code analytics viewers'" in done.stdout
    for named in (marek["email"], shouting.email, fullwidth(nadia["email"])):
        assert ascii(named) in done.stdout
    assert ascii(cyrillic(priya["email"])) not in done.stdout
    assert "2 Grafana accounts have confusable emails" in done.stdout
    assert "equal only after Unicode normalization" in done.stdout
    assert done.returncode == access.EXIT_AMBIGUOUS, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"{PROG}: warning: the accounts listed as ambiguous"
    )
    assert TEST_KEY not in done.stdout + done.stderr


def test_the_command_gives_nothing_to_an_account_that_one_denied_member_also_maps_to(
    grafana, tmp_path
):
    users = {
        "data": [
            {"id": "user_01BobAdmin", "type": "user", "email": "BOB@example.com",
             "name": "Bob", "role": "admin", "added_at": "2024-01-02T09:00:00Z"},
            {"id": "user_01BobUser", "type": "user", "email": "bob@example.com",
             "name": "Bob", "role": "user", "added_at": "2024-01-03T09:00:00Z"},
            {"id": "user_01Pat", "type": "user", "email": "pat@example.com",
             "name": "Pat", "role": "owner", "added_at": "2024-01-04T09:00:00Z"},
        ],
        "has_more": False, "first_id": "user_01BobAdmin", "last_id": "user_01Pat",
    }  # fmt: skip
    (tmp_path / "users_page1.json").write_text(json.dumps(users))
    bob = grafana.add_user("bob", "bob@example.com")

    with FakeAdminApi(TEST_KEY, fixtures=tmp_path) as api:
        done = run_cli(api.url, grafana)

    assert who_sees(grafana) == {"pat"} | GRAFANA_ADMINS
    assert f"'bob@example.com' (Grafana user {bob.id}, login 'bob')" in done.stdout
    assert "2 Console members have confusable emails" in done.stdout
    assert done.returncode == access.EXIT_AMBIGUOUS, done.stderr
