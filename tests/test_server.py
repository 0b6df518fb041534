"""The built-in HTTP server on its own: a real socket, a small WSGI app, raw requests."""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time
from collections.abc import Iterable, Iterator

import pytest

from exporter.config import ServerLimits
from exporter.server import MAX_HEAD_BYTES, Server

BIG = b"x" * (3 * 1024 * 1024)
FIRST, REST = b"first " * 1000, b"rest " * 1000
# Set by a client that has read FIRST: the streamed answer then yields REST.
first_arrived = threading.Event()
streams_closed: list[str] = []


def app(environ: dict, start_response) -> Iterable[bytes]:
    if environ["PATH_INFO"] in ("/streamed", "/broken"):
        return streamed(environ["PATH_INFO"], start_response)
    body = BIG if environ["PATH_INFO"] == "/big" else environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def streamed(path: str, start_response) -> Iterator[bytes]:
    """An answer of known length whose second piece comes only once the first has arrived."""
    start_response("200 OK", [("Content-Length", str(len(FIRST + REST)))])
    try:
        yield FIRST
        if path == "/broken":
            raise RuntimeError("the app fails halfway")
        assert first_arrived.wait(5), "the server held the first piece back"
        yield REST
    finally:
        streams_closed.append(path)


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


def test_an_answer_of_known_length_is_sent_as_the_app_yields_it(server):
    """What a large plain exposition needs: its pieces go out as they are made, never all held."""
    first_arrived.clear()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /streamed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while FIRST not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the first piece arrived: {answer[:100]!r}"
            answer += chunk
        first_arrived.set()
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(FIRST + REST)}".encode() in head
    assert body == FIRST + REST
    assert streams_closed[-1] == "/streamed"


def test_an_app_that_fails_while_its_answer_is_sent_cuts_it_short(server):
    answer = exchange(server, b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(FIRST)
    assert streams_closed[-1] == "/broken"
    assert exchange(server, b"GET /after HTTP/1.0\r\n\r\n").endswith(b"/after")


def test_head_of_a_streamed_answer_sends_no_body_and_closes_the_stream(server):
    answer = exchange(server, b"HEAD /streamed HTTP/1.0\r\n\r\n")
    assert f"Content-Length: {len(FIRST + REST)}".encode() in answer
    assert answer.endswith(b"\r\n\r\n")
    assert streams_closed[-1] == "/streamed"


def test_a_small_answer_on_a_kept_alive_connection_is_not_held_back(server):
    """Head and body leave in one write: a body written after its head waits for the head's
    acknowledgement, which the client delays by 40 ms (Nagle's algorithm)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    times = []
    for _ in range(21):
        started = time.perf_counter()
        connection.request("GET", "/small")
        assert connection.getresponse().read() == b"/small"
        times.append(time.perf_counter() - started)
    connection.close()
    assert statistics.median(times) < 0.02, f"median {statistics.median(times) * 1000:.0f} ms"
