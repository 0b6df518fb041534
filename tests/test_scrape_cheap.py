"""A scrape is cheap: it serves the bytes the last poll rendered and does nothing else.

This is what keeps /metrics fast at 10,000 members and more (docs/performance.md). The poller and
the HTTP app run in-process against a served simulated organization; the tests count what a run
of scrapes triggers: Admin API requests at the simulator, calls of the render path, and SQL
statements on the store. Each count must stay at zero, with no timing involved. The plain text,
for a client that does not ask for gzip, is decompressed as it is sent, and only then. Only the
process's own series, about 30, are read when a scrape asks (exporter/runtime.py)."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import TEST_KEY
from exporter import exposition as exposition_module
from exporter import poller as poller_module
from exporter.app import create_app
from exporter.client import AdminClient
from exporter.collector import Settings
from exporter.exposition import inflate
from exporter.poller import Poller
from exporter.simulator import SimulatedOrganization, serve
from exporter.store import Store

SCRAPES = 50
RENDER_PATH = ("data_families", "exporter_families", "render", "render_chunks")


def counting(calls: Counter, name: str, function: Callable) -> Callable:
    def wrapper(*args: object, **kwargs: object) -> object:
        calls[name] += 1
        return function(*args, **kwargs)

    return wrapper


@pytest.fixture
def organization():
    org = SimulatedOrganization(seed=7, members=40)
    with serve(org, api_key=TEST_KEY) as server:
        yield org, server.url


@pytest.fixture
def exporter(organization, tmp_path, monkeypatch):
    """A poller that has polled once, its app's test client, and the counters of its work."""
    _, url = organization
    store = Store(tmp_path / "store.db")
    poller = Poller(
        AdminClient(url, TEST_KEY, max_retries=0),
        store,
        history_days=3,
        refetch_days=2,
        settings=Settings(),
    )
    calls: Counter = Counter()
    for name in RENDER_PATH:
        monkeypatch.setattr(
            poller_module, name, counting(calls, name, getattr(poller_module, name))
        )
    store._db.set_trace_callback(lambda statement: calls.update(["sql"]))
    assert poller.poll_once()
    yield poller, create_app(poller).test_client(), calls
    store.close()


def scrape_many(client, gzipped: bool = False) -> list[bytes]:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    responses = [client.get("/metrics", headers=headers) for _ in range(SCRAPES)]
    assert all(r.status_code == 200 for r in responses)
    return [r.data for r in responses]


def test_the_counters_see_the_work_of_a_poll(exporter):
    """The data once per poll; the exporter's own series at its start and end, and on the way."""
    _, _, calls = exporter
    assert calls["data_families"] == 1
    assert calls["exporter_families"] >= 2
    assert calls["sql"] > 0


def test_scrapes_send_no_request_to_the_admin_api(organization, exporter):
    org, _ = organization
    _, client, _ = exporter
    before = sum(org.requests.values())
    scrape_many(client)
    scrape_many(client, gzipped=True)
    assert sum(org.requests.values()) == before


def test_scrapes_compute_and_render_no_metric(exporter):
    _, client, calls = exporter
    before = {name: calls[name] for name in RENDER_PATH}
    scrape_many(client)
    scrape_many(client, gzipped=True)
    assert {name: calls[name] for name in RENDER_PATH} == before


def test_scrapes_run_no_query_on_the_store(exporter):
    _, client, calls = exporter
    before = calls["sql"]
    scrape_many(client)
    scrape_many(client, gzipped=True)
    assert calls["sql"] == before


def test_every_scrape_serves_the_exposition_the_poll_rendered(exporter):
    """...followed by the process's own series, which describe the moment of the scrape."""
    poller, client, _ = exporter
    rendered = poller.exposition.plain
    assert b"claude_code_analytics_month_to_date_sessions{" in rendered
    bodies = scrape_many(client) + [gzip.decompress(b) for b in scrape_many(client, True)]
    assert {body[: len(rendered)] for body in bodies} == {rendered}
    after = {
        family.name
        for family in text_string_to_metric_families(bodies[0][len(rendered) :].decode())
    }
    assert after and all(name.startswith(("process_", "python_")) for name in after)


def test_gzipped_scrapes_never_decompress_the_text(exporter, monkeypatch):
    """Prometheus asks for gzip: the text, 30 times larger, is then never made."""
    _, client, _ = exporter
    made: Counter = Counter()
    monkeypatch.setattr(exposition_module, "inflate", counting(made, "inflate", inflate))
    scrape_many(client, gzipped=True)
    assert made["inflate"] == 0


def test_a_plain_scrape_gets_the_text_a_piece_at_a_time(exporter, monkeypatch):
    """The plain text is decompressed as it is sent, never held whole (docs/performance.md)."""
    poller, client, _ = exporter
    monkeypatch.setattr(exposition_module, "INFLATE_STEP", 256)
    response = client.get("/metrics", buffered=False)
    pieces = list(response.response)
    text = gzip.decompress(poller.exposition.gzipped)
    assert b"".join(pieces).startswith(text)
    assert int(response.headers["Content-Length"]) == len(b"".join(pieces))
    assert len(pieces) > 10 and max(map(len, pieces)) < len(text) / 10
