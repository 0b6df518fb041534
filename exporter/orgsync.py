"""One Grafana organization per Anthropic organization, whose members are exactly those the
Console lets see analytics.

In open-source Grafana any member of a Grafana organization, a Viewer included, can send any
query to any data source of that organization (`POST /api/ds/query`), whatever the folder
permissions say. The unit of isolation is therefore the Grafana organization: `OrgSync` keeps one
dedicated to an Anthropic organization (found by name, created if missing), holding that
organization's Prometheus data source, and makes its members exactly the Console members whose
role is allowed, matched by email as `exporter.identity` does over every account of the Grafana
server, as Viewer or Editor. Everyone else is removed, except Grafana's server admins (who can
enter any organization anyway), the sync's own account (which must be the organization's Admin to
manage it) and the logins the configuration says to keep. Inside the organization the two teams
and the folder permissions of `exporter.access` stay, as defence in depth, and the generated
dashboards are imported into the folder.

The sync needs a server admin's login and password (basic auth): Grafana's organization and user
admin endpoints accept nothing else, and a service-account token can neither see the accounts
outside its own organization (so it cannot tell confusable emails apart) nor add anyone to
another organization.

Like `AccessSync` it plans, then applies in an order that never widens access on the way (the
sync's own Admin role first, then removals and downgrades, then the data source and folder, then
additions and upgrades, then the teams), and undoes the steps taken when Grafana refuses one.
The dashboards are imported last, outside that transaction: they hold no data and grant nothing.

`sync_organizations()` does this for several Anthropic organizations, each on its own: one that
fails leaves the others synced, and the exit status is the worst of them."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .access import (
    EXIT_AMBIGUOUS,
    PROG,
    AccessConfig,
    AccessConfigError,
    AccessSync,
    AccessSyncError,
    Findings,
    Plan,
    Undo,
    UserSource,
    all_or_nothing,
    allowed_levels,
    grafana_origin,
)
from .cli import report
from .client import ApiError
from .config import ConfigError, Finance, GrafanaOrganization, Organization, read_secret
from .grafana import ORG_ROLES, BasicAuth, GrafanaClient, GrafanaError, GrafanaUser

log = logging.getLogger(__name__)

DEFAULT_DATASOURCE_UID = "claude-code-prometheus"
DEFAULT_DATASOURCE_NAME = "Prometheus (Claude Code)"
FOLDER_TITLE = "Claude Code"
DEFAULT_DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "generated"
DEFAULT_FINANCE_DASHBOARDS = DEFAULT_DASHBOARDS.parent / "generated-finance"
# Grafana's first organization: where Grafana puts every new account by default
# (`auto_assign_org_id`), so it cannot hold data that only some people may query.
MAIN_ORG_ID = 1
ROLE_OF_LEVEL = {"view": "Viewer", "edit": "Editor"}
# A jsonData key that records which custom header values the data source was given: Grafana
# never shows secureJsonData again, so this is how a changed tenant header is noticed.
HEADERS_FINGERPRINT = "claudeCodeHeadersSha256"
# Exit statuses, from the best to the worst.
SEVERITY = (0, EXIT_AMBIGUOUS, 1, 2)


@dataclass(frozen=True)
class DataSource:
    """A Prometheus data source as Grafana should hold it: `url` as Grafana reaches it, and
    `headers` sent with every query (a tenant header such as Mimir's `X-Scope-OrgID`)."""

    url: str
    uid: str = DEFAULT_DATASOURCE_UID
    name: str = DEFAULT_DATASOURCE_NAME
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a secret

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AccessConfigError(
                f"the data source URL {self.url!r} is not an http:// or https:// URL with a host"
            )
        if not self.uid or not self.name:
            raise AccessConfigError("a data source needs a uid and a name")

    def settings(self, default: bool) -> dict[str, Any]:
        """The body of `POST /api/datasources` or `PUT /api/datasources/uid/:uid`."""
        json_data: dict[str, Any] = {"httpMethod": "POST"}
        secure: dict[str, str] = {}
        for n, (name, value) in enumerate(sorted(self.headers.items()), 1):
            json_data[f"httpHeaderName{n}"] = name
            secure[f"httpHeaderValue{n}"] = value
        if self.headers:
            json_data[HEADERS_FINGERPRINT] = self._fingerprint()
        settings = {
            "uid": self.uid,
            "name": self.name,
            "type": "prometheus",
            "access": "proxy",
            "url": self.url,
            "isDefault": default,
            "jsonData": json_data,
        }
        return {**settings, "secureJsonData": secure} if secure else settings

    def matches(self, found: Mapping[str, Any], default: bool) -> bool:
        """Whether Grafana's copy (`GET /api/datasources/uid/:uid`) is this one."""
        wanted = self.settings(default)
        found_json = found.get("jsonData") or {}
        return (
            all(found.get(k) == wanted[k] for k in ("name", "type", "url", "isDefault"))
            and {k: found_json.get(k) for k in wanted["jsonData"]} == wanted["jsonData"]
            and (bool(self.headers) or HEADERS_FINGERPRINT not in found_json)
        )

    def describe(self) -> str:
        header = f" with header {', '.join(sorted(self.headers))}" if self.headers else ""
        return f"{self.name!r} (uid {self.uid!r}, {self.url}{header})"

    def _fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(sorted(self.headers.items())).encode()).hexdigest()


