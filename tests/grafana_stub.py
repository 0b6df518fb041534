"""A stub Grafana serving, over real HTTP on loopback, the parts of Grafana's HTTP API that the
access sync uses, and the query endpoint whose reach the sync has to bound.

Shapes and status codes follow Grafana's HTTP API reference: the Organization API (`/api/org`,
`/api/orgs`), User API, Team API, Folder API, Folder Permissions API, Dashboard API, Data source
API (including "Query a data source", `POST /api/ds/query`) and Search API, and the
"Authentication options for the HTTP API" page. Where those pages are silent, a comment says so
and names what the behaviour follows instead (Grafana's source, read on GitHub).

The model
---------
- **Organizations** (`Org`) each hold their members and roles (Viewer, Editor, Admin), teams,
  folders, data sources and dashboards. Organization 1, "Main Org.", exists from the start, as in
  Grafana. `add_user()` puts a user in it by default, as Grafana's `auto_assign_org` does.
- **Who is calling.** A user authenticates with basic auth (login and password, `secret` unless
  set); a service-account token (`Authorization: Bearer`) belongs to one organization with one
  role (`add_service_account()`; `stub.token` is an Admin of organization 1).
- **Which organization a request is in**: the `X-Grafana-Org-Id` header when it is a number, else
  the user's current organization (the first one they joined) or the token's organization.
  A token sent with another organization's id is refused with 401 ("API key does not belong to
  the requested organization"). A user who is not a member of the organization named by the
  header has no role in it, so every endpoint that needs a role answers 403 "Access denied".
- **Permissions**, as Grafana's basic roles grant them: the admin endpoints (`/api/orgs...`,
  `/api/users/search`) need a server admin with basic auth; managing an organization's users,
  teams, folder permissions and data sources needs its Admin role (a user's or a token's);
  creating folders and dashboards needs Editor; `POST /api/ds/query` needs any role in the
  organization that holds the data source: in open-source Grafana every member, Viewers
  included, may query every data source of their organization (grafana/grafana pull request
  69590, "Viewer role can arbitrarily query data sources directly"). Server admins are not
  members of every organization: like anyone, they query only where they are members, but they
  can add themselves anywhere.
- **Folders** start with Grafana's default grants (Viewer: View, Editor: Edit). Admins of the
  organization see every folder; everyone else needs a grant, directly, through a team, or
  through their role (an Editor also holds what Viewers are granted).
- `POST /api/ds/query` forwards each query's `expr` to the data source's real URL
  (`/api/v1/query_range`, or `/api/v1/query` for `"instant": true`) and answers in Grafana's data
  frame shape. Only Prometheus data sources are served.

Driving it from a test
----------------------
    with GrafanaStub() as grafana:
        acme = grafana.add_org("Claude Code: acme")
        ada = grafana.add_user("ada", "ada@example.com", role=None)   # in no organization
        grafana.add_member(acme.id, ada.id, "Viewer")
        grafana.add_datasource(acme.id, "claude-code-prometheus", "Prometheus", prometheus.url)
        answer = query_data_source(grafana.url, ("ada", "secret"), "claude-code-prometheus",
                                   "up", org_id=acme.id)      # a requests.Response
        grafana.queryable()    # {(org id, data source uid, URL): logins who may query it}

`history` and `query_history` hold what `visibility()` and `queryable()` were after each change
made through the API, in order. `fail()` makes a matching request answer with an error once.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

ROLE_RANK = {"Viewer": 1, "Editor": 2, "Admin": 3}
PERMISSION_NAMES = {1: "View", 2: "Edit", 4: "Admin"}
MAIN_ORG = 1
DEFAULT_PASSWORD = "secret"


@dataclass
class User:
    id: int
    login: str
    email: str
    is_server_admin: bool = False
    password: str = DEFAULT_PASSWORD
    # Where a request without X-Grafana-Org-Id goes; 0 when the user is in no organization.
    current_org: int = 0


@dataclass
class Team:
    id: int
    name: str
    email: str = ""
    members: set[int] = field(default_factory=set)


@dataclass
class Folder:
    id: int
    uid: str
    title: str
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DataSource:
    id: int
    uid: str
    name: str
    url: str
    type: str = "prometheus"
    is_default: bool = False
    json_data: dict[str, Any] = field(default_factory=dict)
    secure_json_data: dict[str, str] = field(default_factory=dict)
    version: int = 1


@dataclass
class Dashboard:
    id: int
    uid: str
    folder_uid: str
    model: dict[str, Any]
    version: int = 1


@dataclass
class Org:
    id: int
    name: str
    members: dict[int, str] = field(default_factory=dict)  # user id: role
    teams: dict[int, Team] = field(default_factory=dict)
    folders: dict[str, Folder] = field(default_factory=dict)
    datasources: dict[str, DataSource] = field(default_factory=dict)
    dashboards: dict[str, Dashboard] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceAccount:
    org_id: int
    role: str


@dataclass(frozen=True)
class Caller:
    """Who sent a request and where it applies: `org` is None when no such organization exists,
    `role` None when the caller is not a member of it."""

    user: User | None
    org: Org | None
    role: str | None

    @property
    def server_admin(self) -> bool:
        return self.user is not None and self.user.is_server_admin


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    after: int


class Reply(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ServerAdmin:
    """The route needs a Grafana server admin; `action` is the RBAC action named when refused."""

    action: str


@dataclass(frozen=True)
class OrgRole:
    """The route needs at least `minimum` in the request's organization."""

    minimum: str
    action: str


ANYONE = None


