"""Command line: `python -m exporter [flags]` serves the exporter; subcommands do one-off jobs."""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from collections.abc import Callable

from . import __version__
from .client import AdminClient
from .collector import Settings
from .config import Config, ConfigError, add_arguments, load, parse_duration
from .origin import Origin
from .poller import Poller
from .store import Store, StoreError

PROG = "claude-code-analytics-exporter"
log = logging.getLogger("exporter")


class UsageError(Exception):
    """Bad input on the command line, stated as one sentence; exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises a bad flag as `UsageError`: one sentence, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def sentence(prog: str, problem: object) -> str:
    """How every command speaks on stderr, in argparse's style: `prog: problem.`"""
    return f"{prog}: {str(problem).rstrip('.')}."


def report(prog: str, problem: object) -> None:
    print(sentence(prog, problem), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    parser = Parser(
        prog=PROG,
        description="Prometheus exporter for the Claude Code Analytics Admin API. "
        f"Subcommands: {', '.join(SUBCOMMANDS)} (each has --help).",
    )
    add_arguments(parser)
    _add_access_timer_arguments(parser)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    try:
        args = parser.parse_args(argv)
        config = load(args)
        access_interval = (
            parse_duration(args.access_interval, "--grafana-access.interval")
            if args.access_interval
            else None
        )
    except (UsageError, ConfigError) as exc:
        report(PROG, exc)
        return 2
    setup_logging(config.log_level)
    return serve(config, args if access_interval else None, access_interval or 0.0)


def _add_access_timer_arguments(parser: argparse.ArgumentParser) -> None:
    from . import access

    group = parser.add_argument_group(
        "Grafana access", "reconcile Grafana's teams and folder permissions on a timer"
    )
    group.add_argument(
        "--grafana-access.interval",
        dest="access_interval",
        metavar="DURATION",
        help="run `grafana-access sync` on this interval inside the exporter (default: off)",
    )
    access.add_config_arguments(group)  # type: ignore[arg-type]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def serve(
    config: Config, access_args: argparse.Namespace | None = None, access_interval: float = 0.0
) -> int:
    try:
        poller, close = build_poller(config)
    except StoreError as exc:
        report(PROG, exc)
        return 1
    workers: list[Callable[[threading.Event], None]] = [
        lambda stop: poller.run(stop, config.poll_interval)
    ]
    try:
        if access_args is not None:
            from . import access

            try:
                sync = access.from_args(access_args, poller.client.clone())
            except access.AccessConfigError as exc:
                report(PROG, exc)
                return 2
            workers.append(lambda stop: sync.run_forever(access_interval, stop))
        return _run_server(config, poller, workers)
    finally:
        close()


def build_poller(config: Config) -> tuple[Poller, Callable[[], None]]:
    """The poller over the store and the Admin API (or the simulator), and how to close them."""
    store = Store(config.storage_path)
    base_url: Origin | str = config.base_url
    api_key, simulator = config.api_key, None
    if config.demo:
        from .simulator import SimulatedOrganization
        from .simulator import serve as serve_simulator

        api_key = secrets.token_urlsafe(24)
        org = SimulatedOrganization(seed=config.demo_seed, members=config.demo_members)
        simulator = serve_simulator(org, api_key=api_key)
        base_url = simulator.url
        log.info(
            "demo mode: simulated organization of %d members at %s", config.demo_members, base_url
        )
    client = AdminClient(
        base_url, api_key, timeout=config.api_timeout, max_retries=config.api_max_retries
    )
    poller = Poller(
        client,
        store,
        history_days=config.history_days,
        refetch_days=config.refetch_days,
        settings=Settings(config.member_label, config.member_models),
        poll_timeout=config.poll_timeout,
    )

    def close() -> None:
        if simulator is not None:
            simulator.stop()
        store.close()

    return poller, close


def _run_server(
    config: Config, poller: Poller, workers: list[Callable[[threading.Event], None]]
) -> int:
    from .app import create_app
    from .server import Server

    web = config.web
    try:
        server = Server(
            create_app(poller, web, demo=config.demo),
            config.listen_host,
            config.listen_port,
            config.limits,
            tls=web.tls if web else None,
        )
    except OSError as exc:
        report(PROG, f"cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror}")
        return 1
    stop = threading.Event()
    threads = [threading.Thread(target=work, args=(stop,), daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    signal.signal(signal.SIGTERM, lambda signum, frame: server.shutdown())
    scheme = "https" if web and web.tls else "http"
    log.info("listening on %s://%s:%d", scheme, config.listen_host, server.port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("shutting down")
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    return 0


def _backfill(argv: list[str]) -> int:
    from . import backfill

    return backfill.main(argv)


def _grafana_access(argv: list[str]) -> int:
    from . import access

    return access.main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "backfill": _backfill,
    "grafana-access": _grafana_access,
}
