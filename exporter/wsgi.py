"""Entry point for a WSGI server, for those who prefer one to the built-in server.

    gunicorn --workers 1 --threads 8 --bind :9687 'exporter.wsgi:create()'
    waitress-serve --port 9687 --call exporter.wsgi:create

Flags come from the EXPORTER_ARGS environment variable, as on the command line (for example
`EXPORTER_ARGS="--storage.path=/var/lib/exporter/store.db"`). Run one worker process: each
process polls the Admin API and owns the store; threads serve scrapes from the shared cache.
Connection limits, timeouts and TLS are then that server's business: a web config with a
tls_server_config is refused here.
"""

from __future__ import annotations

import atexit
import os
import shlex
import threading

from flask import Flask

from .app import create_app
from .cli import PROG, Parser, UsageError, build_pollers, sentence, setup_logging
from .config import ConfigError, add_arguments, load


def create(args: str | None = None) -> Flask:
    parser = Parser(prog=f"{PROG} (EXPORTER_ARGS)")
    add_arguments(parser)
    try:
        config = load(parser.parse_args(shlex.split(args or os.environ.get("EXPORTER_ARGS", ""))))
    except (UsageError, ConfigError) as exc:
        raise SystemExit(sentence(parser.prog, exc)) from None
    if config.web is not None and config.web.tls is not None:
        raise SystemExit(
            sentence(
                PROG,
                "tls_server_config needs the built-in server (python -m exporter); under"
                " a WSGI server, give the certificate to that server instead",
            )
        )
    setup_logging(config.log_level, config.log_format)
    pollers, close = build_pollers(config)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=poller.run,
            args=(stop, config.poll_interval),
            name=f"poller-{poller.name}",
            daemon=True,
        )
        for poller in pollers
    ]
    for thread in threads:
        thread.start()

    def shutdown() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        close()

    atexit.register(shutdown)
    return create_app(pollers, config.web, demo=config.demo, telemetry_path=config.telemetry_path)
