"""deploy/kubernetes renders with `kubectl kustomize` into objects that Kubernetes and the
Prometheus Operator accept, that hold the mixin's rules and dashboards exactly, and that run the
exporter locked down."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from prometheus_operator import problems
from tools.generate import DASHBOARDS_DIR, RULES_DIR, SIDECAR_FOLDER, SIDECAR_LABEL

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
# The base alone, and every overlay: each must render and validate on its own.
KUSTOMIZATIONS = [DEPLOY / "base", *OVERLAYS]
# The oldest Kubernetes the manifests are checked against, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
WORKLOADS = {"Deployment", "Job", "CronJob"}


def kubectl() -> str:
    """kubectl with kustomize v5; scripts/test.sh puts one in .venv/bin if the machine has none."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is not installed: scripts/test.sh installs it")
    return found


@cache
def rendered(kustomization: Path) -> tuple[dict, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(kustomization)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(kustomization: Path, kind: str) -> list[dict]:
    return [copy.deepcopy(o) for o in rendered(kustomization) if o["kind"] == kind]


def the(kustomization: Path, kind: str) -> dict:
    (found,) = objects(kustomization, kind)
    return found


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


ids = {"ids": lambda p: p.relative_to(DEPLOY).as_posix()}


# --- Kubernetes' own kinds -------------------------------------------------------------------


def schema_errors(obj: dict, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{obj['kind']} {'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def core(kustomization: Path) -> list[dict]:
    return [o for o in rendered(kustomization) if "monitoring.coreos.com" not in o["apiVersion"]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_every_core_object_validates_against_the_kubernetes_schemas(kustomization, version):
    assert core(kustomization)
    assert [e for o in core(kustomization) for e in schema_errors(o, version)] == []


def test_the_schema_check_rejects_a_misspelt_field_and_a_wrong_type():
    deployment = the(DEPLOY / "base", "Deployment")
    pod_spec(deployment)["containers"][0]["readOnlyRootFileSystem"] = True
    assert schema_errors(deployment, KUBERNETES_VERSIONS[0])
    deployment = the(DEPLOY / "base", "Deployment")
    deployment["spec"]["replicas"] = "one"
    assert schema_errors(deployment, KUBERNETES_VERSIONS[0])


# --- the Prometheus Operator's kinds ---------------------------------------------------------


def operator_objects(kustomization: Path) -> list[dict]:
    return [o for o in rendered(kustomization) if "monitoring.coreos.com" in o["apiVersion"]]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_every_operator_object_has_only_the_documented_fields(kustomization):
    assert {o["kind"] for o in operator_objects(kustomization)} >= {"ServiceMonitor"}
    assert [p for o in operator_objects(kustomization) for p in problems(o)] == []


def test_the_operator_check_rejects_what_the_reference_does_not_document():
    monitor = the(DEPLOY / "base", "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "1 minute"
    monitor["spec"]["endpoints"][0]["relabelings"][0]["action"] = "labelDrop"
    monitor["spec"]["endpoint"] = []
    del monitor["spec"]["selector"]
    assert problems(monitor) == [
        "ServiceMonitor.spec.endpoint: not a documented field",
        "ServiceMonitor.spec.selector: required",
        "ServiceMonitor.spec.endpoints[0].interval: '1 minute' is not a duration such as 30s or 1m",
        "ServiceMonitor.spec.endpoints[0].relabelings[0].action: 'labelDrop' is not one of the"
        " allowed",
    ]
    rule = prometheus_rule()
    rule["spec"]["groups"].append(copy.deepcopy(rule["spec"]["groups"][0]))
    rule["spec"]["groups"][0]["rules"][0]["record"] = "x"
    rule["spec"]["groups"][1]["rules"][0]["for"] = 15
    assert problems(rule) == [
        "PrometheusRule.spec.groups[1].rules[0].for: 15 is not a duration such as 30s or 1m",
        f"PrometheusRule.spec.groups: group {rule['spec']['groups'][0]['name']!r} twice",
        "PrometheusRule.spec.groups[0].rules[0]: needs alert or record, not both",
    ]


# --- the mixin's rules and dashboards --------------------------------------------------------


def prometheus_rule() -> dict:
    return the(DEPLOY / "mixin", "PrometheusRule")


def mixin_groups() -> list[dict]:
    files = (RULES_DIR / "alerts.yaml", RULES_DIR / "rules.yaml")
    return [group for path in files for group in yaml.safe_load(path.read_text())["groups"]]


def test_the_prometheus_rule_holds_exactly_the_mixins_rules_and_alerts():
    assert prometheus_rule()["spec"]["groups"] == mixin_groups()


@pytest.mark.parametrize("kustomization", OVERLAYS, **ids)
def test_every_overlay_carries_the_prometheus_rule_unchanged(kustomization):
    assert the(kustomization, "PrometheusRule")["spec"] == prometheus_rule()["spec"]


def promtool_check(groups: list[dict], tmp_path: Path) -> subprocess.CompletedProcess:
    rules = tmp_path / "prometheusrule.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    return subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True
    )


def test_promtool_accepts_the_prometheus_rules_groups(tmp_path):
    result = promtool_check(prometheus_rule()["spec"]["groups"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_fails_on_a_broken_rule(tmp_path):
    groups = prometheus_rule()["spec"]["groups"]
    groups[0]["rules"][0]["expr"] = "sum by (organization_id (x)"
    assert promtool_check(groups, tmp_path).returncode != 0


def sidecar_dashboards(kustomization: Path) -> dict[str, str]:
    """Each dashboard file the sidecar would load into the "Claude Code" folder, by name."""
    found = {}
    for config_map in objects(kustomization, "ConfigMap"):
        metadata = config_map["metadata"]
        if SIDECAR_LABEL.items() <= metadata.get("labels", {}).items():
            assert SIDECAR_FOLDER.items() <= metadata.get("annotations", {}).items()
            found.update(config_map["data"])
    return found


@pytest.mark.parametrize("kustomization", [DEPLOY / "mixin", *OVERLAYS], **ids)
def test_every_dashboard_is_a_configmap_for_the_sidecar_in_the_claude_code_folder(kustomization):
    committed = {p.name: p.read_text() for p in sorted(DASHBOARDS_DIR.glob("*.json"))}
    assert sidecar_dashboards(kustomization) == committed
    assert all(json.loads(text)["uid"] for text in committed.values())


def test_grafana_folder_is_the_one_compose_provisions():
    provider = yaml.safe_load(
        (ROOT / "provisioning/grafana/dashboards/claude-code.yaml").read_text()
    )
    assert SIDECAR_FOLDER["grafana_folder"] == provider["providers"][0]["folder"]


# --- how the exporter runs -------------------------------------------------------------------


def insecure(workload: dict) -> list[str]:
    """How a workload's pods fall short of running locked down, as the image's user."""
    pod = pod_spec(workload)
    name = workload["metadata"]["name"]
    out = []
    context = pod.get("securityContext", {})
    expected = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001}
    out += [f"{name}: pod {k} is not {v}" for k, v in expected.items() if context.get(k) != v]
    if context.get("seccompProfile") != {"type": "RuntimeDefault"}:
        out.append(f"{name}: pod seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        out.append(f"{name}: mounts a service account token")
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container.get("securityContext", {})
        if context.get("readOnlyRootFilesystem") is not True:
            out.append(f"{name}/{container['name']}: root filesystem writable")
        if context.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}/{container['name']}: may escalate privileges")
        if context.get("capabilities") != {"drop": ["ALL"]}:
            out.append(f"{name}/{container['name']}: keeps capabilities")
        if not {"requests", "limits"} <= container.get("resources", {}).keys():
            out.append(f"{name}/{container['name']}: no requests and limits")
    return out


def workloads(kustomization: Path) -> list[dict]:
    return [copy.deepcopy(o) for o in rendered(kustomization) if o["kind"] in WORKLOADS]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_every_pod_runs_as_the_images_user_read_only_and_without_privileges(kustomization):
    assert workloads(kustomization)
    assert [p for w in workloads(kustomization) for p in insecure(w)] == []


def test_the_overlay_example_runs_the_backfill_and_the_access_sync():
    kinds = {w["kind"] for w in workloads(DEPLOY / "overlays" / "example")}
    assert kinds == WORKLOADS


def test_the_security_check_finds_each_loosened_setting():
    deployment = the(DEPLOY / "base", "Deployment")
    pod = pod_spec(deployment)
    pod["securityContext"]["runAsUser"] = 0
    del pod["securityContext"]["seccompProfile"]
    container = pod["containers"][0]
    container["securityContext"] = {"readOnlyRootFilesystem": False, "capabilities": {"add": ["X"]}}
    del container["resources"]["limits"]
    assert insecure(deployment) == [
        "claude-code-analytics: pod runAsUser is not 10001",
        "claude-code-analytics: pod seccompProfile is not RuntimeDefault",
        "claude-code-analytics/exporter: root filesystem writable",
        "claude-code-analytics/exporter: may escalate privileges",
        "claude-code-analytics/exporter: keeps capabilities",
        "claude-code-analytics/exporter: no requests and limits",
    ]


def test_the_image_runs_as_the_user_the_manifests_name():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_one_exporter_replica_is_replaced_never_overlapped(kustomization):
    spec = the(kustomization, "Deployment")["spec"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_probes_ask_ready_and_healthy(kustomization):
    (container,) = pod_spec(the(kustomization, "Deployment"))["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"


def peak_memory_mib() -> int:
    """The highest peak RSS of docs/performance.md's table of the poll cycle and memory."""
    text = (ROOT / "docs" / "performance.md").read_text()
    table = text.split("### Poll cycle and memory", 1)[1].split("###", 1)[0]
    rows = [line.split("|")[4:8] for line in table.splitlines() if re.match(r"\| [\d,]+ \|", line)]
    return max(int(cell) for row in rows for cell in row)


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_the_memory_limit_holds_the_measured_peak_and_the_request_a_typical_one(kustomization):
    (container,) = pod_spec(the(kustomization, "Deployment"))["containers"]
    resources = container["resources"]
    assert mebibytes(resources["limits"]["memory"]) > peak_memory_mib() * 1.5
    assert mebibytes(resources["requests"]["memory"]) >= 100  # 10,000 members: 95 MiB


def mounted_file(pod: dict, container: dict, path: str) -> tuple[str, str]:
    """The volume and its source (`secret NAME`, ...) that a file of the container lies in."""
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    if "secret" in volume:
        return mount["name"], f"secret {volume['secret']['secretName']}"
    return mount["name"], ", ".join(k for k in volume if k != "name")


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_the_key_and_the_web_config_are_files_from_secrets():
    pod = pod_spec(the(DEPLOY / "base", "Deployment"))
    (container,) = pod["containers"]
    key = env(container)["ANTHROPIC_ADMIN_API_KEY_FILE"]
    assert mounted_file(pod, container, key) == (
        "admin-key",
        "secret claude-code-analytics-admin-key",
    )
    (web,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--web.config.file=")]
    assert mounted_file(pod, container, web) == (
        "web-config",
        "secret claude-code-analytics-web-config",
    )
    assert mounted_file(pod, container, "/var/lib/claude-code-analytics/store.db") == (
        "store",
        "persistentVolumeClaim",
    )


def test_the_overlay_examples_organizations_read_their_keys_from_a_secret():
    overlay = DEPLOY / "overlays" / "example"
    pod = pod_spec(the(overlay, "Deployment"))
    (container,) = pod["containers"]
    assert "ANTHROPIC_ADMIN_API_KEY_FILE" not in env(container)
    config = yaml.safe_load((overlay / "config.yml").read_text())
    for organization in config["organizations"]:
        assert mounted_file(pod, container, organization["api_key_file"]) == (
            "admin-key",
            "secret claude-code-analytics-admin-keys",
        )
    config_file = env(container)["EXPORTER_CONFIG_FILE"]
    _, source = mounted_file(pod, container, config_file)
    (generated,) = objects(overlay, "Secret")
    assert source == f"secret {generated['metadata']['name']}"
    text = base64.b64decode(generated["data"][Path(config_file).name]).decode()
    assert yaml.safe_load(text) == config


# --- scraping ---------------------------------------------------------------------------------


def scrape_labels(endpoint: dict) -> dict[str, str]:
    """The job and instance that the endpoint's relabelings give a target."""
    labels = {}
    for rule in endpoint["relabelings"]:
        if rule.get("targetLabel") in {"job", "instance"}:
            value = rule["replacement"]
            if rule.get("sourceLabels") == ["__param_organization"]:
                value = value.replace("$1", endpoint["params"]["organization"][0])
            labels[rule["targetLabel"]] = value
    return labels


def mixin_job() -> str:
    config = (ROOT / "config.libsonnet").read_text()
    return re.search(r"exporterSelector: 'job=\"([^\"]+)\"'", config).group(1)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_every_scrape_is_the_mixins_job_with_an_instance_of_its_own(kustomization):
    endpoints = the(kustomization, "ServiceMonitor")["spec"]["endpoints"]
    labels = [scrape_labels(e) for e in endpoints]
    assert {label["job"] for label in labels} == {mixin_job()}
    assert len({label["instance"] for label in labels}) == len(endpoints)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_labels_that_change_with_the_pod_are_dropped(kustomization):
    for endpoint in the(kustomization, "ServiceMonitor")["spec"]["endpoints"]:
        (drop,) = [r for r in endpoint["relabelings"] if r.get("action") == "labeldrop"]
        assert {"pod", "container", "endpoint", "service", "namespace"} == set(
            drop["regex"].split("|")
        )


@pytest.mark.parametrize("kustomization", OVERLAYS, **ids)
def test_the_backfill_labels_its_blocks_as_the_scrape_labels_the_live_series(kustomization):
    (container,) = pod_spec(the(kustomization, "Job"))["containers"]
    flags = dict(a.split("=", 1) for a in container["args"] if a.startswith("--"))
    endpoints = the(kustomization, "ServiceMonitor")["spec"]["endpoints"]
    scraped = [scrape_labels(e) for e in endpoints]
    job = flags.get("--target.job", "claude-code-analytics")
    assert {"job": job, "instance": flags["--target.instance"]} in scraped


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_the_service_monitor_reaches_the_exporter_through_the_service(kustomization):
    service = the(kustomization, "Service")
    monitor = the(kustomization, "ServiceMonitor")
    pod_labels = the(kustomization, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_the_metrics_token_is_the_one_the_web_config_secret_holds(kustomization):
    for endpoint in the(kustomization, "ServiceMonitor")["spec"]["endpoints"]:
        credentials = endpoint["authorization"]["credentials"]
        assert credentials == {"name": "claude-code-analytics-web-config", "key": "metrics-token"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_only_prometheus_may_reach_the_exporter(kustomization):
    policy = the(kustomization, "NetworkPolicy")["spec"]
    pod_labels = the(kustomization, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert peer["namespaceSelector"]["matchLabels"]
    assert rule["ports"] == [{"port": "http"}]


# --- the docs ---------------------------------------------------------------------------------


def referenced_secrets(kustomization: Path) -> set[str]:
    """Secrets the pods and the ServiceMonitor use that the manifests do not create."""
    made = {s["metadata"]["name"] for s in objects(kustomization, "Secret")}
    used = {
        v["secret"]["secretName"]
        for w in workloads(kustomization)
        for v in pod_spec(w).get("volumes", [])
        if "secret" in v
    }
    for endpoint in the(kustomization, "ServiceMonitor")["spec"]["endpoints"]:
        used.add(endpoint["authorization"]["credentials"]["name"])
    return used - made


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, **ids)
def test_the_docs_say_how_to_create_every_secret_the_manifests_expect(kustomization):
    commands = "\n".join(re.findall(r"```.*?```", (ROOT / "docs/kubernetes.md").read_text(), re.S))
    created = set(re.findall(r"kubectl [^\n]*create secret generic ([\w-]+)", commands))
    assert referenced_secrets(kustomization) <= created