@dataclass(frozen=True)
class OrgTarget:
    """The Grafana organization dedicated to one Anthropic organization (or, for a report across
    several, to those people allowed in every one of them).

    `name` is the Anthropic organization's name in the configuration, used in messages;
    `grafana_org` the Grafana organization's name. The first data source is the default one,
    which the dashboards' `$datasource` variable picks. `keep_logins` stay members whatever the
    Console says: they can query all of this organization's data. `dashboards` is a folder of
    dashboard JSON files to import into the folder (None: import none)."""

    name: str
    grafana_org: str
    datasources: tuple[DataSource, ...]
    keep_logins: frozenset[str] = frozenset()
    access: AccessConfig = field(default_factory=AccessConfig)
    dashboards: Path | None = None

    def __post_init__(self) -> None:
        if not self.grafana_org.strip():
            raise AccessConfigError(f"the Grafana organization of {self.name!r} has no name")
        if not self.datasources:
            raise AccessConfigError(
                f"the Grafana organization {self.grafana_org!r} needs a data source"
            )
        uids = [d.uid for d in self.datasources]
        if len(set(uids)) != len(uids):
            raise AccessConfigError(f"two data sources of {self.grafana_org!r} have the same uid")
        if self.dashboards is not None and not self.dashboards.is_dir():
            raise AccessConfigError(f"the dashboards folder {self.dashboards} does not exist")


@dataclass(frozen=True)
class Membership:
    """An account whose membership changes: `role` is the new one ("" for removal), `before`
    the old one ("" when it was not a member)."""

    user_id: int
    login: str
    email: str
    role: str
    before: str

    def describe(self) -> str:
        who = self.email or self.login
        if not self.role:
            return f"remove {who} ({self.before})"
        if not self.before:
            return f"add {who} as {self.role}"
        return f"change {who} from {self.before} to {self.role}"


