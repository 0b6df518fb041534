"""Run the Docker Compose stack for several Anthropic organizations, from one configuration.

    python tools/compose_organizations.py organizations.yml
    docker compose -f docker-compose.yml -f compose-organizations/docker-compose.yml up -d

`organizations.yml` is the exporter's `--config.file` with an `organizations:` list
(docs/organizations.md): each entry's `api_key_file` is a path on this machine, or the file says
`demo: true` to simulate them. The tool writes `compose-organizations/`:

- `exporter.yml`: the same configuration as the exporter's container sees it (keys as Compose
  secrets, stores in its volume);
- `prometheus-NAME.yml`: a Prometheus per organization, scraping only
  `/metrics?organization=NAME`, so that a data source on it can return no other organization's
  series; with `finance:` in the file, `prometheus-finance.yml` scrapes them all for the view across
  organizations;
- `prometheus.yml`: the stack's own Prometheus, which then scrapes no organization (Grafana's main
  organization, where every user lands, must hold no organization's numbers);
- `docker-compose.yml`: the services, a Prometheus and a one-off backfill per organization, and the
  secrets and volumes they use.

Each organization gets a Grafana organization of its own (its `grafana:` entry, or "Claude Code:
NAME") holding the data source of its Prometheus, and the exporter's timer (`grafana-access sync`
every minute, signed in as Grafana's admin) keeps its members to those the Console allows.

Run it again after changing the list; docs/compose.md says what changes and what stays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import (  # noqa: E402 (the checkout's exporter, run as a script)
    ORGANIZATION_KEYS,
    ORGANIZATION_NAME,
    ConfigError,
    yaml_mapping,
)

OUT = "compose-organizations"
CONFIG_IN_CONTAINER = "/etc/claude-code-analytics/organizations.yml"
DATA_IN_CONTAINER = "/var/lib/claude-code-analytics"
EXPORTER_TARGET = "exporter:9687"
JOB = "claude-code-analytics"  # the mixin's exporterSelector, as prometheus/prometheus.yml
PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"
EXPORTER_IMAGE = "claude-code-analytics-exporter:0.1.0"
FINANCE = "finance"  # the Prometheus of the view across organizations, when the file has finance:
SYNC_INTERVAL = "1m"
# The image holds no dashboards: the sync imports them from the checkout, mounted here.
DASHBOARDS_IN_CONTAINER = "/usr/share/claude-code-analytics/dashboards"


class Unusable(Exception):
    """The configuration cannot be turned into a stack; one sentence."""


def read_organizations(path: Path) -> tuple[list[dict], bool]:
    """The entries of the `organizations:` list, checked as the exporter checks them, and whether
    the stack is a demo."""
    try:
        config = yaml_mapping(str(path), "the configuration")
    except ConfigError as exc:
        raise Unusable(str(exc)) from None
    entries = config.get("organizations")
    if not isinstance(entries, list) or not entries:
        raise Unusable(f"{path} has no organizations: list (docs/organizations.md)")
    demo = config.get("demo") is True
    names = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(map(str, entry)) - set(ORGANIZATION_KEYS):
            known = ", ".join(ORGANIZATION_KEYS)
            raise Unusable(f"{path}: organization {number} must be a mapping of {known}")
        name = entry.get("name")
        if not isinstance(name, str) or not ORGANIZATION_NAME.fullmatch(name):
            raise Unusable(f"{path}: organization {number} needs a name like research")
        if not demo and not (path.parent / str(entry.get("api_key_file") or "")).is_file():
            raise Unusable(
                f"{path}: the api_key_file of {name} is not a file on this machine "
                f"({entry.get('api_key_file')!r}); or set demo: true"
            )
        names.append(name)
    if len(set(names)) != len(names):
        raise Unusable(f"{path}: two organizations have the same name")
    if "finance" in config and FINANCE in names:
        raise Unusable(
            f"{path}: with finance:, no organization may be named {FINANCE}, the name of the "
            "view's own Prometheus"
        )
    return entries, demo


def secret(name: str) -> str:
    return f"anthropic-admin-key-{name}"


def prometheus_url(name: str) -> str:
    """Where Grafana reaches the Prometheus of `name` (or of the finance view) in the stack."""
    return f"http://prometheus-{name}:9090"


def exporter_config(entries: list[dict], demo: bool, source: dict) -> dict:
    """The exporter's configuration inside its container: keys as secrets, stores in its volume,
    and each organization's Grafana organization on the data source of its own Prometheus."""
    config = {k: v for k, v in source.items() if k not in ("organizations", "storage.path")}
    config["storage.path"] = f"{DATA_IN_CONTAINER}/{'demo' if demo else 'store'}.db"
    config["organizations"] = []
    for entry in entries:
        name = entry["name"]
        grafana = {"organization": f"Claude Code: {name}", **(entry.get("grafana") or {})}
        config["organizations"].append(
            {
                "name": name,
                **({} if demo else {"api_key_file": f"/run/secrets/{secret(name)}"}),
                "grafana": {**grafana, "datasource_url": prometheus_url(name)},
            }
        )
    if "finance" in source:
        config["finance"] = {
            "organization": f"Claude Code: {FINANCE}",
            **(source["finance"] or {}),
            "datasource_url": prometheus_url(FINANCE),
        }
    return config


