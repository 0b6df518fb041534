"""The Docker Compose stack: the compose file, the stack's Prometheus config, the exporter's image
and its entrypoint. No Docker engine runs here: `docker-compose config` validates the file,
promtool checks the Prometheus config, and the entrypoint runs for real with the exporter it starts.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import requests
import yaml

from conftest import TEST_KEY
from exporter import __version__
from fake_admin_api import FakeAdminApi
from procs import Proc, free_port
from tools.generate import RULES_DIR, evaluate

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "provisioning" / "exporter" / "docker-entrypoint.sh"
EXPORTER_PORT = "9687"
PASSWORD = "test-only-password"


def compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env` as settings (an empty env file hides any .env)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("")
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict:
    done = compose_config(tmp_path_factory.mktemp("compose"), GRAFANA_ADMIN_PASSWORD=PASSWORD)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile() if instruction == name]


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context (last matching line wins, and a
    line that matches a parent folder matches everything in it)."""
    included = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!")
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(_docker_match(pattern, prefix) for prefix in prefixes):
            included = negated
    return included


def _docker_match(pattern: str, path: str) -> bool:
    regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def test_the_compose_file_passes_docker_compose_config(stack):
    assert set(stack["services"]) == {
        "exporter",
        "backfill",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_the_stack_does_not_start_without_a_grafana_admin_password(tmp_path):
    done = compose_config(tmp_path)

    assert done.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env or the environment" in done.stderr


def test_every_image_is_pinned_to_a_version(stack):
    for name, service in stack["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name} uses {image}"


def test_the_exporter_image_is_built_here_and_tagged_with_the_package_version(stack):
    exporter = stack["services"]["exporter"]

    assert Path(exporter["build"]["context"]) == ROOT
    assert exporter["image"] == f"claude-code-analytics-exporter:{__version__}"


def test_the_dockerfile_base_image_is_a_pinned_python_3_11_slim():
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", instructions("FROM")[-1])


def test_the_image_takes_promtool_from_the_stacks_prometheus_version(stack):
    (stage,) = [f for f in instructions("FROM") if " AS prometheus" in f]

    assert stage.split()[0] == stack["services"]["prometheus"]["image"]
    assert "--from=prometheus /bin/promtool /usr/local/bin/promtool" in instructions("COPY")


def test_every_path_compose_mounts_exists_in_the_repo(stack):
    for name, service in stack["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts {source}, which is missing"


def test_volumes_keep_prometheus_data_and_the_exporter_store(stack):
    named = set(stack["volumes"])
    mounts = {
        (name, volume.split(":")[1])
        for name, service in stack["services"].items()
        for volume in service.get("volumes", [])
        if volume.split(":")[0] in named
    }

    assert ("prometheus", "/prometheus") in mounts
    assert ("backfill", "/prometheus") in mounts
    assert ("exporter", "/var/lib/claude-code-analytics") in mounts
    assert "--storage.tsdb.path=/prometheus" in stack["services"]["prometheus"]["command"]


def test_grafana_takes_its_admin_password_from_the_environment_and_keeps_anonymous_access_off(
    stack,
):
    environment = stack["services"]["grafana"]["environment"]

    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORD
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_ports_are_published_on_loopback_unless_configured_otherwise(stack, tmp_path):
    published = {
        name: [p.rsplit(":", 2) for p in service.get("ports", [])]
        for name, service in stack["services"].items()
    }

    assert ["127.0.0.1", "9687", "9687/tcp"] in published["exporter"]
    assert all(host == "127.0.0.1" for ports in published.values() for host, _, _ in ports)


def test_the_exporter_gets_the_key_only_from_the_environment(tmp_path):
    done = compose_config(
        tmp_path, GRAFANA_ADMIN_PASSWORD=PASSWORD, ANTHROPIC_ADMIN_API_KEY=TEST_KEY
    )
    exporter = yaml.safe_load(done.stdout)["services"]["exporter"]

    assert exporter["environment"]["ANTHROPIC_ADMIN_API_KEY"] == TEST_KEY
    assert TEST_KEY not in (ROOT / "docker-compose.yml").read_text()


def test_prometheus_loads_the_rules_from_where_compose_mounts_the_generated_ones(stack):
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    mounts = dict(v.split(":")[1::-1] for v in stack["services"]["prometheus"]["volumes"])

    (rule_glob,) = config["rule_files"]
    folder = PurePosixPath(rule_glob).parent
    assert Path(mounts[str(folder)]) == RULES_DIR
    assert sorted(RULES_DIR.glob(PurePosixPath(rule_glob).name))
    assert mounts["/etc/prometheus/prometheus.yml"] == str(ROOT / "prometheus" / "prometheus.yml")


def test_the_prometheus_config_and_the_generated_rules_pass_promtool(tmp_path):
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(RULES_DIR / PurePosixPath(config["rule_files"][0]).name)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))

    done = subprocess.run(
        ["promtool", "check", "config", str(local)], capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(list(RULES_DIR.glob('*.yaml')))} rule files found" in done.stdout


def test_prometheus_scrapes_the_exporter_under_the_job_name_the_mixin_selects():
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    selector = evaluate(ext_code="m._config.exporterSelector")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    (job_name,) = re.fullmatch(r'job="([^"]+)"', selector).groups()
    assert jobs[job_name]["static_configs"] == [{"targets": [f"exporter:{EXPORTER_PORT}"]}]


def test_prometheus_targets_are_compose_services_on_their_ports(stack):
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    targets += config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    for target in targets:
        host, port = target.split(":")
        if host != "localhost":
            published = [p.split(":")[-1].split("/")[0] for p in stack["services"][host]["ports"]]
            assert port in published, target


def test_the_image_runs_as_a_non_root_user():
    (user,) = instructions("USER")

    assert user.split(":")[0] not in ("root", "0")


def test_the_image_checks_its_health_on_the_healthy_endpoint_of_its_port():
    (healthcheck,) = instructions("HEALTHCHECK")
    (cmd,) = instructions("CMD")

    assert f"http://127.0.0.1:{EXPORTER_PORT}/-/healthy" in healthcheck
    assert f"--web.listen-address=:{EXPORTER_PORT}" in cmd
    assert instructions("EXPOSE") == [EXPORTER_PORT]


def test_the_image_installs_the_package_with_pip():
    assert any(run.startswith("pip install . ") for run in instructions("RUN"))


def test_everything_the_dockerfile_copies_exists_and_is_in_the_build_context():
    for copy in instructions("COPY"):
        if copy.startswith("--from="):
            continue
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert in_build_context(source), f"{source} is left out by .dockerignore"
    assert in_build_context("exporter/cli.py")


@pytest.mark.parametrize(
    "path",
    [".env", "data/claude-code-analytics.db", ".git/config", "tests", "exporter/__pycache__/a.pyc"],
)
def test_secrets_stores_and_tests_stay_out_of_the_build_context(path):
    assert not in_build_context(path)


def test_the_entrypoint_is_executable():
    assert os.access(ENTRYPOINT, os.X_OK)
    (entrypoint,) = instructions("ENTRYPOINT")
    assert "/usr/local/bin/docker-entrypoint.sh" in entrypoint


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def python_shim(tmp_path: Path) -> str:
    """A PATH whose `python` is the test's interpreter, as `python` is in the image."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def start_entrypoint(tmp_path: Path, env: dict[str, str], *args: str) -> Proc:
    """Run the entrypoint as the image would, with this checkout's exporter as `python`."""
    port = free_port()
    full_env = {
        "PATH": python_shim(tmp_path),
        "PYTHONPATH": str(ROOT),
        "EXPORTER_DATA_DIR": str(tmp_path),
        **env,
    }
    cmd = ["sh", str(ENTRYPOINT), f"--web.listen-address=127.0.0.1:{port}", *args]
    return Proc("entrypoint", cmd, port, tmp_path / "entrypoint.log", env=full_env)


@pytest.mark.e2e
def test_without_a_key_the_entrypoint_serves_the_simulated_organization(tmp_path):
    with start_entrypoint(tmp_path, {"ANTHROPIC_ADMIN_API_KEY": ""}) as proc:
        proc.wait_ready("/-/ready")
        metrics = requests.get(f"{proc.url}/metrics", timeout=10).text

        assert "claude_code_analytics_month_to_date_sessions{" in metrics
        assert "serving the simulated organization" in proc.output()
    assert (tmp_path / "demo.db").exists()
    assert not (tmp_path / "claude-code-analytics.db").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("source", ["variable", "file"])
def test_with_a_key_the_entrypoint_serves_the_real_organization(tmp_path, source):
    key_file = tmp_path / "admin-key"
    key_file.write_text(TEST_KEY + "\n")
    key = (
        {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        if source == "variable"
        else {"ANTHROPIC_ADMIN_API_KEY": "", "ANTHROPIC_ADMIN_API_KEY_FILE": str(key_file)}
    )
    with FakeAdminApi(TEST_KEY) as api:
        env = {**key, "ANTHROPIC_BASE_URL": api.url}
        with start_entrypoint(tmp_path, env) as proc:
            proc.wait_ready("/-/ready")
            metrics = requests.get(f"{proc.url}/metrics", timeout=10).text
            output = proc.output()

        assert api.calls[("users", None)] >= 1
    assert 'member="alice@example.com"' in metrics
    assert "serving the real organization" in output
    assert TEST_KEY not in output + metrics
    assert (tmp_path / "claude-code-analytics.db").exists()
    assert not (tmp_path / "demo.db").exists()


def backfill_once(
    tmp_path: Path, prometheus_dir: Path, days: int = 3
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": python_shim(tmp_path),
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_DATA_DIR": str(prometheus_dir),
        "BACKFILL_DAYS": str(days),
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "backfill-once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def blocks(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_dir()}


@pytest.mark.e2e
def test_backfill_once_writes_the_history_into_prometheus_once(tmp_path):
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()

    first = backfill_once(tmp_path, prometheus_dir)
    written = blocks(prometheus_dir)
    second = backfill_once(tmp_path, prometheus_dir)

    assert first.returncode == 0, first.stderr
    assert len(written) == 3
    assert second.returncode == 0, second.stderr
    assert "the demo history is already in" in second.stderr
    assert blocks(prometheus_dir) == written


def test_backfill_days_zero_writes_nothing(tmp_path):
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()

    result = backfill_once(tmp_path, prometheus_dir, days=0)

    assert result.returncode == 0, result.stderr
    assert "no backfill" in result.stderr
    assert not any(prometheus_dir.iterdir())


@pytest.mark.e2e
def test_backfilled_history_carries_the_labels_of_the_stacks_scrape(tmp_path):
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    assert backfill_once(tmp_path, prometheus_dir).returncode == 0
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "claude-code-analytics")
    (target,) = job["static_configs"][0]["targets"]
    port = free_port()
    cmd = [
        "prometheus",
        f"--config.file={tmp_path / 'empty.yml'}",
        f"--storage.tsdb.path={prometheus_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    (tmp_path / "empty.yml").write_text("global: {}\n")

    with Proc("prometheus", cmd, port, tmp_path / "prometheus.log") as prometheus:
        prometheus.wait_ready("/-/ready")
        answer = requests.get(
            f"{prometheus.url}/api/v1/series",
            params={"match[]": "claude_code_analytics_today_active_members", "start": "0"},
            timeout=10,
        ).json()

    labels = {(s["job"], s["instance"]) for s in answer["data"]}
    assert labels == {(job["job_name"], target)}


def test_the_entrypoint_passes_a_subcommand_through(tmp_path):
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "grafana-access", "sync", "--help"],
        env={"PATH": python_shim(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "--dry-run" in done.stdout
    assert "--demo" not in done.stdout


def test_env_example_names_every_variable_the_compose_file_reads():
    names = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    example = env_example()

    assert names - {"ANTHROPIC_BASE_URL", "GRAFANA_ADMIN_USER"} <= set(example)


def test_env_example_holds_no_secret_values():
    secrets = {n: v for n, v in env_example().items() if re.search("KEY|PASSWORD|TOKEN", n)}

    assert set(secrets) >= {"ANTHROPIC_ADMIN_API_KEY", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_TOKEN"}
    assert not any(secrets.values())
