"""A bounded concurrent scrape load on loopback: several threads, a request budget and a deadline.

Each thread keeps one HTTP/1.1 connection and asks for gzip, as Prometheus does, and reads the
whole body without decompressing it. No request starts after the deadline; those in flight finish,
so even the slowest exporter yields at least one sample per thread."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.stats import percentile

HEADERS = {"Accept-Encoding": "gzip", "Accept": "text/plain"}
PLAIN = {"Accept-Encoding": "identity", "Accept": "text/plain"}


@dataclass(frozen=True)
class LoadResult:
    latencies: tuple[float, ...]
    body_bytes: int

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


class _Budget:
    def __init__(self, requests: int, seconds: float):
        self._left = requests
        self._deadline = time.monotonic() + seconds
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0 or time.monotonic() >= self._deadline:
                return False
            self._left -= 1
            return True


def scrape_load(
    url: str, threads: int, requests: int, seconds: float, gzipped: bool = True
) -> LoadResult:
    """GET `url` from `threads` threads until `requests` were sent or `seconds` have passed;
    without gzip when `gzipped` is false, as a person with curl asks."""
    parts = urlsplit(url)
    budget = _Budget(requests, seconds)
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        try:
            while budget.take():
                started = time.perf_counter()
                connection.request("GET", parts.path, headers=HEADERS if gzipped else PLAIN)
                response = connection.getresponse()
                body = response.read()
                latencies.append(time.perf_counter() - started)
                sizes.append(len(body))
                if response.status != 200:
                    errors.append(f"{url} answered HTTP {response.status}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"scraping {url} failed: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise RuntimeError(errors[0])
    return LoadResult(tuple(latencies), max(sizes, default=0))
