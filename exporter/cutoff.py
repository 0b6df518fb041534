"""A time limit on a whole HTTP request, not on each read of its socket.

`requests` applies its timeout to each socket operation, so a server that sends one byte every
two seconds never times out. Sessions from `session()` remember, per thread, the connection a
request is using; `within(seconds)` starts a timer that shuts that connection down when the
request is not done in time, and the request then fails as a timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The connection each thread's request is using, by thread id.
_in_flight: dict[int, HTTPConnection] = {}


class _Tracked:
    """Records the connection as the calling thread's while it connects and sends."""

    def connect(self) -> None:
        _in_flight[threading.get_ident()] = self  # type: ignore[assignment]
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _in_flight[threading.get_ident()] = self  # type: ignore[assignment]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _TrackedHTTPConnection(_Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def session() -> requests.Session:
    """A session whose requests `within()` can cut off."""
    made = requests.Session()
    adapter = _Adapter()
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made


class Limit:
    def __init__(self) -> None:
        self.fired = False


@contextmanager
def within(seconds: float) -> Iterator[Limit]:
    """Cut off the calling thread's request (of a `session()`) after `seconds`; `fired` tells
    whether it was, so the caller can report the failure as a timeout."""
    thread, limit = threading.get_ident(), Limit()

    def cut() -> None:
        limit.fired = True
        connection = _in_flight.get(thread)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with suppress(OSError):  # already closed: nothing to cut
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield limit
    finally:
        timer.cancel()
        _in_flight.pop(thread, None)
