"""A small client for the parts of Grafana's HTTP API that the access sync uses.

It authenticates with a service-account token (`Authorization: Bearer`), which needs the
organization's Admin role: that role can list the organization's users, manage teams and set
folder permissions. Users are looked up in `/api/org/users` rather than `/api/users/lookup`,
because the latter needs a server admin, which a service account cannot be. Every failure is a
`GrafanaError` whose message is one sentence and never contains the token; the token is sent only
to the configured origin, never along a redirect to another (exporter/origin.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from .origin import Origin, RedirectRefused, parse_origin, send, session_for

VIEW, EDIT, ADMIN = 1, 2, 4
PERMISSION_NAMES = {VIEW: "View", EDIT: "Edit", ADMIN: "Admin"}


class GrafanaError(Exception):
    """A failed Grafana request; `status` is the HTTP status, or None if Grafana was not reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GrafanaUser:
    id: int
    email: str
    login: str
    role: str


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
    def __init__(self, url: Origin | str, token: str, *, timeout: float = 10.0):
        self.origin = parse_origin(url, "the Grafana URL") if isinstance(url, str) else url
        self._token = token
        self.timeout = timeout
        self._session = session_for(self.origin)
        self._session.headers.update({"Accept": "application/json"})

    def __repr__(self) -> str:
        return f"GrafanaClient(url={str(self.origin)!r})"

    def org_users(self) -> list[GrafanaUser]:
        """Every user of the token's organization."""
        users = self._request("GET", "/api/org/users")
        return [
            GrafanaUser(
                int(u["userId"]),
                str(u.get("email") or ""),
                str(u.get("login") or ""),
                str(u.get("role") or ""),
            )
            for u in _list(users, "/api/org/users")
        ]

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

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = send(
                self._session,
                self.origin,
                method,
                path,
                headers={"Authorization": f"Bearer {self._token}"},
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
        return text.replace(self._token, "***") if self._token else text


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