@dataclass
class OrgPlan(Findings):
    target: OrgTarget
    me: GrafanaUser
    org_id: int | None = None  # None: the organization is created
    created_org_id: int | None = None
    my_role: str = ""  # the sync's own role in the organization now, "" if it is not a member
    remove: list[Membership] = field(default_factory=list)
    downgrade: list[Membership] = field(default_factory=list)
    add: list[Membership] = field(default_factory=list)
    upgrade: list[Membership] = field(default_factory=list)
    create_datasources: list[DataSource] = field(default_factory=list)
    update_datasources: list[tuple[DataSource, dict[str, Any]]] = field(default_factory=list)
    create_folder: bool = False
    teams: Plan | None = None  # None: planned once the organization or its folder exists
    # The organization's data sources, folder and dashboards could not be read yet (the sync's
    # account is not its Admin): they are planned once it is.
    contents_pending: bool = False
    dashboards: list[dict[str, Any]] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)
    other_datasources: list[str] = field(default_factory=list)
    # Each account that belongs in the organization and its level (view or edit).
    levels: dict[int, str] = field(default_factory=dict)
    accounts: list[GrafanaUser] = field(default_factory=list)

    @property
    def create_org(self) -> bool:
        return self.org_id is None

    @property
    def make_me_admin(self) -> bool:
        return not self.create_org and self.my_role != "Admin"

    @property
    def dedicated_org_id(self) -> int | None:
        """The organization's id, once it exists."""
        return self.org_id or self.created_org_id

    @property
    def access_empty(self) -> bool:
        """Whether nobody's access and no data source changes."""
        return not (
            self.create_org
            or self.make_me_admin
            or self.remove
            or self.downgrade
            or self.add
            or self.upgrade
            or self.create_datasources
            or self.update_datasources
            or self.create_folder
            or self.teams is None
            or not self.teams.empty
        )

    @property
    def empty(self) -> bool:
        return self.access_empty and not self.dashboards

    def describe(self) -> list[str]:
        t = self.target
        lines = [f"Grafana organization {t.grafana_org!r} for {t.name!r}:"]
        if self.create_org:
            lines.append(
                f"  create the organization (its Admin: the sync's account {self.me.login!r})"
            )
        elif self.make_me_admin:
            lines.append(f"  make the sync's account {self.me.login!r} its Admin")
        lines += [f"  {m.describe()}" for m in self.remove + self.downgrade]
        if self.contents_pending:
            lines.append("  then check its data sources, folder and dashboards")
        lines += [f"  create data source {d.describe()}" for d in self.create_datasources]
        lines += [f"  correct data source {d.describe()}" for d, _ in self.update_datasources]
        if self.create_folder:
            lines.append(f"  create folder {t.access.folder_uid!r}")
        lines += [f"  {m.describe()}" for m in self.add + self.upgrade]
        if self.teams is None:
            lines.append("  then set its teams and the folder's permissions")
        elif not self.teams.empty:
            lines += ["  " + line for line in self.teams.describe()[1:]]
        if self.dashboards:
            titles = ", ".join(repr(d.get("title", d.get("uid"))) for d in self.dashboards)
            lines.append(f"  import dashboards {titles}")
        if self.empty:
            lines.append("  no change")
        if self.left_alone:
            lines.append("Left as they are: " + ", ".join(self.left_alone))
        if self.other_datasources:
            lines.append(
                "Other data sources in this organization, which all its members can query: "
                + ", ".join(self.other_datasources)
            )
        return lines + self.describe_findings()


