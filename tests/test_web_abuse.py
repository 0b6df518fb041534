"""The HTTP server stays up under abuse: a scraper gets /metrics within a few seconds while
hundreds of clients trickle partial requests (slowloris), hold kept-alive connections, or send
wrong passwords. Every test starts the real exporter and talks to it over loopback sockets."""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

import bcrypt
import pytest
import requests
import yaml

from exporter.app import hash_password
from procs import start_exporter

pytestmark = pytest.mark.e2e
DEMO = ("--demo", "--demo.members=5", "--history.days=2")
PROMPT = 3.0  # seconds within which the scraper must get its answer
SLOW_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def basic(user: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


@contextmanager
def slow_clients(
    port: int, count: int, seconds: float = 10.0, start: bytes = SLOW_REQUEST
) -> Iterator[list[socket.socket]]:
    """`count` connections that each send `start` (by default the start of a request), then one
    more byte every half second (never the end of what they started), for at most `seconds`."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(start)
        sockets.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        deadline = time.monotonic() + seconds
        while not stop.wait(0.5) and time.monotonic() < deadline:
            for sock in sockets:
                with suppress(OSError):
                    sock.send(b"a")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join()
        for sock in sockets:
            sock.close()


def timed_get(url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    status = requests.get(url, timeout=PROMPT + 5, **kwargs).status_code
    return status, time.monotonic() - started


def test_a_scrape_answers_while_hundreds_of_slow_clients_hold_connections(tmp_path):
    with start_exporter(tmp_path, *DEMO) as exporter, slow_clients(exporter.port, 300):
        time.sleep(1)  # let the server take them all in
        metrics = timed_get(f"{exporter.url}/metrics")
        health = timed_get(f"{exporter.url}/-/healthy")
    assert metrics[0] == 200 and metrics[1] < PROMPT
    assert health[0] == 200 and health[1] < PROMPT


def test_slow_clients_beyond_the_connection_limit_make_room_for_a_scrape(tmp_path):
    args = (*DEMO, "--web.max-connections=50")
    with start_exporter(tmp_path, *args) as exporter, slow_clients(exporter.port, 200) as slow:
        time.sleep(1)
        status, seconds = timed_get(f"{exporter.url}/metrics")
        still_open = sum(1 for sock in slow if _open(sock))
    assert status == 200 and seconds < PROMPT
    assert still_open <= 50


def test_a_request_that_trickles_in_is_cut_off_at_the_read_timeout(tmp_path):
    with (
        start_exporter(tmp_path, *DEMO, "--web.read-timeout=1s") as exporter,
        slow_clients(exporter.port, 1) as (sock,),
    ):
        started = time.monotonic()
        sock.settimeout(5)
        answer = b""
        while chunk := _recv(sock):
            answer += chunk
        seconds = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert seconds < 3


def test_a_scrape_answers_while_hundreds_of_clients_scrape_and_keep_their_connections(tmp_path):
    with start_exporter(tmp_path, *DEMO) as exporter:
        sessions = [requests.Session() for _ in range(200)]
        with ThreadPoolExecutor(50) as pool:
            crowd = list(
                pool.map(
                    lambda s: s.get(f"{exporter.url}/metrics", timeout=30).status_code, sessions
                )
            )
        status, seconds = timed_get(f"{exporter.url}/metrics")
        for session in sessions:
            session.close()
    assert crowd == [200] * 200
    assert status == 200 and seconds < PROMPT


def test_wrong_passwords_from_many_clients_do_not_delay_a_scrape(tmp_path):
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=12)).decode()
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    with start_exporter(tmp_path, *DEMO, f"--web.config.file={web}") as exporter:
        url = f"{exporter.url}/metrics"
        assert requests.get(url, headers=basic("prometheus", "scrape-pw"), timeout=10).ok
        with ThreadPoolExecutor(100) as pool:
            guesses = [
                pool.submit(
                    requests.get, url, headers=basic("prometheus", f"guess-{n}"), timeout=60
                )
                for n in range(100)
            ]
            time.sleep(0.2)
            status, seconds = timed_get(url, headers=basic("prometheus", "scrape-pw"))
            refused = {guess.result().status_code for guess in guesses}
    assert status == 200 and seconds < PROMPT
    assert refused == {401, 429}


@pytest.mark.parametrize(
    "hashed",
    [
        bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=10)).decode(),
        hash_password("scrape-pw", rounds=100_000),
    ],
    ids=["bcrypt", "pbkdf2"],
)
def test_an_unknown_user_costs_what_a_wrong_password_costs(tmp_path, hashed):
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    with start_exporter(tmp_path, *DEMO, f"--web.config.file={web}") as exporter:
        url = f"{exporter.url}/metrics"

        def refusal(user: str) -> float:
            status, seconds = timed_get(url, headers=basic(user, secrets.token_hex(8)))
            assert status == 401
            return seconds

        refusal("warm-up")
        # Interleaved, and the fastest of each: a busy machine only ever adds time.
        times = [(refusal("prometheus"), refusal("nobody")) for _ in range(8)]
        wrong_password = min(t[0] for t in times)
        unknown_user = min(t[1] for t in times)
    assert 0.6 < unknown_user / wrong_password < 1.6


def _open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except OSError:
        return b""
