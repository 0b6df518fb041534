"""The Flask application: a landing page, the cached /metrics, and health and readiness probes."""

from __future__ import annotations

from flask import Flask, Response, request

from .poller import Poller

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LANDING = """<!doctype html>
<html><head><title>Claude Code analytics exporter</title></head>
<body>
<h1>Claude Code analytics exporter</h1>
<p>Exports the Claude Code Analytics Admin API as Prometheus metrics. Data is polled off the
scrape path and served from a cache; the API itself is about an hour behind.</p>
<ul>
<li><a href="metrics">/metrics</a>: the metrics</li>
<li><a href="-/healthy">/-/healthy</a>: 200 while the process runs</li>
<li><a href="-/ready">/-/ready</a>: 200 once the store holds the first history load</li>
</ul>
</body></html>
"""


def create_app(poller: Poller) -> Flask:
    app = Flask("exporter")

    @app.get("/")
    def landing() -> Response:
        return Response(LANDING, mimetype="text/html")

    @app.get("/metrics")
    def metrics() -> Response:
        exposition = poller.exposition  # one read: a poll may swap in a new one meanwhile
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            response = Response(exposition.gzipped, content_type=CONTENT_TYPE)
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = Response(exposition.plain, content_type=CONTENT_TYPE)
        response.headers["Vary"] = "Accept-Encoding"
        return response

    @app.get("/-/healthy")
    def healthy() -> Response:
        return Response("OK\n", mimetype="text/plain")

    @app.get("/-/ready")
    def ready() -> Response:
        if poller.ready.is_set():
            return Response("Ready\n", mimetype="text/plain")
        return Response("Loading history from the Admin API\n", status=503, mimetype="text/plain")

    return app
