"""The results as Markdown tables, with the machine they were measured on."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

from bench.stats import growth_exponent
from bench.suite import SizeResult

MiB = 1024 * 1024
SLOWEST_QUERIES = 12


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / MiB:.1f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def scrape_table(results: list[SizeResult]) -> list[str]:
    rows = []
    for r in results:
        f = r.figures
        rows.append(
            [
                f"{r.members:,}",
                _ms(f["cached_p50_s"]),
                _ms(f["cached_p99_s"]),
                f"{f['cached_scrapes']:.0f}",
                _ms(f["naive_p50_s"]),
                _ms(f["naive_p99_s"]),
                f"{f['naive_scrapes']:.0f}",
                f"{f['naive_p99_s'] / f['cached_p99_s']:,.0f}x",
                f"{f['cached_body_bytes'] / 1024:,.0f}",
            ]
        )
    header = ["members", "cached p50 ms", "cached p99 ms", "n", "naive p50 ms", "naive p99 ms"]
    header += ["n", "naive p99 / cached p99", "gzip body KiB"]
    return _table(header, rows)


def exposition_table(results: list[SizeResult]) -> list[str]:
    rows = []
    for r in results:
        for variant, size in r.exposition.items():
            rows.append(
                [
                    f"{r.members:,}",
                    variant,
                    f"{size['series']:,}",
                    f"{size['series'] / r.members:.1f}",
                    f"{size['plain_bytes'] / r.members:,.0f}",
                    f"{size['gzip_bytes'] / r.members:,.0f}",
                    _ms(size["render_seconds"]),
                ]
            )
    header = ["members", "settings", "series", "series/member", "bytes/member"]
    header += ["gzip bytes/member", "compute+render ms"]
    return _table(header, rows)


def ingest_table(results: list[SizeResult]) -> list[str]:
    rows = []
    for r in results:
        f = r.figures
        rows.append(
            [
                f"{r.members:,}",
                f"{f['ingest_records']:,.0f}",
                f"{f['ingest_page_bytes'] / MiB:.2f}",
                _ms(f["ingest_json_seconds"]),
                _ms(f["ingest_parse_seconds"]),
                _ms(f["ingest_store_seconds"]),
                _ms(f["ingest_ingest_seconds"]),
                f"{f['ingest_ingest_seconds'] / f['ingest_json_seconds']:.2f}x",
            ]
        )
    header = ["members", "records/day", "MiB/day", "json.loads ms (floor)"]
    header += ["parse ms", "store ms", "parse+store ms", "ratio to floor"]
    return _table(header, rows)


def poll_table(results: list[SizeResult]) -> list[str]:
    rows = []
    for r in results:
        f = r.figures
        rows.append(
            [
                f"{r.members:,}",
                f"{f['history_load_s']:.1f}",
                f"{f['steady_poll_s']:.2f}",
                f"{f['peak_rss_history_mb']:.0f}",
                f"{f['peak_rss_after_scrapes_mb']:.0f}",
                f"{f['peak_rss_after_plain_mb']:.0f}",
                f"{f['peak_rss_steady_mb']:.0f}",
            ]
        )
    header = ["members", "history load poll s", "steady poll s", "peak RSS history MiB"]
    header += ["after scrapes MiB", "after plain scrapes MiB", "peak RSS restart+poll MiB"]
    return _table(header, rows)


GROWTH = {
    "cached scrape p99": lambda r: r.figures["cached_p99_s"],
    "naive scrape p99": lambda r: r.figures["naive_p99_s"],
    "exposition bytes (default)": lambda r: r.exposition["default"]["plain_bytes"],
    "exposition compute+render": lambda r: r.exposition["default"]["render_seconds"],
    "ingest parse+store": lambda r: r.figures["ingest_ingest_seconds"],
    "history load poll": lambda r: r.figures["history_load_s"],
    "steady poll": lambda r: r.figures["steady_poll_s"],
    "peak RSS": lambda r: r.figures["peak_rss_history_mb"],
}


def growth_table(results: list[SizeResult]) -> list[str]:
    pairs = list(zip(results, results[1:], strict=False))
    header = ["figure"] + [f"{a.members:,} → {b.members:,}" for a, b in pairs]
    rows = []
    for name, figure in GROWTH.items():
        exponents = [
            growth_exponent((a.members, figure(a)), (b.members, figure(b))) for a, b in pairs
        ]
        rows.append([name] + [f"{k:.2f}" for k in exponents])
    return _table(header, rows)


def dashboard_tables(result: SizeResult) -> list[str]:
    setup = result.dashboard_setup
    lines = [
        f"`python -m exporter backfill` of {result.members:,} members' history: "
        f"{setup['backfill_s']:.0f} s, {setup['blocks']:.0f} blocks, "
        f"{setup['tsdb_bytes'] / MiB:,.0f} MiB.",
        "",
    ]
    names = sorted({q["dashboard"] for q in result.queries})
    rows = []
    for name in names:
        queries = [q for q in result.queries if q["dashboard"] == name]
        alternative = sum(q.get("every_value_seconds") or q["seconds"] for q in queries)
        total = sum(q["seconds"] for q in queries)
        refused = sum(1 for q in queries if q.get("every_value_refused"))
        picked = _ms(alternative) + (f" ({refused} refused)" if refused else "")
        rows.append([name, str(len(queries)), _ms(total), picked])
    header = ["dashboard", "queries", "sum of query times ms", "same with every member picked"]
    lines += _table(header, rows)
    lines += ["", f"The {SLOWEST_QUERIES} slowest queries:", ""]
    slowest = sorted(result.queries, key=lambda q: q["seconds"], reverse=True)[:SLOWEST_QUERIES]
    lines += _table(
        ["dashboard", "panel", "ref", "ms", "series", "ms with every member picked"],
        [
            [
                q["dashboard"],
                q["panel"],
                q["ref"],
                _ms(q["seconds"]),
                str(q["series"]),
                _every_value(q),
            ]
            for q in slowest
        ],
    )
    return lines


def _every_value(query: dict) -> str:
    if query.get("every_value_refused"):
        return "refused"
    seconds = query.get("every_value_seconds")
    return "" if seconds is None else _ms(seconds)


def markdown(results: list[SizeResult], command: str, started: str, seconds: float) -> str:
    info = machine()
    lines = [
        f"Measured {started}, {seconds / 60:.1f} minutes, with `{command}`.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} memory, "
        f"Python {info['python']}, Linux {info['kernel']}.",
        "",
        "### Scrape latency (4 concurrent scrapers, gzip)",
        "",
        *scrape_table(results),
        "",
        "### Exposition size",
        "",
        *exposition_table(results),
        "",
        "### Ingest of one day",
        "",
        *ingest_table(results),
        "",
        "### Poll cycle and memory",
        "",
        *poll_table(results),
    ]
    if len(results) > 1:
        lines += ["", "### Growth (exponent k in figure ∝ members^k; 1 is linear)", ""]
        lines += growth_table(results)
    for result in results:
        if result.queries:
            lines += ["", f"### Dashboard queries at {result.members:,} members", ""]
            lines += dashboard_tables(result)
    return "\n".join(lines) + "\n"
