"""The admin key and the Grafana token go to the one configured origin, and nowhere else.

Every test here drives the exporter from outside: its commands run as processes with a hostile
URL and must stop at start with exit status 2 and one sentence, and real HTTP servers on
127.0.0.1 redirect it elsewhere or pose as a proxy while a second server records whether the key
(the canary of conftest.py) ever reached it. Another origin is another port on 127.0.0.1, or
`localhost` in place of `127.0.0.1`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import TEST_KEY
from exporter.client import AdminClient, ApiError
from exporter.grafana import GrafanaClient, GrafanaError
from exporter.origin import MAX_REDIRECTS, UnsafeUrl, parse_origin
from exposition import samples, value
from grafana_stub import GrafanaStub
from procs import free_port, start_exporter

GRAFANA_TOKEN = "glsa_canary_grafana_token_0123456789"
PROG = "claude-code-analytics-exporter"
P = "claude_code_analytics"
Reply = tuple[int, dict[str, str], bytes]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request (CONNECT too) and answers `reply`."""

    def __init__(self, reply: Callable[[str], Reply] | None = None):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reply = reply or (lambda path: (502, {}, b"not here"))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def saw(self, secret: str) -> bool:
        """Whether any request carried `secret` in its request line or a header."""
        return any(
            secret in path or any(secret in v for v in headers.values())
            for _, path, headers in self.requests
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                recorder.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = recorder.reply(self.path)
                self.send_response(status)
                for name, header in headers.items():
                    self.send_header(name, header)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_CONNECT = answer  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def redirect(location: str, status: int = 302) -> Callable[[str], Reply]:
    return lambda path: (status, {"Location": location}, b"")


def serve(tmp_path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The exporter's main command, which listens and polls unless it refuses to start."""
    listen = f"--web.listen-address=127.0.0.1:{free_port()}"
    return run(listen, f"--storage.path={tmp_path / 's.db'}", *args, env=env)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A command of the exporter as its own process, with only `env` (no proxy, no key) set."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        timeout=30,
        check=False,
    )


def assert_refused_at_start(result: subprocess.CompletedProcess, prefix: str, words: str) -> None:
    """Exit status 2, and one sentence on stderr that says why, without the key."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(prefix), result.stderr
    assert words in result.stderr
    assert TEST_KEY not in result.stderr + result.stdout


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    """Another origin than the configured one: whatever reaches it has leaked."""
    with Recorder(lambda path: (200, {"Content-Type": "application/json"}, b"{}")) as server:
        yield server


# Start-up refuses a base URL the key must not be sent to


BAD_URLS = [
    ("http://api.anthropic.com", "is plain http to another host"),
    ("api.anthropic.com", "is not an http(s) URL with a host"),
    ("ftp://api.anthropic.com", "is not an http(s) URL with a host"),
    (f"https://admin:{TEST_KEY}@api.anthropic.com", "has a user name or password in it"),
    ("https://api.anthropic.com/?beta=1", "has a query or a fragment"),
    ("https://api.anthropic.com/#v1", "has a query or a fragment"),
    ("https://api.anthropic.com/ v1", "contains whitespace or a control character"),
    ("https://api.anthropic.com\nX-Forged: 1", "contains whitespace or a control character"),
    ("https://api.anthropic.com\\@127.0.0.1", "contains a backslash"),
    ("https://аpi.anthropic.com", "contains a non-ASCII character"),
    ("http://%31%32%37.0.0.1", "is read differently by different URL parsers"),
    ("https://api.anthropic.com/v1/../v2", "is read differently by different URL parsers"),
]


@pytest.mark.parametrize(("url", "words"), BAD_URLS, ids=[w for _, w in BAD_URLS])
def test_the_exporter_refuses_to_start_with_a_url_the_key_must_not_go_to(tmp_path, url, words):
    env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    result = serve(tmp_path, env)
    assert_refused_at_start(result, f"{PROG}: ANTHROPIC_BASE_URL", words)


def backslash_url(listener: Recorder) -> str:
    """Loopback to a validator that reads the host after the @; urllib3 reads the listener."""
    return f"http://127.0.0.1:{listener.port}\\@127.0.0.1:1"


def test_the_exporter_never_sends_the_key_to_the_host_before_a_backslash(tmp_path, elsewhere):
    env = {"ANTHROPIC_BASE_URL": backslash_url(elsewhere), "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    result = serve(tmp_path, env)
    assert_refused_at_start(result, f"{PROG}: ANTHROPIC_BASE_URL", "contains a backslash")
    assert elsewhere.requests == []


def test_the_backfill_refuses_a_url_the_key_must_not_go_to(tmp_path, elsewhere):
    env = {"ANTHROPIC_BASE_URL": backslash_url(elsewhere), "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    args = ("backfill", "--since=2026-01-01", "--until=2026-01-02", f"--output={tmp_path / 'b'}")
    result = run(*args, f"--storage.path={tmp_path / 's.db'}", env=env)
    assert_refused_at_start(result, f"{PROG} backfill: ANTHROPIC_BASE_URL", "contains a backslash")
    assert elsewhere.requests == []


def test_grafana_access_refuses_an_admin_api_url_the_key_must_not_go_to(elsewhere):
    with GrafanaStub(token=GRAFANA_TOKEN) as grafana:
        env = {
            "ANTHROPIC_BASE_URL": backslash_url(elsewhere),
            "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
            "GRAFANA_URL": grafana.url,
            "GRAFANA_TOKEN": GRAFANA_TOKEN,
        }
        result = run("grafana-access", "sync", "--dry-run", env=env)
    assert_refused_at_start(
        result, f"{PROG} grafana-access: ANTHROPIC_BASE_URL", "contains a backslash"
    )
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("grafana_url", "words"),
    [
        ("http://127.0.0.1:{port}\\@127.0.0.1:1", "contains a backslash"),
        ("http://grafana.example.com:3000", "is plain http to another host"),
        ("https://admin:hunter2@grafana.example.com", "has a user name or password in it"),
    ],
    ids=["backslash", "plain-http", "userinfo"],
)
def test_grafana_access_refuses_a_grafana_url_the_token_must_not_go_to(
    fake_api, elsewhere, grafana_url, words
):
    env = {
        "ANTHROPIC_BASE_URL": fake_api.url,
        "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
        "GRAFANA_URL": grafana_url.format(port=elsewhere.port),
        "GRAFANA_TOKEN": GRAFANA_TOKEN,
    }
    result = run("grafana-access", "sync", "--dry-run", env=env)
    assert_refused_at_start(result, f"{PROG} grafana-access: GRAFANA_URL", words)
    assert "hunter2" not in result.stderr
    assert elsewhere.requests == []


def test_the_exporters_access_timer_refuses_a_grafana_url_the_token_must_not_go_to(
    tmp_path, fake_api, elsewhere
):
    env = {
        "ANTHROPIC_BASE_URL": fake_api.url,
        "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
        "GRAFANA_URL": backslash_url(elsewhere),
        "GRAFANA_TOKEN": GRAFANA_TOKEN,
    }
    result = serve(tmp_path, env, "--grafana-access.interval=1m")
    assert_refused_at_start(result, f"{PROG}: GRAFANA_URL", "contains a backslash")
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.anthropic.com",
        "https://api.anthropic.com:443/",
        "https://gateway.example.com:8443/anthropic/",
        "http://127.0.0.1:8080",
        "http://[::1]:9",
        "http://localhost",
    ],
)
def test_https_urls_and_plain_http_to_loopback_are_accepted(url):
    origin = parse_origin(url, "ANTHROPIC_BASE_URL")
    assert origin.url("/v1/x") == url.rstrip("/") + "/v1/x"


def test_a_client_cannot_be_made_for_a_url_the_key_must_not_go_to():
    with pytest.raises(UnsafeUrl, match="plain http to another host"):
        AdminClient("http://proxy.example.invalid", TEST_KEY)


# Redirects never take the key or the token to another origin


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_key_does_not_follow_a_redirect_to_another_port(fake_api, elsewhere, status):
    fake_api.faults = [(status, {"Location": elsewhere.url + "/v1/organizations/users"}, b"")]
    seen: list[tuple[str, str, bool]] = []
    client = AdminClient(fake_api.url, TEST_KEY, max_retries=3, sleep=lambda s: None)
    client.on_request = lambda endpoint, code, failed: seen.append((endpoint, code, failed))
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert elsewhere.requests == []
    assert info.value.code == "redirect_refused"
    assert seen == [("users", "redirect_refused", True)]  # counted once, and not retried
    assert f"redirect to {elsewhere.url} refused: it is another origin" in str(info.value)


@pytest.mark.parametrize(
    "location",
    [
        "http://localhost:{api}/v1/organizations/users",
        "//127.0.0.1:{elsewhere}/v1/organizations/users",
        "http://127.0.0.1:{elsewhere}\\@127.0.0.1:{api}/v1/organizations/users",
        "http://evil@127.0.0.1:{elsewhere}/",
        "https://127.0.0.1:{api}/v1/organizations/users",
    ],
    ids=["localhost-for-127.0.0.1", "scheme-relative", "backslash", "userinfo", "other-scheme"],
)
def test_the_key_does_not_follow_a_redirect_off_its_origin(fake_api, elsewhere, location):
    api_port = fake_api.url.rsplit(":", 1)[1]
    target = location.format(api=api_port, elsewhere=elsewhere.port)
    fake_api.faults = [(302, {"Location": target}, b"")]
    with pytest.raises(ApiError) as info:
        AdminClient(fake_api.url, TEST_KEY, max_retries=0).list_users()
    assert info.value.code == "redirect_refused"
    assert elsewhere.requests == [] and fake_api.calls["users", None] == 0


def test_a_redirect_on_the_same_origin_is_followed(fake_api):
    fake_api.faults = [(307, {"Location": "/v1/organizations/users?limit=1000"}, b"")]
    members = AdminClient(fake_api.url, TEST_KEY, max_retries=0).list_users()
    assert len(members) == 3


def test_a_redirect_loop_on_the_same_origin_stops(fake_api):
    loop = (302, {"Location": "/v1/organizations/users"}, b"")
    fake_api.faults = [loop] * (MAX_REDIRECTS + 5)
    with pytest.raises(ApiError, match=f"more than {MAX_REDIRECTS} redirects") as info:
        AdminClient(fake_api.url, TEST_KEY, max_retries=0).list_users()
    assert info.value.code == "redirect_refused"
    assert len(fake_api.faults) == 4  # MAX_REDIRECTS + 1 requests were made, no more


def test_https_to_http_on_the_same_host_is_another_origin():
    origin = parse_origin("https://api.anthropic.com", "ANTHROPIC_BASE_URL")
    assert origin.same_origin("https://api.anthropic.com:443/v1/organizations/users?page=2")
    assert not origin.same_origin("http://api.anthropic.com/v1/organizations/users")
    assert not origin.same_origin("http://api.anthropic.com:443/v1/organizations/users")


@pytest.mark.e2e
def test_a_refused_redirect_is_logged_and_counted_by_the_exporter(tmp_path, fake_api, elsewhere):
    fake_api.faults = [(302, {"Location": elsewhere.url + "/"}, b"")] * 50
    env = {"ANTHROPIC_BASE_URL": fake_api.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    args = ("--api.max-retries=0", "--history.days=1")
    with start_exporter(tmp_path, *args, env=env, ready_path="/-/healthy") as proc:
        deadline = time.monotonic() + 20
        # The organization is read first and refused too: wait for the member list's line.
        while "member list not refreshed" not in proc.output():
            assert time.monotonic() < deadline, "the refused redirect was never logged"
            time.sleep(0.1)
        exposition = samples(requests.get(f"{proc.url}/metrics", timeout=5).content)
        log = proc.output()
    errors = value(
        exposition, f"{P}_exporter_api_errors_total", endpoint="users", code="redirect_refused"
    )
    assert errors is not None and errors >= 1
    assert f"member list not refreshed: users: HTTP 302 redirect to {elsewhere.url}" in log
    assert elsewhere.requests == [] and TEST_KEY not in log


def test_the_grafana_token_does_not_follow_a_redirect_to_another_port(elsewhere):
    with (
        Recorder(redirect(elsewhere.url + "/api/org/users")) as grafana,
        pytest.raises(GrafanaError, match="another origin") as info,
    ):
        GrafanaClient(grafana.url, GRAFANA_TOKEN).org_users()
    assert elsewhere.requests == []
    assert GRAFANA_TOKEN not in str(info.value)


def test_a_grafana_write_does_not_follow_even_a_same_origin_redirect():
    with (
        Recorder(redirect("/api/teams/elsewhere", 307)) as grafana,
        pytest.raises(GrafanaError, match="only GET requests follow redirects"),
    ):
        GrafanaClient(grafana.url, GRAFANA_TOKEN).create_team("viewers")
    assert [(method, path) for method, path, _ in grafana.requests] == [("POST", "/api/teams")]


def test_grafana_access_stops_when_grafana_redirects_elsewhere(fake_api, elsewhere):
    with Recorder(redirect(elsewhere.url + "/api/org/users")) as grafana:
        env = {
            "ANTHROPIC_BASE_URL": fake_api.url,
            "ANTHROPIC_ADMIN_API_KEY": TEST_KEY,
            "GRAFANA_URL": grafana.url,
            "GRAFANA_TOKEN": GRAFANA_TOKEN,
        }
        result = run("grafana-access", "sync", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        f"{PROG} grafana-access: Grafana GET /api/org/users: HTTP 302 redirect to"
        f" {elsewhere.url} refused: it is another origin than {grafana.url}.\n"
    )
    assert elsewhere.requests == []


# Proxies from the environment


@pytest.fixture
def proxy(monkeypatch) -> Iterator[Recorder]:
    """A server named as every proxy of the environment, recording what it is asked."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with Recorder() as server:
        yield server


def test_plain_http_to_loopback_never_goes_through_a_proxy(monkeypatch, fake_api, proxy):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    members = AdminClient(fake_api.url, TEST_KEY, max_retries=0).list_users()
    assert len(members) == 3
    assert proxy.requests == []


def test_https_goes_through_the_https_proxy_in_a_tunnel_that_hides_the_key(monkeypatch, proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = AdminClient("https://api.example.invalid", TEST_KEY, max_retries=0)
    with pytest.raises(ApiError, match="cannot reach"):
        client.list_users()
    assert [(method, path) for method, path, _ in proxy.requests] == [
        ("CONNECT", "api.example.invalid:443")
    ]
    assert not proxy.saw(TEST_KEY)


def test_no_proxy_keeps_an_https_origin_off_the_proxy(monkeypatch, proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    with pytest.raises(ApiError):
        AdminClient("https://api.example.invalid", TEST_KEY, max_retries=0).list_users()
    assert proxy.requests == []


def test_the_grafana_token_never_goes_through_a_proxy_to_plain_http(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    with GrafanaStub(token=GRAFANA_TOKEN) as grafana:
        assert GrafanaClient(grafana.url, GRAFANA_TOKEN).org_users() == []
    assert proxy.requests == []


def test_the_recorder_sees_a_key_sent_to_it(elsewhere):
    """The servers above would notice a leak: a request that carries the key is recorded."""
    requests.get(elsewhere.url + "/x", headers={"x-api-key": "canary-probe"}, timeout=5)
    assert elsewhere.saw("canary-probe")


def test_the_ca_bundle_of_the_environment_is_still_trusted(monkeypatch):
    """trust_env is off for proxies and .netrc; a private CA in REQUESTS_CA_BUNDLE still counts."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/exporter/private-ca.pem")
    client = AdminClient("https://api.example.invalid", TEST_KEY)
    assert client._session.verify == "/etc/exporter/private-ca.pem"
