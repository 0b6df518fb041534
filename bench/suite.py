"""One size of the benchmark: every figure for an organization of N members."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import dashboards, exposition, ingest, org
from bench.load import LoadResult, scrape_load
from procs import Proc, free_port


@dataclass(frozen=True)
class Options:
    history_days: int = 30
    scrape_threads: int = 4
    cached_requests: int = 400
    cached_seconds: float = 20.0
    naive_requests: int = 100
    naive_seconds: float = 30.0
    dashboards_at: frozenset[int] = frozenset({10_000})


@dataclass
class SizeResult:
    members: int
    figures: dict[str, float] = field(default_factory=dict)
    exposition: dict[str, dict[str, float]] = field(default_factory=dict)
    dashboard_setup: dict[str, float] = field(default_factory=dict)
    queries: list[dict] = field(default_factory=list)


def _load_figures(prefix: str, result: LoadResult) -> dict[str, float]:
    return {
        f"{prefix}_p50_s": result.p50,
        f"{prefix}_p99_s": result.p99,
        f"{prefix}_scrapes": float(len(result.latencies)),
        f"{prefix}_body_bytes": float(result.body_bytes),
    }


def _naive_scrapes(workdir: Path, store: Path, options: Options) -> LoadResult:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.naive", f"--storage.path={store}", f"--port={port}"]
    with Proc("naive exporter", cmd, port, workdir / "naive.log").wait_ready("/-/ready") as naive:
        return scrape_load(
            naive.url + "/metrics",
            options.scrape_threads,
            options.naive_requests,
            options.naive_seconds,
        )


def run_size(
    members: int, workdir: Path, options: Options, log: Callable[[str], None]
) -> SizeResult:
    result = SizeResult(members)
    figures = result.figures
    store = workdir / "exporter.db"
    log(f"{members} members: simulator and history load")
    simulator = org.start_simulator(workdir, members)
    try:
        with org.start_exporter(
            workdir, simulator, store, options.history_days, "/-/ready"
        ) as first:
            figures["history_load_s"] = org.wait_for_poll(first.url)
            figures["peak_rss_history_mb"] = org.peak_rss_mb(first.pid)
            log(f"{members} members: cached scrapes")
            cached = scrape_load(
                first.url + "/metrics",
                options.scrape_threads,
                options.cached_requests,
                options.cached_seconds,
            )
            figures.update(_load_figures("cached", cached))
            figures["peak_rss_after_scrapes_mb"] = org.peak_rss_mb(first.pid)
        with org.start_exporter(
            workdir, simulator, store, options.history_days, "/-/healthy"
        ) as live:
            figures["steady_poll_s"] = org.wait_for_poll(live.url)
            figures["peak_rss_steady_mb"] = org.peak_rss_mb(live.pid)
            if members in options.dashboards_at:
                log(f"{members} members: backfill, Prometheus and dashboard queries")
                setup, timings = dashboards.measure_dashboards(
                    workdir, store, live.url, org.api_env(simulator)
                )
                result.dashboard_setup = setup
                result.queries = [asdict(t) for t in timings]
    finally:
        simulator.proc.stop()
    log(f"{members} members: naive scrapes")
    figures.update(_load_figures("naive", _naive_scrapes(workdir, store, options)))
    log(f"{members} members: exposition sizes")
    for name, size in exposition.measure_variants(store).items():
        result.exposition[name] = asdict(size)
    log(f"{members} members: ingest")
    repetitions = 3 if members >= 50_000 else 5
    ingested = ingest.measure_ingest(members, workdir, repetitions)
    figures.update({f"ingest_{k}": float(v) for k, v in asdict(ingested).items()})
    figures["ingest_ingest_seconds"] = ingested.ingest_seconds
    return result
