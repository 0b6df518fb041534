"""OpenMetrics when the scraper asks for it, and the process's own series, from a running exporter.

The exporter answers the text format unless the Accept header prefers OpenMetrics, as Prometheus's
does; both hold the same samples. Its OpenMetrics is read by client_python's OpenMetrics parser,
which refuses what the format does not allow, and by a real Prometheus, which negotiates it on its
own (a recording proxy between them shows what was asked and answered) and must store exactly
what it stores from the text format."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
import requests
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from procs import free_port, start_exporter, start_prometheus

pytestmark = pytest.mark.e2e
P = "claude_code_analytics"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
# What Prometheus 2.x sends (scrape/scrape.go), OpenMetrics first.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
RUNTIME = ("process_", "python_")


@pytest.fixture(scope="module")
def exporter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exporter")
    with start_exporter(tmp, "--demo", "--demo.members=12", "--poll.interval=1h") as proc:
        yield proc


@pytest.fixture(scope="module")
def organizations(tmp_path_factory):
    """An exporter of two simulated organizations."""
    tmp = tmp_path_factory.mktemp("organizations")
    config = tmp / "config.yml"
    config.write_text(yaml.safe_dump({"organizations": [{"name": "a"}, {"name": "b"}]}))
    args = ("--demo", "--demo.members=5", "--poll.interval=1h", f"--config.file={config}")
    with start_exporter(tmp, *args) as proc:
        yield proc


def scrape(url: str, accept: str | None, gzipped: bool = False, **params: str):
    headers = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    if accept is not None:
        headers["Accept"] = accept
    # requests would decompress a gzipped answer: urllib shows the bytes as sent.
    query = "&".join(f"{k}={v}" for k, v in params.items())
    request = urllib.request.Request(f"{url}/metrics?{query}", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers, response.read()


def by_sample(families) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def data(parsed: dict[tuple[str, frozenset], float]) -> dict[tuple[str, frozenset], float]:
    return {key: value for key, value in parsed.items() if key[0].startswith(P)}


def test_prometheus_accept_header_gets_valid_openmetrics(exporter):
    headers, body = scrape(exporter.url, PROMETHEUS_ACCEPT)
    assert headers["Content-Type"] == OPENMETRICS
    assert headers["Vary"] == "Accept, Accept-Encoding"
    text = body.decode()
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    families = {f.name: f for f in parse_om(text)}
    assert families[f"{P}_exporter_api_requests"].type == "counter"
    assert f"# TYPE {P}_exporter_api_requests counter\n" in text
    assert f"# TYPE {P}_exporter_api_requests_total" not in text
    assert families[f"{P}_month_to_date_cost_usd"].samples


def test_openmetrics_and_the_text_format_hold_the_same_samples(exporter):
    _, om = scrape(exporter.url, PROMETHEUS_ACCEPT)
    _, text = scrape(exporter.url, None)
    assert data(by_sample(parse_om(om.decode()))) == data(by_sample(parse_text(text.decode())))
    assert len(data(by_sample(parse_om(om.decode())))) > 100


def test_gzipped_openmetrics_is_the_same_answer(exporter):
    headers, body = scrape(exporter.url, PROMETHEUS_ACCEPT, gzipped=True)
    assert headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) == len(body)
    text = gzip.decompress(body).decode()
    assert text.endswith("\n# EOF\n")
    _, plain = scrape(exporter.url, PROMETHEUS_ACCEPT)
    assert data(by_sample(parse_om(text))) == data(by_sample(parse_om(plain.decode())))


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, TEXT),
        ("*/*", TEXT),
        ("text/plain", TEXT),
        ("application/openmetrics-text", OPENMETRICS),
        ("application/openmetrics-text; version=1.0.0", OPENMETRICS),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", TEXT),
        ("text/plain;version=0.0.4;q=0.5, application/openmetrics-text;version=1.0.0", OPENMETRICS),
        ("application/openmetrics-text;q=0, text/plain;q=0.1", TEXT),
        ("application/openmetrics-text;version=2.0.0, text/plain;q=0.5", TEXT),
        ("application/json", TEXT),
    ],
)
def test_the_format_follows_the_accept_headers_preference(exporter, accept, content_type):
    headers, body = scrape(exporter.url, accept)
    assert headers["Content-Type"] == content_type
    assert headers["Vary"] == "Accept, Accept-Encoding"  # for caches: the answer depends on it
    assert body.endswith(b"# EOF\n") == (content_type == OPENMETRICS)


# The process's own series


@pytest.mark.parametrize("accept", [None, PROMETHEUS_ACCEPT], ids=["text", "openmetrics"])
def test_the_process_and_python_series_are_served_with_the_organization(exporter, accept):
    _, body = scrape(exporter.url, accept)
    parse = parse_om if accept else parse_text
    families = {f.name: f for f in parse(body.decode())}
    for name in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ):
        assert families[name].samples[0].value > 0
    assert families["process_open_fds"].samples[0].value >= 3
    (info,) = families["python_info"].samples
    assert info.labels["implementation"] == "CPython"
    generations = {s.labels["generation"] for s in families["python_gc_collections"].samples}
    assert generations == {"0", "1", "2"}
    for name, family in families.items():
        if name.startswith(RUNTIME):
            assert all(s.labels["organization_name"] for s in family.samples), name


def test_the_process_series_follow_the_process(exporter):
    first = by_sample(parse_text(scrape(exporter.url, None)[1].decode()))
    for _ in range(200):  # work for the process: its CPU time grows
        scrape(exporter.url, None)
    time.sleep(1.1)  # a rendering is kept a second
    later = by_sample(parse_text(scrape(exporter.url, None)[1].decode()))

    def cpu(parsed):
        return next(v for (n, _), v in parsed.items() if n == "process_cpu_seconds_total")

    assert cpu(later) > cpu(first)


def test_several_organizations_serve_the_process_series_once_on_a_target_of_their_own(
    organizations,
):
    for name in ("a", "b"):
        _, body = scrape(organizations.url, None, organization=name)
        names = {f.name for f in parse_text(body.decode())}
        assert names and not any(n.startswith(RUNTIME) for n in names)
    for accept, parse in ((None, parse_text), (PROMETHEUS_ACCEPT, parse_om)):
        headers, body = scrape(organizations.url, accept, target="process")
        families = list(parse(body.decode()))
        assert families and all(f.name.startswith(RUNTIME) for f in families)
        assert all("organization_name" not in s.labels for f in families for s in f.samples)
    _, body = scrape(organizations.url, PROMETHEUS_ACCEPT, organization="a")
    assert body.endswith(b"\n# EOF\n")
    assert {f.name for f in parse_om(body.decode())} >= {f"{P}_exporter_up"}


def test_a_scrape_without_an_organization_is_told_of_the_process_target(organizations):
    response = requests.get(f"{organizations.url}/metrics", timeout=10)
    assert response.status_code == 400
    assert "/metrics?target=process" in response.text


# A real Prometheus


class RecordingProxy:
    """Forwards scrapes to the exporter and records each Accept header and the Content-Type that
    answered it; with `accept`, sends that Accept header instead of the scraper's."""

    def __init__(self, upstream: str, accept: str | None = None):
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                asked = self.headers.get("Accept", "")
                headers = {"Accept": accept or asked}
                encoding = self.headers.get("Accept-Encoding")
                if encoding:
                    headers["Accept-Encoding"] = encoding
                request = urllib.request.Request(upstream + self.path, headers=headers)
                with urllib.request.urlopen(request, timeout=10) as answer:
                    body = answer.read()
                    content_type = answer.headers["Content-Type"]
                    content_encoding = answer.headers.get("Content-Encoding")
                proxy.seen.append((asked, content_type))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if content_encoding:
                    self.send_header("Content-Encoding", content_encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxies(exporter) -> Iterator[dict[str, RecordingProxy]]:
    with (
        RecordingProxy(exporter.url) as negotiated,
        RecordingProxy(exporter.url, accept="text/plain;version=0.0.4") as text,
    ):
        yield {"negotiated": negotiated, "text": text}


def query(prometheus, expr: str) -> dict[frozenset, float]:
    response = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return {
        frozenset((k, v) for k, v in r["metric"].items() if k not in ("job", "instance")): float(
            r["value"][1]
        )
        for r in response.json()["data"]["result"]
    }


def test_prometheus_negotiates_openmetrics_and_stores_what_the_text_format_gives(proxies, tmp_path):
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{proxy.port}"]}]}
            for job, proxy in proxies.items()
        ],
    }
    with start_prometheus(tmp_path, config) as prometheus:
        deadline = time.monotonic() + 30
        scraped = "count(count_over_time(up[1m]) >= 3 and up == 1)"
        while query(prometheus, scraped).get(frozenset()) != 2:
            assert time.monotonic() < deadline, requests.get(
                f"{prometheus.url}/api/v1/targets", timeout=10
            ).text
            time.sleep(0.5)
        stored = {job: query(prometheus, f'{{job="{job}", __name__=~"{P}_.+"}}') for job in proxies}
        runtime = {
            job: query(prometheus, f'{{job="{job}", __name__=~"process_.+|python_.+"}}')
            for job in proxies
        }
    asked, answered = proxies["negotiated"].seen[0]
    assert asked.startswith("application/openmetrics-text;version=1.0.0")
    assert {answer for _, answer in proxies["negotiated"].seen} == {OPENMETRICS}
    assert {answer for _, answer in proxies["text"].seen} == {TEXT}
    assert len(stored["negotiated"]) > 100
    assert stored["negotiated"] == stored["text"]
    names = {dict(labels)["__name__"] for labels in runtime["negotiated"]}
    assert names == {dict(labels)["__name__"] for labels in runtime["text"]}
    assert {"process_cpu_seconds_total", "python_info"} <= names
