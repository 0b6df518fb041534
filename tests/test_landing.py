"""The landing page `/` says where the data comes from, which organization, how fresh it is,
whether the exporter is ready and which version it is; never a secret, never a member.

First the page of an app over a poller with a frozen clock (exact times and ages), then the
exporter as a process, read over HTTP as a person's browser or a script reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest
import requests
import yaml

from conftest import TEST_KEY, make_poller
from exporter import __version__, cli
from exporter.app import create_app, hash_password
from exporter.clock import frozen
from exporter.poller import Poller
from fake_admin_api import FakeAdminApi, fixtures_on
from procs import start_exporter

ORGANIZATION = "dc9f6c26-b22c-4831-8d01-0446bada88f1"  # what the fixture records name
HOSTILE = '<script>alert("org")</script>&<b>'
POLLED = datetime(2026, 1, 16, 12, tzinfo=UTC)
# What the page must never show: the key, a member's email and an API key's name.
NEVER = (TEST_KEY, "alice@example.com", "bob@example.com", "ci-claude-code")
JSON = {"Accept": "application/json"}
READY, LOADING = "<td>Ready</td>", "<td>Loading history from the Admin API</td>"
SIMULATED, ADMIN_API = "Simulated", "through the Anthropic Admin API"


def fixture_days(folder: Path, today: datetime, organization: str = ORGANIZATION) -> Path:
    """The fixture days moved to `today` and the day before, naming `organization`."""
    day = today.date()
    fixtures_on(folder, {"2026-01-15": day - timedelta(days=1), "2026-01-16": day})
    for page in folder.glob("usage_*.json"):
        text = page.read_text().replace(json.dumps(ORGANIZATION), json.dumps(organization))
        page.write_text(text)
    if organization != ORGANIZATION:  # `/v1/organizations/me` names it, and by the same name
        me = {"id": organization, "type": "organization", "name": organization}
        (folder / "organization.json").write_text(json.dumps(me))
    return folder


@pytest.fixture
def poller(tmp_path):
    with FakeAdminApi(TEST_KEY, fixture_days(tmp_path, POLLED)) as api:
        yield make_poller(
            api, tmp_path / "store.db", frozen(POLLED), history_days=2, refetch_days=2
        )


def page(poller: Poller, demo: bool = False) -> str:
    app = create_app(poller, demo=True) if demo else create_app(poller)
    return app.test_client().get("/").data.decode()


# The page of the app


def test_before_the_first_poll_the_page_says_never_and_not_ready(poller):
    text = page(poller)
    assert "<td>never</td>" in text
    assert LOADING in text
    assert "Not known yet" in text


def test_after_the_history_load_the_page_says_ready_as_the_probe_does(poller):
    assert poller.poll_once()
    http = create_app(poller).test_client()
    assert http.get("/-/ready").status_code == 200
    assert READY in http.get("/").data.decode()


def test_the_page_names_the_organization_of_the_usage_records(poller):
    assert poller.poll_once()
    assert f"<td>{ORGANIZATION}</td>" in page(poller)


def test_the_page_says_whether_the_data_is_simulated(poller):
    assert SIMULATED in page(poller, demo=True)
    assert ADMIN_API in page(poller, demo=False)
    assert SIMULATED not in page(poller, demo=False)


def test_the_page_gives_the_version_that_version_prints(poller, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    version = capsys.readouterr().out.split(", version ")[1].split()[0]
    assert f"<td>{version}</td>" in page(poller)


def test_the_same_facts_come_as_json_when_asked(poller):
    assert poller.poll_once()
    poller.clock = frozen(POLLED + timedelta(hours=2))
    response = create_app(poller, demo=True).test_client().get("/", headers=JSON)
    assert response.mimetype == "application/json"
    assert response.json == {
        "source": "demo",
        "ready": True,
        "version": __version__,
        "organizations": [
            {
                "name": "default",
                "organization_id": ORGANIZATION,
                "organization_name": "Example Org",
                "metrics_path": "/metrics",
                "last_success": "2026-01-16T12:00:00Z",
                "last_success_age_seconds": 7200,
                "ready": True,
            }
        ],
        "process_metrics_path": None,
    }


def test_a_browser_gets_html(poller):
    accept = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    response = create_app(poller).test_client().get("/", headers=accept)
    assert response.mimetype == "text/html"
    assert response.headers["Vary"] == "Accept"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "just now"),
        (59, "just now"),
        (60, "1 minute ago"),
        (12 * 60 + 59, "12 minutes ago"),
        (3600, "1 hour ago"),
        (2 * 86400 + 3600, "2 days ago"),
    ],
)
def test_the_last_poll_is_told_in_utc_and_its_age_by_the_exporters_clock(poller, seconds, words):
    assert poller.poll_once()
    poller.clock = frozen(POLLED + timedelta(seconds=seconds))
    assert f"2026-01-16T12:00:00Z ({words})" in page(poller)


# The exporter as a process


@pytest.fixture
def api_today(tmp_path):
    """The fake Admin API serving the fixture days as today and yesterday, naming a hostile
    organization."""
    folder = tmp_path / "api"
    folder.mkdir()
    with FakeAdminApi(TEST_KEY, fixture_days(folder, datetime.now(UTC), HOSTILE)) as api:
        yield api


@pytest.fixture
def admin_env(api_today):
    return {"ANTHROPIC_BASE_URL": api_today.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}


ARGS = ("--poll.interval=1h", "--history.days=2")


def get(url: str, **kwargs) -> requests.Response:
    response = requests.get(url + "/", timeout=5, **kwargs)
    assert response.status_code == 200
    return response


@pytest.mark.e2e
def test_a_running_exporter_shows_never_then_the_first_poll(tmp_path, api_today, admin_env):
    api_today.hang.set()  # the first poll waits on the API until the test has looked
    with start_exporter(tmp_path, *ARGS, env=admin_env, ready_path="/-/healthy") as exporter:
        before = get(exporter.url, headers=JSON).json()
        api_today.hang.clear()
        exporter.wait_ready("/-/ready")
        after = get(exporter.url, headers=JSON).json()
        text = get(exporter.url).text
    (org_before,), (org_after,) = before["organizations"], after["organizations"]
    assert (org_before["last_success"], before["ready"]) == (None, False)
    assert before["source"] == "admin_api" and before["version"] == __version__
    assert after["ready"] and 0 <= org_after["last_success_age_seconds"] < 60
    assert f"{org_after['last_success']} (just now)" in text
    assert READY in text
    assert ADMIN_API in text


@pytest.fixture
def hashed():
    return hash_password("scrape-pw", rounds=1000)


@pytest.fixture
def protected(tmp_path, admin_env, hashed):
    """An exporter whose /metrics needs basic auth, after its first poll."""
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    with start_exporter(tmp_path, *ARGS, f"--web.config.file={web}", env=admin_env) as exporter:
        yield exporter


@pytest.mark.e2e
def test_an_organization_from_upstream_is_escaped(protected):
    text = get(protected.url).text
    assert f"<td>{escape(HOSTILE)}</td>" in text
    assert "<script>" not in text and "<b>" not in text


@pytest.mark.e2e
def test_the_page_stays_open_and_names_no_member_no_key_and_no_hash(protected, hashed):
    assert requests.get(protected.url + "/metrics", timeout=5).status_code == 401
    text = get(protected.url).text
    facts = get(protected.url, headers=JSON)
    (org,) = facts.json()["organizations"]
    assert org["organization_id"] == org["organization_name"] == HOSTILE  # the page is filled in
    for secret in (*NEVER, hashed):
        assert secret not in text
        assert secret not in facts.text
        assert escape(secret) not in text


@pytest.mark.e2e
def test_a_demo_exporter_says_its_data_is_simulated(tmp_path):
    args = ("--demo", "--demo.members=5", "--history.days=2", "--poll.interval=1h")
    with start_exporter(tmp_path, *args) as exporter:
        facts = get(exporter.url, headers=JSON).json()
        text = get(exporter.url).text
    assert facts["source"] == "demo" and facts["ready"]
    (org,) = facts["organizations"]
    assert org["organization_id"] and org["organization_name"]  # /v1/organizations/me's
    assert SIMULATED in text