class OrgSync:
    """Keeps `target`'s Grafana organization in step with the members of `sources`: those
    allowed in every source (one source for an Anthropic organization of its own)."""

    def __init__(
        self, sources: UserSource | Sequence[UserSource], grafana: GrafanaClient, target: OrgTarget
    ):
        self.sources = tuple(sources) if isinstance(sources, Sequence) else (sources,)
        if not self.sources:
            raise AccessConfigError(f"no members were given for {target.grafana_org!r}")
        if not grafana.basic_auth:
            raise AccessConfigError(TOKEN_CANNOT)
        self.grafana = grafana
        self.target = target

    def plan(self) -> OrgPlan:
        """Read the Console and Grafana and work out what must change; changes nothing."""
        g, t = self.grafana, self.target
        me = g.current_user()
        if not me.is_server_admin:
            raise AccessSyncError(
                f"the Grafana user {me.login!r} is not a server admin, which managing "
                "organizations needs"
            )
        org = g.find_org(t.grafana_org)
        if org is not None and org.id == MAIN_ORG_ID:
            raise AccessSyncError(
                f"{t.grafana_org!r} is Grafana's first organization, where Grafana puts every new "
                "account by default; name an organization dedicated to this one"
            )
        plan = OrgPlan(target=t, me=me, org_id=org.id if org else None)
        plan.accounts = g.all_users()
        by_id = {a.id: a for a in plan.accounts}
        plan.levels = {
            account_id: level
            for account_id, level in self._allowed(plan).items()
            if account_id != me.id and not by_id[account_id].is_server_admin
        }
        members = g.org_members(org.id) if org else []
        self._plan_members(plan, members, by_id)
        if org is not None:
            self._plan_contents(plan, g.in_org(org.id), readable=not plan.make_me_admin)
        else:
            plan.create_datasources = list(t.datasources)
            plan.create_folder = True
            plan.dashboards = self._dashboards()
        return plan

    def apply(self, plan: OrgPlan) -> None:
        """Carry out `plan`; on a Grafana error undo the access steps taken and raise
        AccessSyncError. The dashboards are imported once access is in place."""
        all_or_nothing(partial(self._apply_access, plan))
        try:
            self._import_dashboards(plan)
        except GrafanaError as exc:
            raise AccessSyncError(
                f"{exc}; access is in place, the dashboards are imported on the next run"
            ) from None

    def sync(self) -> OrgPlan:
        plan = self.plan()
        if not plan.empty:
            self.apply(plan)
        return plan

    def _allowed(self, plan: OrgPlan) -> dict[int, str]:
        """Accounts allowed in every source, at the lowest of their levels."""
        role_map = self.target.access.role_map
        combined: dict[int, str] | None = None
        for source in self.sources:
            levels = allowed_levels(source, plan.accounts, role_map, plan)
            if combined is None:
                combined = levels
            else:
                combined = {
                    a: "view" if "view" in (level, levels[a]) else "edit"
                    for a, level in combined.items()
                    if a in levels
                }
        return combined or {}

    def _plan_members(
        self, plan: OrgPlan, members: Iterable[GrafanaUser], by_id: Mapping[int, GrafanaUser]
    ) -> None:
        now: dict[int, GrafanaUser] = {}
        present = set()
        for member in members:
            present.add(member.id)
            account = by_id.get(member.id)
            if member.id == plan.me.id:
                plan.my_role = member.role
            elif account is not None and account.is_server_admin:
                plan.left_alone.append(f"{member.login} (server admin)")
            elif member.login in self.target.keep_logins:
                plan.left_alone.append(f"{member.login} (kept by the configuration)")
            else:
                now[member.id] = member
        for user_id, member in sorted(now.items()):
            level = plan.levels.get(user_id)
            if level is None:
                plan.remove.append(_change(member, "", member.role))
            elif ROLE_OF_LEVEL[level] != member.role:
                wider = _rank(ROLE_OF_LEVEL[level]) > _rank(member.role)
                target = plan.upgrade if wider else plan.downgrade
                target.append(_change(member, ROLE_OF_LEVEL[level], member.role))
        for user_id, level in sorted(plan.levels.items()):
            if user_id not in present:
                plan.add.append(_change(by_id[user_id], ROLE_OF_LEVEL[level], ""))

    def _plan_contents(self, plan: OrgPlan, org: GrafanaClient, readable: bool) -> None:
        """The data sources, the folder, its teams and the dashboards of an existing
        organization. The sync's account must be its Admin to read them (`readable`); when it is
        not yet, they are planned once it is, while the plan is applied."""
        t = self.target
        plan.contents_pending = not readable
        if not readable:
            return
        found = {str(d.get("uid")): d for d in org.datasources()}
        for n, source in enumerate(t.datasources):
            existing = found.pop(source.uid, None)
            if existing is None:
                plan.create_datasources.append(source)
            elif not source.matches(existing, default=n == 0):
                plan.update_datasources.append((source, existing))
        plan.other_datasources = [
            f"{d.get('name')!r} ({d.get('type')}, {d.get('url')})" for d in found.values()
        ]
        plan.create_folder = org.find_folder(t.access.folder_uid) is None
        if not plan.create_folder:
            teams = AccessSync(None, org, t.access)
            plan.teams = teams.plan_for(plan.levels, plan.accounts)
        plan.dashboards = [d for d in self._dashboards() if not self._imported(org, d)]

    def _apply_access(self, plan: OrgPlan, undo: Undo) -> None:
        g, t = self.grafana, self.target
        if plan.create_org:
            org_id = plan.created_org_id = g.create_org(t.grafana_org).id
            undo.append((f"delete organization {t.grafana_org!r}", partial(g.delete_org, org_id)))
        else:
            org_id = plan.org_id or 0
        if plan.make_me_admin:
            self._set_role(org_id, _change(plan.me, "Admin", plan.my_role), undo)
            self._plan_contents(plan, g.in_org(org_id), readable=True)
        for change in plan.remove + plan.downgrade:
            self._set_role(org_id, change, undo)
        org = g.in_org(org_id)
        for n, source in enumerate(t.datasources):
            if source in plan.create_datasources:
                org.create_datasource(source.settings(default=n == 0))
                undo.append(
                    (
                        f"delete data source {source.uid!r}",
                        partial(org.delete_datasource, source.uid),
                    )
                )
        for source, before in plan.update_datasources:
            org.update_datasource(source.uid, source.settings(t.datasources[0] == source))
            undo.append(
                (
                    f"restore data source {source.uid!r}",
                    partial(org.update_datasource, source.uid, _restorable(before)),
                )
            )
        if plan.create_folder:
            org.create_folder(t.access.folder_uid, FOLDER_TITLE)
            undo.append(
                (
                    f"delete folder {t.access.folder_uid!r}",
                    partial(org.delete_folder, t.access.folder_uid),
                )
            )
        for change in plan.add + plan.upgrade:
            self._set_role(org_id, change, undo)
        teams = AccessSync(None, org, t.access)
        plan.teams = teams.plan_for(plan.levels, plan.accounts)
        teams.apply_steps(plan.teams, undo)

    def _set_role(self, org_id: int, change: Membership, undo: Undo) -> None:
        """Add, remove or re-role one member, and record how to take it back."""
        g = self.grafana
        if not change.before:
            self._add(org_id, change.user_id, change.login, change.role)
            take_back = partial(g.remove_org_member, org_id, change.user_id)
        elif not change.role:
            g.remove_org_member(org_id, change.user_id)
            take_back = partial(self._add, org_id, change.user_id, change.login, change.before)
        else:
            g.set_org_role(org_id, change.user_id, change.role)
            take_back = partial(g.set_org_role, org_id, change.user_id, change.before)
        undo.append((f"undo: {change.describe()}", take_back))

    def _add(self, org_id: int, user_id: int, login: str, role: str) -> None:
        """Add the account `user_id` by its login, and make sure Grafana added that one."""
        added = self.grafana.add_org_member(org_id, login, role)
        if added != user_id:
            # Grafana finds `loginOrEmail` regardless of case: another account answered.
            self.grafana.remove_org_member(org_id, added)
            raise GrafanaError(
                f"Grafana added user {added} for the login {login!r} of user {user_id}; make "
                "the two logins differ by more than case"
            )

    def _dashboards(self) -> list[dict[str, Any]]:
        folder = self.target.dashboards
        if folder is None:
            return []
        return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]

    def _imported(self, org: GrafanaClient, dashboard: Mapping[str, Any]) -> bool:
        """Whether Grafana holds this very dashboard, in the folder."""
        found = org.find_dashboard(str(dashboard.get("uid") or ""))
        if found is None:
            return False
        meta = found.get("meta") or {}
        return meta.get("folderUid") == self.target.access.folder_uid and _content(
            found.get("dashboard") or {}
        ) == _content(dashboard)

    def _import_dashboards(self, plan: OrgPlan) -> None:
        org = self.grafana.in_org(plan.org_id or plan.created_org_id or 0)
        for dashboard in plan.dashboards:
            org.save_dashboard({**dashboard, "id": None}, self.target.access.folder_uid)


