"""A stub Grafana serving, over real HTTP on loopback, the HTTP API endpoints the access sync uses.

Request and response shapes and status codes follow Grafana's HTTP API reference (Team API,
Organization API, Folder Permissions API, Search API). It evaluates folder visibility the way
Grafana does: Admins of the organization and server admins see every folder; everyone else sees a
folder when a permission item grants them at least View, directly (`userId`), through a team they
belong to (`teamId`), or through their basic role (`role`), where an Editor also holds what is
granted to Viewers. A folder created here starts with Grafana's default items (Viewer: View, Editor:
Edit).

The service-account token authenticates as an org Admin (`Authorization: Bearer`); users
authenticate with basic auth (login and password) and can only search. `fail()` makes a matching
request answer with an error once.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROLE_RANK = {"Viewer": 1, "Editor": 2, "Admin": 3}
PERMISSION_NAMES = {1: "View", 2: "Edit", 4: "Admin"}


@dataclass
class User:
    id: int
    login: str
    email: str
    role: str = "Viewer"
    is_server_admin: bool = False
    password: str = "secret"


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


class GrafanaStub:
    def __init__(self, token: str = "glsa_stub_token"):
        self.token = token
        self.users: dict[int, User] = {}
        self.teams: dict[int, Team] = {}
        self.folders: dict[str, Folder] = {}
        self.requests: list[tuple[str, str]] = []
        # Who could open each folder after each change made through the API, in order.
        self.history: list[dict[str, frozenset[str]]] = []
        self._failures: list[Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
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

    # Setting up state, as an administrator or Grafana's provisioning would.

    def add_user(
        self, login: str, email: str, role: str = "Viewer", server_admin: bool = False
    ) -> User:
        user = User(next(self._ids), login, email, role, server_admin)
        self.users[user.id] = user
        return user

    def delete_user(self, user_id: int) -> None:
        """As a server admin deleting a user does: their team memberships and grants go too."""
        del self.users[user_id]
        for team in self.teams.values():
            team.members.discard(user_id)
        for folder in self.folders.values():
            folder.items = [i for i in folder.items if i.get("userId") != user_id]

    def add_folder(self, uid: str, title: str) -> Folder:
        folder = Folder(
            next(self._ids),
            uid,
            title,
            [
                {"role": "Viewer", "permission": 1},
                {"role": "Editor", "permission": 2},
            ],
        )
        self.folders[uid] = folder
        return folder

    def fail(self, method: str, path_pattern: str, status: int = 500, after: int = 0) -> None:
        """Once `after` matching requests went through, the next one answers `status` instead."""
        self._failures.append(Failure(method, re.compile(path_pattern), status, after))

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    # Grafana's access evaluation.

    def can_view(self, user: User, folder: Folder) -> bool:
        if user.is_server_admin or user.role == "Admin":
            return True
        return any(self._grants(item, user) for item in folder.items if item["permission"] >= 1)

    def visibility(self) -> dict[str, frozenset[str]]:
        """Each folder's uid and the logins that can open it."""
        return {
            f.uid: frozenset(u.login for u in self.users.values() if self.can_view(u, f))
            for f in self.folders.values()
        }

    def snapshot(self) -> tuple:
        """Everything the sync may change, to compare before and after."""
        return (
            sorted((t.name, tuple(sorted(t.members))) for t in self.teams.values()),
            sorted(
                (uid, tuple(sorted(map(_item_key, f.items)))) for uid, f in self.folders.items()
            ),
        )

    def _grants(self, item: dict[str, Any], user: User) -> bool:
        if item.get("userId"):
            return item["userId"] == user.id
        if item.get("teamId"):
            team = self.teams.get(item["teamId"])
            return team is not None and user.id in team.members
        return ROLE_RANK.get(user.role, 0) >= ROLE_RANK.get(item.get("role", ""), 99)

    # The HTTP API.

    def handle(self, method: str, path: str, query: dict[str, str], body: Any, auth: str) -> Any:
        with self._lock:
            self.requests.append((method, path))
            for failure in self._failures:
                if failure.method == method and failure.path.fullmatch(path):
                    if failure.after:
                        failure.after -= 1
                        continue
                    self._failures.remove(failure)
                    raise Reply(failure.status, {"message": "injected failure"})
            caller = self._authenticate(auth)
            if isinstance(caller, User):
                if (method, path) != ("GET", "/api/search"):
                    raise Reply(403, {"message": "Permission denied"})
                return self._search(caller, query)
            answer = self._route(method, path, query, body)
            if method != "GET":
                self.history.append(self.visibility())
            return answer

    def _authenticate(self, auth: str) -> User | None:
        if auth == f"Bearer {self.token}":
            return None
        if auth.startswith("Basic "):
            login, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            for user in self.users.values():
                if user.login == login and user.password == password:
                    return user
        raise Reply(401, {"message": "Unauthorized"})

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        for route_method, pattern, action in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return action(self, *match.groups(), query=query, body=body)
        raise Reply(404, {"message": "Not found"})

    def _org_users(self, query: dict[str, str], body: Any) -> Any:
        return [
            {
                "orgId": 1,
                "userId": u.id,
                "email": u.email,
                "login": u.login,
                "role": u.role,
                "avatarUrl": f"/avatar/{u.id}",
                "lastSeenAt": "2026-11-28T10:00:00Z",
                "lastSeenAtAge": "1h",
            }
            for u in self.users.values()
        ]

    def _search_teams(self, query: dict[str, str], body: Any) -> Any:
        if "name" in query:
            teams = [t for t in self.teams.values() if t.name == query["name"]]
            if not teams:
                raise Reply(404, {"message": "Team not found"})
        else:
            teams = [t for t in self.teams.values() if query.get("query", "") in t.name]
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
                    "orgId": 1,
                    "name": t.name,
                    "email": t.email,
                    "avatarUrl": f"/avatar/t{t.id}",
                    "memberCount": len(t.members),
                }
                for t in chosen
            ],
        }

    def _create_team(self, query: dict[str, str], body: Any) -> Any:
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise Reply(400, {"message": "Bad request data"})
        if any(t.name == name for t in self.teams.values()):
            raise Reply(409, {"message": "Team name taken"})
        team = Team(next(self._ids), name, body.get("email", ""))
        self.teams[team.id] = team
        return {"message": "Team created", "teamId": team.id, "uid": f"team{team.id}"}

    def _delete_team(self, team_id: str, query: dict[str, str], body: Any) -> Any:
        team = self._team(team_id, "Failed to delete Team. ID not found")
        del self.teams[team.id]
        for folder in self.folders.values():
            folder.items = [i for i in folder.items if i.get("teamId") != team.id]
        return {"message": "Team deleted"}

    def _team_members(self, team_id: str, query: dict[str, str], body: Any) -> Any:
        team = self._team(team_id, "Team not found")
        return [
            {
                "orgId": 1,
                "teamId": team.id,
                "userId": uid,
                "email": self.users[uid].email,
                "login": self.users[uid].login,
                "avatarUrl": f"/avatar/{uid}",
                "permission": 0,
            }
            for uid in sorted(team.members)
        ]

    def _add_member(self, team_id: str, query: dict[str, str], body: Any) -> Any:
        team = self._team(team_id, "Team not found")
        user_id = body.get("userId") if isinstance(body, dict) else None
        if user_id not in self.users:
            raise Reply(404, {"message": "User not found"})
        if user_id in team.members:
            raise Reply(400, {"message": "User is already added to this team"})
        team.members.add(user_id)
        return {"message": "Member added to Team"}

    def _remove_member(self, team_id: str, user_id: str, query: dict[str, str], body: Any) -> Any:
        team = self._team(team_id, "Team not found")
        if int(user_id) not in team.members:
            raise Reply(404, {"message": "Team member not found"})
        team.members.remove(int(user_id))
        return {"message": "Team Member removed"}

    def _get_permissions(self, uid: str, query: dict[str, str], body: Any) -> Any:
        folder = self._folder(uid)
        return [self._permission_view(folder, n, item) for n, item in enumerate(folder.items, 1)]

    def _set_permissions(self, uid: str, query: dict[str, str], body: Any) -> Any:
        folder = self._folder(uid)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Reply(400, {"message": "bad request data"})
        folder.items = [self._valid_item(item) for item in items]
        return {"message": "Folder permissions updated", "id": folder.id, "title": folder.title}

    def _search(self, user: User, query: dict[str, str]) -> Any:
        if query.get("type") != "dash-folder":
            raise Reply(400, {"message": "the stub only searches folders"})
        return [
            {
                "id": f.id,
                "uid": f.uid,
                "title": f.title,
                "type": "dash-folder",
                "url": f"/dashboards/f/{f.uid}/",
                "tags": [],
                "isStarred": False,
            }
            for f in self.folders.values()
            if self.can_view(user, f)
        ]

    def _valid_item(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or item.get("permission") not in PERMISSION_NAMES:
            raise Reply(400, {"message": "Invalid permission"})
        subjects = [k for k in ("role", "teamId", "userId") if item.get(k)]
        if len(subjects) != 1:
            raise Reply(
                400, {"message": "Permission must be set for exactly one of role, team or user"}
            )
        if item.get("role") and item["role"] not in ("Viewer", "Editor"):
            raise Reply(400, {"message": "Permissions cannot be set for Admins"})
        if item.get("teamId") and item["teamId"] not in self.teams:
            raise Reply(400, {"message": "Team not found"})
        if item.get("userId") and item["userId"] not in self.users:
            raise Reply(400, {"message": "User not found"})
        return {subjects[0]: item[subjects[0]], "permission": item["permission"]}

    def _permission_view(self, folder: Folder, n: int, item: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(item.get("userId", 0))
        team = self.teams.get(item.get("teamId", 0))
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

    def _team(self, team_id: str, missing: str) -> Team:
        team = self.teams.get(int(team_id))
        if team is None:
            raise Reply(404, {"message": missing})
        return team

    def _folder(self, uid: str) -> Folder:
        if uid not in self.folders:
            raise Reply(404, {"message": "Folder not found"})
        return self.folders[uid]


_ROUTES = [
    ("GET", r"/api/org/users", GrafanaStub._org_users),
    ("GET", r"/api/teams/search", GrafanaStub._search_teams),
    ("POST", r"/api/teams", GrafanaStub._create_team),
    ("DELETE", r"/api/teams/(\d+)", GrafanaStub._delete_team),
    ("GET", r"/api/teams/(\d+)/members", GrafanaStub._team_members),
    ("POST", r"/api/teams/(\d+)/members", GrafanaStub._add_member),
    ("DELETE", r"/api/teams/(\d+)/members/(\d+)", GrafanaStub._remove_member),
    ("GET", r"/api/folders/([^/]+)/permissions", GrafanaStub._get_permissions),
    ("POST", r"/api/folders/([^/]+)/permissions", GrafanaStub._set_permissions),
]


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

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                body = self._body()
                reply = Reply(
                    200,
                    stub.handle(
                        method, parts.path, query, body, self.headers.get("Authorization", "")
                    ),
                )
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
