"""The Compose stack for several organizations, written by tools/compose_organizations.py from one
configuration: Compose accepts the two files together, each organization's Prometheus scrapes only
its own target and passes promtool, and the image's entrypoint serves and backfills from it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from test_compose import ENTRYPOINT, PASSWORD, ROOT, python_shim, start_entrypoint

from exposition import samples
from grafana_stub import GrafanaStub
from tools import compose_organizations
from tools.generate import RULES_DIR

NAMES = ("research", "platform")


def organizations_file(folder: Path, demo: bool) -> Path:
    folder.mkdir(exist_ok=True)
    entries = []
    for name in NAMES:
        entry = {"name": name}
        if not demo:
            (folder / f"{name}.key").write_text("sk-ant-admin01-not-a-real-key\n")
            entry["api_key_file"] = f"{name}.key"  # beside the configuration
        entries.append(entry)
    path = folder / "organizations.yml"
    path.write_text(yaml.safe_dump({"organizations": entries, "demo": demo, "poll.interval": "1h"}))
    return path


@pytest.fixture(params=[True, False], ids=["demo", "keys"])
def generated(request, tmp_path) -> tuple[Path, bool]:
    demo = request.param
    compose_organizations.write(organizations_file(tmp_path / "in", demo), root=tmp_path)
    return tmp_path / compose_organizations.OUT, demo


def merged(folder: Path) -> dict:
    env_file = folder / "compose.env"
    env_file.write_text("")
    done = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", "docker-compose.yml"]
        + ["-f", str(folder / "docker-compose.yml"), "config"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "GRAFANA_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def mounts(service: dict) -> dict[str, str]:
    """Each mount's source by its target, from `docker-compose config`'s short form."""
    return dict(v.split(":")[1::-1] for v in service["volumes"])


def test_compose_accepts_the_stack_with_a_prometheus_and_a_backfill_per_organization(generated):
    folder, demo = generated
    services = merged(folder)["services"]
    for name in NAMES:
        assert f"prometheus-{name}" in services
        backfill = services[f"backfill-{name}"]
        assert f"--organization={name}" in backfill["command"]
        volume = mounts(backfill)["/prometheus"]
        assert mounts(services[f"prometheus-{name}"])["/prometheus"] == volume
        assert volume.startswith(f"prometheus-{name}-data")
    exporter = services["exporter"]
    assert (
        exporter["environment"]["EXPORTER_CONFIG_FILE"] == compose_organizations.CONFIG_IN_CONTAINER
    )
    assert services["backfill"]["environment"]["BACKFILL_DAYS"] == "0"
    secrets = sorted(s["source"] for s in exporter.get("secrets", []))
    assert secrets == ([] if demo else sorted(f"anthropic-admin-key-{n}" for n in NAMES))


def test_the_keys_are_secrets_read_from_the_files_the_configuration_names(tmp_path):
    compose_organizations.write(organizations_file(tmp_path / "in", demo=False), root=tmp_path)
    folder = tmp_path / compose_organizations.OUT
    secrets = merged(folder)["secrets"]
    for name in NAMES:
        assert (
            Path(secrets[f"anthropic-admin-key-{name}"]["file"]) == tmp_path / "in" / f"{name}.key"
        )
    exporter = yaml.safe_load((folder / "exporter.yml").read_text())
    assert [o["api_key_file"] for o in exporter["organizations"]] == [
        f"/run/secrets/anthropic-admin-key-{n}" for n in NAMES
    ]


def promtool_check(config_path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = yaml.safe_load(config_path.read_text())
    config["rule_files"] = [str(RULES_DIR / "*.yaml")]
    local = tmp_path / config_path.name
    local.write_text(yaml.safe_dump(config))
    return subprocess.run(
        ["promtool", "check", "config", str(local)], capture_output=True, text=True, check=False
    )


def test_each_organizations_prometheus_scrapes_its_target_only(generated, tmp_path):
    folder, _ = generated
    for name in NAMES:
        path = folder / f"prometheus-{name}.yml"
        done = promtool_check(path, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        jobs = yaml.safe_load(path.read_text())["scrape_configs"]
        exporter_jobs = [j for j in jobs if j["job_name"] == "claude-code-analytics"]
        (job,) = exporter_jobs
        assert job["static_configs"] == [
            {"targets": ["exporter:9687"], "labels": {"__param_organization": name}}
        ]
    main = yaml.safe_load((folder / "prometheus.yml").read_text())
    assert "claude-code-analytics" not in {j["job_name"] for j in main["scrape_configs"]}
    assert promtool_check(folder / "prometheus.yml", tmp_path).returncode == 0


def test_a_missing_key_file_is_one_sentence(tmp_path):
    config = organizations_file(tmp_path / "in", demo=False)
    (tmp_path / "in" / "platform.key").unlink()
    done = subprocess.run(
        ["python3", "tools/compose_organizations.py", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "platform" in done.stderr


@pytest.mark.e2e
def test_the_entrypoint_serves_and_syncs_every_organization_of_the_written_configuration(tmp_path):
    source = organizations_file(tmp_path / "in", demo=True)
    settings = yaml.safe_load(source.read_text())
    source.write_text(yaml.safe_dump({**settings, "finance": {}}))
    compose_organizations.write(source, root=tmp_path)
    folder = tmp_path / compose_organizations.OUT
    command = yaml.safe_load((folder / "docker-compose.yml").read_text())["services"]["exporter"][
        "command"
    ]
    # The checkout's dashboards, where the Compose file mounts them.
    command = [
        c.replace(compose_organizations.DASHBOARDS_IN_CONTAINER, "dashboards") for c in command
    ]
    with GrafanaStub() as grafana:
        grafana.add_user("admin", "admin@localhost", server_admin=True, password=PASSWORD)
        env = {
            "EXPORTER_CONFIG_FILE": str(folder / "exporter.yml"),
            "GRAFANA_URL": grafana.url,
            "GRAFANA_ADMIN_USER": "admin",
            "GRAFANA_ADMIN_PASSWORD": PASSWORD,
        }
        store = f"--storage.path={tmp_path}/store.db"
        with start_entrypoint(tmp_path, env, store, *command) as proc:
            proc.wait_ready("/-/ready")
            names = set()
            for name in NAMES:
                text = requests.get(f"{proc.url}/metrics?organization={name}", timeout=10).text
                (org,) = {
                    dict(labels)["organization_name"]
                    for _, labels in samples(text, organization=True)
                }
                names.add(org)
            assert "serving the organizations of" in proc.output()
            # The timer's first sync runs as the exporter starts.
            wanted = {
                f"Claude Code: {n}": f"http://prometheus-{n}:9090" for n in (*NAMES, "finance")
            }
            deadline = time.monotonic() + 30
            while (found := grafana_sources(grafana)) != wanted or not all(
                org.dashboards for org in grafana.orgs.values() if org.datasources
            ):
                assert time.monotonic() < deadline, (found, proc.output())
                time.sleep(0.2)
            finance = grafana.org_named("Claude Code: finance")
            assert {d.model["title"] for d in finance.dashboards.values()} == finance_titles()
    assert names == {f"Simulated {n}" for n in NAMES}
    assert {p.name for p in tmp_path.glob("*.db")} == {f"{n}.db" for n in NAMES}


def finance_titles() -> set[str]:
    return {
        json.loads(p.read_text())["title"]
        for p in (ROOT / "dashboards/generated-finance").glob("*.json")
    }


def grafana_sources(grafana: GrafanaStub) -> dict[str, str]:
    """The URL of each Grafana organization's one data source; Grafana's main one has none."""
    return {
        org.name: source.url for org in grafana.orgs.values() for source in org.datasources.values()
    }


@pytest.mark.e2e
def test_backfill_once_writes_one_organization_into_its_prometheus(tmp_path):
    compose_organizations.write(organizations_file(tmp_path / "in", demo=True), root=tmp_path)
    prometheus_dir = tmp_path / "prometheus-research"
    prometheus_dir.mkdir()
    env = {
        "PATH": python_shim(tmp_path),
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_DATA_DIR": str(prometheus_dir),
        "BACKFILL_DAYS": "2",
        "EXPORTER_CONFIG_FILE": str(tmp_path / compose_organizations.OUT / "exporter.yml"),
    }
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "backfill-once", "--organization=research"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len([p for p in prometheus_dir.iterdir() if p.is_dir()]) == 2


def test_the_finance_view_gets_a_prometheus_of_every_organization_and_no_backfill(tmp_path):
    source = organizations_file(tmp_path / "in", demo=True)
    source.write_text(yaml.safe_dump({**yaml.safe_load(source.read_text()), "finance": {}}))
    compose_organizations.write(source, root=tmp_path)
    folder = tmp_path / compose_organizations.OUT
    path = folder / "prometheus-finance.yml"
    assert promtool_check(path, tmp_path).returncode == 0
    (job,) = [j for j in yaml.safe_load(path.read_text())["scrape_configs"] if "param" in str(j)]
    assert [c["labels"]["__param_organization"] for c in job["static_configs"]] == list(NAMES)
    services = merged(folder)["services"]
    assert "prometheus-finance" in services and "backfill-finance" not in services


def test_an_organization_cannot_be_named_finance_beside_the_finance_view(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "organizations.yml"
    source.write_text(yaml.safe_dump({"organizations": [{"name": "finance"}], "demo": True,
                                      "finance": {}}))  # fmt: skip
    with pytest.raises(compose_organizations.Unusable, match="no organization may be named"):
        compose_organizations.write(source, root=tmp_path)
