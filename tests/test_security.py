"""The admin key never leaks, and /metrics (which names every member) can require credentials.

The canary key of conftest.py is given to a real exporter process; every line it logs and every
HTTP answer it gives is searched for it, through authentication failures and API faults. Where the
key may be sent (one origin, over TLS) is specified in test_origin.py."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import pytest
import requests
import yaml

from conftest import TEST_KEY, late_today
from exporter import cli
from exporter.app import TokenBucket, create_app, dummy_hash, hash_password, verify_password
from exporter.client import AdminClient, ApiError
from exporter.collector import Settings
from exporter.config import ConfigError, add_arguments, load
from exporter.poller import Exposition, Poller
from exporter.simulator import SimulatedOrganization, serve
from exporter.store import Store
from exporter.webconfig import RateLimit, WebConfig
from fake_admin_api import error_body
from faults import inject, serve_with_faults
from procs import start_exporter, start_prometheus

TOKEN = "metrics-token-0123456789abcdef"
PAGES = ("/", "/metrics", "/-/healthy", "/-/ready", "/no-such-page")


def basic(user: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def answers(url: str) -> str:
    """Every page the exporter serves, headers and bodies, as one text."""
    text = []
    for page in PAGES:
        response = requests.get(url + page, timeout=5)
        text += [str(response.headers), response.text]
    return "\n".join(text)


# The key never leaks


@pytest.mark.e2e
def test_a_rejected_key_appears_in_no_log_line_and_no_answer(tmp_path):
    org = SimulatedOrganization(seed=2, members=5, now=lambda: datetime.now(UTC))
    with serve(org, api_key="sk-ant-admin01-the-real-key") as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        args = ("--log.level=debug", "--api.max-retries=1", "--history.days=2")
        with start_exporter(tmp_path, *args, env=env, ready_path="/-/healthy") as proc:
            wait_for_log(proc, "authentication_error")
            served = answers(proc.url)
            log = proc.output()
    assert "401" in log
    assert TEST_KEY not in log and TEST_KEY not in served


@pytest.mark.e2e
def test_a_key_read_from_a_file_appears_in_no_log_line_and_no_answer_through_faults(tmp_path):
    key_file = tmp_path / "admin-key"
    key_file.write_text(TEST_KEY + "\n")
    org = SimulatedOrganization(seed=2, members=30, now=late_today)
    with serve_with_faults(org, api_key=TEST_KEY) as server:
        inject(server.url, "overloaded", endpoint="users")
        inject(server.url, "rate_limit", endpoint="users", after=1, retry_after="0")
        inject(server.url, "truncated_json", endpoint="claude_code_usage")
        inject(server.url, "reset", endpoint="claude_code_usage", after=1)
        inject(server.url, "missing_fields", endpoint="claude_code_usage", after=2)
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY_FILE": str(key_file)}
        args = ("--log.level=debug", "--history.days=2", "--metrics.member-label=keep")
        with start_exporter(tmp_path, *args, env=env) as proc:
            served = answers(proc.url)
            log = proc.output()
    assert log.count("retrying") == 4 and "skipped a record" in log
    assert TEST_KEY not in log and TEST_KEY not in served


def wait_for_log(proc, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.output():
        assert time.monotonic() < deadline, f"{text!r} never logged"
        time.sleep(0.1)


def test_an_error_body_that_echoes_the_key_is_redacted(fake_api):
    echo = error_body("invalid_request_error", f"the key {TEST_KEY} is not allowed here")
    fake_api.faults = [(400, {}, echo)]
    client = AdminClient(fake_api.url, TEST_KEY, max_retries=0)
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert "[redacted]" in str(info.value)
    assert TEST_KEY not in str(info.value)


def test_an_error_body_cannot_forge_log_lines(fake_api):
    forged = "busy\n2026-01-01 00:00:00 INFO exporter: all good"
    fake_api.faults = [(400, {}, error_body("invalid_request_error", forged))]
    client = AdminClient(fake_api.url, TEST_KEY, max_retries=0)
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert "\n" not in str(info.value) and "all good" in str(info.value)


def test_the_key_is_not_in_the_repr_of_the_config_or_the_client():
    parser = cli.Parser()
    add_arguments(parser)
    config = load(parser.parse_args([]), {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY})
    client = AdminClient("http://127.0.0.1:9", config.organizations[0].api_key)
    assert config.organizations[0].api_key == TEST_KEY
    assert TEST_KEY not in repr(config) and TEST_KEY not in repr(client)


# /metrics behind basic auth or a bearer token


@pytest.fixture
def web_config(tmp_path) -> Path:
    (tmp_path / "token").write_text(TOKEN + "\n")
    path = tmp_path / "web.yml"
    users = {
        "prometheus": bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=4)).decode(),
        "grafana": hash_password("agent-pw", rounds=1000),
    }
    path.write_text(yaml.safe_dump({"basic_auth_users": users, "bearer_token_file": "token"}))
    return path


@pytest.fixture
def http(tmp_path, web_config):
    parser = cli.Parser()
    add_arguments(parser)
    config = load(parser.parse_args(["--demo", f"--web.config.file={web_config}"]), {})
    client = AdminClient("http://127.0.0.1:9", TEST_KEY)
    poller = Poller(
        client, Store(tmp_path / "s.db"), history_days=2, refetch_days=2, settings=Settings()
    )
    poller.exposition = Exposition.small(b"secret_members 1\n")
    return create_app(poller, config.web).test_client()


def test_metrics_without_credentials_are_refused_with_a_basic_challenge(http):
    response = http.get("/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert b"secret_members" not in response.data


@pytest.mark.parametrize(
    "headers",
    [
        basic("prometheus", "scrape-pw"),
        basic("grafana", "agent-pw"),
        {"Authorization": f"Bearer {TOKEN}"},
    ],
    ids=["bcrypt", "pbkdf2", "bearer"],
)
def test_metrics_are_served_with_valid_credentials(http, headers):
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.data.startswith(b"secret_members 1\n")


@pytest.mark.parametrize(
    "headers",
    [
        basic("prometheus", "wrong"),
        basic("grafana", "scrape-pw"),
        basic("nobody", "scrape-pw"),
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Token {TOKEN}"},
    ],
    ids=[
        "wrong-password",
        "other-users-password",
        "unknown-user",
        "wrong-token",
        "garbage",
        "scheme",
    ],
)
def test_metrics_with_wrong_credentials_are_refused(http, headers):
    assert http.get("/metrics", headers=headers).status_code == 401


def test_a_password_that_verified_once_is_still_checked_against_its_user(http):
    assert http.get("/metrics", headers=basic("prometheus", "scrape-pw")).status_code == 200
    assert http.get("/metrics", headers=basic("grafana", "scrape-pw")).status_code == 401


@pytest.mark.parametrize("page", ["/", "/-/healthy", "/-/ready"])
def test_the_landing_page_and_the_probes_stay_open(http, page):
    assert http.get(page).status_code in (200, 503)


def test_pbkdf2_hashes_verify_only_their_password():
    hashed = hash_password("right", rounds=1000)
    assert hashed.startswith("$pbkdf2-sha256$1000$")
    assert verify_password("right", hashed) and not verify_password("wrong", hashed)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ({"basic_auth_users": {"prometheus": "plain-text"}}, "plain passwords are refused"),
        ({"tls_server_config": {"cert_file": "x"}}, "tls_server_config needs key_file"),
        ({"basic_auth_users": {}, "other": 1}, "unknown setting 'other'"),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "ciphers": ["x"]}},
            "unknown tls_server_config setting 'ciphers'",
        ),
        ({"http_server_config": {"headers": {"Server": "x"}}}, "'Server' cannot be set"),
        (
            {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
            "X-Frame-Options must be one of deny, sameorigin",
        ),
        ({"rate_limit": {"interval": "1s", "burst": 0}}, "burst of at least 1"),
        ({"bearer_token_file": "missing"}, "cannot read bearer_token_file"),
        ({}, "sets none of"),
    ],
)
def test_a_bad_web_config_is_one_clear_sentence(tmp_path, capsys, content, complaint):
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(content))
    assert cli.main(["--demo", f"--web.config.file={path}"]) == 2
    error = capsys.readouterr().err
    assert complaint in error and error.count("\n") == 1 and "Traceback" not in error


def test_the_web_config_repr_shows_no_secret():
    web = WebConfig({"prometheus": "$2b$04$" + "a" * 53}, TOKEN)
    assert TOKEN not in repr(web) and "$2b$" not in repr(web)


def test_load_refuses_a_short_bearer_token(tmp_path):
    (tmp_path / "token").write_text("short")
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"bearer_token_file": "token"}))
    parser = cli.Parser()
    add_arguments(parser)
    with pytest.raises(ConfigError, match="under 16 characters"):
        load(parser.parse_args(["--demo", f"--web.config.file={path}"]), {})


@pytest.mark.e2e
def test_prometheus_scrapes_a_protected_exporter_with_basic_auth(tmp_path, web_config):
    args = ("--demo", "--demo.members=5", "--history.days=2", f"--web.config.file={web_config}")
    with start_exporter(tmp_path, *args) as exporter:
        assert requests.get(f"{exporter.url}/metrics", timeout=5).status_code == 401
        target = exporter.url.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "protected",
                    "basic_auth": {"username": "prometheus", "password": "scrape-pw"},
                    "static_configs": [{"targets": [target]}],
                },
                {"job_name": "anonymous", "static_configs": [{"targets": [target]}]},
            ],
        }
        with start_prometheus(tmp_path, config) as prometheus:
            health = wait_for_targets(prometheus.url)
    assert health == {"protected": "up", "anonymous": "down"}


def wait_for_targets(url: str, timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if "unknown" not in health.values() and len(health) == 2 or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def test_the_web_config_example_in_the_docs_loads_and_its_hashes_verify(tmp_path):
    text = (Path(__file__).parent.parent / "docs" / "security.md").read_text()
    example = next(b for b in text.split("```yaml")[1:] if "basic_auth_users" in b)
    (tmp_path / "web.yml").write_text(example.split("```")[0])
    (tmp_path / "metrics-token").write_text(TOKEN)
    parser = cli.Parser()
    add_arguments(parser)
    web = load(parser.parse_args(["--demo", f"--web.config.file={tmp_path / 'web.yml'}"]), {}).web
    assert web is not None and web.bearer_token == TOKEN
    assert sorted(web.basic_auth_users) == ["grafana-agent", "prometheus"]
    assert all(verify_password("change-me", h) for h in web.basic_auth_users.values())


@pytest.mark.e2e
def test_rate_limit_answers_429_past_its_burst_and_headers_go_on_every_answer(tmp_path):
    path = tmp_path / "web.yml"
    settings = {
        "rate_limit": {"interval": "1m", "burst": 3},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
    }
    path.write_text(yaml.safe_dump(settings))
    args = ("--demo", "--demo.members=5", "--history.days=2", f"--web.config.file={path}")
    with start_exporter(tmp_path, *args, ready_path="/") as exporter:
        answers = [requests.get(f"{exporter.url}/metrics", timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # the ready check took one
    assert all(a.headers["X-Content-Type-Options"] == "nosniff" for a in answers)


def test_the_dummy_hash_has_the_scheme_and_cost_most_of_the_file_uses():
    bcrypt5 = bcrypt.hashpw(b"a", bcrypt.gensalt(rounds=5)).decode()
    hashes = [bcrypt5, bcrypt5, hash_password("b", rounds=1000)]
    assert dummy_hash(hashes).startswith("$2b$05$")
    assert dummy_hash([hash_password("c", rounds=1234)]).startswith("$pbkdf2-sha256$1234$")


def test_the_rate_limit_gives_its_burst_then_one_request_per_interval():
    now = [0.0]
    bucket = TokenBucket(RateLimit(interval=10, burst=2), clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] = 9.0
    assert not bucket.take()
    now[0] = 10.5
    assert bucket.take() and not bucket.take()
