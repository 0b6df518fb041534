"""Carry the Console's analytics access over to Grafana.

The Console lets Primary Owners, Owners, Billing, Admins and Developers see Claude Code
analytics, and nobody else. `AccessSync` reads the organization's members and roles from the
Admin API and reconciles Grafana so that the dashboards' folder can be opened by exactly those
members (and Grafana's admins): one team for viewers and one for editors, membership matched by
email (exactly and unambiguously, see `exporter.identity`), and folder permissions that grant those
two teams and nothing else.

The sync plans first and then applies. It applies in an order that never widens access on the way
(teams are created empty, members are removed, the folder's grants are replaced, and only then
are members added), and when Grafana refuses a step it undoes the steps already taken, in reverse
order, so permissions stay as they were."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .cli import PROG as EXPORTER
from .cli import Parser, UsageError, report
from .client import ApiError
from .config import (
    DEFAULT_ORGANIZATION,
    Config,
    ConfigError,
    Organization,
    load,
    read_api_key,
    read_secret,
)
from .grafana import EDIT, VIEW, GrafanaClient, GrafanaError, GrafanaUser, Grant, Team
from .identity import Ambiguity, Member, match
from .origin import Origin, UnsafeUrl, parse_origin
from .sources import open_sources

if TYPE_CHECKING:
    from .orgsync import OrganizationsSync

log = logging.getLogger(__name__)
PROG = f"{EXPORTER} grafana-access"

# Every value of the Admin API's OrganizationRole enum.
KNOWN_ROLES = frozenset(
    {
        "admin",
        "billing",
        "claude_code_user",
        "developer",
        "managed",
        "membership_admin",
        "owner",
        "primary_owner",
        "user",
    }
)
# Roles the Console documents as unable to see analytics: no configuration may grant them access.
CONSOLE_DENIED_ROLES = frozenset({"user", "claude_code_user", "membership_admin"})
LEVELS = {"view": VIEW, "edit": EDIT}
DEFAULT_ROLE_MAP: Mapping[str, str] = {
    "primary_owner": "edit",
    "owner": "edit",
    "admin": "edit",
    "billing": "view",
    "developer": "view",
}
DEFAULT_FOLDER_UID = "claude-code"
DEFAULT_VIEWERS_TEAM = "Claude Code analytics viewers"
DEFAULT_EDITORS_TEAM = "Claude Code analytics editors"
# What undoes each step of a sync already taken, described, in the order they were taken.
Undo = list[tuple[str, Callable[[], None]]]
# The exit status of `grafana-access sync` when it succeeded but left ambiguous accounts out.
EXIT_AMBIGUOUS = 3
# The organization of a command given one source of members and no configuration file.
ONE_ORGANIZATION = Organization(DEFAULT_ORGANIZATION, api_key="", storage_path=Path())


class AccessConfigError(ConfigError, ValueError):
    """The access configuration cannot be used as given."""


class AccessSyncError(Exception):
    """A sync that could not be completed; the message says what state Grafana was left in."""


class UserSource(Protocol):
    """Anything that lists the organization's members, like `exporter.client.AdminClient`."""

    def list_users(self) -> Sequence[object]: ...


def parse_role_map(text: str) -> dict[str, str]:
    """`admin=edit,billing=view` into a mapping; roles left out have no access."""
    role_map: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        role, sep, level = (s.strip() for s in part.partition("="))
        if not sep or not role or level not in LEVELS:
            raise AccessConfigError(
                f"role mapping {part!r} is not of the form role=view or role=edit"
            )
        if role in CONSOLE_DENIED_ROLES:
            raise AccessConfigError(
                f"the Console denies the {role!r} role analytics, so it cannot be mapped to a team"
            )
        role_map[role] = level
    return role_map


@dataclass(frozen=True)
class AccessConfig:
    folder_uid: str = DEFAULT_FOLDER_UID
    viewers_team: str = DEFAULT_VIEWERS_TEAM
    editors_team: str = DEFAULT_EDITORS_TEAM
    role_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))

    def __post_init__(self) -> None:
        if self.viewers_team == self.editors_team:
            raise AccessConfigError("the viewers team and the editors team need different names")
        parse_role_map(",".join(f"{role}={level}" for role, level in self.role_map.items()))

    def team_for(self, level: str) -> str:
        return self.editors_team if level == "edit" else self.viewers_team

    @property
    def teams(self) -> dict[str, int]:
        """Each team's name and the permission it gets on the folder."""
        return {self.viewers_team: VIEW, self.editors_team: EDIT}


