"""`python -m bench.organizations`: one exporter reading several organizations, to set beside the
suite's figures for one organization of as many members in all (docs/performance.md).

A simulator process serves N organizations of M members, each behind its own key; the exporter
reads them all from one configuration file, a store and a poller each, and the figures are its
peak memory (VmHWM) after the history load, after gzipped and plain scrapes of every organization,
and after a restart and poll, with each organization's history load and steady poll."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from pathlib import Path

import requests

from bench.org import STARTUP_TIMEOUT, peak_rss_mb, wait_for_poll
from procs import Proc, free_port

SCRAPES = 10  # gzipped, of each organization; then one plain scrape of each


def serve(count: int, members: int, folder: Path, port: int) -> None:
    """The simulator process: organization N behind the key in folder/orgN.key."""
    from exporter.simulator import SimulatedOrganization
    from exporter.simulator import serve as serve_simulator

    organizations = {}
    for number in range(count):
        key = (folder / f"org{number}.key").read_text()
        organizations[key] = SimulatedOrganization(
            seed=100 + number, members=members, name=f"Simulated org{number}"
        )
    serve_simulator(organizations, port=port)
    threading.Event().wait()


def configure(count: int, folder: Path) -> Path:
    """A key per organization and the exporter's configuration file listing them."""
    lines = ["organizations:"]
    for number in range(count):
        key = folder / f"org{number}.key"
        key.write_text(secrets.token_urlsafe(24))
        key.chmod(0o600)
        store = folder / f"org{number}.db"
        lines += [
            f"  - name: org{number}",
            f"    api_key_file: {key}",
            f"    storage.path: {store}",
        ]
    config = folder / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


def start_exporter(folder: Path, config: Path, api: str, history_days: int) -> Proc:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--history.days={history_days}",
        "--poll.interval=1h",
        "--log.level=warning",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_BASE_URL"] = api
    return Proc("exporter", cmd, port, folder / f"exporter-{port}.log", env=env).wait_ready(
        "/-/healthy", timeout=STARTUP_TIMEOUT
    )


def scrape(url: str, organization: str, gzipped: bool) -> int:
    """One scrape of `organization`, read to its end; returns the bytes read."""
    headers = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    params = {"organization": organization}
    with requests.get(url + "/metrics", params=params, headers=headers, stream=True) as answer:
        answer.raise_for_status()
        return sum(len(piece) for piece in answer.raw.stream(65536, decode_content=False))


def measure(count: int, members: int, folder: Path, history_days: int) -> dict[str, float]:
    folder.mkdir(parents=True, exist_ok=True)
    config = configure(count, folder)
    names = [f"org{number}" for number in range(count)]
    port = free_port()
    cmd = [sys.executable, "-m", "bench.organizations", "--serve", str(port)]
    cmd += [f"--organizations={count}", f"--members={members}", f"--workdir={folder}"]
    figures: dict[str, float] = {}
    with Proc("simulator", cmd, port, folder / "simulator.log").wait_ready("/-/healthy") as api:
        with start_exporter(folder, config, api.url, history_days) as first:
            polls = [wait_for_poll(first.url, organization=name) for name in names]
            figures["history_load_s"] = max(polls)
            figures["peak_rss_history_mb"] = peak_rss_mb(first.pid)
            for _ in range(SCRAPES):
                for name in names:
                    scrape(first.url, name, gzipped=True)
            figures["peak_rss_after_scrapes_mb"] = peak_rss_mb(first.pid)
            for name in names:
                scrape(first.url, name, gzipped=False)
            figures["peak_rss_after_plain_mb"] = peak_rss_mb(first.pid)
        with start_exporter(folder, config, api.url, history_days) as live:
            polls = [wait_for_poll(live.url, organization=name) for name in names]
            figures["steady_poll_s"] = max(polls)
            figures["peak_rss_steady_mb"] = peak_rss_mb(live.pid)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.organizations", description=__doc__)
    parser.add_argument("--organizations", type=int, default=10)
    parser.add_argument("--members", type=int, default=5000, help="members of each organization")
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, required=True, help="keep the stores and logs here")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.organizations, args.members, args.workdir, args.serve)
        return 0
    figures = measure(args.organizations, args.members, args.workdir, args.history_days)
    print(f"{args.organizations} organizations of {args.members:,} members:")
    for name, value in figures.items():
        print(f"  {name}: {value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
