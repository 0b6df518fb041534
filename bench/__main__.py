"""`python -m bench`: the benchmark suite; writes a Markdown table and the raw figures as JSON."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import ROOT
from bench.report import markdown
from bench.suite import Options, SizeResult, run_size

DEFAULT_SIZES = "100,1000,10000,50000"
DEFAULT_DASHBOARDS_AT = 10_000


def sizes(text: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of sizes"
        ) from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive whole numbers")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=sizes(DEFAULT_SIZES),
        help=f"organization sizes in members (default {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--dashboards-at",
        type=sizes,
        help="sizes at which to time the dashboard queries (default: 10000 if among --sizes)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=Options.history_days,
        help="days of history the exporter loads (default 30)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--workdir", type=Path, help="keep the stores and logs here")
    return parser.parse_args(argv)


def write(
    output: Path, results: list[SizeResult], command: str, started_at: str, seconds: float
) -> None:
    """The table and the raw figures so far, rewritten after each size."""
    output.write_text(markdown(results, command, started_at, seconds))
    output.with_suffix(".json").write_text(
        json.dumps([asdict(r) for r in results], indent=1) + "\n"
    )


def stop_on_signals() -> None:
    """SIGTERM and SIGINT (even when started in the background) unwind, stopping every child."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(f"bench: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.dashboards_at is None:
        args.dashboards_at = [n for n in args.sizes if n == DEFAULT_DASHBOARDS_AT]
    if not set(args.dashboards_at) <= set(args.sizes):
        print("bench: every --dashboards-at size must be one of --sizes.", file=sys.stderr)
        return 2
    stop_on_signals()
    options = replace(
        Options(), history_days=args.history_days, dashboards_at=frozenset(args.dashboards_at)
    )
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    command = shlex.join(["python", "-m", "bench", *argv])
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        base = args.workdir or Path(tmp)
        for members in args.sizes:
            workdir = base / f"members-{members}"
            workdir.mkdir(parents=True, exist_ok=True)
            results.append(run_size(members, workdir, options, log))
            write(args.output, results, command, started_at, time.monotonic() - started)
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
