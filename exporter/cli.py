"""Command line: `python -m exporter [flags]` serves the exporter; subcommands do one-off jobs."""

from __future__ import annotations

import argparse
import logging
import platform
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack

from . import __version__
from .collector import Settings
from .config import Config, ConfigError, add_arguments, load, parse_duration
from .logformat import formatter
from .poller import Poller
from .sources import open_sources
from .store import Store, StoreError

PROG = "claude-code-analytics-exporter"
log = logging.getLogger("exporter")


class UsageError(Exception):
    """Bad input on the command line, stated as one sentence; exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises a bad flag as `UsageError`: one sentence, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def version_text() -> str:
    """What --version prints, in node_exporter's layout: the version first, then the build."""
    return (
        f"{PROG}, version {__version__}\n"
        f"  python version:   {platform.python_implementation()} {platform.python_version()}\n"
        f"  platform:         {platform.system().lower()}/{platform.machine()}\n"
    )


class VersionAction(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        sys.stdout.write(version_text())
        parser.exit()


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
    parser.add_argument(
        "--version", action=VersionAction, help="show the version and the platform, and exit"
    )
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
    setup_logging(config.log_level, config.log_format)
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


def setup_logging(level: str, log_format: str = "logfmt") -> None:
    """Every record on stderr, one line each, in `--log.format` (exporter/logformat.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])


def serve(
    config: Config, access_args: argparse.Namespace | None = None, access_interval: float = 0.0
) -> int:
    try:
        pollers, close = build_pollers(config)
    except StoreError as exc:
        report(PROG, exc)
        return 1
    workers: list[Callable[[threading.Event], None]] = [
        lambda stop, poller=poller: poller.run(stop, config.poll_interval) for poller in pollers
    ]
    try:
        if access_args is not None:
            from . import access

            try:
                sync = access.build(
                    access_args, {p.name: p.client.clone() for p in pollers}, config
                )
            except ConfigError as exc:
                report(PROG, exc)
                return 2
            workers.append(lambda stop: sync.run_forever(access_interval, stop))
        return _run_server(config, pollers, workers)
    finally:
        close()


def build_pollers(config: Config) -> tuple[list[Poller], Callable[[], None]]:
    """A poller per configured organization, each over its own store and client (the Admin API,
    or the simulator with --demo), and how to close them all."""
    with ExitStack() as stack:
        sources = stack.enter_context(open_sources(config))
        pollers = []
        for source in sources:
            store = Store(source.organization.storage_path)
            stack.callback(store.close)
            pollers.append(
                Poller(
                    source.client,
                    store,
                    history_days=config.history_days,
                    refetch_days=config.refetch_days,
                    settings=Settings(config.member_label, config.member_models),
                    poll_timeout=config.poll_timeout,
                    name=source.organization.name,
                )
            )
        return pollers, stack.pop_all().close


def _run_server(
    config: Config, pollers: list[Poller], workers: list[Callable[[threading.Event], None]]
) -> int:
    from .app import create_app
    from .server import Server

    web = config.web
    try:
        server = Server(
            create_app(pollers, web, demo=config.demo, telemetry_path=config.telemetry_path),
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
