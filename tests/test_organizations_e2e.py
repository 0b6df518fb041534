"""Two Anthropic organizations, one exporter, one Prometheus each, one Grafana organization each:
the isolation design of docs/organizations.md and docs/access.md, run end to end.

The simulated organizations share people (the same emails, with different roles and usage in each),
as one company's organizations do. The exporter reads both from one `--config.file`; each
Prometheus scrapes only its own organization's target. Every series names its organization, and
each Prometheus's figures are its own organization's Console figures, never the other's. Through
the Grafana stub's query API, only the people whom an organization's Console lets see analytics
can query its numbers, and a role changed in the Console takes effect on the next sync.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml

import console
from exporter.orgsync import DataSource
from exporter.simulator import SimulatedOrganization, serve
from exposition import samples
from grafana_stub import GrafanaStub, query_data_source
from procs import start_exporter, start_prometheus, wait_for_scrapes_and_rules
from tools.generate import RULES_DIR

pytestmark = pytest.mark.e2e
KEYS = {
    "research": "sk-ant-admin01-research-e2e-key",
    "platform": "sk-ant-admin01-platform-e2e-key",
}
JOB = "claude-code-analytics"
P = "claude_code_analytics"


@pytest.fixture(scope="module")
def orgs(frozen_now):
    """research (30 members) and platform (20 of the same people, each with its own role)."""
    made = {
        "research": SimulatedOrganization(
            seed=5, members=30, now=lambda: frozen_now, name="Research"
        ),
        "platform": SimulatedOrganization(
            seed=6, members=20, now=lambda: frozen_now, name="Platform", people_seed=5
        ),
    }
    with serve({KEYS[name]: org for name, org in made.items()}) as server:
        for org in made.values():
            org.url = server.url
        yield made


@pytest.fixture(scope="module")
def exporter(orgs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exporter")
    entries = []
    for name, key in KEYS.items():
        (tmp / f"{name}.key").write_text(key + "\n")
        entries.append({"name": name, "api_key_file": str(tmp / f"{name}.key")})
    config = tmp / "config.yml"
    config.write_text(yaml.safe_dump({"organizations": entries, "poll.interval": "1h"}))
    env = {"ANTHROPIC_BASE_URL": orgs["research"].url}
    with start_exporter(tmp, f"--config.file={config}", env=env) as proc:
        yield proc


def scrape_config(exporter, name: str) -> dict:
    """The scrape of one organization's target, as docs/organizations.md configures it."""
    return {
        "job_name": JOB,
        "scrape_interval": "1s",
        "static_configs": [
            {
                "targets": [exporter.url.removeprefix("http://")],
                "labels": {"__param_organization": name},
            }
        ],
        "relabel_configs": [
            {
                "source_labels": ["__address__", "__param_organization"],
                "separator": "/",
                "target_label": "instance",
            }
        ],
    }


@pytest.fixture(scope="module")
def prometheus(exporter, tmp_path_factory):
    """One Prometheus per organization, each with the mixin's rules."""
    started = {}
    try:
        for name in KEYS:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [scrape_config(exporter, name)],
            }
            started[name] = start_prometheus(
                tmp_path_factory.mktemp(f"prometheus-{name}"), config, (RULES_DIR / "rules.yaml",)
            )
        for proc in started.values():
            wait_for_scrapes_and_rules(proc, JOB, count=3)
        yield started
    finally:
        for proc in started.values():
            proc.stop()


def metrics(exporter, **params: str) -> requests.Response:
    return requests.get(f"{exporter.url}/metrics", params=params, timeout=10)


def query(prometheus, expr: str) -> list[dict]:
    response = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()["data"]["result"]


def month_records(org) -> list[dict]:
    today = org.now().date()
    day, out = today.replace(day=1), []
    while day <= today:
        out += org.visible_records(day)
        day += timedelta(days=1)
    return out


def test_the_organizations_share_people_with_other_roles(orgs):
    research = {u["email"]: u["role"] for u in orgs["research"].users()}
    platform = {u["email"]: u["role"] for u in orgs["platform"].users()}
    assert set(platform) <= set(research)
    assert any(platform[email] != research[email] for email in platform)


def test_each_target_serves_its_own_organization_and_names_it_on_every_series(exporter, orgs):
    for name, org in orgs.items():
        response = metrics(exporter, organization=name)
        assert response.status_code == 200
        parsed = samples(response.text, organization=True)
        names = {
            (dict(labels)["organization_id"], dict(labels)["organization_name"])
            for _, labels in parsed
        }
        assert names == {(org.organization_id, org.name)}


def test_a_scrape_that_names_no_organization_is_told_which_exist(exporter):
    response = metrics(exporter)
    assert response.status_code == 400
    assert "platform, research" in response.text
    unknown = metrics(exporter, organization="finance")
    assert unknown.status_code == 404
    assert "finance" in unknown.text