@dataclass(frozen=True)
class Change:
    """One team membership to add or remove."""

    team: str
    user_id: int
    email: str


@dataclass(kw_only=True)
class Findings:
    """What matching the Console's members to Grafana's accounts found besides the matches."""

    no_account: list[str] = field(default_factory=list)
    denied: list[tuple[str, str]] = field(default_factory=list)
    unknown_roles: list[tuple[str, str]] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)

    def describe_findings(self) -> list[str]:
        lines = []
        if self.no_account:
            lines.append("Allowed, but no Grafana account yet: " + ", ".join(self.no_account))
        if self.unknown_roles:
            lines.append("Unknown role, so no access: " + _pairs(self.unknown_roles))
        if self.denied:
            lines.append("Role without analytics access: " + _pairs(self.denied))
        if self.ambiguous:
            lines.append("Ambiguous emails, so no access for these Grafana accounts:")
            lines += [f"  {_describe_ambiguity(a)}" for a in self.ambiguous]
        return lines


@dataclass
class Plan(Findings):
    folder_uid: str
    create_teams: list[str] = field(default_factory=list)
    remove: list[Change] = field(default_factory=list)
    add: list[Change] = field(default_factory=list)
    permissions_before: list[Grant] = field(default_factory=list)
    permissions_after: dict[str, int] = field(default_factory=dict)
    team_ids: dict[str, int] = field(default_factory=dict)
    change_permissions: bool = False

    @property
    def empty(self) -> bool:
        return not (self.create_teams or self.remove or self.add or self.change_permissions)

    def describe(self) -> list[str]:
        lines = [f"Grafana access for folder {self.folder_uid!r}:"]
        lines += [f"  create team {name!r}" for name in self.create_teams]
        lines += [f"  remove {c.email} from {c.team!r}" for c in self.remove]
        if self.change_permissions:
            after = ", ".join(f"team {t!r}: {_level(p)}" for t, p in self.permissions_after.items())
            before = ", ".join(g.describe() for g in self.permissions_before) or "none"
            lines.append(f"  set folder permissions to {after} (now: {before})")
        lines += [f"  add {c.email} to {c.team!r}" for c in self.add]
        if self.empty:
            lines.append("  no change")
        return lines + self.describe_findings()


def allowed_levels(
    source: UserSource,
    accounts: Sequence[GrafanaUser],
    role_map: Mapping[str, str],
    findings: Findings,
) -> dict[int, str]:
    """Each account matched to exactly one member whose role `role_map` maps, and its level
    (view or edit); what else matching found goes to `findings` (and ambiguities to the log)."""
    members = [Member(_field(m, "email"), _field(m, "role")) for m in source.list_users()]
    matches, ambiguous = match(members, accounts)
    findings.ambiguous += ambiguous
    levels: dict[int, str] = {}
    unknown: list[tuple[str, str]] = []
    for found in matches:
        email, role = found.member.email, found.member.role
        level = role_map.get(role)
        if level is None:
            (findings.denied if role in KNOWN_ROLES else unknown).append((email, role))
        elif found.account is not None:
            levels[found.account.id] = level
        elif found.ambiguity is None:
            findings.no_account.append(email)
    findings.unknown_roles += unknown
    for email, role in unknown:
        log.warning("member %s has the unknown role %r and gets no access", email, role)
    for ambiguity in ambiguous:
        log.warning("no access because of ambiguous emails: %s", _describe_ambiguity(ambiguity))
    return levels


