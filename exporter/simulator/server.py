"""The simulator's API served over HTTP by werkzeug in a thread of the calling process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .api import AdminApi
from .organization import SimulatedOrganization

STOP_POLL_SECONDS = 0.05


class _QuietHandler(WSGIRequestHandler):
    """No access log: the simulator runs inside tests and the exporter's demo mode."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound here rather than by werkzeug, which exits the process when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


class SimulatorServer:
    """An API served by werkzeug in a daemon thread; stop() or leave `with` to end it."""

    def __init__(self, api: AdminApi, host: str = "127.0.0.1", port: int = 0):
        self.api = api
        self.org = api.org
        with _listening_socket(host, port) as listener:
            self._server: BaseWSGIServer = make_server(
                host,
                port,
                api.app,
                threaded=True,
                request_handler=_QuietHandler,
                fd=listener.fileno(),
            )
        self.port = self._server.server_address[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(STOP_POLL_SECONDS,),
            name=f"simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    orgs: SimulatedOrganization | Mapping[str, SimulatedOrganization],
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
) -> SimulatorServer:
    """Serve one organization (to `api_key`, or any key) or several (each to its own key)."""
    return SimulatorServer(AdminApi(orgs, api_key), host, port)