@dataclass(frozen=True)
class Outcome:
    target: OrgTarget
    status: int
    plan: OrgPlan | None = None
    error: str = ""


class OrganizationsSync:
    """Several dedicated organizations, each synced on its own."""

    def __init__(
        self,
        pairs: Sequence[tuple[UserSource | Sequence[UserSource], OrgTarget]],
        grafana: GrafanaClient,
    ):
        names = [target.grafana_org for _, target in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise AccessConfigError(
                f"the Grafana organization {repeated[0]!r} is named for two organizations"
            )
        self.syncs = [OrgSync(sources, grafana, target) for sources, target in pairs]

    def run(self, dry_run: bool = False) -> list[Outcome]:
        return [self._one(sync, dry_run) for sync in self.syncs]

    def run_forever(self, interval: float, stop_event: threading.Event) -> None:
        """Sync every `interval` seconds until `stop_event` is set; failures are logged."""
        while not stop_event.is_set():
            for outcome in self.run():
                name = outcome.target.name
                if outcome.error:
                    log.error("Grafana organization sync of %s failed: %s", name, outcome.error)
                elif outcome.plan is not None and not outcome.plan.empty:
                    log.info("%s", "\n".join(outcome.plan.describe()))
            stop_event.wait(interval)

    @staticmethod
    def _one(sync: OrgSync, dry_run: bool) -> Outcome:
        plan = None
        try:
            plan = sync.plan()
            if not dry_run and not plan.empty:
                sync.apply(plan)
        except (AccessSyncError, GrafanaError, ApiError) as exc:
            return Outcome(sync.target, 1, plan, str(exc))
        except Exception as exc:  # one organization must not stop the others
            log.exception("Grafana organization sync of %s failed", sync.target.name)
            return Outcome(sync.target, 1, plan, f"unexpected {type(exc).__name__}")
        return Outcome(sync.target, EXIT_AMBIGUOUS if plan.ambiguous else 0, plan)


def sync_organizations(
    pairs: Sequence[tuple[UserSource | Sequence[UserSource], OrgTarget]],
    grafana: GrafanaClient,
    *,
    dry_run: bool = False,
) -> int:
    """Sync each (members, target) pair on its own, print each plan, report each failure in one
    sentence on stderr, and return the worst exit status: 0, 3 (ambiguous accounts left out),
    1 (a sync failed) or 2 (the configuration cannot be used)."""
    try:
        syncs = OrganizationsSync(pairs, grafana)
    except ConfigError as exc:
        report(PROG, exc)
        return 2
    return print_outcomes(syncs, dry_run)


def worst(a: int, b: int) -> int:
    return max(a, b, key=SEVERITY.index)


TOKEN_CANNOT = (
    "a service-account token belongs to one organization, so it can neither list Grafana's other "
    "accounts (needed to tell confusable emails apart) nor add anyone to a dedicated "
    "organization; set GRAFANA_ADMIN_USER and GRAFANA_ADMIN_PASSWORD_FILE (or "
    "GRAFANA_ADMIN_PASSWORD) to a Grafana server admin's login and password"
)


def admin_client(
    url: str | None,
    user: str | None = None,
    password_file: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> GrafanaClient:
    """A client signed in as a Grafana server admin, from the flags or the environment:
    `GRAFANA_URL`, `GRAFANA_ADMIN_USER`, and `GRAFANA_ADMIN_PASSWORD_FILE` or
    `GRAFANA_ADMIN_PASSWORD`. The password is never printed, logged or put in a message."""
    origin = grafana_origin(url, env)
    user = user or env.get("GRAFANA_ADMIN_USER", "")
    password = read_secret(
        env,
        "GRAFANA_ADMIN_PASSWORD",
        password_file,
        "--grafana.admin-password-file",
        exact=True,
    )
    if not user or not password:
        if env.get("GRAFANA_TOKEN") or env.get("GRAFANA_TOKEN_FILE"):
            raise AccessConfigError(TOKEN_CANNOT)
        raise AccessConfigError(
            "set GRAFANA_ADMIN_USER and GRAFANA_ADMIN_PASSWORD_FILE (or GRAFANA_ADMIN_PASSWORD) "
            "to a Grafana server admin's login and password"
        )
    return GrafanaClient(origin, basic=BasicAuth(user, password))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the dedicated-organization mode (for one Anthropic organization)."""
    parser.add_argument(
        "--grafana.org-name",
        dest="grafana_org_name",
        default=None,
        help="manage the membership of this Grafana organization, dedicated to the Anthropic "
        "organization (created if missing); needs a server admin's login and password "
        "(default: off, the folder mode)",
    )
    parser.add_argument(
        "--grafana.datasource-url",
        dest="grafana_datasource_url",
        default=None,
        help="URL at which Grafana reaches the organization's Prometheus (with --grafana.org-name)",
    )
    parser.add_argument(
        "--grafana.datasource-uid",
        dest="grafana_datasource_uid",
        default=DEFAULT_DATASOURCE_UID,
        help="uid of that data source (default: %(default)s)",
    )
    parser.add_argument(
        "--grafana.datasource-name",
        dest="grafana_datasource_name",
        default=DEFAULT_DATASOURCE_NAME,
        help="name of that data source (default: %(default)s)",
    )
    parser.add_argument(
        "--grafana.datasource-header",
        dest="grafana_datasource_headers",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a header the data source sends with every query, such as X-Scope-OrgID=acme "
        "(repeatable)",
    )
    parser.add_argument(
        "--grafana.keep-logins",
        dest="grafana_keep_logins",
        default="",
        help="comma-separated logins that stay members whatever their Console role; they can "
        "query all of the organization's data (default: none)",
    )
    parser.add_argument(
        "--grafana.dashboards-dir",
        dest="grafana_dashboards_dir",
        default=None,
        help="folder of dashboard JSON to import into the organization (default: "
        "dashboards/generated of this checkout, when there is one)",
    )
    parser.add_argument(
        "--grafana.finance-dashboards-dir",
        dest="grafana_finance_dashboards_dir",
        default=None,
        help="folder of dashboard JSON to import into the finance view's organization (default: "
        "dashboards/generated-finance of this checkout, when there is one)",
    )
    parser.add_argument(
        "--grafana.admin-user",
        dest="grafana_admin_user",
        default=None,
        help="login of a Grafana server admin (default: $GRAFANA_ADMIN_USER)",
    )
    parser.add_argument(
        "--grafana.admin-password-file",
        dest="grafana_admin_password_file",
        default=None,
        help="file holding that server admin's password (default: $GRAFANA_ADMIN_PASSWORD_FILE, "
        "or the password itself in $GRAFANA_ADMIN_PASSWORD)",
    )


def target_of(
    name: str, grafana: GrafanaOrganization, access: AccessConfig, dashboards: Path | None
) -> OrgTarget:
    """The dedicated Grafana organization a configuration entry (or the flags) describes."""
    source = DataSource(
        grafana.datasource_url,
        grafana.datasource_uid or DEFAULT_DATASOURCE_UID,
        grafana.datasource_name or DEFAULT_DATASOURCE_NAME,
        grafana.datasource_headers,
    )
    return OrgTarget(
        name=name,
        grafana_org=grafana.name,
        datasources=(source,),
        keep_logins=grafana.keep_logins,
        access=access,
        dashboards=dashboards,
    )


def grafana_of_args(args: argparse.Namespace) -> GrafanaOrganization:
    """`--grafana.org-name` and the data source flags, as a configuration entry would say them."""
    if not args.grafana_datasource_url:
        raise AccessConfigError(
            "--grafana.org-name needs --grafana.datasource-url, the URL at which Grafana reaches "
            "this organization's Prometheus"
        )
    headers = {}
    for item in args.grafana_datasource_headers:
        name, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not name:
            raise AccessConfigError(f"data source header {item!r} is not of the form NAME=VALUE")
        headers[name] = value
    return GrafanaOrganization(
        name=args.grafana_org_name,
        datasource_url=args.grafana_datasource_url,
        datasource_uid=args.grafana_datasource_uid,
        datasource_name=args.grafana_datasource_name,
        datasource_headers=headers,
        keep_logins=frozenset(filter(None, map(str.strip, args.grafana_keep_logins.split(",")))),
    )


def from_args(
    args: argparse.Namespace,
    organizations: Sequence[Organization],
    finance: Finance | None,
    sources: Mapping[str, UserSource],
    access: AccessConfig,
    env: Mapping[str, str] = os.environ,
) -> OrganizationsSync:
    """The sync of the dedicated organizations that the flags (`--grafana.org-name`, for the one
    organization configured) or the configuration's `grafana:` and `finance:` entries name."""
    dashboards = _folder(args.grafana_dashboards_dir, DEFAULT_DASHBOARDS)
    pairs: list[tuple[UserSource | Sequence[UserSource], OrgTarget]] = []
    if args.grafana_org_name:
        if len(organizations) > 1 or organizations[0].grafana or finance:
            raise AccessConfigError(
                "--grafana.org-name names the Grafana organization of the one organization "
                "configured; with a configuration file, name each in its grafana: entry"
            )
        grafana = grafana_of_args(args)  # messages name it by its Grafana organization
        source = sources[organizations[0].name]
        pairs.append((source, target_of(grafana.name, grafana, access, dashboards)))
    for org in organizations:
        if org.grafana is not None:
            pairs.append((sources[org.name], target_of(org.name, org.grafana, access, dashboards)))
    if finance is not None:
        shown = _folder(args.grafana_finance_dashboards_dir, DEFAULT_FINANCE_DASHBOARDS)
        members = tuple(sources[name] for name in finance.organizations)
        pairs.append((members, target_of("finance", finance.grafana, access, shown)))
    return OrganizationsSync(pairs, _grafana(args, env))


def _folder(given: str | None, default: Path) -> Path | None:
    """The dashboards folder a flag names, else this checkout's when there is one, else none."""
    if given:
        return Path(given)
    return default if default.is_dir() else None


def print_outcomes(syncs: OrganizationsSync, dry_run: bool) -> int:
    """Run each sync, print each plan, report each failure in one sentence on stderr, and return
    the worst exit status: 0, 3 (ambiguous accounts left out) or 1 (a sync failed)."""
    status = 0
    for outcome in syncs.run(dry_run):
        if outcome.plan is not None:
            print("\n".join(outcome.plan.describe()))
            if dry_run:
                print("Dry run: nothing was changed.")
            elif not outcome.error and not outcome.plan.empty:
                print("Applied.")
        if outcome.error:
            report(PROG, f"{outcome.target.name}: {outcome.error}")
        elif outcome.status == EXIT_AMBIGUOUS:
            report(
                PROG,
                f"{outcome.target.name}: warning: the accounts listed as ambiguous got no access; "
                "make each Grafana account's email that of exactly one Console member",
            )
        status = worst(status, outcome.status)
    return status


def _grafana(args: argparse.Namespace, env: Mapping[str, str]) -> GrafanaClient:
    return admin_client(
        args.grafana_url, args.grafana_admin_user, args.grafana_admin_password_file, env
    )


def _change(user: GrafanaUser, role: str, before: str) -> Membership:
    return Membership(user.id, user.login, user.email, role, before)


def _rank(role: str) -> int:
    return ORG_ROLES.index(role) if role in ORG_ROLES else -1


def _content(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard without what Grafana assigns when it stores one."""
    return {k: v for k, v in dashboard.items() if k not in ("id", "version")}


def _restorable(found: Mapping[str, Any]) -> dict[str, Any]:
    """A data source as Grafana showed it, as the body that puts it back. Header values are
    secret and never shown, so those the update set stay."""
    keys = ("uid", "name", "type", "access", "url", "isDefault", "jsonData", "basicAuth")
    return {k: found[k] for k in keys if k in found}