class AccessSync:
    def __init__(self, source: UserSource | None, grafana: GrafanaClient, config: AccessConfig):
        self.source = source
        self.grafana = grafana
        self.config = config

    def plan(self) -> Plan:
        """Read the organization and Grafana and work out what must change; changes nothing."""
        plan = Plan(self.config.folder_uid, permissions_after=self.config.teams)
        accounts = self.grafana.org_users()
        desired = self._desired_members(plan, accounts)
        return self._plan_teams(plan, desired, accounts)

    def plan_for(self, levels: Mapping[int, str], accounts: Sequence[GrafanaUser]) -> Plan:
        """The plan that gives each account of `levels` the team of its level, and nobody else
        any; `accounts` name them. Reads Grafana, changes nothing."""
        plan = Plan(self.config.folder_uid, permissions_after=self.config.teams)
        desired: dict[str, set[int]] = {name: set() for name in self.config.teams}
        for account_id, level in levels.items():
            desired[self.config.team_for(level)].add(account_id)
        return self._plan_teams(plan, desired, accounts)

    def _plan_teams(
        self, plan: Plan, desired: Mapping[str, set[int]], accounts: Sequence[GrafanaUser]
    ) -> Plan:
        teams = {name: self.grafana.find_team(name) for name in self.config.teams}
        plan.create_teams = [name for name, team in teams.items() if team is None]
        plan.team_ids = {name: team.id for name, team in teams.items() if team}
        by_id = {u.id: u for u in accounts}
        for name, team in teams.items():
            current = self.grafana.team_member_ids(team.id) if team else set()
            plan.remove += [_change(name, uid, by_id) for uid in sorted(current - desired[name])]
            plan.add += [_change(name, uid, by_id) for uid in sorted(desired[name] - current)]
        plan.permissions_before = self._folder_permissions()
        plan.change_permissions = any(t is None for t in teams.values()) or set(
            _without_admin(plan.permissions_before)
        ) != set(self._grants({n: t for n, t in teams.items() if t}))
        return plan

    def apply(self, plan: Plan) -> None:
        """Carry out `plan`; on a Grafana error undo what was done and raise `AccessSyncError`."""
        all_or_nothing(partial(self.apply_steps, plan))

    def sync(self) -> Plan:
        plan = self.plan()
        if not plan.empty:
            self.apply(plan)
        return plan

    def run_forever(self, interval: float, stop_event: threading.Event) -> None:
        """Sync every `interval` seconds until `stop_event` is set; a failed sync is logged."""
        while not stop_event.is_set():
            try:
                plan = self.sync()
            except Exception as exc:  # the thread must outlive any one failed sync
                log.error("Grafana access sync failed: %s", exc)
            else:
                if not plan.empty:
                    log.info("%s", "\n".join(plan.describe()))
            stop_event.wait(interval)

    def _desired_members(self, plan: Plan, accounts: Sequence[GrafanaUser]) -> dict[str, set[int]]:
        """Each team's accounts: those matched to exactly one allowed member, and no others."""
        if self.source is None:
            raise AccessSyncError("no source of the organization's members was given")
        desired: dict[str, set[int]] = {name: set() for name in self.config.teams}
        for account_id, level in allowed_levels(
            self.source, accounts, self.config.role_map, plan
        ).items():
            desired[self.config.team_for(level)].add(account_id)
        return desired

    def _folder_permissions(self) -> list[Grant]:
        try:
            return self.grafana.folder_permissions(self.config.folder_uid)
        except GrafanaError as exc:
            if exc.status != 404:
                raise
            raise AccessSyncError(
                f"Grafana has no folder with uid {self.config.folder_uid!r}; start Grafana with "
                "the provisioning in provisioning/grafana so that the dashboards' folder exists"
            ) from None

    def _grants(self, teams: Mapping[str, Team]) -> list[Grant]:
        return sorted(
            Grant("team", str(teams[name].id), level)
            for name, level in self.config.teams.items()
            if name in teams
        )

    def apply_steps(self, plan: Plan, undo: Undo) -> None:
        """Carry out `plan`, adding to `undo` how to take back each step; raises GrafanaError."""
        g = self.grafana
        ids = dict(plan.team_ids)
        for name in plan.create_teams:
            ids[name] = g.create_team(name).id
            undo.append((f"delete team {name!r}", partial(g.delete_team, ids[name])))
        for c in plan.remove:
            g.remove_team_member(ids[c.team], c.user_id)
            undo.append((f"add {c.email} back", partial(g.add_team_member, ids[c.team], c.user_id)))
        if plan.change_permissions:
            before = _without_admin(g.folder_permissions(plan.folder_uid))
            g.set_folder_permissions(
                plan.folder_uid, self._grants({n: Team(i, n) for n, i in ids.items()})
            )
            undo.append(
                (
                    "restore folder permissions",
                    partial(g.set_folder_permissions, plan.folder_uid, before),
                )
            )
        for c in plan.add:
            g.add_team_member(ids[c.team], c.user_id)
            undo.append(
                (f"remove {c.email}", partial(g.remove_team_member, ids[c.team], c.user_id))
            )


