"""Dashboard queries on a real Prometheus that holds N members' history.

History comes from `python -m exporter backfill` over the exporter's store: each stored day
before today as the exporter saw it at 23:59:00 UTC of that day, written as TSDB blocks. The live
exporter is scraped beside it, so instant panels see today, and the mixin's recording rules are
loaded, as the dashboards expect. Every panel's target is then sent the way Grafana sends it over
the dashboard's default range (tests/grafana_queries.py, POST as the provisioned datasource does),
and each recording rule's expression is timed as one evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import requests
import yaml

from bench import ROOT
from exporter.store import Store
from grafana_queries import (
    ALL,
    PrometheusCall,
    TimeRange,
    parse_duration,
    prometheus_call,
    variable_values,
)
from procs import Proc, start_prometheus, wait_for_scrapes_and_rules

JOB = "claude-code-analytics"
RULES = ROOT / "alerts" / "generated" / "rules.yaml"
SCRAPE_INTERVAL_S = 15
RETENTION = "400d"
SLOW_QUERY_S = 1.0
QUERY_TIMEOUT_S = 600


@dataclass(frozen=True)
class QueryTiming:
    dashboard: str
    panel: str
    ref: str
    seconds: float
    series: int
    expr: str
    # The same query with every value of each All variable picked by name: what a user who picks
    # members pays at most (the members' own series instead of the recorded sums).
    every_value_seconds: float | None = None
    # Prometheus refused that query: at 50,000 members the names make it larger than the 10 MB
    # of form data Prometheus reads from a POST, as Grafana would send it.
    every_value_refused: bool = False


def backfill(workdir: Path, store: Path, tsdb: Path, instance: str, env: dict[str, str]) -> None:
    """`python -m exporter backfill` of every stored day before today, as users run it."""
    opened = Store(store)
    try:
        first = min(opened.fetched_days())
    finally:
        opened.close()
    cmd = [
        sys.executable,
        "-m",
        "exporter",
        "backfill",
        f"--storage.path={store}",
        f"--output={tsdb}",
        f"--since={first.isoformat()}",
        f"--target.job={JOB}",
        f"--target.instance={instance}",
        "--log.level=warning",
    ]
    with (workdir / "backfill.log").open("wb") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)


def prometheus_on(workdir: Path, tsdb: Path, exporter_target: str) -> Proc:
    """A real Prometheus on the backfilled TSDB folder, scraping the live exporter."""
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "scrape_timeout": "10s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
        },
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [exporter_target]}]}],
    }
    return start_prometheus(
        workdir,
        config,
        (RULES,),
        extra_args=(f"--storage.tsdb.retention.time={RETENTION}",),
        storage=tsdb,
        ready_timeout=600,
    )


def instant(base_url: str, query: str) -> list[dict]:
    return run(base_url, PrometheusCall("/api/v1/query", {"query": query}))


def run(base_url: str, call: PrometheusCall) -> list[dict]:
    """POST the call, as Grafana's provisioned Prometheus datasource does (httpMethod POST)."""
    response = requests.post(base_url + call.path, data=call.params, timeout=QUERY_TIMEOUT_S)
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise RuntimeError(f"{call.params['query']!r}: {body.get('error', response.text)}")
    return body["data"]["result"]