def test_each_prometheus_holds_only_its_organization(prometheus, orgs):
    for name, proc in prometheus.items():
        found = query(
            proc,
            'count by (organization_id, organization_name) ({__name__=~".+", organization_id!=""})',
        )
        assert [
            (r["metric"]["organization_id"], r["metric"]["organization_name"]) for r in found
        ] == [(orgs[name].organization_id, orgs[name].name)]


def test_each_prometheus_shows_its_organizations_month_as_the_console_does(prometheus, orgs):
    for name, proc in prometheus.items():
        records = month_records(orgs[name])
        spend = {
            r["metric"]["member"]: Decimal(r["value"][1]).quantize(Decimal("0.01"))
            for r in query(proc, f"{P}_month_to_date_cost_usd > 0")
        }
        expected = {
            m: (c / 100).quantize(Decimal("0.01"))
            for m, c in console.spend_cents(records).items()
            if c
        }
        assert spend == expected
        lines = {
            r["metric"]["member"]: int(float(r["value"][1]))
            for r in query(proc, f"{P}_month_to_date_lines_added > 0")
        }
        assert lines == {m: n for m, n in console.lines_accepted(records).items() if n}


def test_a_shared_person_has_each_organizations_role_in_each(prometheus, orgs):
    for name, proc in prometheus.items():
        roles = {
            r["metric"]["member"]: r["metric"]["role"]
            for r in query(proc, f'{P}_member_info{{actor_type="user"}}')
        }
        assert roles == {u["email"]: u["role"] for u in orgs[name].users()}


# --- Grafana: each organization's numbers only to its own allowed members -------------------------

SYNC_ADMIN, SYNC_PASSWORD = "sync-admin", "sync-admin-password"
ALLOWED = {"primary_owner", "owner", "admin", "billing", "developer"}
GRAFANA_ORGS = {"research": "Claude Code: Research", "platform": "Claude Code: Platform"}
FINANCE_ORG = "Claude Code: Finance"
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def everyone_in_grafana(orgs) -> Iterator[GrafanaStub]:
    """Every person of either organization has a Grafana account (in Grafana's main organization,
    where new accounts land), with the email as the login; the sync signs in as a server admin."""
    with GrafanaStub() as stub:
        stub.add_user(SYNC_ADMIN, "sync@localhost", server_admin=True, password=SYNC_PASSWORD)
        for email in sorted({u["email"] for org in orgs.values() for u in org.users()}):
            stub.add_user(email, email)
        yield stub


@pytest.fixture(scope="module")
def grafana(orgs):
    with everyone_in_grafana(orgs) as stub:
        yield stub


def sync_config(prometheus, tmp_path) -> Path:
    """The exporter's configuration with the Grafana organization dedicated to each organization,
    and the finance view across both."""
    entries = []
    for name in KEYS:
        (tmp_path / f"{name}.key").write_text(KEYS[name] + "\n")
        entries.append(
            {
                "name": name,
                "api_key_file": str(tmp_path / f"{name}.key"),
                "grafana": {
                    "organization": GRAFANA_ORGS[name],
                    "datasource_url": prometheus[name].url,
                },
            }
        )
    finance = {"organization": FINANCE_ORG, "datasource_url": "http://prometheus-all:9090"}
    config = tmp_path / "sync.yml"
    config.write_text(yaml.safe_dump({"organizations": entries, "finance": finance}))
    return config