def all_or_nothing(steps: Callable[[Undo], None]) -> None:
    """Run `steps`, which records how to undo each step it takes; when Grafana refuses one, undo
    the steps taken in reverse order and raise `AccessSyncError` saying what state Grafana is in."""
    undo: Undo = []
    try:
        steps(undo)
    except GrafanaError as exc:
        failed = _roll_back(undo)
        if failed:
            raise AccessSyncError(
                f"{exc}; undoing the earlier steps failed too ({failed}): run the sync again"
            ) from None
        raise AccessSyncError(f"{exc}; the steps already taken were undone") from None


def _roll_back(undo: Undo) -> str:
    """Undo in reverse order; returns the first step that failed, or an empty string."""
    for description, step in reversed(undo):
        try:
            step()
        except GrafanaError as exc:
            log.error("undoing a Grafana access change failed: %s", exc)
            return description
    return ""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say which Grafana to reconcile and how; shared by the CLI and the timer."""
    parser.add_argument(
        "--grafana.url",
        dest="grafana_url",
        default=None,
        help="Grafana's base URL (default: $GRAFANA_URL)",
    )
    parser.add_argument(
        "--grafana.token-file",
        dest="grafana_token_file",
        default=None,
        help="file holding a service-account token with the Admin role "
        "(default: $GRAFANA_TOKEN_FILE, or the token itself in $GRAFANA_TOKEN)",
    )
    parser.add_argument(
        "--grafana.folder-uid",
        dest="grafana_folder_uid",
        default=DEFAULT_FOLDER_UID,
        help="uid of the dashboards' folder (default: %(default)s)",
    )
    parser.add_argument(
        "--grafana.viewers-team",
        dest="grafana_viewers_team",
        default=DEFAULT_VIEWERS_TEAM,
        help="team that may view (default: %(default)s)",
    )
    parser.add_argument(
        "--grafana.editors-team",
        dest="grafana_editors_team",
        default=DEFAULT_EDITORS_TEAM,
        help="team that may edit (default: %(default)s)",
    )
    parser.add_argument(
        "--grafana.role-map",
        dest="grafana_role_map",
        default=",".join(f"{r}={lv}" for r, lv in DEFAULT_ROLE_MAP.items()),
        help="Console role to team, as role=view|edit pairs; other roles get no access "
        "(default: %(default)s)",
    )
    from . import orgsync

    orgsync.add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `grafana-access sync`."""
    add_config_arguments(parser)
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="the exporter's YAML configuration: its organizations (each with the file of its "
        "key, and a grafana: entry for the Grafana organization dedicated to it) and finance:",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change and change nothing"
    )


def config_from_args(args: argparse.Namespace) -> AccessConfig:
    return AccessConfig(
        folder_uid=args.grafana_folder_uid,
        viewers_team=args.grafana_viewers_team,
        editors_team=args.grafana_editors_team,
        role_map=parse_role_map(args.grafana_role_map),
    )


def grafana_origin(flag: str | None, env: Mapping[str, str]) -> Origin:
    """Grafana's origin, from `--grafana.url` or `$GRAFANA_URL`, checked before any credential is
    sent to it."""
    url = flag or env.get("GRAFANA_URL")
    if not url:
        raise AccessConfigError("set GRAFANA_URL or --grafana.url to the Grafana to reconcile")
    try:
        return parse_origin(url, "--grafana.url" if flag else "GRAFANA_URL")
    except UnsafeUrl as exc:
        raise AccessConfigError(str(exc)) from None


def grafana_from_args(
    args: argparse.Namespace, env: Mapping[str, str] = os.environ
) -> GrafanaClient:
    origin = grafana_origin(args.grafana_url, env)
    token = read_secret(env, "GRAFANA_TOKEN", args.grafana_token_file, "--grafana.token-file")
    if not token:
        raise AccessConfigError(
            "set GRAFANA_TOKEN or GRAFANA_TOKEN_FILE to a Grafana service-account token"
        )
    return GrafanaClient(origin, token)


