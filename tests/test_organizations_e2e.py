"""Two Anthropic organizations, one exporter, one Prometheus each: the isolation design, run.

The simulated organizations share people (the same emails, with different roles and usage in each),
as one company's organizations do. The exporter reads both from one `--config.file`; each
Prometheus scrapes only its own organization's target. Every series names its organization, and
each Prometheus's figures are its own organization's Console figures, never the other's.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import yaml

import console
from exporter.simulator import SimulatedOrganization, serve
from exposition import samples
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
