"""Grafana provisioning: every file parses and uses only the fields Grafana documents for it, and
the dashboard provider reads the generated dashboards where Docker Compose mounts them.

Field lists are from Grafana's "Provision Grafana" reference (data sources and dashboard providers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from exporter import access
from exporter.access import DEFAULT_FOLDER_UID
from tools.generate import DASHBOARDS_DIR

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "provisioning" / "grafana"
CONTAINER_PROVISIONING = PurePosixPath("/etc/grafana/provisioning")
DATASOURCES_ROOT_FIELDS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_FIELDS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
    "editable",
}  # fmt: skip
DATASOURCE_REQUIRED = {"name", "type", "access"}
PROVIDERS_ROOT_FIELDS = {"apiVersion", "providers"}
PROVIDER_FIELDS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}
PROMETHEUS_UID = "claude-code-prometheus"


def load_all(kind: str) -> dict[Path, dict]:
    files = sorted((GRAFANA / kind).glob("*.y*ml"))
    assert files, f"no provisioning files in {GRAFANA / kind}"
    return {path: yaml.safe_load(path.read_text()) for path in files}


def datasources() -> list[dict]:
    return [ds for doc in load_all("datasources").values() for ds in doc["datasources"]]


def providers() -> list[dict]:
    return [p for doc in load_all("dashboards").values() for p in doc["providers"]]


def grafana_service() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]


def grafana_mounts() -> dict[PurePosixPath, Path]:
    """Container path of every bind mount of the Grafana service, and the repository path."""
    mounts = {}
    for volume in grafana_service()["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[PurePosixPath(target)] = (ROOT / source).resolve()
    return mounts


def host_path(container_path: str) -> Path:
    """Where a path inside the Grafana container comes from in the repository."""
    path = PurePosixPath(container_path)
    for target, source in grafana_mounts().items():
        if path == target or target in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into the Grafana container")


@pytest.mark.parametrize("kind", ["datasources", "dashboards"])
def test_every_provisioning_file_is_yaml_of_config_version_1(kind):
    for path, doc in load_all(kind).items():
        assert isinstance(doc, dict), path
        assert doc["apiVersion"] == 1, path


def test_the_provisioning_folder_holds_only_what_grafana_reads():
    assert {p.name for p in GRAFANA.iterdir()} <= {
        "datasources",
        "dashboards",
        "plugins",
        "alerting",
    }


def test_data_sources_use_only_documented_fields():
    for doc in load_all("datasources").values():
        assert set(doc) <= DATASOURCES_ROOT_FIELDS
    for ds in datasources():
        assert set(ds) <= DATASOURCE_FIELDS, ds["name"]
        assert set(ds) >= DATASOURCE_REQUIRED, ds["name"]
        assert ds["access"] == "proxy"


def test_the_prometheus_data_source_has_a_fixed_uid_is_the_default_and_cannot_be_edited():
    (prometheus,) = [ds for ds in datasources() if ds["type"] == "prometheus"]

    assert prometheus["uid"] == PROMETHEUS_UID
    assert prometheus["isDefault"] is True
    assert prometheus["editable"] is False


def test_exactly_one_data_source_is_the_default():
    assert [ds["uid"] for ds in datasources() if ds.get("isDefault")] == [PROMETHEUS_UID]


def test_the_data_source_states_the_prometheus_version_compose_runs():
    (prometheus,) = [ds for ds in datasources() if ds["type"] == "prometheus"]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    assert (
        f"v{prometheus['jsonData']['prometheusVersion']}"
        == services["prometheus"]["image"].split(":")[1]
    )


def test_data_source_uids_are_unique_and_links_between_them_resolve():
    uids = [ds["uid"] for ds in datasources()]
    assert len(uids) == len(set(uids))
    for ds in datasources():
        linked = ds.get("jsonData", {}).get("alertmanagerUid")
        assert linked is None or linked in uids


def test_data_source_urls_name_compose_services_and_their_ports():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for ds in datasources():
        host, port = re.fullmatch(r"http://([a-z-]+):(\d+)", ds["url"]).groups()
        published = [p.rsplit(":", 1)[-1] for p in services[host].get("ports", [])]
        assert port in published, ds["url"]


def scalars(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars(v)]
    return [str(value)]


def test_no_provisioning_value_relies_on_environment_interpolation():
    for kind in ("datasources", "dashboards"):
        for path, doc in load_all(kind).items():
            assert not [s for s in scalars(doc) if "$" in s], (
                f"{path} needs an environment variable"
            )


def test_dashboard_providers_use_only_documented_fields():
    for doc in load_all("dashboards").values():
        assert set(doc) <= PROVIDERS_ROOT_FIELDS
    for provider in providers():
        assert set(provider) <= PROVIDER_FIELDS, provider["name"]
        assert set(provider["options"]) <= PROVIDER_OPTIONS
        assert provider["type"] == "file"
        assert provider["options"]["path"]


def test_the_provider_loads_the_claude_code_folder_with_a_stable_uid_and_no_ui_edits():
    (provider,) = providers()

    assert provider["folder"] == "Claude Code"
    assert provider["folderUid"] == DEFAULT_FOLDER_UID
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["foldersFromFilesStructure"] is False


def test_the_provider_path_is_where_compose_mounts_the_generated_dashboards():
    (provider,) = providers()

    assert host_path(provider["options"]["path"]) == DASHBOARDS_DIR.resolve()


def test_compose_mounts_this_folder_where_grafana_reads_provisioning():
    assert grafana_mounts()[CONTAINER_PROVISIONING] == GRAFANA.resolve()


def test_the_provider_finds_dashboards_with_stable_unique_uids():
    (provider,) = providers()
    dashboards = [
        json.loads(p.read_text()) for p in host_path(provider["options"]["path"]).glob("*.json")
    ]

    uids = [d.get("uid") for d in dashboards]
    assert dashboards
    assert all(uids) and len(uids) == len(set(uids))


def test_generated_dashboards_pick_their_data_source_through_a_variable():
    for path in DASHBOARDS_DIR.glob("*.json"):
        text = path.read_text()
        variables = json.loads(text)["templating"]["list"]
        assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= next(
            v for v in variables if v["name"] == "datasource"
        ).items(), path.name
        assert PROMETHEUS_UID not in text, f"{path.name} hard-codes the data source"


def test_grafanas_home_dashboard_is_a_provisioned_dashboard():
    home = grafana_service()["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]

    assert host_path(home).is_file()
    (provider,) = providers()
    assert PurePosixPath(provider["options"]["path"]) in PurePosixPath(home).parents


def test_the_rbac_example_in_the_docs_grants_the_sync_teams_the_folder():
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "access.md").read_text(), re.S)
    (example,) = [yaml.safe_load(b) for b in blocks if "access-control" in b]
    roles = {role["uid"] for role in example["roles"]}

    assert example["apiVersion"] == 2
    assert {team["name"] for team in example["teams"]} == {
        access.DEFAULT_VIEWERS_TEAM,
        access.DEFAULT_EDITORS_TEAM,
    }
    assert all(r["uid"] in roles for team in example["teams"] for r in team["roles"])
    scopes = {p["scope"] for role in example["roles"] for p in role["permissions"]}
    assert scopes == {f"folders:uid:{DEFAULT_FOLDER_UID}"}