def build(
    args: argparse.Namespace,
    sources: UserSource | Mapping[str, UserSource],
    config: Config | None = None,
) -> AccessSync | OrganizationsSync:
    """The sync that the flags and the configuration ask for, over each organization's members
    (`sources` by the configuration's names; one source stands for the one organization).

    The dedicated-organization mode (exporter/orgsync.py) when `--grafana.org-name` or the
    configuration's `grafana:` or `finance:` entries name Grafana organizations; else the folder
    mode, which serves one organization only."""
    from . import orgsync

    organizations, finance = (
        (config.organizations, config.finance) if config else ((ONE_ORGANIZATION,), None)
    )
    if not isinstance(sources, Mapping):
        sources = {organizations[0].name: sources}
    access = config_from_args(args)
    if args.grafana_org_name or finance or any(org.grafana for org in organizations):
        return orgsync.from_args(args, organizations, finance, sources, access)
    if len(organizations) > 1:
        raise AccessConfigError(
            f"the folder mode gives one organization's members access, and the configuration "
            f"lists {len(organizations)}: give each a grafana: entry naming the Grafana "
            "organization dedicated to it (docs/access.md)"
        )
    return AccessSync(sources[organizations[0].name], grafana_from_args(args), access)


def run(
    args: argparse.Namespace,
    sources: UserSource | Mapping[str, UserSource],
    config: Config | None = None,
) -> int:
    """`grafana-access sync [--dry-run]`: print the plan, then apply it unless it is a dry run.

    Exits with `EXIT_AMBIGUOUS` when the sync went through but left ambiguous accounts out, so that
    a cron job or a CronJob tells someone to fix the emails."""
    from . import orgsync

    try:
        sync = build(args, sources, config)
    except ConfigError as exc:
        report(PROG, exc)
        return 2
    if isinstance(sync, orgsync.OrganizationsSync):
        return orgsync.print_outcomes(sync, args.dry_run)
    try:
        plan = sync.plan()
        print("\n".join(plan.describe()))
        if args.dry_run:
            print("Dry run: nothing was changed.")
        elif not plan.empty:
            sync.apply(plan)
            print("Applied.")
    except (AccessSyncError, GrafanaError, ApiError) as exc:
        report(PROG, exc)
        return 1
    if plan.ambiguous:
        report(
            PROG,
            "warning: the accounts listed as ambiguous got no access; make each Grafana account's "
            "email that of exactly one Console member",
        )
        return EXIT_AMBIGUOUS
    return 0


def main(argv: list[str]) -> int:
    """`grafana-access sync [--dry-run]`; the Admin API keys come from the environment, or from
    the files that `--config.file` names for each organization."""
    parser = Parser(
        prog=PROG,
        description="Give exactly the members whom the Console lets see analytics access to the "
        "dashboards in Grafana: a folder's teams, or an organization dedicated to them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(
        commands.add_parser("sync", help="reconcile Grafana with the Console's members and roles")
    )
    try:
        args = parser.parse_args(argv)
        if not args.config_file:
            read_api_key(os.environ)  # its sentence, which does not offer --demo
        config = load(args)
    except (UsageError, ConfigError) as exc:
        report(PROG, exc)
        return 2
    with open_sources(config) as sources:
        return run(args, {s.organization.name: s.client for s in sources}, config)


def _field(member: object, name: str) -> str:
    value = member.get(name) if isinstance(member, dict) else getattr(member, name, None)
    return str(value or "")


def _change(team: str, user_id: int, users: Mapping[int, GrafanaUser]) -> Change:
    user = users.get(user_id)
    return Change(team, user_id, user.email if user else f"Grafana user {user_id}")


def _without_admin(grants: list[Grant]) -> list[Grant]:
    """Admins see every folder anyway, and Grafana refuses grants to the Admin role."""
    return [g for g in grants if not (g.kind == "role" and g.subject == "Admin")]


def _level(permission: int) -> str:
    return "Edit" if permission == EDIT else "View"


def _describe_ambiguity(ambiguity: Ambiguity) -> str:
    """Emails in `ascii()` form, so that look-alike characters show as escapes."""
    accounts = ", ".join(
        f"{ascii(a.email)} (Grafana user {a.id}, login {ascii(a.login)})"
        for a in ambiguity.accounts
    )
    members = ", ".join(f"{ascii(m.email)} ({m.role or 'no role'})" for m in ambiguity.members)
    return f"{accounts or 'no Grafana account'}; Console: {members}: {ambiguity.reason}"


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{email} ({role or 'no role'})" for email, role in pairs)
