"""`python -m exporter.simulator`: serve a simulated organization until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ..clock import frozen, utc_now
from ..config import ConfigError, read_secret_file
from .organization import SimulatedOrganization
from .server import SimulatorServer, serve


class UsageError(Exception):
    """A bad flag or file; main() prints it as one sentence."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve a simulated organization's Admin API (users and Claude Code usage).",
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free one)")
    parser.add_argument("--members", type=int, default=50, help="number of members")
    parser.add_argument("--api-keys", type=int, default=None, help="API-key actors (default N/12)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated organization")
    parser.add_argument("--api-key-file", help="require x-api-key equal to this file")
    parser.add_argument("--frozen", action="store_true", help="freeze the clock at start-up")
    return parser.parse_args(argv)


def _listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


def _api_key(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return read_secret_file(path, "--api-key-file")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _start(args: argparse.Namespace) -> SimulatorServer:
    host, port = _listen_address(args.listen)
    api_key = _api_key(args.api_key_file)
    clock = frozen(utc_now()) if args.frozen else None
    try:
        org = SimulatedOrganization(args.seed, args.members, args.api_keys, clock)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return serve(org, host, port, api_key)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        server = _start(args)
    except UsageError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"simulated organization serving on {server.url}", flush=True)
    stopping.wait()
    server.stop()
    return 0
