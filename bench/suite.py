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
    plain_requests: int = 8
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


def _history_and_scrapes(
    result: SizeResult, workdir: Path, simulator: org.Simulator, store: Path, options: Options
) -> None:
    """First start: the history load, its peak memory, then the cached scrape load, then a few
    scrapes without gzip (the exporter decompresses the text as it sends it)."""
    figures = result.figures
    with org.start_exporter(workdir, simulator, store, options.history_days, "/-/ready") as first:
        figures["history_load_s"] = org.wait_for_poll(first.url)
        figures["peak_rss_history_mb"] = org.peak_rss_mb(first.pid)
        cached = scrape_load(
            first.url + "/metrics",
            options.scrape_threads,
            options.cached_requests,
            options.cached_seconds,
        )
        figures.update(_load_figures("cached", cached))
        figures["peak_rss_after_scrapes_mb"] = org.peak_rss_mb(first.pid)
        plain = scrape_load(
            first.url + "/metrics",
            options.scrape_threads,
            options.plain_requests,
            options.cached_seconds,
            gzipped=False,
        )
        figures.update(_load_figures("plain", plain))
        figures["peak_rss_after_plain_mb"] = org.peak_rss_mb(first.pid)


def _restart_and_dashboards(
    result: SizeResult, workdir: Path, simulator: org.Simulator, store: Path, options: Options
) -> None:
    """A restart over the full store (the steady-state poll), then, if asked, the dashboards."""
    figures = result.figures
    with org.start_exporter(workdir, simulator, store, options.history_days, "/-/healthy") as live:
        figures["steady_poll_s"] = org.wait_for_poll(live.url)
        figures["peak_rss_steady_mb"] = org.peak_rss_mb(live.pid)
        if result.members in options.dashboards_at:
            setup, timings = dashboards.measure_dashboards(
                workdir, store, live.url, org.api_env(simulator)
            )
            result.dashboard_setup = setup
            result.queries = [asdict(t) for t in timings]


def _offline_figures(result: SizeResult, workdir: Path, store: Path, options: Options) -> None:
    """The naive exporter, the exposition sizes and the ingest, with no simulator running."""
    figures = result.figures
    figures.update(_load_figures("naive", _naive_scrapes(workdir, store, options)))
    for name, size in exposition.measure_variants(store).items():
        result.exposition[name] = asdict(size)
    repetitions = 3 if result.members >= 50_000 else 5
    ingested = ingest.measure_ingest(result.members, workdir, repetitions)
    figures.update({f"ingest_{k}": float(v) for k, v in asdict(ingested).items()})
    figures["ingest_ingest_seconds"] = ingested.ingest_seconds


def run_size(
    members: int, workdir: Path, options: Options, log: Callable[[str], None]
) -> SizeResult:
    result = SizeResult(members)
    store = workdir / "exporter.db"
    log(f"{members} members: history load and cached scrapes")
    simulator = org.start_simulator(workdir, members)
    try:
        _history_and_scrapes(result, workdir, simulator, store, options)
        log(f"{members} members: restart and poll; dashboards at {sorted(options.dashboards_at)}")
        _restart_and_dashboards(result, workdir, simulator, store, options)
    finally:
        simulator.proc.stop()
    log(f"{members} members: naive scrapes, exposition sizes, ingest")
    _offline_figures(result, workdir, store, options)
    return result
