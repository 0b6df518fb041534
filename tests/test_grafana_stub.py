"""The stub Grafana answers as Grafana's HTTP API reference (and, where it is silent, Grafana's
source) says, for the organization rules the access tests and the end-to-end tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from grafana_stub import GrafanaStub, query_data_source

DS = "claude-code-prometheus"


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    with GrafanaStub() as stub:
        stub.add_user("root", "root@localhost", role="Admin", server_admin=True)
        stub.add_user("vera", "vera@example.com", role="Viewer")
        acme = stub.add_org("acme")
        stub.add_user("ada", "ada@example.com", role="Viewer", org_id=acme.id)
        stub.add_datasource(acme.id, DS, "Prometheus", "http://127.0.0.1:9")
        yield stub


def get(grafana: GrafanaStub, path: str, auth: tuple[str, str] | str, **headers: str):
    if isinstance(auth, str):
        headers["Authorization"] = f"Bearer {auth}"
        auth = None  # type: ignore[assignment]
    return requests.get(f"{grafana.url}{path}", auth=auth, headers=headers, timeout=5)


def acme_id(grafana: GrafanaStub) -> int:
    org = grafana.org_named("acme")
    assert org is not None
    return org.id


def test_a_token_sent_into_another_organization_is_refused_with_401(grafana):
    answer = get(
        grafana, "/api/org/users", grafana.token, **{"X-Grafana-Org-Id": str(acme_id(grafana))}
    )

    assert answer.status_code == 401
    assert answer.json()["message"] == "API key does not belong to the requested organization"


def test_a_user_who_names_an_organization_they_are_not_in_has_no_role_there(grafana):
    answer = query_data_source(grafana.url, ("vera", "secret"), DS, "up", org_id=acme_id(grafana))

    assert answer.status_code == 403
    assert answer.json()["message"].endswith("Permissions needed: datasources:query")


def test_a_data_source_of_another_organization_is_not_found(grafana):
    answer = query_data_source(grafana.url, ("vera", "secret"), DS, "up")

    assert answer.status_code == 404
    assert answer.json() == {"message": "Data source not found"}


def test_a_server_admin_queries_only_where_they_are_a_member(grafana):
    answer = query_data_source(grafana.url, ("root", "secret"), DS, "up", org_id=acme_id(grafana))

    assert answer.status_code == 403


@pytest.mark.parametrize("path", ["/api/orgs", "/api/users/search", "/api/orgs/1/users"])
def test_the_admin_endpoints_refuse_tokens_and_users_who_are_not_server_admins(grafana, path):
    for auth in (grafana.token, ("vera", "secret")):
        answer = get(grafana, path, auth)
        assert answer.status_code == 403
        assert answer.json()["title"] == "Access denied"
    assert get(grafana, path, ("root", "secret")).status_code == 200


def test_creating_an_organization_makes_its_creator_its_admin(grafana):
    created = requests.post(
        f"{grafana.url}/api/orgs", json={"name": "beta"}, auth=("root", "secret"), timeout=5
    )

    assert created.json() == {
        "orgId": str(grafana.org_named("beta").id),
        "message": "Organization created",
    }
    assert grafana.members(grafana.org_named("beta").id) == {"root": "Admin"}


def test_the_current_organization_endpoint_deletes_an_account_left_in_no_organization(grafana):
    token = grafana.add_service_account(acme_id(grafana))
    ada = next(u for u in grafana.users.values() if u.login == "ada")

    answer = requests.delete(
        f"{grafana.url}/api/org/users/{ada.id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )

    assert answer.json() == {"message": "User deleted"}
    assert ada.id not in grafana.users


def test_the_admin_endpoint_only_takes_an_account_out_of_one_organization(grafana):
    ada = next(u for u in grafana.users.values() if u.login == "ada")

    answer = requests.delete(
        f"{grafana.url}/api/orgs/{acme_id(grafana)}/users/{ada.id}",
        auth=("root", "secret"),
        timeout=5,
    )

    assert answer.json() == {"message": "User removed from organization"}
    assert ada.id in grafana.users and ada.current_org == 0


def test_the_last_admin_of_an_organization_stays(grafana):
    root = next(u for u in grafana.users.values() if u.login == "root")

    answer = requests.delete(
        f"{grafana.url}/api/orgs/1/users/{root.id}", auth=("root", "secret"), timeout=5
    )

    assert answer.status_code == 400
    assert answer.json() == {"message": "Cannot remove last organization admin"}


def test_users_are_searched_page_by_page(grafana):
    first = get(grafana, "/api/users/search?perpage=2&page=1", ("root", "secret")).json()
    second = get(grafana, "/api/users/search?perpage=2&page=2", ("root", "secret")).json()

    assert first["totalCount"] == second["totalCount"] == 3
    assert len(first["users"]) == 2 and len(second["users"]) == 1
    assert {u["login"] for u in first["users"] + second["users"]} == {"root", "vera", "ada"}


def test_a_header_that_is_not_a_number_is_ignored(grafana):
    answer = query_data_source(grafana.url, ("ada", "secret"), DS, "up", org_id="acme")  # type: ignore[arg-type]

    # Asked in ada's current organization, acme, the query reaches the data source (which is
    # not listening, hence Grafana's 400 with the data source's error).
    assert answer.status_code == 400
    assert answer.json()["results"]["A"]["status"] == 500


def test_a_wrong_password_is_refused_with_401(grafana):
    answer = get(grafana, "/api/user", ("vera", "wrong"))

    assert answer.status_code == 401
    assert answer.json() == {"message": "Invalid username or password"}
