"""The baseline of the scrape benchmark: an exporter that rebuilds every metric on every scrape.

It reads the same store as the real exporter and serves it the way peers in this field do: a
collector registered in a prometheus_client registry, whose families are computed from the store
and rendered by `generate_latest` when Prometheus asks, gzipped when asked, on the same waitress
server with the same thread count. Run as `python -m bench.naive --storage.path PATH --port N`."""

from __future__ import annotations

import argparse
import gzip
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from waitress import serve

from exporter.app import CONTENT_TYPE
from exporter.collector import (
    ExporterStats,
    MemberLabels,
    Settings,
    data_families,
    exporter_families,
)
from exporter.store import Store

SERVER_THREADS = 8  # as exporter.cli serves the real exporter


class StoreCollector:
    """Computes every family from the store at each collect(); one store connection per thread."""

    def __init__(self, path: str, settings: Settings):
        self._path = path
        self._settings = settings
        self._local = threading.local()
        self._stats = ExporterStats(up=True)
        self._members = MemberLabels(settings.member_label, self._store().secret())

    def _store(self) -> Store:
        if not hasattr(self._local, "store"):
            self._local.store = Store(self._path)
        return self._local.store

    def collect(self) -> Iterator[Metric]:
        today = datetime.now(UTC).date()
        yield from data_families(self._store(), today, self._settings, self._members)
        yield from exporter_families(self._stats)


def create_app(store_path: str, settings: Settings) -> Flask:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store_path, settings))  # type: ignore[arg-type]
    app = Flask("naive-exporter")

    @app.get("/metrics")
    def metrics() -> Response:
        body = generate_latest(registry)
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            response = Response(gzip.compress(body, compresslevel=6), content_type=CONTENT_TYPE)
            response.headers["Content-Encoding"] = "gzip"
            return response
        return Response(body, content_type=CONTENT_TYPE)

    @app.get("/-/ready")
    def ready() -> Response:
        return Response("Ready\n", mimetype="text/plain")

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__)
    parser.add_argument("--storage.path", dest="storage", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = create_app(args.storage, Settings())
    serve(app, host="127.0.0.1", port=args.port, threads=SERVER_THREADS, _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