def wait_for_scrape(base_url: str, timeout: float = 300) -> None:
    """Wait until Prometheus has scraped the live exporter's data at least once. It waits for
    the member list, which every organization has at any hour: early in a UTC day there is no
    `today` series yet, because the API is an hour late."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instant(base_url, f'count(claude_code_analytics_member_info{{job="{JOB}"}})'):
            return
        time.sleep(1)
    raise RuntimeError(f"Prometheus did not scrape the exporter within {timeout:.0f}s")


def timed(base_url: str, call: PrometheusCall) -> tuple[float, int]:
    """Median of three runs (one run when a query takes longer than SLOW_QUERY_S)."""
    times, series = [], 0
    for _ in range(3):
        started = time.perf_counter()
        series = len(run(base_url, call))
        times.append(time.perf_counter() - started)
        if times[-1] > SLOW_QUERY_S:
            break
    return sorted(times)[len(times) // 2], series


def default_range(dashboard: dict, now: float) -> TimeRange:
    start, end = dashboard["time"]["from"], dashboard["time"]["to"]
    if end != "now" or not start.startswith("now-"):
        raise ValueError(f"unsupported default time range {start} to {end}")
    return TimeRange(now - parse_duration(start[4:]), now)


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def selections(
    base_url: str, dashboard: dict, time_range: TimeRange
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each query variable's default (All, or the first value) as Grafana sends it, and the same
    with every value picked by name instead of All; a variable's options are those of the earlier
    variables' defaults (the organization's members)."""
    defaults, every = {}, {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        values = variable_values(base_url, variable, time_range, defaults, dashboard) or [""]
        current = (variable.get("current") or {}).get("value")
        defaults[variable["name"]] = [ALL] if current == ALL else values[:1]
        every[variable["name"]] = values if current == ALL else values[:1]
    return defaults, every


def time_dashboard(base_url: str, path: Path, now: float) -> Iterator[QueryTiming]:
    dashboard = json.loads(path.read_text())
    time_range = default_range(dashboard, now)
    started = time.perf_counter()
    defaults, every = selections(base_url, dashboard, time_range)
    yield QueryTiming(path.stem, "(variables)", "", time.perf_counter() - started, 0, "")
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if not target.get("expr"):
                continue
            call, picked = (
                prometheus_call(dashboard, panel, target, chosen, time_range, SCRAPE_INTERVAL_S)
                for chosen in (defaults, every)
            )
            seconds, series = timed(base_url, call)
            every_value, refused = None, False
            if picked != call:
                try:
                    every_value = timed(base_url, picked)[0]
                except RuntimeError:
                    refused = True
            yield QueryTiming(
                path.stem,
                panel["title"],
                target.get("refId", ""),
                seconds,
                series,
                target["expr"],
                every_value,
                refused,
            )


def time_rules(base_url: str) -> Iterator[QueryTiming]:
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            seconds, series = timed(
                base_url, PrometheusCall("/api/v1/query", {"query": rule["expr"]})
            )
            yield QueryTiming("(rules)", rule["record"], "", seconds, series, rule["expr"])


def measure_dashboards(
    workdir: Path,
    store: Path,
    exporter_url: str,
    env: dict[str, str],
    reuse_tsdb: bool = False,
    baseline: Path | None = None,
) -> tuple[dict[str, float], list[QueryTiming]]:
    """Backfill (unless `reuse_tsdb` and the work directory holds a TSDB already), start
    Prometheus, time every query. `baseline` is a folder of other generated dashboards (an older
    mixin's) to time on the same Prometheus, named `<dashboard> (baseline)`. Returns the setup
    figures and the timings."""
    target = exporter_url.removeprefix("http://")
    tsdb = workdir / "tsdb"
    started = time.perf_counter()
    if not (reuse_tsdb and tsdb.is_dir()):
        backfill(workdir, store, tsdb, target, env)
    setup = {
        "backfill_s": time.perf_counter() - started,
        "blocks": float(sum(1 for path in tsdb.iterdir() if path.is_dir())),
        "tsdb_bytes": float(sum(p.stat().st_size for p in tsdb.rglob("*") if p.is_file())),
    }
    with prometheus_on(workdir, tsdb, target) as prometheus:
        wait_for_scrape(prometheus.url)
        wait_for_scrapes_and_rules(prometheus, JOB, count=1, timeout=300)
        now = time.time()
        timings = list(time_rules(prometheus.url))
        for path in sorted((ROOT / "dashboards" / "generated").glob("*.json")):
            timings += time_dashboard(prometheus.url, path, now)
        for path in sorted(baseline.glob("*.json")) if baseline else ():
            timings += (
                replace(t, dashboard=f"{t.dashboard} (baseline)")
                for t in time_dashboard(prometheus.url, path, now)
            )
    return setup, timings