def sync(orgs, prometheus, grafana, tmp_path) -> subprocess.CompletedProcess:
    """`grafana-access sync --config.file`, as a user runs it."""
    config = sync_config(prometheus, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "grafana-access", "sync", f"--config.file={config}",
         f"--grafana.admin-user={SYNC_ADMIN}"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ANTHROPIC_BASE_URL": orgs["research"].url,
            "GRAFANA_URL": grafana.url,
            "GRAFANA_ADMIN_PASSWORD": SYNC_PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    return done


def grafana_org_id(grafana, name: str) -> int:
    found = requests.get(
        f"{grafana.url}/api/orgs/name/{GRAFANA_ORGS.get(name, name)}",
        auth=(SYNC_ADMIN, SYNC_PASSWORD),
        timeout=10,
    )
    return found.json()["id"]


def as_user(grafana, email: str, name: str, expr: str) -> requests.Response:
    """`expr` on organization `name`'s data source, sent by `email` in its Grafana organization."""
    org_id = grafana_org_id(grafana, name)
    uid = DataSource("http://unused").uid
    return query_data_source(grafana.url, (email, "secret"), uid, expr, org_id=org_id)


def frame_values(response: requests.Response) -> dict[str, float]:
    """The last value of each series of an answer, by its `member` label."""
    frames = response.json()["results"]["A"]["frames"]
    return {
        frame["schema"]["fields"][1]["labels"]["member"]: frame["data"]["values"][1][-1]
        for frame in frames
    }


def roles(org) -> dict[str, str]:
    return {u["email"]: u["role"] for u in org.users()}


def test_each_grafana_organization_shows_its_own_console_figures(
    orgs, prometheus, grafana, tmp_path
):
    sync(orgs, prometheus, grafana, tmp_path)
    for name, org in orgs.items():
        viewer = next(e for e, r in sorted(roles(org).items()) if r in ALLOWED)
        answer = as_user(grafana, viewer, name, f"{P}_month_to_date_cost_usd > 0")
        assert answer.status_code == 200, answer.text
        spend = {
            m: Decimal(str(v)).quantize(Decimal("0.01")) for m, v in frame_values(answer).items()
        }
        records = month_records(org)
        expected = {
            m: (c / 100).quantize(Decimal("0.01"))
            for m, c in console.spend_cents(records).items()
            if c
        }
        assert spend == expected


def test_denied_roles_and_people_of_only_the_other_organization_cannot_query(
    orgs, prometheus, grafana, tmp_path
):
    sync(orgs, prometheus, grafana, tmp_path)
    research, platform = roles(orgs["research"]), roles(orgs["platform"])
    # Allowed in research, denied in platform: the same person, two answers.
    both = next(
        e for e in sorted(platform) if research[e] in ALLOWED and platform[e] not in ALLOWED
    )
    assert as_user(grafana, both, "research", "up").status_code == 200
    assert as_user(grafana, both, "platform", "up").status_code == 403
    only_research = next(
        e for e in sorted(research) if e not in platform and research[e] in ALLOWED
    )
    assert as_user(grafana, only_research, "platform", "up").status_code == 403
    for name, people in (("research", research), ("platform", platform)):
        for email, role in people.items():
            expected = 200 if role in ALLOWED else 403
            assert as_user(grafana, email, name, "up").status_code == expected, (email, role)


def test_a_role_change_in_the_console_takes_effect_on_the_next_sync(
    orgs, prometheus, grafana, tmp_path
):
    sync(orgs, prometheus, grafana, tmp_path)
    research = orgs["research"]
    promoted = next(e for e, r in sorted(roles(research).items()) if r == "user")
    demoted = next(e for e, r in sorted(roles(research).items()) if r == "developer")
    assert as_user(grafana, promoted, "research", "up").status_code == 403
    research.set_role(promoted, "developer")
    research.set_role(demoted, "claude_code_user")
    try:
        assert as_user(grafana, demoted, "research", "up").status_code == 200  # until the sync
        sync(orgs, prometheus, grafana, tmp_path)
        assert as_user(grafana, promoted, "research", "up").status_code == 200
        assert as_user(grafana, demoted, "research", "up").status_code == 403
    finally:
        research.set_role(promoted, "user")
        research.set_role(demoted, "developer")


def test_the_finance_view_is_only_for_people_allowed_in_every_organization(
    orgs, prometheus, grafana, tmp_path
):
    sync(orgs, prometheus, grafana, tmp_path)
    research, platform = roles(orgs["research"]), roles(orgs["platform"])
    in_both = {
        e for e in research.keys() & platform.keys() if {research[e], platform[e]} <= ALLOWED
    }
    assert in_both and in_both != {e for e, r in research.items() if r in ALLOWED}
    finance = requests.get(
        f"{grafana.url}/api/orgs/name/{FINANCE_ORG}", auth=(SYNC_ADMIN, SYNC_PASSWORD), timeout=10
    ).json()["id"]
    assert set(grafana.members(finance)) == in_both | {SYNC_ADMIN}
    for email in sorted(research.keys() | platform.keys()):
        answer = as_user(grafana, email, FINANCE_ORG, "up")
        assert (answer.status_code == 403) == (email not in in_both), email


def test_the_exporters_timer_syncs_every_organization_of_its_configuration(
    orgs, prometheus, tmp_path
):
    config = sync_config(prometheus, tmp_path)
    env = {"ANTHROPIC_BASE_URL": orgs["research"].url, "GRAFANA_ADMIN_PASSWORD": SYNC_PASSWORD}
    with everyone_in_grafana(orgs) as stub:
        args = (
            f"--config.file={config}",
            "--grafana-access.interval=1s",
            f"--grafana.url={stub.url}",
            f"--grafana.admin-user={SYNC_ADMIN}",
        )
        with start_exporter(tmp_path, *args, env=env):
            wanted = {
                name: {e for e, r in roles(org).items() if r in ALLOWED} | {SYNC_ADMIN}
                for name, org in orgs.items()
            }
            deadline = time.monotonic() + 30
            while True:
                found = {
                    name: set(stub.members(org.id))
                    for name in orgs
                    if (org := stub.org_named(GRAFANA_ORGS[name])) is not None
                }
                if found == wanted and stub.org_named(FINANCE_ORG) is not None:
                    break
                assert time.monotonic() < deadline, f"not synced: {sorted(found)}"
                time.sleep(0.2)
