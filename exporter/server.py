"""The built-in HTTP/1.1 server: the WSGI app behind an asyncio front that stays up under abuse.

Sockets are read and written on one event loop, so a connection costs a socket and a timer, not
a thread; the app runs on a small pool of threads once a whole request has arrived. A request
must arrive within the read timeout, however slowly its bytes trickle in (slowloris), and when
every connection slot is taken, the connection that has waited longest for its request is closed
to make room, so a scraper always gets in. TLS, when configured, is served natively."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from .config import ServerLimits

log = logging.getLogger("exporter.server")

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
SEND_PIECE = 256 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HTTPError(Exception):
    """A request the server answers itself, and then closes the connection."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class TLS:
    """What the server needs for TLS: the context and the client SANs it accepts (if limited)."""

    context: ssl.SSLContext
    allowed_sans: frozenset[str] = frozenset()


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name]
        return ",".join(values) if values else None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        return self.version == "HTTP/1.1" and "close" not in tokens


class Server:
    """Binds at construction (so a busy port is reported before anything starts), serves in run()
    until shutdown() is called from any thread or a signal handler."""

    def __init__(
        self,
        app: WSGIApp,
        host: str,
        port: int,
        limits: ServerLimits,
        tls: TLS | None = None,
        threads: int = 8,
    ):
        self._app = app
        self._limits = limits
        self._tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=1024)
        self._socket.setblocking(False)
        self.host, self.port = host, self._socket.getsockname()[1]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="http")
        self._waiting: dict[asyncio.StreamWriter, float] = {}
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_early = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._socket.close()

    def shutdown(self) -> None:
        self._stop_early.set()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, sock=self._socket, limit=MAX_HEAD_BYTES)
        if self._stop_early.is_set():
            self._stop.set()
        async with server:
            await self._stop.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._limits.max_connections and not self._evict_longest_waiting():
            writer.transport.abort()
            return
        self._open += 1
        try:
            await self._converse(reader, writer)
            writer.close()  # sends what is still buffered, then closes
            await asyncio.wait_for(writer.wait_closed(), self._limits.write_timeout)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping; ending quietly spares a traceback per connection
        finally:
            self._open -= 1
            self._waiting.pop(writer, None)
            writer.transport.abort()  # at once, whatever is left: the client had its time

    def _evict_longest_waiting(self) -> bool:
        """Close the connection that has waited longest for its request; False if none waits."""
        if not self._waiting:
            return False
        oldest = min(self._waiting, key=self._waiting.__getitem__)
        del self._waiting[oldest]
        oldest.transport.abort()
        return True

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self._waiting[writer] = loop.time()
        if self._tls is not None:
            await writer.start_tls(
                self._tls.context, ssl_handshake_timeout=self._limits.read_timeout
            )
            if self._tls.allowed_sans and not _san_allowed(
                writer.get_extra_info("peercert"), self._tls.allowed_sans
            ):
                return
        wait: float | None = None  # the first request: the read timeout runs from now
        while True:
            self._waiting[writer] = loop.time()
            try:
                request = await self._read_request(reader, wait)
            except HTTPError as error:
                await self._send(writer, *_plain(error.status), close=True)
                return
            if request is None:
                return
            self._waiting.pop(writer, None)
            status, headers, body, rest = await loop.run_in_executor(
                self._pool, self._call_app, request, writer
            )
            if request.method == "HEAD":
                body = b""
                if rest is not None:
                    await loop.run_in_executor(self._pool, rest.close)
                    rest = None
            await self._send(writer, status, headers, body, not request.keep_alive, rest)
            if not request.keep_alive:
                return
            wait = self._limits.idle_timeout

    async def _read_request(
        self, reader: asyncio.StreamReader, wait: float | None
    ) -> Request | None:
        """The next request, or None when the client closes or stays silent for `wait` seconds.
        The whole request must arrive within the read timeout from its first byte (from now, when
        `wait` is None, as for the first request of a connection)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limits.read_timeout
        try:
            first = await asyncio.wait_for(reader.read(1), wait or self._limits.read_timeout)
        except TimeoutError:
            return None
        if not first:
            return None
        if wait is not None:
            deadline = loop.time() + self._limits.read_timeout
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    head = first + await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise HTTPError("431 Request Header Fields Too Large") from None
                request = _parse_head(head)
                request.body = await _read_body(reader, request)
        except TimeoutError:
            raise HTTPError("408 Request Timeout") from None
        return request

    def _call_app(
        self, request: Request, writer: asyncio.StreamWriter
    ) -> tuple[str, list[tuple[str, str]], bytes, Generator[bytes, None, None] | None]:
        """The app's status, headers and body; when the app gives the length and its first pieces
        fall short of it, also the rest of its pieces, which _send() takes as they come, so that a
        large answer is never held whole (the plain exposition: exporter/exposition.py)."""
        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info and answer:
                raise exc_info[1].with_traceback(exc_info[2])
            answer["status"], answer["headers"] = status, headers
            return chunks.append

        try:
            pieces = _pieces(self._app(self._environ(request, writer), start_response))
            for piece in pieces:
                chunks.append(piece)
                length = _content_length(answer["headers"])
                if length is not None and sum(map(len, chunks)) < length:
                    return answer["status"], answer["headers"], b"".join(chunks), pieces
            return answer["status"], answer["headers"], b"".join(chunks), None
        except Exception:
            log.exception("the app failed on %s %s", request.method, request.target[:200])
            return (*_plain("500 Internal Server Error"), None)

    def _environ(self, request: Request, writer: asyncio.StreamWriter) -> dict[str, Any]:
        target = request.target
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        peer = writer.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.host,
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": request.version,
            "REMOTE_ADDR": str(peer[0]),
            "REMOTE_PORT": str(peer[1]),
            "CONTENT_LENGTH": str(len(request.body)) if request.body else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self._tls else "http",
            "wsgi.input": BytesIO(request.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers:
            if "_" in name:  # would be indistinguishable from a dash once in the environ
                continue
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ[key] = value
            elif key != "CONTENT_LENGTH":
                key = "HTTP_" + key
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        close: bool,
        rest: Generator[bytes, None, None] | None = None,
    ) -> None:
        """Send the answer, then what `rest` yields, each piece as the client takes it, all
        within the write timeout. Written whole, a copy of what the socket did not take at once
        would wait in the transport's buffer, for each answer in flight (the plain exposition is
        up to 370 MB at 50,000 members, docs/performance.md)."""
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
        length = next((v for k, v in headers if k.lower() == "content-length"), str(len(body)))
        lines.append(f"Content-Length: {length}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body_view = memoryview(body)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                # The head goes with the body's first piece: sent alone, it would leave the body
                # waiting for its acknowledgement (Nagle's algorithm, 40 ms of delayed ACK).
                writer.write(head + body_view[:SEND_PIECE])
                await _write(writer, body_view[SEND_PIECE:])
                while rest is not None:
                    piece = await loop.run_in_executor(self._pool, next, rest, None)
                    if piece is None:
                        break
                    await _write(writer, piece)
                await writer.drain()
        except Exception as exc:
            if rest is not None and not isinstance(exc, OSError | TimeoutError):
                log.exception("the app failed while its answer was sent")
                raise ConnectionAbortedError("the answer was cut short") from exc
            raise
        finally:
            if rest is not None:
                await loop.run_in_executor(self._pool, _close, rest)


async def _write(writer: asyncio.StreamWriter, data: bytes | memoryview) -> None:
    view = memoryview(data)
    for start in range(0, len(view), SEND_PIECE):
        writer.write(view[start : start + SEND_PIECE])
        await writer.drain()


def _pieces(result: Iterable[bytes]) -> Generator[bytes, None, None]:
    """The app's pieces, its `close()` called when they end or are closed (PEP 3333)."""
    try:
        yield from result
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _close(pieces: Generator[bytes, None, None]) -> None:
    with contextlib.suppress(ValueError):  # still running in a thread the timeout gave up on
        pieces.close()


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    value = next((v for k, v in headers if k.lower() == "content-length"), None)
    return int(value) if value is not None and value.isdigit() else None


def _parse_head(head: bytes) -> Request:
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise HTTPError("400 Bad Request")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HTTPError("505 HTTP Version Not Supported")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HTTPError("400 Bad Request")
        headers.append((name, value.strip()))
    return Request(method, target, version, headers)


async def _read_body(reader: asyncio.StreamReader, request: Request) -> bytes:
    if request.header("transfer-encoding") is not None:
        raise HTTPError("501 Not Implemented")
    length = request.header("content-length")
    if length is None:
        return b""
    if not length.isdigit():
        raise HTTPError("400 Bad Request")
    if int(length) > MAX_BODY_BYTES:
        raise HTTPError("413 Content Too Large")
    return await reader.readexactly(int(length))


def _plain(status: str) -> tuple[str, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "text/plain; charset=utf-8")], f"{status}\n".encode()


def _san_allowed(peercert: dict | None, allowed: frozenset[str]) -> bool:
    """Whether the client certificate names one of the allowed SANs (DNS, IP, email or URI)."""
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind == "IP Address":
            value = str(ipaddress.ip_address(value.strip()))
        if value in allowed:
            return True
    return False
