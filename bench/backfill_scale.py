"""How the backfill scales: time and peak memory for a large organization's history.

    .venv/bin/python -m bench.backfill_scale --members 10000 --days 30,90

The simulated organization runs in its own process (bench/org.py). For each number of days the
backfill runs in a fresh child process, on a fresh store, exactly as `python -m exporter backfill`
would; the child reports its own peak resident memory and promtool's, and measures two baselines
in the same process: its memory after importing the exporter (before the run), and the time to
write as many lines of OpenMetrics-shaped text as the backfill wrote samples. Bounded memory
shows as a peak that does not grow with the number of days."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import ROOT
from bench.org import start_simulator

MiB = 1024


def child(argv: list[str]) -> None:
    """Run in the measured process: the backfill, then the text baseline; print JSON figures."""
    from exporter.backfill import parse_args, run

    imported_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workdir = Path(argv[0])
    common = argv[1:]
    started = time.perf_counter()
    blocks = run(parse_args([*common, f"--output={workdir / 'blocks'}"])).written
    elapsed = time.perf_counter() - started
    samples = sum(json.loads((b / "meta.json").read_text())["stats"]["numSamples"] for b in blocks)
    print(
        json.dumps(
            {
                "blocks": len(blocks),
                "samples": samples,
                "seconds": elapsed,
                "text_baseline_s": text_baseline(workdir / "baseline.txt", samples),
                "imported_mib": imported_kib / MiB,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MiB,
                "promtool_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MiB,
            }
        )
    )


def text_baseline(path: Path, lines: int) -> float:
    """Seconds to format and write `lines` sample lines of the backfill's shape to a file."""
    started = time.perf_counter()
    with path.open("w", encoding="utf-8") as out:
        for n in range(lines):
            out.write(
                f'claude_code_analytics_month_to_date_sessions{{member="member-{n}@example.com",'
                f'actor_type="user",job="claude-code-analytics",instance="exporter:9687"}}'
                f" {n} 1790000340\n"
            )
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def measure(members: int, days: int, workers: int, workdir: Path, simulator) -> dict:
    since = datetime.now(UTC).date() - timedelta(days=days)
    run_dir = workdir / f"{days}-days"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_BASE_URL"] = simulator.proc.url
    env["ANTHROPIC_ADMIN_API_KEY_FILE"] = str(simulator.key_file)
    args = [
        str(run_dir),
        f"--since={since}",
        f"--storage.path={run_dir / 'store.db'}",
        f"--workers={workers}",
        "--log.level=warning",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bench.backfill_scale", "--child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {"members": members, "days": days, **figures}


def table(rows: list[dict]) -> str:
    head = (
        "| members | days | blocks | samples | time | time / text baseline "
        "| peak memory | peak / after import | promtool peak |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r['members']:,} | {r['days']} | {r['blocks']} | {r['samples']:,} "
        f"| {r['seconds']:.0f} s | {r['seconds'] / r['text_baseline_s']:.0f}× "
        f"| {r['peak_mib']:.0f} MiB | {r['peak_mib'] / r['imported_mib']:.1f}× "
        f"| {r['promtool_peak_mib']:.0f} MiB |\n"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.backfill_scale", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", default="30,90", help="comma-separated numbers of days")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backfill-scale-") as tmp:
        workdir = Path(tmp)
        simulator = start_simulator(workdir, args.members)
        try:
            rows = [
                measure(args.members, int(days), args.workers, workdir, simulator)
                for days in args.days.split(",")
            ]
        finally:
            simulator.proc.stop()
    print(table(rows))
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
