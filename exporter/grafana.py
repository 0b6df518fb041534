"""A small client for the parts of Grafana's HTTP API that the access sync uses.

It authenticates in one of two ways:

- with a service-account token (`Authorization: Bearer`) with the organization's Admin role: that
  role can list the organization's users, manage teams and set folder permissions. A token
  belongs to one organization and cannot be a server admin, so it cannot list Grafana's other
  accounts (`/api/users/search`) nor manage organizations (`/api/orgs`);
- with the user name and password of a Grafana server admin (basic auth), which the Organization
  API's admin endpoints and the User API require (Grafana's HTTP API reference says they only work
  with basic authentication). `in_org()` then sends a request into one organization with the
  `X-Grafana-Org-Id` header.

Every failure is a `GrafanaError` whose message is one sentence and never contains the token or
the password; either is sent only to the configured origin, never along a redirect to another
(exporter/origin.py)."""

from __future__ import annotations

import base64
import copy
import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from .origin import Origin, RedirectRefused, parse_origin, send, session_for

VIEW, EDIT, ADMIN = 1, 2, 4
PERMISSION_NAMES = {VIEW: "View", EDIT: "Edit", ADMIN: "Admin"}
# Grafana's organization roles, weakest first.
ORG_ROLES = ("Viewer", "Editor", "Admin")
USERS_PER_PAGE = 1000


class GrafanaError(Exception):
    """A failed Grafana request; `status` is the HTTP status, or None if Grafana was not reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GrafanaUser:
    """An account; `role` is its role in an organization ("" when listed outside one)."""

    id: int
    email: str
    login: str
    role: str
    is_server_admin: bool = False


@dataclass(frozen=True)
class Org:
    id: int
    name: str


@dataclass(frozen=True)
class BasicAuth:
    """A Grafana user's login and password; never shown by repr()."""

    user: str
    password: str = field(repr=False)

    def header(self) -> str:
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@dataclass(frozen=True)
class Team:
    id: int
    name: str


@dataclass(frozen=True, order=True)
class Grant:
    """A folder permission item: `kind` is role, team or user; `subject` the role name or the id."""

    kind: str
    subject: str
    permission: int

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Grant:
        permission = int(item.get("permission") or 0)
        if item.get("teamId"):
            return cls("team", str(item["teamId"]), permission)
        if item.get("userId"):
            return cls("user", str(item["userId"]), permission)
        return cls("role", str(item.get("role") or ""), permission)

    def to_api(self) -> dict[str, Any]:
        if self.kind == "role":
            return {"role": self.subject, "permission": self.permission}
        return {f"{self.kind}Id": int(self.subject), "permission": self.permission}

    def describe(self) -> str:
        level = PERMISSION_NAMES.get(self.permission, str(self.permission))
        return f"{self.kind} {self.subject}: {level}"