class GrafanaStub:
    def __init__(self, token: str = "glsa_stub_token"):
        self.token = token
        self.tokens: dict[str, ServiceAccount] = {token: ServiceAccount(MAIN_ORG, "Admin")}
        self.users: dict[int, User] = {}
        self.orgs: dict[int, Org] = {MAIN_ORG: Org(MAIN_ORG, "Main Org.")}
        self.requests: list[tuple[str, str]] = []
        # After each change made through the API, in order: who could open each folder of the
        # main organization, and who could query each data source.
        self.history: list[dict[str, frozenset[str]]] = []
        self.query_history: list[dict[tuple[int, str, str], frozenset[str]]] = []
        self._failures: list[Failure] = []
        self._ids = itertools.count(1)
        self._org_ids = itertools.count(MAIN_ORG + 1)
        self._denials = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> GrafanaStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # The main organization's teams and folders, for the tests written before organizations.

    @property
    def teams(self) -> dict[int, Team]:
        return self.orgs[MAIN_ORG].teams

    @property
    def folders(self) -> dict[str, Folder]:
        return self.orgs[MAIN_ORG].folders

    # Setting up state, as an administrator or Grafana's provisioning would.

    def add_user(
        self,
        login: str,
        email: str,
        role: str | None = "Viewer",
        server_admin: bool = False,
        org_id: int = MAIN_ORG,
        password: str = DEFAULT_PASSWORD,
    ) -> User:
        """A user, a member of `org_id` with `role` (of no organization when `role` is None)."""
        user = User(next(self._ids), login, email, server_admin, password)
        self.users[user.id] = user
        if role is not None:
            self.add_member(org_id, user.id, role)
        return user

    def add_member(self, org_id: int, user_id: int, role: str) -> None:
        self.orgs[org_id].members[user_id] = role
        if not self.users[user_id].current_org:
            self.users[user_id].current_org = org_id

    def add_org(self, name: str) -> Org:
        org = Org(next(self._org_ids), name)
        self.orgs[org.id] = org
        return org

    def add_service_account(self, org_id: int, role: str = "Admin") -> str:
        """A token of a new service account of `org_id` with `role`."""
        token = f"glsa_stub_{org_id}_{len(self.tokens)}"
        self.tokens[token] = ServiceAccount(org_id, role)
        return token

    def add_datasource(
        self, org_id: int, uid: str, name: str, url: str, is_default: bool = True
    ) -> DataSource:
        source = DataSource(next(self._ids), uid, name, url, is_default=is_default)
        self.orgs[org_id].datasources[uid] = source
        return source

    def delete_user(self, user_id: int) -> None:
        """As a server admin deleting a user does: their memberships, teams and grants go too."""
        del self.users[user_id]
        for org in self.orgs.values():
            org.members.pop(user_id, None)
            for team in org.teams.values():
                team.members.discard(user_id)
            for folder in org.folders.values():
                folder.items = [i for i in folder.items if i.get("userId") != user_id]

    def add_folder(self, uid: str, title: str, org_id: int = MAIN_ORG) -> Folder:
        folder = Folder(
            next(self._ids),
            uid,
            title,
            [
                {"role": "Viewer", "permission": 1},
                {"role": "Editor", "permission": 2},
            ],
        )
        self.orgs[org_id].folders[uid] = folder
        return folder

    def fail(self, method: str, path_pattern: str, status: int = 500, after: int = 0) -> None:
        """Once `after` matching requests went through, the next one answers `status` instead."""
        self._failures.append(Failure(method, re.compile(path_pattern), status, after))

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET" and r[1] != "/api/ds/query"]

    def org_named(self, name: str) -> Org | None:
        return next((o for o in self.orgs.values() if o.name == name), None)

    def members(self, org_id: int) -> dict[str, str]:
        """Each member's login and role."""
        return {self.users[u].login: role for u, role in self.orgs[org_id].members.items()}

    # Grafana's access evaluation.

    def can_view(self, user: User, folder: Folder, org_id: int = MAIN_ORG) -> bool:
        role = self.orgs[org_id].members.get(user.id)
        if role is None:
            return False
        if user.is_server_admin or role == "Admin":
            return True
        return any(
            self._grants(item, user, role, org_id) for item in folder.items if item["permission"]
        )

    def visibility(self, org_id: int = MAIN_ORG) -> dict[str, frozenset[str]]:
        """Each folder's uid and the logins that can open it."""
        return {
            f.uid: frozenset(u.login for u in self.users.values() if self.can_view(u, f, org_id))
            for f in self.orgs[org_id].folders.values()
        }

    def queryable(self) -> dict[tuple[int, str, str], frozenset[str]]:
        """Each data source, as (organization id, uid, URL), and the logins that may query it:
        a data source pointed elsewhere counts as another one, since it shows other data."""
        return {
            (org.id, uid, source.url): frozenset(self.users[u].login for u in org.members)
            for org in self.orgs.values()
            for uid, source in org.datasources.items()
        }

    def snapshot(self) -> tuple:
        """Everything the sync may change, to compare before and after."""
        return tuple(
            (
                org.id,
                org.name,
                sorted(org.members.items()),
                sorted((t.name, tuple(sorted(t.members))) for t in org.teams.values()),
                sorted(
                    (uid, tuple(sorted(map(_item_key, f.items)))) for uid, f in org.folders.items()
                ),
                sorted((s.uid, s.name, s.url, s.is_default) for s in org.datasources.values()),
                sorted((d.uid, d.folder_uid, d.version) for d in org.dashboards.values()),
            )
            for org in sorted(self.orgs.values(), key=lambda o: o.id)
        )

    def _grants(self, item: dict[str, Any], user: User, role: str, org_id: int) -> bool:
        if item.get("userId"):
            return item["userId"] == user.id
        if item.get("teamId"):
            team = self.orgs[org_id].teams.get(item["teamId"])
            return team is not None and user.id in team.members
        return ROLE_RANK.get(role, 0) >= ROLE_RANK.get(item.get("role", ""), 99)

    # The HTTP API.

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> Any:
        with self._lock:
            self.requests.append((method, path))
            self._inject_failure(method, path)
            caller = self._authenticate(
                headers.get("Authorization", ""), headers.get("X-Grafana-Org-Id")
            )
            answer = self._route(caller, method, path, query, body)
            if method != "GET" and not isinstance(answer, Forward):
                self.history.append(self.visibility())
                self.query_history.append(self.queryable())
        return answer.run() if isinstance(answer, Forward) else answer

    def _inject_failure(self, method: str, path: str) -> None:
        for failure in self._failures:
            if failure.method == method and failure.path.fullmatch(path):
                if failure.after:
                    failure.after -= 1
                    continue
                self._failures.remove(failure)
                raise Reply(failure.status, {"message": "injected failure"})

    def _authenticate(self, auth: str, org_header: str | None) -> Caller:
        requested = _org_id(org_header)
        if auth.startswith("Bearer "):
            account = self.tokens.get(auth[len("Bearer ") :])
            if account is None:
                raise Reply(401, {"message": "Unauthorized"})
            if requested and requested != account.org_id:
                # Grafana's API key client (pkg/services/authn/clients/api_key.go); the docs
                # only say that a token belongs to one organization.
                raise Reply(
                    401,
                    {
                        "message": "API key does not belong to the requested organization",
                        "messageId": "api-key.organization-mismatch",
                        "statusCode": 401,
                    },
                )
            return Caller(None, self.orgs[account.org_id], account.role)
        if auth.startswith("Basic "):
            login, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            user = next((u for u in self.users.values() if u.login == login), None)
            if user is None or user.password != password:
                raise Reply(401, {"message": "Invalid username or password"})
            # The docs are silent on a header naming an organization the user is not in; in
            # Grafana the user is then signed in without a role there ("Org missing" in
            # pkg/services/user), and every permission check in that organization fails.
            org = self.orgs.get(requested or user.current_org)
            return Caller(user, org, org.members.get(user.id) if org else None)
        raise Reply(401, {"message": "Unauthorized"})

    def _route(self, caller: Caller, method: str, path: str, query: dict, body: Any) -> Any:
        for route_method, pattern, need, action in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                self._authorize(caller, need)
                args = [unquote(g) for g in match.groups()]
                return action(self, caller, *args, query=query, body=body)
        raise Reply(404, {"message": "Not found"})

    def _authorize(self, caller: Caller, need: ServerAdmin | OrgRole | None) -> None:
        if isinstance(need, ServerAdmin) and not caller.server_admin:
            self._deny(need.action)
        if isinstance(need, OrgRole) and ROLE_RANK.get(caller.role or "", 0) < ROLE_RANK.get(
            need.minimum, 99
        ):
            self._deny(need.action)

    def _deny(self, action: str) -> None:
        """Grafana's access-control refusal (its body in pkg/services/accesscontrol/middleware.go;
        the docs list only the status, 403)."""
        raise Reply(
            403,
            {
                "accessErrorId": f"ACE{next(self._denials):010d}",
                "message": "You'll need additional permissions to perform this action. "
                f"Permissions needed: {action}",
                "title": "Access denied",
            },
        )

    # Users (User API) and organizations (Organization API).

    def _current_user(self, caller: Caller, query: dict, body: Any) -> Any:
        if caller.user is None:
            raise Reply(400, {"message": "the stub serves /api/user to users only"})
        return {**self._user_view(caller.user), "orgId": caller.user.current_org, "theme": ""}

    def _search_users(self, caller: Caller, query: dict, body: Any) -> Any:
        """Paged as the User API's "Search Users with Paging" says: `perpage` (1000) and `page`
        (1), `query` matched within login, email or name."""
        per_page, page = int(query.get("perpage", 1000)), max(int(query.get("page", 1)), 1)
        text = query.get("query", "").lower()
        found = [
            u
            for u in sorted(self.users.values(), key=lambda u: (u.login, u.email))
            if text in u.login.lower() or text in u.email.lower()
        ]
        chosen = found[(page - 1) * per_page : page * per_page]
        return {
            "totalCount": len(found),
            "users": [
                {
                    **self._user_view(u),
                    "isAdmin": u.is_server_admin,
                    "lastSeenAt": "2026-11-28T10:00:00Z",
                    "lastSeenAtAge": "1h",
                    "authLabels": [],
                }
                for u in chosen
            ],
            "page": page,
            "perPage": per_page,
        }

    def _list_orgs(self, caller: Caller, query: dict, body: Any) -> Any:
        return [{"id": o.id, "name": o.name} for o in self.orgs.values()]

    def _create_org(self, caller: Caller, query: dict, body: Any) -> Any:
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise Reply(400, {"message": "bad request data"})
        if self.org_named(name):
            raise Reply(409, {"message": "Organization name taken"})
        org = self.add_org(name)
        # The docs are silent; Grafana makes the creator an Admin of the new organization
        # (CreateWithMember in pkg/api/org.go).
        if caller.user is not None:
            self.add_member(org.id, caller.user.id, "Admin")
        # The docs show the new id as a string.
        return {"orgId": str(org.id), "message": "Organization created"}

    def _get_org(self, caller: Caller, org_id: str, query: dict, body: Any) -> Any:
        return _org_view(self._org(org_id))

    def _org_by_name(self, caller: Caller, name: str, query: dict, body: Any) -> Any:
        org = self.org_named(name)
        if org is None:
            raise Reply(404, {"message": "Organization not found"})
        return _org_view(org)

    def _delete_org(self, caller: Caller, org_id: str, query: dict, body: Any) -> Any:
        org = self.orgs.get(int(org_id))
        if org is None or org.id == MAIN_ORG:
            raise Reply(404, {"message": "Failed to delete organization. ID not found"})
        del self.orgs[org.id]
        for user_id in org.members:
            self._leave(org.id, user_id)
        return {"message": "Organization deleted"}

    def _admin_org_users(self, caller: Caller, org_id: str, query: dict, body: Any) -> Any:
        return self._members_view(self._org(org_id))

    def _admin_add_org_user(self, caller: Caller, org_id: str, query: dict, body: Any) -> Any:
        return self._add_org_user(self._org(org_id), body)

    def _admin_update_org_user(
        self, caller: Caller, org_id: str, user_id: str, query: dict, body: Any
    ) -> Any:
        return self._update_org_user(self._org(org_id), int(user_id), body)

    def _admin_remove_org_user(
        self, caller: Caller, org_id: str, user_id: str, query: dict, body: Any
    ) -> Any:
        return self._remove_org_user(self._org(org_id), int(user_id), delete_orphan=False)

    def _org_users(self, caller: Caller, query: dict, body: Any) -> Any:
        return self._members_view(self._caller_org(caller))

    def _add_current_org_user(self, caller: Caller, query: dict, body: Any) -> Any:
        return self._add_org_user(self._caller_org(caller), body)

    def _update_current_org_user(self, caller: Caller, user_id: str, query: dict, body: Any) -> Any:
        return self._update_org_user(self._caller_org(caller), int(user_id), body)

    def _remove_current_org_user(self, caller: Caller, user_id: str, query: dict, body: Any) -> Any:
        return self._remove_org_user(self._caller_org(caller), int(user_id), delete_orphan=True)

    def _add_org_user(self, org: Org, body: Any) -> Any:
        if not isinstance(body, dict) or body.get("role") not in ROLE_RANK:
            raise Reply(400, {"message": "Invalid role specified"})
        user = self._lookup(str(body.get("loginOrEmail") or ""))
        if user is None:
            raise Reply(404, {"message": "User not found"})
        if user.id in org.members:
            raise Reply(
                409, {"message": "User is already member of this organization", "userId": user.id}
            )
        self.add_member(org.id, user.id, body["role"])
        return {"message": "User added to organization", "userId": user.id}

    def _lookup(self, login_or_email: str) -> User | None:
        """The docs are silent on how `loginOrEmail` is matched; Grafana's user store looks for
        the login first and then, for text with an @, for the email, both regardless of case."""
        wanted = login_or_email.lower()
        by_login = [u for u in self.users.values() if u.login.lower() == wanted]
        if by_login:
            return by_login[0]
        if "@" in wanted:
            return next((u for u in self.users.values() if u.email.lower() == wanted), None)
        return None

    def _update_org_user(self, org: Org, user_id: int, body: Any) -> Any:
        role = body.get("role") if isinstance(body, dict) else None
        if role not in ROLE_RANK:
            raise Reply(400, {"message": "Invalid role specified"})
        if user_id not in org.members:
            # The docs are silent; this is the stub's answer for a user outside the org.
            raise Reply(404, {"message": "User not found in organization"})
        if org.members[user_id] == "Admin" and role != "Admin" and self._last_admin(org, user_id):
            raise Reply(
                400, {"message": "Cannot change role so that there is no organization admin left"}
            )
        org.members[user_id] = role
        return {"message": "Organization user updated"}

    def _remove_org_user(self, org: Org, user_id: int, delete_orphan: bool) -> Any:
        if user_id not in org.members:
            # The docs are silent; Grafana checks membership first since CVE-2025-3580.
            raise Reply(404, {"message": "User not found in organization"})
        if org.members[user_id] == "Admin" and self._last_admin(org, user_id):
            raise Reply(400, {"message": "Cannot remove last organization admin"})
        del org.members[user_id]
        self._leave(org.id, user_id)
        user = self.users[user_id]
        # The docs are silent: DELETE /api/org/users/:userId deletes a user left in no
        # organization (ShouldDeleteOrphanedUser in pkg/api/org_users.go), server admins excepted;
        # DELETE /api/orgs/:orgId/users/:userId never does.
        if delete_orphan and not user.current_org and not user.is_server_admin:
            self.delete_user(user_id)
            return {"message": "User deleted"}
        return {"message": "User removed from organization"}

    def _leave(self, org_id: int, user_id: int) -> None:
        """What leaving an organization does besides the membership: the user leaves its teams,
        and a user whose current organization it was moves to another of theirs (Grafana's
        RemoveOrgUser; the docs are silent)."""
        org = self.orgs.get(org_id)
        for team in org.teams.values() if org else ():
            team.members.discard(user_id)
        user = self.users.get(user_id)
        if user is not None and user.current_org == org_id:
            others = sorted(o.id for o in self.orgs.values() if user_id in o.members)
            user.current_org = others[0] if others else 0

    def _last_admin(self, org: Org, user_id: int) -> bool:
        return not any(r == "Admin" for u, r in org.members.items() if u != user_id)

    def _members_view(self, org: Org) -> list[dict[str, Any]]:
        return [
            {
                "orgId": org.id,
                "userId": u,
                "email": self.users[u].email,
                "login": self.users[u].login,
                "role": role,
                "avatarUrl": f"/avatar/{u}",
                "lastSeenAt": "2026-11-28T10:00:00Z",
                "lastSeenAtAge": "1h",
            }
            for u, role in sorted(org.members.items())
        ]

    def _user_view(self, user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "name": user.login,
            "login": user.login,
            "email": user.email,
            "isGrafanaAdmin": user.is_server_admin,
            "isDisabled": False,
            "isExternal": False,
            "authLabels": [],
            "avatarUrl": f"/avatar/{user.id}",
        }

    # Teams (Team API) and folder permissions (Folder Permissions API).

    def _search_teams(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        if "name" in query:
            teams = [t for t in org.teams.values() if t.name == query["name"]]
            if not teams:
                raise Reply(404, {"message": "Team not found"})
        else:
            teams = [t for t in org.teams.values() if query.get("query", "") in t.name]
        teams.sort(key=lambda t: t.name)
        per_page, page = int(query.get("perpage", 1000)), int(query.get("page", 1))
        chosen = teams[(page - 1) * per_page : page * per_page]
        return {
            "totalCount": len(teams),
            "page": page,
            "perPage": per_page,
            "teams": [
                {
                    "id": t.id,
                    "orgId": org.id,
                    "name": t.name,
                    "email": t.email,
                    "avatarUrl": f"/avatar/t{t.id}",
                    "memberCount": len(t.members),
                }
                for t in chosen
            ],
        }

    def _create_team(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise Reply(400, {"message": "Bad request data"})
        if any(t.name == name for t in org.teams.values()):
            raise Reply(409, {"message": "Team name taken"})
        team = Team(next(self._ids), name, body.get("email", ""))
        org.teams[team.id] = team
        return {"message": "Team created", "teamId": team.id, "uid": f"team{team.id}"}

    def _delete_team(self, caller: Caller, team_id: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        team = self._team(org, team_id, "Failed to delete Team. ID not found")
        del org.teams[team.id]
        for folder in org.folders.values():
            folder.items = [i for i in folder.items if i.get("teamId") != team.id]
        return {"message": "Team deleted"}

    def _team_members(self, caller: Caller, team_id: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        team = self._team(org, team_id, "Team not found")
        return [
            {
                "orgId": org.id,
                "teamId": team.id,
                "userId": uid,
                "email": self.users[uid].email,
                "login": self.users[uid].login,
                "avatarUrl": f"/avatar/{uid}",
                "permission": 0,
            }
            for uid in sorted(team.members)
        ]

    def _add_member(self, caller: Caller, team_id: str, query: dict, body: Any) -> Any:
        team = self._team(self._caller_org(caller), team_id, "Team not found")
        user_id = body.get("userId") if isinstance(body, dict) else None
        if user_id not in self.users:
            raise Reply(404, {"message": "User not found"})
        if user_id in team.members:
            raise Reply(400, {"message": "User is already added to this team"})
        team.members.add(user_id)
        return {"message": "Member added to Team"}

    def _remove_member(
        self, caller: Caller, team_id: str, user_id: str, query: dict, body: Any
    ) -> Any:
        team = self._team(self._caller_org(caller), team_id, "Team not found")
        if int(user_id) not in team.members:
            raise Reply(404, {"message": "Team member not found"})
        team.members.remove(int(user_id))
        return {"message": "Team Member removed"}

    def _get_permissions(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        folder = self._folder(org, uid)
        return [
            self._permission_view(org, folder, n, item) for n, item in enumerate(folder.items, 1)
        ]

    def _set_permissions(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        folder = self._folder(org, uid)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Reply(400, {"message": "bad request data"})
        folder.items = [self._valid_item(org, item) for item in items]
        return {"message": "Folder permissions updated", "id": folder.id, "title": folder.title}

    def _valid_item(self, org: Org, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or item.get("permission") not in PERMISSION_NAMES:
            raise Reply(400, {"message": "Invalid permission"})
        subjects = [k for k in ("role", "teamId", "userId") if item.get(k)]
        if len(subjects) != 1:
            raise Reply(
                400, {"message": "Permission must be set for exactly one of role, team or user"}
            )
        if item.get("role") and item["role"] not in ("Viewer", "Editor"):
            raise Reply(400, {"message": "Permissions cannot be set for Admins"})
        if item.get("teamId") and item["teamId"] not in org.teams:
            raise Reply(400, {"message": "Team not found"})
        if item.get("userId") and item["userId"] not in self.users:
            raise Reply(400, {"message": "User not found"})
        return {subjects[0]: item[subjects[0]], "permission": item["permission"]}

    def _permission_view(
        self, org: Org, folder: Folder, n: int, item: dict[str, Any]
    ) -> dict[str, Any]:
        user = self.users.get(item.get("userId", 0))
        team = org.teams.get(item.get("teamId", 0))
        return {
            "id": n,
            "folderId": folder.id,
            "created": "2026-11-28T10:00:00Z",
            "updated": "2026-11-28T10:00:00Z",
            "userId": user.id if user else 0,
            "userLogin": user.login if user else "",
            "userEmail": user.email if user else "",
            "teamId": team.id if team else 0,
            "team": team.name if team else "",
            "role": item.get("role", ""),
            "permission": item["permission"],
            "permissionName": PERMISSION_NAMES[item["permission"]],
            "uid": folder.uid,
            "title": folder.title,
            "slug": folder.uid,
            "isFolder": True,
            "url": f"/dashboards/f/{folder.uid}/",
        }

    # Folders (Folder API), dashboards (Dashboard API) and search (Search API).

    def _search(self, caller: Caller, query: dict, body: Any) -> Any:
        if query.get("type") != "dash-folder":
            raise Reply(400, {"message": "the stub only searches folders"})
        if caller.user is None or caller.org is None:
            return []
        return [
            self._folder_hit(f)
            for f in caller.org.folders.values()
            if self.can_view(caller.user, f, caller.org.id)
        ]

    def _get_folder(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        folder = self._folder(org, uid)
        if caller.user is not None and not self.can_view(caller.user, folder, org.id):
            raise Reply(403, {"message": "Access denied"})
        return self._folder_view(folder)

    def _create_folder(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        if not isinstance(body, dict) or not body.get("title"):
            raise Reply(400, {"message": "folder title cannot be empty"})
        uid = str(body.get("uid") or f"f{next(self._ids)}")
        if uid in org.folders:
            raise Reply(409, {"message": "a folder with the same uid already exists"})
        folder = self.add_folder(uid, str(body["title"]), org.id)
        # The docs are silent; Grafana also grants the creating user Admin on the new folder.
        if caller.user is not None:
            folder.items.append({"userId": caller.user.id, "permission": 4})
        return self._folder_view(folder)

    def _delete_folder(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        folder = self._folder(org, uid)
        del org.folders[uid]
        for dashboard in [d for d in org.dashboards.values() if d.folder_uid == uid]:
            del org.dashboards[dashboard.uid]
        return {"message": "Folder deleted", "id": folder.id}

    def _save_dashboard(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        model = body.get("dashboard") if isinstance(body, dict) else None
        if not isinstance(model, dict) or not model.get("title"):
            raise Reply(400, {"message": "Dashboard title cannot be empty"})
        folder_uid = str(body.get("folderUid") or "")
        if folder_uid:
            folder = self._folder(org, folder_uid)
            if caller.user is not None and not self._can_edit(caller, folder):
                raise Reply(403, {"message": "Access denied"})
        uid = str(model.get("uid") or f"d{next(self._ids)}")
        existing = org.dashboards.get(uid)
        if existing and not body.get("overwrite"):
            raise Reply(
                412,
                {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                },
            )
        version = existing.version + 1 if existing else 1
        dashboard_id = existing.id if existing else next(self._ids)
        stored = {**model, "id": dashboard_id, "uid": uid, "version": version}
        org.dashboards[uid] = Dashboard(dashboard_id, uid, folder_uid, stored, version)
        return {
            "id": dashboard_id,
            "uid": uid,
            "url": f"/d/{uid}/{_slug(model['title'])}",
            "status": "success",
            "version": version,
            "slug": _slug(model["title"]),
        }

    def _get_dashboard(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        dashboard = org.dashboards.get(uid)
        if dashboard is None:
            raise Reply(404, {"message": "Dashboard not found"})
        folder = org.folders.get(dashboard.folder_uid)
        if caller.user is not None and folder and not self.can_view(caller.user, folder, org.id):
            raise Reply(403, {"message": "Access denied to this dashboard"})
        return {
            "dashboard": dashboard.model,
            "meta": {
                "type": "db",
                "slug": _slug(dashboard.model.get("title", "")),
                "url": f"/d/{uid}",
                "folderUid": dashboard.folder_uid,
                "folderTitle": folder.title if folder else "General",
                "version": dashboard.version,
            },
        }

    def _delete_dashboard(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        dashboard = org.dashboards.pop(uid, None)
        if dashboard is None:
            raise Reply(404, {"message": "Dashboard not found"})
        title = dashboard.model.get("title", "")
        return {"title": title, "message": f"Dashboard {title} deleted", "id": dashboard.id}

    def _can_edit(self, caller: Caller, folder: Folder) -> bool:
        if caller.role == "Admin":
            return True
        user = caller.user
        return user is not None and any(
            self._grants(item, user, caller.role or "", caller.org.id if caller.org else 0)
            for item in folder.items
            if item["permission"] >= 2
        )

    def _folder_hit(self, folder: Folder) -> dict[str, Any]:
        return {
            "id": folder.id,
            "uid": folder.uid,
            "title": folder.title,
            "type": "dash-folder",
            "url": f"/dashboards/f/{folder.uid}/",
            "tags": [],
            "isStarred": False,
        }

    def _folder_view(self, folder: Folder) -> dict[str, Any]:
        return {
            "id": folder.id,
            "uid": folder.uid,
            "title": folder.title,
            "url": f"/dashboards/f/{folder.uid}/{_slug(folder.title)}",
            "hasAcl": False,
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "version": 1,
        }

    # Data sources (Data source API), and querying them.

    def _list_datasources(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        return [self._datasource_view(org, s) for s in org.datasources.values()]

    def _get_datasource(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        return self._datasource_view(org, self._datasource(org, uid))

    def _create_datasource(self, caller: Caller, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
            raise Reply(400, {"message": "bad request data"})
        # The 409 messages are Grafana's (pkg/services/datasources); the docs are silent.
        if any(s.name == body["name"] for s in org.datasources.values()):
            raise Reply(409, {"message": "data source with the same name already exists"})
        uid = str(body.get("uid") or f"ds{next(self._ids)}")
        if uid in org.datasources:
            raise Reply(409, {"message": "data source with the same uid already exists"})
        source = DataSource(next(self._ids), uid, body["name"], str(body.get("url") or ""))
        self._fill_datasource(org, source, body)
        org.datasources[uid] = source
        return {
            "datasource": self._datasource_view(org, source),
            "id": source.id,
            "message": "Datasource added",
            "name": source.name,
        }

    def _update_datasource(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        source = self._datasource(org, uid)
        if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
            raise Reply(400, {"message": "bad request data"})
        if any(s.name == body["name"] and s.uid != uid for s in org.datasources.values()):
            raise Reply(409, {"message": "data source with the same name already exists"})
        source.name, source.url = body["name"], str(body.get("url") or "")
        self._fill_datasource(org, source, body)
        source.version += 1
        return {
            "datasource": self._datasource_view(org, source),
            "id": source.id,
            "message": "Datasource updated",
            "name": source.name,
        }

    def _delete_datasource(self, caller: Caller, uid: str, query: dict, body: Any) -> Any:
        org = self._caller_org(caller)
        source = self._datasource(org, uid)
        del org.datasources[uid]
        return {"message": "Data source deleted", "id": source.id}

    def _fill_datasource(self, org: Org, source: DataSource, body: dict[str, Any]) -> None:
        source.type = str(body["type"])
        source.json_data = dict(body.get("jsonData") or {})
        # Secure fields left out of an update keep their values, as Grafana keeps them.
        source.secure_json_data.update(body.get("secureJsonData") or {})
        source.is_default = bool(body.get("isDefault"))
        if source.is_default:  # one default data source per organization
            for other in org.datasources.values():
                if other is not source:
                    other.is_default = False

    def _datasource_view(self, org: Org, source: DataSource) -> dict[str, Any]:
        return {
            "id": source.id,
            "uid": source.uid,
            "orgId": org.id,
            "name": source.name,
            "type": source.type,
            "typeLogoUrl": "",
            "access": "proxy",
            "url": source.url,
            "user": "",
            "database": "",
            "basicAuth": False,
            "isDefault": source.is_default,
            "jsonData": source.json_data,
            "secureJsonFields": {k: True for k in source.secure_json_data},
            "version": source.version,
            "readOnly": False,
        }

    def _query(self, caller: Caller, query: dict, body: Any) -> Forward:
        """`POST /api/ds/query` ("Query a data source" in the Data source API): the request body
        holds `queries` (each with `refId`, `datasource.uid` and, for Prometheus, `expr`) and
        `from`/`to` (epoch milliseconds or Grafana's relative `now-6h`)."""
        org = self._caller_org(caller)
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list) or not queries:
            raise Reply(400, {"message": "No queries found"})
        start, end = _instant(body.get("from", "now-1h")), _instant(body.get("to", "now"))
        work = []
        for q in queries:
            uid = str((q.get("datasource") or {}).get("uid") or "")
            if uid == "__expr__":
                raise Reply(400, {"message": "the stub does not evaluate server-side expressions"})
            # Grafana answers a data source of another organization as one that does not exist
            # (pkg/api/ds_query.go: 404 "Data source not found").
            source = org.datasources.get(uid)
            if source is None:
                raise Reply(404, {"message": "Data source not found"})
            if source.type != "prometheus":
                raise Reply(400, {"message": "the stub queries only Prometheus data sources"})
            work.append(_PromQuery.of(q, source, start, end))
        return Forward(work)

    def _caller_org(self, caller: Caller) -> Org:
        if caller.org is None:  # cannot happen once a role was required; kept for safety
            raise Reply(404, {"message": "Organization not found"})
        return caller.org

    def _org(self, org_id: str) -> Org:
        org = self.orgs.get(int(org_id))
        if org is None:
            raise Reply(404, {"message": "Organization not found"})
        return org

    def _team(self, org: Org, team_id: str, missing: str) -> Team:
        team = org.teams.get(int(team_id))
        if team is None:
            raise Reply(404, {"message": missing})
        return team

    def _folder(self, org: Org, uid: str) -> Folder:
        if uid not in org.folders:
            raise Reply(404, {"message": "Folder not found"})
        return org.folders[uid]

    def _datasource(self, org: Org, uid: str) -> DataSource:
        if uid not in org.datasources:
            raise Reply(404, {"message": "Data source not found"})
        return org.datasources[uid]


@dataclass(frozen=True)
class _PromQuery:
    """One query of a `/api/ds/query` request, as Grafana's Prometheus data source sends it."""

    ref_id: str
    url: str
    expr: str
    instant: bool
    start: float
    end: float
    step: float

    @classmethod
    def of(cls, q: dict[str, Any], source: DataSource, start: float, end: float) -> _PromQuery:
        # Grafana widens the step so that a panel gets at most maxDataPoints points; the docs
        # give the defaults (maxDataPoints 100, intervalMs 1000).
        points = max(int(q.get("maxDataPoints") or 100), 1)
        interval = float(q.get("intervalMs") or 1000) / 1000
        step = max(interval, math.ceil((end - start) / points), 1.0)
        instant = bool(q.get("instant")) and not q.get("range")
        ref_id = str(q.get("refId") or "A")
        return cls(ref_id, source.url, str(q.get("expr") or ""), instant, start, end, step)

    def run(self) -> tuple[int, dict[str, Any]]:
        if self.instant:
            path, params = "/api/v1/query", {"query": self.expr, "time": self.end}
        else:
            path = "/api/v1/query_range"
            params = {"query": self.expr, "start": self.start, "end": self.end, "step": self.step}
        try:
            answer = requests.post(self.url.rstrip("/") + path, data=params, timeout=30)
            found = answer.json()
        except (requests.RequestException, ValueError) as exc:
            return 500, {"error": f"Post {self.url}: {type(exc).__name__}", "status": 500}
        if found.get("status") != "success":
            error = str(found.get("error") or "query failed")
            return 400, {"error": error, "errorSource": "downstream", "status": 400}
        return 200, {"status": 200, "frames": self._frames(found["data"])}

    def _frames(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Grafana's data frames, as the docs' example shows them (`schema.fields`,
        `data.values`); a frame per series, its labels on the value field, as Grafana's
        Prometheus data source builds them (the field names Time and Value are not in the docs)."""
        kind, result = data["resultType"], data["result"]
        if kind == "scalar":
            result = [{"metric": {}, "value": result}]
        frames = []
        for series in result:
            points = series.get("values") or [series["value"]]
            frames.append(
                {
                    "schema": {
                        "refId": self.ref_id,
                        "meta": {
                            "type": "numeric-multi" if self.instant else "timeseries-multi",
                            "typeVersion": [0, 1],
                            "custom": {"resultType": kind},
                            "executedQueryString": f"Expr: {self.expr}\nStep: {self.step:g}s",
                        },
                        "fields": [
                            {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                            {
                                "name": "Value",
                                "type": "number",
                                "typeInfo": {"frame": "float64", "nullable": True},
                                "labels": series.get("metric", {}),
                            },
                        ],
                    },
                    "data": {
                        "values": [
                            [int(float(t) * 1000) for t, _ in points],
                            [float(v) for _, v in points],
                        ]
                    },
                }
            )
        return frames


@dataclass(frozen=True)
class Forward:
    """Queries to send to Prometheus once the stub's lock is released."""

    queries: list[_PromQuery]

    def run(self) -> Any:
        results, failed = {}, False
        for q in self.queries:
            status, result = q.run()
            results[q.ref_id] = result
            failed = failed or status != 200
        if failed:  # Grafana answers 400 when any query failed (Data source API, status codes)
            raise Reply(400, {"results": results})
        return {"results": results}


def query_data_source(
    url: str,
    auth: tuple[str, str] | str,
    uid: str,
    expr: str,
    *,
    org_id: int | None = None,
    instant: bool = True,
    start: str = "now-1h",
    end: str = "now",
) -> requests.Response:
    """`POST /api/ds/query` as a user (login, password) or with a token, in `org_id` if given."""
    headers = {"X-Grafana-Org-Id": str(org_id)} if org_id is not None else {}
    if isinstance(auth, str):
        headers["Authorization"] = f"Bearer {auth}"
    body = {
        "queries": [{"refId": "A", "datasource": {"uid": uid}, "expr": expr, "instant": instant}],
        "from": start,
        "to": end,
    }
    return requests.post(
        f"{url}/api/ds/query",
        json=body,
        headers=headers,
        auth=None if isinstance(auth, str) else auth,
        timeout=30,
    )


_ROUTES: list[tuple[str, str, ServerAdmin | OrgRole | None, Callable[..., Any]]] = [
    ("GET", r"/api/user", ANYONE, GrafanaStub._current_user),
    ("GET", r"/api/users/search", ServerAdmin("users:read"), GrafanaStub._search_users),
    ("GET", r"/api/orgs", ServerAdmin("orgs:read"), GrafanaStub._list_orgs),
    ("POST", r"/api/orgs", ServerAdmin("orgs:create"), GrafanaStub._create_org),
    ("GET", r"/api/orgs/(\d+)", ServerAdmin("orgs:read"), GrafanaStub._get_org),
    ("DELETE", r"/api/orgs/(\d+)", ServerAdmin("orgs:delete"), GrafanaStub._delete_org),
    ("GET", r"/api/orgs/name/([^/]+)", ServerAdmin("orgs:read"), GrafanaStub._org_by_name),
    ("GET", r"/api/orgs/(\d+)/users", ServerAdmin("org.users:read"), GrafanaStub._admin_org_users),
    (
        "POST",
        r"/api/orgs/(\d+)/users",
        ServerAdmin("org.users:add"),
        GrafanaStub._admin_add_org_user,
    ),
    (
        "PATCH",
        r"/api/orgs/(\d+)/users/(\d+)",
        ServerAdmin("org.users:write"),
        GrafanaStub._admin_update_org_user,
    ),
    (
        "DELETE",
        r"/api/orgs/(\d+)/users/(\d+)",
        ServerAdmin("org.users:remove"),
        GrafanaStub._admin_remove_org_user,
    ),
    ("GET", r"/api/org/users", OrgRole("Admin", "org.users:read"), GrafanaStub._org_users),
    (
        "POST",
        r"/api/org/users",
        OrgRole("Admin", "org.users:add"),
        GrafanaStub._add_current_org_user,
    ),
    (
        "PATCH",
        r"/api/org/users/(\d+)",
        OrgRole("Admin", "org.users:write"),
        GrafanaStub._update_current_org_user,
    ),
    (
        "DELETE",
        r"/api/org/users/(\d+)",
        OrgRole("Admin", "org.users:remove"),
        GrafanaStub._remove_current_org_user,
    ),
    ("GET", r"/api/teams/search", OrgRole("Admin", "teams:read"), GrafanaStub._search_teams),
    ("POST", r"/api/teams", OrgRole("Admin", "teams:create"), GrafanaStub._create_team),
    ("DELETE", r"/api/teams/(\d+)", OrgRole("Admin", "teams:delete"), GrafanaStub._delete_team),
    (
        "GET",
        r"/api/teams/(\d+)/members",
        OrgRole("Admin", "teams.permissions:read"),
        GrafanaStub._team_members,
    ),
    (
        "POST",
        r"/api/teams/(\d+)/members",
        OrgRole("Admin", "teams.permissions:write"),
        GrafanaStub._add_member,
    ),
    (
        "DELETE",
        r"/api/teams/(\d+)/members/(\d+)",
        OrgRole("Admin", "teams.permissions:write"),
        GrafanaStub._remove_member,
    ),
    (
        "GET",
        r"/api/folders/([^/]+)/permissions",
        OrgRole("Admin", "folders.permissions:read"),
        GrafanaStub._get_permissions,
    ),
    (
        "POST",
        r"/api/folders/([^/]+)/permissions",
        OrgRole("Admin", "folders.permissions:write"),
        GrafanaStub._set_permissions,
    ),
    ("GET", r"/api/search", ANYONE, GrafanaStub._search),
    ("POST", r"/api/folders", OrgRole("Editor", "folders:create"), GrafanaStub._create_folder),
    ("GET", r"/api/folders/([^/]+)", OrgRole("Viewer", "folders:read"), GrafanaStub._get_folder),
    (
        "DELETE",
        r"/api/folders/([^/]+)",
        OrgRole("Admin", "folders:delete"),
        GrafanaStub._delete_folder,
    ),
    (
        "POST",
        r"/api/dashboards/db",
        OrgRole("Editor", "dashboards:write"),
        GrafanaStub._save_dashboard,
    ),
    (
        "GET",
        r"/api/dashboards/uid/([^/]+)",
        OrgRole("Viewer", "dashboards:read"),
        GrafanaStub._get_dashboard,
    ),
    (
        "DELETE",
        r"/api/dashboards/uid/([^/]+)",
        OrgRole("Admin", "dashboards:delete"),
        GrafanaStub._delete_dashboard,
    ),
    # The Viewer role holds only datasources.id:read ("RBAC role definitions"): reading a data
    # source's settings needs the Admin role's datasources:read.
    (
        "GET",
        r"/api/datasources",
        OrgRole("Admin", "datasources:read"),
        GrafanaStub._list_datasources,
    ),
    (
        "POST",
        r"/api/datasources",
        OrgRole("Admin", "datasources:create"),
        GrafanaStub._create_datasource,
    ),
    (
        "GET",
        r"/api/datasources/uid/([^/]+)",
        OrgRole("Admin", "datasources:read"),
        GrafanaStub._get_datasource,
    ),
    (
        "PUT",
        r"/api/datasources/uid/([^/]+)",
        OrgRole("Admin", "datasources:write"),
        GrafanaStub._update_datasource,
    ),
    (
        "DELETE",
        r"/api/datasources/uid/([^/]+)",
        OrgRole("Admin", "datasources:delete"),
        GrafanaStub._delete_datasource,
    ),
    ("POST", r"/api/ds/query", OrgRole("Viewer", "datasources:query"), GrafanaStub._query),
]


def _org_id(header: str | None) -> int:
    """The organization a header names; 0 for none or for text that is not a number (Grafana's
    authn service ignores such a header)."""
    try:
        return max(int(header or 0), 0)
    except ValueError:
        return 0


def _org_view(org: Org) -> dict[str, Any]:
    address = dict.fromkeys(("address1", "address2", "city", "zipCode", "state", "country"), "")
    return {"id": org.id, "name": org.name, "address": address}


def _instant(value: Any) -> float:
    """`from`/`to` of a query: epoch milliseconds, or `now` with an optional `-<n><unit>`."""
    text = str(value)
    if text.isdigit():
        return int(text) / 1000
    found = re.fullmatch(r"now(?:-(\d+)([smhdw]))?", text)
    if not found:
        raise Reply(400, {"message": f"invalid time {text!r}"})
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    ago = int(found[1]) * seconds[found[2]] if found[1] else 0
    return time.time() - ago


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _item_key(item: dict[str, Any]) -> tuple:
    return tuple(sorted(item.items()))


def _handler(stub: GrafanaStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {
                name: self.headers.get(name, "")
                for name in ("Authorization", "X-Grafana-Org-Id")
                if self.headers.get(name) is not None
            }
            try:
                body = self._body()
                reply = Reply(200, stub.handle(method, parts.path, query, body, headers))
            except Reply as exc:
                reply = exc
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return None
            try:
                return json.loads(self.rfile.read(length))
            except ValueError:
                raise Reply(400, {"message": "bad request data"}) from None

    return Handler