def prometheus_config(names: list[str]) -> dict:
    """A Prometheus of the stack, scraping the organizations `names` (none: the stack's own)."""
    scrapes: list[dict] = []
    if names:
        scrapes.append(
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": [EXPORTER_TARGET], "labels": {"__param_organization": name}}
                    for name in names
                ],
                # One instance per organization, as docs/organizations.md relabels it.
                "relabel_configs": [
                    {
                        "source_labels": ["__address__", "__param_organization"],
                        "separator": "/",
                        "target_label": "instance",
                    }
                ],
            }
        )
    scrapes += [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": ["alertmanager:9093"]}]},
    ]
    return {
        "global": {"scrape_interval": "1m", "scrape_timeout": "30s", "evaluation_interval": "1m"},
        "rule_files": ["/etc/prometheus/rules/*.yaml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": scrapes,
    }


def compose_file(entries: list[dict], demo: bool, config_path: Path, finance: bool) -> dict:
    config_mount = f"./{OUT}/exporter.yml:{CONFIG_IN_CONTAINER}:ro"
    secrets = [] if demo else [secret(e["name"]) for e in entries]
    services: dict[str, dict] = {
        # The sync of the Grafana organizations runs on the exporter's timer, as Grafana's admin.
        "exporter": {
            "command": [
                f"--grafana-access.interval={SYNC_INTERVAL}",
                f"--grafana.dashboards-dir={DASHBOARDS_IN_CONTAINER}/generated",
                f"--grafana.finance-dashboards-dir={DASHBOARDS_IN_CONTAINER}/generated-finance",
            ],
            "environment": {
                "EXPORTER_CONFIG_FILE": CONFIG_IN_CONTAINER,
                "GRAFANA_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
                "GRAFANA_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD}",
            },
            "volumes": [config_mount, f"./dashboards:{DASHBOARDS_IN_CONTAINER}:ro"],
            "secrets": secrets,
        },
        # The stack's own Prometheus keeps running for Grafana's main organization, without data.
        "prometheus": {
            "volumes": [f"./{OUT}/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
        },
        "backfill": {"environment": {"BACKFILL_DAYS": "0"}},
    }
    volumes: dict[str, None] = {}
    names = [entry["name"] for entry in entries] + ([FINANCE] if finance else [])
    for name in names:
        data = f"prometheus-{name}-data"
        volumes[data] = None
        services[f"prometheus-{name}"] = {
            "image": PROMETHEUS_IMAGE,
            "restart": "unless-stopped",
            "command": [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=400d",
            ],
            "volumes": [
                f"./{OUT}/prometheus-{name}.yml:/etc/prometheus/prometheus.yml:ro",
                "./alerts/generated:/etc/prometheus/rules:ro",
                f"{data}:/prometheus",
            ],
            "depends_on": ["exporter", "alertmanager"],
        }
        if name == FINANCE:
            continue  # its history comes from the organizations' own
        services[f"backfill-{name}"] = {
            "build": ".",
            "image": EXPORTER_IMAGE,
            "command": [
                "backfill-once",
                f"--organization={name}",
                f"--target.instance={EXPORTER_TARGET}/{name}",
            ],
            "user": "65534:65534",
            "restart": "no",
            "healthcheck": {"disable": True},
            "environment": {
                "EXPORTER_CONFIG_FILE": CONFIG_IN_CONTAINER,
                "BACKFILL_DAYS": "${BACKFILL_DAYS:-60}",
            },
            "volumes": [config_mount, f"{data}:/prometheus"],
            "secrets": [] if demo else [secret(name)],
            "depends_on": [f"prometheus-{name}"],
        }
    out: dict = {"services": services, "volumes": volumes}
    if not demo:
        out["secrets"] = {
            secret(e["name"]): {"file": str((config_path.parent / e["api_key_file"]).resolve())}
            for e in entries
        }
    return out


def write(config_path: Path, root: Path = ROOT) -> list[Path]:
    """Write the stack's files for `config_path` into root/compose-organizations; returns them."""
    entries, demo = read_organizations(config_path)
    source = yaml_mapping(str(config_path), "the configuration")
    folder = root / OUT
    folder.mkdir(exist_ok=True)
    names = [e["name"] for e in entries]
    finance = "finance" in source
    files = {
        "exporter.yml": exporter_config(entries, demo, source),
        "prometheus.yml": prometheus_config([]),
        **{f"prometheus-{name}.yml": prometheus_config([name]) for name in names},
        **({f"prometheus-{FINANCE}.yml": prometheus_config(names)} if finance else {}),
        "docker-compose.yml": compose_file(entries, demo, config_path, finance),
    }
    written = []
    for name, content in files.items():
        path = folder / name
        header = (
            f"# Written by tools/compose_organizations.py from {config_path.name}; do not edit.\n"
        )
        path.write_text(header + yaml.safe_dump(content, sort_keys=False))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the exporter configuration with organizations:")
    args = parser.parse_args(argv)
    try:
        written = write(args.config)
    except Unusable as exc:
        print(f"compose_organizations: {str(exc).rstrip('.')}.", file=sys.stderr)
        return 2
    for path in written:
        print(path.relative_to(ROOT))
    print(f"docker compose -f docker-compose.yml -f {OUT}/docker-compose.yml up -d")
    return 0


if __name__ == "__main__":
    sys.exit(main())
