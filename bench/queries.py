"""`python -m bench.queries`: the dashboard queries alone, for one organization size.

The dashboards section of `python -m bench` without the scrape, exposition and ingest figures: the
simulated organization and the exporter over the work directory's store (the history is loaded on
the first run), `python -m exporter backfill` of it into the work directory's TSDB (kept, and
reused by later runs with `--reuse-tsdb`), then every recording rule and dashboard query timed on a
real Prometheus (bench/dashboards.py). `--baseline DIR` times another mixin's generated dashboards
on the same Prometheus, in the same run, for a before and after."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from bench import dashboards, org
from bench.report import dashboard_tables
from bench.suite import Options, SizeResult


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000, help="organization size")
    parser.add_argument("--workdir", type=Path, required=True, help="the store, TSDB and logs")
    parser.add_argument(
        "--reuse-tsdb", action="store_true", help="keep the work directory's TSDB if it has one"
    )
    parser.add_argument("--baseline", type=Path, help="other generated dashboards to time too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "exporter.db"
    result = SizeResult(args.members)
    simulator = org.start_simulator(args.workdir, args.members)
    try:
        with org.start_exporter(
            args.workdir, simulator, store, Options.history_days, "/-/ready"
        ) as exporter:
            org.wait_for_poll(exporter.url)
            setup, timings = dashboards.measure_dashboards(
                args.workdir,
                store,
                exporter.url,
                org.api_env(simulator),
                reuse_tsdb=args.reuse_tsdb,
                baseline=args.baseline,
            )
    finally:
        simulator.proc.stop()
    result.dashboard_setup = setup
    result.queries = [asdict(t) for t in timings]
    print("\n".join(dashboard_tables(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
