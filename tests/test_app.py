"""The HTTP endpoints, served from the poller's cached exposition."""

from __future__ import annotations

import gzip

import pytest

from conftest import TEST_KEY
from exporter.app import create_app
from exporter.client import AdminClient
from exporter.collector import Settings
from exporter.poller import Exposition, Poller
from exporter.store import Store


@pytest.fixture
def poller(tmp_path):
    client = AdminClient("http://127.0.0.1:9", TEST_KEY)
    poller = Poller(
        client, Store(tmp_path / "s.db"), history_days=3, refetch_days=3, settings=Settings()
    )
    poller.exposition = Exposition(b"cached 1\n", gzip.compress(b"cached 1\n"))
    return poller


@pytest.fixture
def http(poller):
    return create_app(poller).test_client()


def test_metrics_serve_the_cached_exposition_without_touching_the_api(http):
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.data.startswith(b"cached 1\n")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_metrics_are_gzipped_when_asked(http):
    response = http.get("/metrics", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data).startswith(b"cached 1\n")


def test_a_new_poll_swaps_in_a_new_exposition(http, poller):
    poller.exposition = Exposition(b"cached 2\n", gzip.compress(b"cached 2\n"))
    assert http.get("/metrics").data.startswith(b"cached 2\n")


def test_ready_only_after_the_first_history_load(http, poller):
    assert http.get("/-/ready").status_code == 503
    poller.ready.set()
    assert http.get("/-/ready").status_code == 200


def test_healthy_and_the_landing_page_links_everything(http):
    assert http.get("/-/healthy").status_code == 200
    page = http.get("/").data.decode()
    for link in ("metrics", "-/healthy", "-/ready"):
        assert f'href="{link}"' in page