class GrafanaClient:
    def __init__(
        self,
        url: Origin | str,
        token: str = "",
        *,
        basic: BasicAuth | None = None,
        timeout: float = 10.0,
    ):
        self.origin = parse_origin(url, "the Grafana URL") if isinstance(url, str) else url
        self._token = token
        self._basic = basic
        self.org_id: int | None = None
        self.timeout = timeout
        self._session = session_for(self.origin)
        self._session.headers.update({"Accept": "application/json"})

    def __repr__(self) -> str:
        org = f", org_id={self.org_id}" if self.org_id is not None else ""
        return f"GrafanaClient(url={str(self.origin)!r}{org})"

    @property
    def basic_auth(self) -> bool:
        """Whether it signs in as a user (the only way to a server admin's endpoints)."""
        return self._basic is not None

    def in_org(self, org_id: int) -> GrafanaClient:
        """The same client, sending its requests into organization `org_id`."""
        clone = copy.copy(self)
        clone.org_id = org_id
        return clone

    def org_users(self) -> list[GrafanaUser]:
        """Every user of the current organization (the token's, or the one `in_org()` names)."""
        return _members(self._request("GET", "/api/org/users"), "/api/org/users")

    def current_user(self) -> GrafanaUser:
        """The signed-in user (basic auth only)."""
        found = self._request("GET", "/api/user")
        if not isinstance(found, dict) or not found.get("id"):
            raise GrafanaError("Grafana answered /api/user with an unexpected shape")
        return _account(found)

    def all_users(self) -> list[GrafanaUser]:
        """Every account of the Grafana server, in every organization or none (server admin)."""
        users: list[GrafanaUser] = []
        for page in itertools.count(1):
            found = self._request(
                "GET", "/api/users/search", params={"perpage": USERS_PER_PAGE, "page": page}
            )
            batch = found.get("users") if isinstance(found, dict) else None
            users += [_account(u) for u in _list(batch, "/api/users/search")]
            if not batch or len(users) >= int(found.get("totalCount") or 0):
                return users
        raise AssertionError("unreachable")

    def find_org(self, name: str) -> Org | None:
        """The organization with this name, if there is one (server admin)."""
        found = self._get_or_none(f"/api/orgs/name/{quote(name, safe='')}")
        if found is None:
            return None
        return Org(int(found["id"]), str(found.get("name") or name))

    def create_org(self, name: str) -> Org:
        """A new organization; Grafana makes its creator an Admin of it (server admin)."""
        return Org(int(self._request("POST", "/api/orgs", json={"name": name})["orgId"]), name)

    def delete_org(self, org_id: int) -> None:
        self._request("DELETE", f"/api/orgs/{org_id}")

    def org_members(self, org_id: int) -> list[GrafanaUser]:
        """Every member of organization `org_id` and their role (server admin)."""
        path = f"/api/orgs/{org_id}/users"
        return _members(self._request("GET", path), path)

    def add_org_member(self, org_id: int, login: str, role: str) -> int:
        """Add the account with this login; returns the id of the account Grafana added."""
        body = {"loginOrEmail": login, "role": role}
        return int(self._request("POST", f"/api/orgs/{org_id}/users", json=body)["userId"])

    def set_org_role(self, org_id: int, user_id: int, role: str) -> None:
        self._request("PATCH", f"/api/orgs/{org_id}/users/{user_id}", json={"role": role})

    def remove_org_member(self, org_id: int, user_id: int) -> None:
        """Take the account out of the organization; unlike DELETE /api/org/users/:userId,
        this never deletes an account left in no organization."""
        self._request("DELETE", f"/api/orgs/{org_id}/users/{user_id}")

    def datasources(self) -> list[dict[str, Any]]:
        return _list(self._request("GET", "/api/datasources"), "/api/datasources")

    def find_datasource(self, uid: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/api/datasources/uid/{quote(uid, safe='')}")

    def create_datasource(self, settings: dict[str, Any]) -> None:
        self._request("POST", "/api/datasources", json=settings)

    def update_datasource(self, uid: str, settings: dict[str, Any]) -> None:
        self._request("PUT", f"/api/datasources/uid/{quote(uid, safe='')}", json=settings)

    def delete_datasource(self, uid: str) -> None:
        self._request("DELETE", f"/api/datasources/uid/{quote(uid, safe='')}")

    def find_folder(self, uid: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/api/folders/{quote(uid, safe='')}")

    def create_folder(self, uid: str, title: str) -> None:
        self._request("POST", "/api/folders", json={"uid": uid, "title": title})

    def delete_folder(self, uid: str) -> None:
        self._request("DELETE", f"/api/folders/{quote(uid, safe='')}")

    def find_dashboard(self, uid: str) -> dict[str, Any] | None:
        """The dashboard's JSON and its `meta` (folderUid among them), if it exists."""
        return self._get_or_none(f"/api/dashboards/uid/{quote(uid, safe='')}")

    def save_dashboard(self, dashboard: dict[str, Any], folder_uid: str) -> None:
        body = {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": True}
        self._request("POST", "/api/dashboards/db", json=body)

    def find_team(self, name: str) -> Team | None:
        """The team with exactly this name, if it exists."""
        found = self._request("GET", "/api/teams/search", params={"query": name, "perpage": 1000})
        teams = found.get("teams") if isinstance(found, dict) else None
        for team in _list(teams, "/api/teams/search"):
            if team.get("name") == name:
                return Team(int(team["id"]), name)
        return None

    def create_team(self, name: str) -> Team:
        created = self._request("POST", "/api/teams", json={"name": name})
        return Team(int(created["teamId"]), name)

    def delete_team(self, team_id: int) -> None:
        self._request("DELETE", f"/api/teams/{team_id}")

    def team_member_ids(self, team_id: int) -> set[int]:
        path = f"/api/teams/{team_id}/members"
        return {int(m["userId"]) for m in _list(self._request("GET", path), path)}

    def add_team_member(self, team_id: int, user_id: int) -> None:
        self._request("POST", f"/api/teams/{team_id}/members", json={"userId": user_id})

    def remove_team_member(self, team_id: int, user_id: int) -> None:
        self._request("DELETE", f"/api/teams/{team_id}/members/{user_id}")

    def folder_permissions(self, folder_uid: str) -> list[Grant]:
        path = f"/api/folders/{quote(folder_uid, safe='')}/permissions"
        return sorted(Grant.from_api(item) for item in _list(self._request("GET", path), path))

    def set_folder_permissions(self, folder_uid: str, grants: list[Grant]) -> None:
        """Replace all of the folder's permissions with `grants` (Grafana drops those left out)."""
        path = f"/api/folders/{quote(folder_uid, safe='')}/permissions"
        self._request("POST", path, json={"items": [g.to_api() for g in grants]})

    def _get_or_none(self, path: str) -> Any:
        try:
            return self._request("GET", path)
        except GrafanaError as exc:
            if exc.status == 404:
                return None
            raise

    def _headers(self) -> dict[str, str]:
        auth = self._basic.header() if self._basic else f"Bearer {self._token}"
        headers = {"Authorization": auth}
        if self.org_id is not None:
            headers["X-Grafana-Org-Id"] = str(self.org_id)
        return headers

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = send(
                self._session,
                self.origin,
                method,
                path,
                headers=self._headers(),
                timeout=self.timeout,
                **kwargs,
            )
        except RedirectRefused as exc:
            raise GrafanaError(f"Grafana {method} {path}: {self._redact(str(exc))}") from None
        except requests.RequestException as exc:
            raise GrafanaError(
                f"cannot reach Grafana at {self.origin} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            message = self._redact(_message(response))
            raise GrafanaError(
                f"Grafana answered {method} {path} with HTTP {response.status_code}: {message}",
                response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise GrafanaError(
                f"Grafana answered {method} {path} with a body that is not JSON"
            ) from None

    def _redact(self, text: str) -> str:
        secrets = [self._token]
        if self._basic:
            secrets += [self._basic.password, self._basic.header().split(" ", 1)[1]]
        for secret in filter(None, secrets):
            text = text.replace(secret, "***")
        return text


def _members(value: object, path: str) -> list[GrafanaUser]:
    return [
        GrafanaUser(
            int(u["userId"]),
            str(u.get("email") or ""),
            str(u.get("login") or ""),
            str(u.get("role") or ""),
        )
        for u in _list(value, path)
    ]


def _account(user: dict[str, Any]) -> GrafanaUser:
    """An account as the User API shows it (`isAdmin` in searches, `isGrafanaAdmin` alone)."""
    admin = user.get("isGrafanaAdmin", user.get("isAdmin"))
    return GrafanaUser(
        int(user["id"]),
        str(user.get("email") or ""),
        str(user.get("login") or ""),
        "",
        admin is True,
    )


def _list(value: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise GrafanaError(f"Grafana answered {path} with an unexpected shape")
    return value


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.reason or "no message")[:200]
    text = body.get("message") if isinstance(body, dict) else None
    return str(text or response.reason or "no message")[:200]
