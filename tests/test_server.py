"""The built-in HTTP server on its own: a real socket, a small WSGI app, raw requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from exporter.config import ServerLimits
from exporter.server import MAX_HEAD_BYTES, Server

BIG = b"x" * (3 * 1024 * 1024)


def app(environ: dict, start_response) -> list[bytes]:
    body = BIG if environ["PATH_INFO"] == "/big" else environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server(app, "127.0.0.1", 0, ServerLimits(read_timeout=2.0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def exchange(server: Server, request: bytes, slowly: bool = False) -> bytes:
    """Send a raw request and read until the server closes the connection; `slowly` reads in
    small pieces through a small receive buffer, so that the server has to wait on the client."""
    with socket.socket() as sock:
        if slowly:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096 if slowly else 65536):
            answer += chunk
            if slowly and len(answer) % (256 * 1024) < 4096:
                time.sleep(0.05)
    return answer


def test_a_large_answer_arrives_whole_before_the_server_closes(server):
    request = b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(server, request, slowly=True)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    assert body == BIG


def test_kept_alive_requests_are_answered_in_order_on_one_connection(server):
    two = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nConnection: close\r\n\r\n"
    answer = exchange(server, two)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.index(b"/one") < answer.index(b"/two")


def test_head_answers_the_length_without_the_body(server):
    answer = exchange(server, b"HEAD /big HTTP/1.0\r\n\r\n")
    assert f"Content-Length: {len(BIG)}".encode() in answer and answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"505"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", b"431"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
    ],
    ids=["garbage", "version", "huge-head", "chunked", "huge-body"],
)
def test_a_request_it_cannot_serve_gets_a_status_and_a_close(server, request_bytes, status):
    answer = exchange(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in answer
